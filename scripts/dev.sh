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
  .venv/bin/python -m pip install -q --upgrade pip
  # torch is pinned through constraints.txt (see ../shared/notes/toolchain.md). The install also
  # builds the JupyterLab sidebar (labextension/, jlpm from jupyter-builder) into the package.
  PATH="$ROOT/.venv/bin:$PATH" .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
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
    .venv/bin/python -m pytest tests notebooks --nbval --nbval-current-env --nbval-cell-timeout=600 \
      -p no:cacheprovider --junitxml="$out/junit.xml" "${@:2}"
    ;;
  *)
    echo "usage: bash scripts/dev.sh quickstart|test [pytest args...]" >&2
    exit 2
    ;;
esac
