#!/usr/bin/env bash
# Set up .venv-mlserver: MLServer + its scikit-learn runtime, the peer server that the interop
# tests (tests/test_interop.py) and the serving benchmark (benchmarks/w4_serving.py) talk to.
#
#   bash scripts/mlserver_env.sh      create/update it (idempotent), print its path on stdout
#
# MLServer lives in its OWN virtual environment: it pins an older FastAPI/Starlette than ours.
# Our code never reads joblib/pickle: the joblib file is the peer's own model format.
# Set AIAAS_SKIP_MLSERVER=1 to skip it (the interop tests then fail, saying so).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv-mlserver
PY=${PYTHON:-python3}

if [ -n "${AIAAS_SKIP_MLSERVER:-}" ]; then
  echo "AIAAS_SKIP_MLSERVER set: not setting up $VENV" >&2
  exit 0
fi

# Installed from requirements/mlserver.lock, whose scikit-learn and numpy are those of dev.lock
# (bash scripts/lock.sh): the joblib file our tests write for the peer must load there.
LOCK=requirements/mlserver.lock
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
stamp=$VENV/.aiaas-installed

if [ -x "$VENV/bin/mlserver" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$VENV"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" >&2
fi
UV=$ROOT/.venv/bin/uv
if [ ! -x "$UV" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements/tools.txt >&2
  UV=$VENV/bin/uv
fi
"$UV" pip sync -q --compile-bytecode --python "$VENV/bin/python" "$LOCK" >&2
"$VENV/bin/python" -c 'import mlserver, mlserver_sklearn, sklearn' >&2
echo "$want" > "$stamp"
echo "$VENV"
