#!/usr/bin/env bash
# Refresh the locks of the dev/test environment from pyproject.toml's ranges:
#
#   bash scripts/lock.sh                      keep the committed pins; add what new inputs need
#   bash scripts/lock.sh --upgrade            newest versions the ranges allow
#   bash scripts/lock.sh --upgrade-package X  only X moves (any uv pip compile option passes through)
#
# Writes requirements/dev.lock (the package with its test extras and its build requirements, every
# transitive package pinned for CPython 3.11 on x86-64 Linux) and requirements/mlserver.lock (the
# interop peer, with dev.lock's scikit-learn and numpy). Both start with the digest of their inputs,
# which tests/test_lock.py compares with pyproject.toml. Commit both files.
#
# torch stays out of dev.lock and is pinned by requirements/constraints.txt instead: resolved here it
# is the local CPU wheel (2.13.0+cpu); left to the installer, the same pin takes the CUDA build and
# its nvidia-* packages (which torch pins exactly) on a machine with a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
TOOLS=$ROOT/.venv-tools
if [ ! -x "$TOOLS/bin/uv" ]; then
  "$PY" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q -r requirements/tools.txt
fi
UV=$TOOLS/bin/uv
# The local wheel folder of pip's configuration (the CPU torch), when the machine has one.
export UV_FIND_LINKS=${UV_FIND_LINKS:-${PIP_FIND_LINKS:-}}
[ -n "$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
target=(--python-version 3.11 --python-platform x86_64-manylinux_2_28)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
digest=$("$PY" scripts/lock_inputs.py digest)

"$PY" scripts/lock_inputs.py build-requires > "$tmp/build.in"
# uv prefers the pins already in its output file: start from the committed locks, so a new input
# adds its packages without moving the others (--upgrade or --upgrade-package X to move them).
cp requirements/dev.lock "$tmp/dev.lock"
cp requirements/mlserver.lock "$tmp/mlserver.lock"
"$UV" pip compile -q pyproject.toml "$tmp/build.in" --extra test -c requirements/constraints.txt \
  "${target[@]}" --no-emit-package torch --no-header --annotation-style line "$@" -o "$tmp/dev.lock"
{ echo "# inputs-sha256: $digest"
  echo "# Made by: bash scripts/lock.sh (uv pip compile of pyproject.toml [test] + build requirements)."
  echo "# torch: requirements/constraints.txt"
  sed "s|-r $tmp/build.in|[build-system]|" "$tmp/dev.lock"; } > requirements/dev.lock

grep -E '^(numpy|scikit-learn)==' requirements/dev.lock > "$tmp/peer-constraints.txt"
"$UV" pip compile -q requirements/mlserver.in -c "$tmp/peer-constraints.txt" "${target[@]}" \
  --no-header --annotation-style line "$@" -o "$tmp/mlserver.lock"
{ echo "# inputs-sha256: $digest"
  echo "# Made by: bash scripts/lock.sh (uv pip compile of requirements/mlserver.in, numpy/scikit-learn from dev.lock)."
  sed "s|-c $tmp/peer-constraints.txt|-c requirements/dev.lock|" "$tmp/mlserver.lock"; } > requirements/mlserver.lock
echo "requirements/dev.lock: $(grep -c '==' requirements/dev.lock) pins; requirements/mlserver.lock: $(grep -c '==' requirements/mlserver.lock) pins"
