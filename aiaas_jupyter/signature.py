"""A registered version's input signature: the columns it was trained on, their dtypes and kinds.

Why: a model only knows the shape of what it is given, so a wrong column used to reach it (a
string where a number was trained, a column left out) and fail somewhere inside scikit-learn —
or, worse, not fail. The signature is taken from the training data itself, recorded with the
version (``extra["signature"]``), and read by whoever feeds the model: the model server checks
each request against it (HTTP 400 naming the column), publishes it in the OIP model metadata, and
batch inference checks a frame's columns before any task runs.

Kinds, which is what a caller must get right (dtypes widen freely within a kind):

* ``numeric`` — integers and floats (bools are accepted too: they are 0/1);
* ``boolean`` — a bool column;
* ``text`` — the raw-text column a text model vectorises itself;
* ``categorical`` — any other string/object/category column (a pipeline's encoder takes it);
* ``datetime`` — datetimes (as ISO strings over JSON).
"""

from __future__ import annotations

from typing import Any

KINDS = ("numeric", "boolean", "text", "categorical", "datetime")


def kind_of(dtype: Any, *, text: bool = False) -> str:
    """The kind of a column of *dtype* (*text*: the column a text model reads)."""
    import pandas as pd

    if text:
        return "text"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "categorical"


def of_columns(dtypes: Any, target: str | None, *, text_column: str | None = None,
               classes: list | None = None) -> dict:
    """The signature of a frame whose columns have *dtypes*, *target* excluded."""
    inputs = [{"name": str(name), "dtype": str(dtype), "kind": kind_of(dtype, text=str(name) == text_column)}
              for name, dtype in dtypes.items() if str(name) != target]
    sig: dict[str, Any] = {"inputs": inputs}
    if target is not None and target in dtypes.index:
        sig["target"] = {"name": str(target), "dtype": str(dtypes[target])}
    if classes is not None:
        sig["classes"] = list(classes)
    return sig


def of_training(data: Any, target: str, extra: dict, text_column: str | None = None) -> dict | None:
    """The signature of what a trainer fitted on: a pandas frame, or a streamed dask frame whose
    partitions' dtypes the trainer noted (``data.dtypes``); None when neither says.
    *text_column*: the column a text model vectorises itself."""
    import pandas as pd

    dtypes = getattr(data, "dtypes", None)
    if not isinstance(dtypes, pd.Series):
        return None
    return of_columns(dtypes, target, text_column=text_column, classes=extra.get("classes"))


def summary(sig: dict | None, per_group: int = 8) -> str:
    """One line for ``%aiaas models show``: the inputs grouped by dtype and kind, then the target.

    ``float64 numeric: f0, f1, f2 | str text: review -> label (str; classes neg, pos)``"""
    if not sig:
        return ""
    groups: dict[tuple[str, str], list[str]] = {}
    for entry in sig["inputs"]:
        groups.setdefault((entry["dtype"], entry["kind"]), []).append(entry["name"])
    parts = []
    for (dtype, kind), names in groups.items():
        shown = ", ".join(names[:per_group]) + (f", … (+{len(names) - per_group})" if len(names) > per_group else "")
        parts.append(f"{dtype} {kind}: {shown}")
    line = " | ".join(parts)
    target = sig.get("target")
    if target:
        classes = sig.get("classes")
        more = f"; classes {', '.join(map(str, classes[:10]))}{' …' if len(classes) > 10 else ''}" if classes else ""
        line += f" -> {target['name']} ({target['dtype']}{more})"
    return line
