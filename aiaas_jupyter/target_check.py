"""Can this frame train a model of that target column? One check, in the kernel and on the worker.

The kernel runs it before dispatch (``client.train``), so a wrong ``--target`` fails at once, in
one line, and registers nothing; the worker runs it again before fitting (``training.common``),
because a job may be submitted by other code than the façade. One function means one rule and
one message wherever it fails. The frame is pandas or Dask: only the checks that need no
computation run on a Dask frame (its columns are known, its length is not, without reading it).

Stdlib only (a leaf): pandas and Dask are never imported here; a frame of either kind can only
exist when its library is already loaded, so ``sys.modules`` tells the kinds apart.
"""

from __future__ import annotations

import sys

from .errors import DataError


def _is(frame, module: str) -> bool:
    lib = sys.modules.get(module)
    return lib is not None and isinstance(frame, lib.DataFrame)


def check_target(frame, target: str) -> None:
    """Raise :class:`DataError` unless *frame* is a DataFrame with *target* and something to
    learn it from (≥ 1 feature column; a pandas frame also ≥ 2 rows, to train and evaluate)."""
    pandas = _is(frame, "pandas")
    if not (pandas or _is(frame, "dask.dataframe")):
        raise DataError(f"training data must be a pandas or Dask DataFrame, got {type(frame).__name__}")
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in the data",
                        hint=f"columns: {', '.join(map(str, frame.columns))}")
    if len(frame.columns) < 2:
        raise DataError("the data has no feature columns besides the target")
    if pandas and len(frame) < 2:
        raise DataError(f"need at least 2 rows to train and evaluate, got {len(frame)}")
