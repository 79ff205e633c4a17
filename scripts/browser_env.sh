#!/usr/bin/env bash
# Make sure a Chromium for the end-to-end tests (tests/test_sidebar_e2e.py) is at /usr/bin/chromium.
#
#   bash scripts/browser_env.sh      idempotent; prints nothing on success
#
# The Debian package, not `playwright install`: browser downloads fail here (see
# ../shared/notes/toolchain.md); the tests drive it with playwright's `executable_path`.
set -euo pipefail
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# quiet on success; on failure the captured output is shown
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "browser_env: could not install chromium" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "browser_env: chromium installed but $CHROMIUM is missing" >&2
  exit 1
fi
