#!/usr/bin/env bash
# Set up .venv-mlserver: MLServer + its scikit-learn runtime, the peer server that the interop
# tests (tests/test_interop.py) and the serving benchmark (benchmarks/w4_serving.py) talk to.
#
#   bash scripts/mlserver_env.sh      create/update it (idempotent), print its path on stdout
#
# MLServer lives in its OWN virtual environment: it pins an older FastAPI/Starlette than ours.
# scikit-learn is pinned to the version in .venv so that the joblib file the tests write for
# MLServer (the peer's own model format; our code never reads joblib/pickle) loads there.
# Set AIAAS_SKIP_MLSERVER=1 to skip it (the tests that need it are then skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv-mlserver
PY=${PYTHON:-python3}
MLSERVER_VERSION=${MLSERVER_VERSION:-1.7.1}

if [ -n "${AIAAS_SKIP_MLSERVER:-}" ]; then
  echo "AIAAS_SKIP_MLSERVER set: not setting up $VENV" >&2
  exit 0
fi

# The scikit-learn (and numpy) our model is fitted with: the pickle must load in the peer.
sk=""
np_=""
if [ -x .venv/bin/python ]; then
  sk=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("scikit-learn"))' 2>/dev/null || true)
  np_=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("numpy"))' 2>/dev/null || true)
fi
want="mlserver==$MLSERVER_VERSION mlserver-sklearn==$MLSERVER_VERSION${sk:+ scikit-learn==$sk}${np_:+ numpy==$np_}"
stamp=$VENV/.aiaas-installed

if [ -x "$VENV/bin/mlserver" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$VENV"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" >&2
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >&2
# shellcheck disable=SC2086 # $want is a list of requirement specifiers
if ! "$VENV/bin/python" -m pip install -q $want >&2; then
  # The exact numpy/scikit-learn pair may not resolve next to MLServer's own pins: the
  # scikit-learn version is the one that matters for unpickling, keep that one.
  echo "mlserver_env: retrying without the numpy pin" >&2
  "$VENV/bin/python" -m pip install -q "mlserver==$MLSERVER_VERSION" "mlserver-sklearn==$MLSERVER_VERSION" \
    ${sk:+"scikit-learn==$sk"} >&2
fi
"$VENV/bin/python" -c 'import mlserver, mlserver_sklearn, sklearn' >&2
echo "$want" > "$stamp"
echo "$VENV"
