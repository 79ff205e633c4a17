"""What the forms can offer from the notebook: its DataFrames, its model variables, and what a
chosen target column means (classification or regression, how many classes).

Why separate from the form: these answers are plain data, testable without widgets, and the
scans must stay cheap and side-effect free — they look at ``sys.modules`` instead of importing
pandas, dask or torch, so refreshing a form never imports a library the notebook did not.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

#: names a ``%%aiaas train`` cell sets itself (the magic sets earlier values aside while the cell
#: runs), so a notebook variable of that name cannot be referred to from the generated cell
CELL_NAMES = ("model", "optimizer", "loss")


def _frame_types() -> tuple:
    types = []
    pd = sys.modules.get("pandas")
    if pd is not None:
        types.append(pd.DataFrame)
    dd = sys.modules.get("dask.dataframe")
    if dd is not None:
        types.append(dd.DataFrame)
    return tuple(types)


def _public(name: str) -> bool:
    return not name.startswith("_") and name not in ("In", "Out")


def frame_names(namespace: dict) -> list[str]:
    """The pandas/dask DataFrames of *namespace*, by name (what ``--data`` accepts)."""
    types = _frame_types()
    if not types:
        return []
    return sorted(k for k, v in namespace.items() if _public(k) and isinstance(v, types))


def is_model(obj) -> bool:
    """A torch module or a scikit-learn-like estimator instance (fit and predict)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return True
    return (not isinstance(obj, type) and callable(getattr(obj, "fit", None))
            and callable(getattr(obj, "predict", None)) and callable(getattr(obj, "get_params", None)))


def model_names(namespace: dict) -> list[str]:
    """Model variables a generated cell can use (``model`` itself cannot: see CELL_NAMES)."""
    return sorted(k for k, v in namespace.items()
                  if _public(k) and k not in CELL_NAMES and is_model(v))


def columns(frame) -> list[str]:
    return [str(c) for c in frame.columns]


@dataclass
class DataInfo:
    """The chosen data and target, as the catalog needs them."""

    task: str                          # "classification" | "regression"
    n_features: int
    n_classes: int = 0
    text_columns: list = field(default_factory=list)     # object/string feature columns
    other_columns: list = field(default_factory=list)    # neither numeric/bool nor text

    @property
    def n_outputs(self) -> int:
        """Units of a network's last layer: one per class, or one value for regression."""
        return max(self.n_classes, 2) if self.task == "classification" else 1

    def describe(self) -> str:
        if self.task == "classification":
            return f"classification · {self.n_classes} classes"
        return "regression"


def data_info(frame, target: str) -> DataInfo:
    """Task and shape of *frame* for *target*; the same rule the trainers use.

    A dask frame is judged on its first rows (reading all of it to fill a form would be slow);
    the class count then comes from the whole column.
    """
    import pandas as pd

    from ..training.common import looks_like_classes

    lazy = not isinstance(frame, pd.DataFrame)
    if lazy:
        with warnings.catch_warnings():  # "Insufficient elements for `head`": the first partition will do
            warnings.simplefilter("ignore", UserWarning)
            sample = frame.head(5000)
    else:
        sample = frame
    y = sample[target]
    task = "classification" if looks_like_classes(y) else "regression"
    n_classes = 0
    if task == "classification":
        n_classes = int(frame[target].nunique().compute() if lazy else y.nunique())
    text, other = [], []
    for c in sample.columns:
        if c == target:
            continue
        dtype = sample[c].dtype
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        (text if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype) else other).append(str(c))
    return DataInfo(task, len(sample.columns) - 1, n_classes, text, other)
