"""Helpers shared by the trainers: target checks, the held-out split, fingerprints, versions.

They live in one place so that both frameworks split, fingerprint and record versions the
same way: two jobs on the same frame with the same seed see the same train/test rows, and a
registered model can be traced back to its exact data and library stack.
"""

from __future__ import annotations

import hashlib
import functools
import importlib.metadata
import json
import platform
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .base import TrainSpec

#: Distributions whose versions are recorded with every model (those installed).
VERSIONED_DISTRIBUTIONS = (
    "numpy", "pandas", "scikit-learn", "skops", "torch", "safetensors",
    "onnx", "onnxruntime", "dask", "distributed",
)

#: A float/int target with at most this many distinct integral values counts as class labels
#: when the estimator itself does not say whether it classifies.
MAX_CLASSES_HEURISTIC = 20


def data_fingerprint(df: pd.DataFrame) -> str:
    """sha256 hex of a frame's columns, dtypes and cell values (row index ignored).

    ``hash_pandas_object`` uses a fixed hash key, so the digest is the same in every process
    and on every worker: it identifies the training data in the registry without storing it.
    """
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in df.columns]).encode())
    h.update(json.dumps([str(t) for t in df.dtypes]).encode())
    h.update(np.ascontiguousarray(pd.util.hash_pandas_object(df, index=False).to_numpy()).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and of the installed ML stack, to reproduce or audit a model later."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    """Read once per process: installed versions do not change under a running worker."""
    out = {"python": platform.python_version()}
    for dist in VERSIONED_DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def check_target(spec: TrainSpec, data: pd.DataFrame) -> None:
    """Fail early, on the worker, with the columns the user could have meant."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"training data must be a pandas DataFrame, got {type(data).__name__}")
    if spec.target not in data.columns:
        cols = ", ".join(map(str, data.columns))
        raise DataError(f"target column {spec.target!r} not found; available columns: {cols}",
                        hint="pass --target with one of these columns")
    if data.shape[1] < 2:
        raise DataError("the data has no feature columns besides the target")
    if len(data) < 2:
        raise DataError(f"need at least 2 rows to train and evaluate, got {len(data)}")


def features_and_target(spec: TrainSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    check_target(spec, data)
    return data.drop(columns=[spec.target]), data[spec.target]


def looks_like_classes(y: pd.Series) -> bool:
    """Whether a target holds class labels: non-numeric, bool, or few distinct integers."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return True
    values = y.dropna().to_numpy()
    if values.size == 0 or not np.all(np.mod(values, 1) == 0):
        return False
    return len(np.unique(values)) <= MAX_CLASSES_HEURISTIC


def split(spec: TrainSpec, X: pd.DataFrame, y: pd.Series, classification: bool):
    """Seeded train/test split; stratified for classification when every class allows it.

    Stratification keeps rare classes in both halves (and accuracy comparable across jobs),
    but ``train_test_split`` refuses it when a class has one member or the test set is
    smaller than the number of classes, so we fall back to a plain split then.
    ``test_size <= 0`` evaluates on the training rows (returned as the "test" split too).
    """
    from sklearn.model_selection import train_test_split

    if not spec.test_size or spec.test_size <= 0:
        return X, X, y, y
    stratify = None
    if classification:
        counts = y.value_counts(dropna=False)
        n_test = spec.test_size if spec.test_size >= 1 else int(np.ceil(spec.test_size * len(y)))
        if len(counts) >= 2 and counts.min() >= 2 and n_test >= len(counts) \
                and len(y) - n_test >= len(counts):
            stratify = y
    try:
        return train_test_split(X, y, test_size=spec.test_size, random_state=spec.seed,
                                stratify=stratify)
    except ValueError as e:
        raise DataError(f"cannot split {len(y)} rows with test_size={spec.test_size}: {e}") from e


def jsonable(value: Any) -> Any:
    """The value if JSON can hold it, else its repr (params must survive the registry's JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def jsonable_list(values) -> list:
    """Class labels etc. as plain Python values (numpy scalars -> Python scalars)."""
    return [jsonable(v) for v in np.asarray(values).tolist()]
