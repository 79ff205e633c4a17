"""Helpers shared by the trainers: target checks, the held-out split, fingerprints, versions.

They live in one place so that both frameworks split, fingerprint and record versions the
same way: two jobs on the same frame with the same seed see the same train/test rows, and a
registered model can be traced back to its exact data and library stack.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from ..dependencies import package_versions
from ..errors import DataError
from ..target_check import check_target
from .base import TrainSpec

#: A float/int target with at most this many distinct integral values counts as class labels
#: when the estimator itself does not say whether it classifies.
MAX_CLASSES_HEURISTIC = 20


def data_fingerprint(df: pd.DataFrame) -> str:
    """sha256 hex of a frame's columns, dtypes and cell values (row index ignored).

    ``hash_pandas_object`` uses a fixed hash key, so the digest is the same in every process
    and on every worker: it identifies the training data in the registry without storing it.
    A :class:`~.partitions.PartitionStream` gives its own (its partitions' digests, combined).
    """
    if not isinstance(df, pd.DataFrame) and hasattr(df, "fingerprints"):
        return df.fingerprint
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in df.columns]).encode())
    h.update(json.dumps([str(t) for t in df.dtypes]).encode())
    h.update(np.ascontiguousarray(pd.util.hash_pandas_object(df, index=False).to_numpy()).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and of the installed stack, to reproduce or audit a model later:
    :func:`~aiaas_jupyter.dependencies.package_versions` without the packages not installed."""
    return {name: version for name, version in package_versions().items() if version is not None}


def features_and_target(spec: TrainSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    check_target(data, spec.target)  # the kernel's check again: a job may come from other code
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
    from sklearn import config_context
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    if not spec.test_size or spec.test_size <= 0:
        return X, X, y, y
    stratify = None
    if classification:
        counts = y.value_counts(dropna=False)
        n_test = spec.test_size if spec.test_size >= 1 else int(np.ceil(spec.test_size * len(y)))
        if len(counts) >= 2 and counts.min() >= 2 and n_test >= len(counts) \
                and len(y) - n_test >= len(counts):
            stratify = np.asarray(y)
    # ``train_test_split``'s own rows (the same splitter, sizes and seed, see tests/test_split.py)
    # at a third of its cost: the row indices are drawn once and each array is taken once,
    # where it validated and indexed every array through its generic path (~1.5 ms of a
    # short job, W0). Only scikit-learn's argument checks are skipped.
    splitter = (StratifiedShuffleSplit if stratify is not None else ShuffleSplit)(
        n_splits=1, test_size=spec.test_size, random_state=spec.seed)
    try:
        with config_context(skip_parameter_validation=True):
            train, test = next(splitter.split(np.empty((len(y), 0)), stratify))
    except ValueError as e:
        raise DataError(f"cannot split {len(y)} rows with test_size={spec.test_size}: {e}") from e
    return X.take(train, axis=0), X.take(test, axis=0), y.take(train), y.take(test)


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
