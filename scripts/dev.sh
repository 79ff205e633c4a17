#!/usr/bin/env bash
# One entry point for set-up, the quickstart and the tests (the README's two commands).
#   bash scripts/dev.sh quickstart   set up .venv, run notebooks/01-quickstart.ipynb headless
#   bash scripts/dev.sh test         set up .venv, run every test (pytest + nbval + benchmark smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
  fi
  # Everything comes from the lock (requirements/dev.lock, refreshed by `bash scripts/lock.sh`), installed
  # by a pinned uv; torch is pinned by requirements/constraints.txt (see the lock script). uv looks in
  # the machine's pip find-links folder too, where this machine keeps its CPU torch wheel.
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements/tools.txt
  export UV_FIND_LINKS=${UV_FIND_LINKS:-${PIP_FIND_LINKS:-}}
  [ -n "$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
  local uv=(.venv/bin/uv pip install -q --python .venv/bin/python)
  # --compile-bytecode: every process the tests start (workers, kernels, servers) then imports from
  # .pyc files instead of compiling torch, pandas, ... again, which matters where
  # PYTHONDONTWRITEBYTECODE is set (as on this development machine): `import torch._dynamo` 10 s -> 4.7 s.
  "${uv[@]}" --compile-bytecode -r requirements/dev.lock -c requirements/constraints.txt torch
  # The package itself, editable, built with the locked build tools (no isolated build env). The
  # build also builds the JupyterLab sidebar (labextension/, jlpm from jupyter-builder).
  PATH="$ROOT/.venv/bin:$PATH" "${uv[@]}" --no-deps --no-build-isolation -e .
}

case "${1:-}" in
  quickstart)
    setup
    export AIAAS_HOME=${AIAAS_HOME:-$ROOT/.aiaas-home}
    .venv/bin/python scripts/run_notebook.py notebooks/01-quickstart.ipynb
    ;;
  test)
    setup
    bash scripts/mlserver_env.sh >/dev/null   # .venv-mlserver: the peer for interop tests and W4
    bash scripts/browser_env.sh               # Debian chromium for the sidebar's end-to-end test
    out=${AIAAS_TEST_OUT:-$ROOT/test-output}
    mkdir -p "$out"
    export AIAAS_HOME=$(mktemp -d -t aiaas-home-XXXX)   # notebooks register into a throwaway registry
    trap 'rm -rf "$AIAAS_HOME"' EXIT                    # ... removed at the end (a server left there exits)
    # every test by default; `bash scripts/dev.sh test tests/test_x.py -k y` runs only what it names
    local_targets=(tests notebooks)
    for a in "${@:2}"; do
      case "$a" in tests*|notebooks*) local_targets=(); break ;; esac
    done
    .venv/bin/python -m pytest "${local_targets[@]}" --nbval --nbval-current-env --nbval-cell-timeout=600 \
      -p no:cacheprovider --durations=20 --junitxml="$out/junit.xml" "${@:2}"
    ;;
  *)
    echo "usage: bash scripts/dev.sh quickstart|test [pytest args...]" >&2
    exit 2
    ;;
esac
