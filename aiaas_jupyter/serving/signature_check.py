"""Requests checked against the deployed version's input signature (:mod:`aiaas_jupyter.signature`).

Why at the door: a string sent for a numeric column used to reach the model and come back as
"the model could not run on this input: ValueError: could not convert string to float" (422), or
— for a text model sent numbers — be vectorised as the digits' text. The signature recorded at
training says what each column must hold, so the server answers 400 naming the column, the kind it
was trained with and what was sent, before the request joins a batch.

The hot path stays cheap: a numeric tensor for numeric columns is one dtype test per column; only
object (BYTES / mixed JSON) values are looked at one by one. A version registered before
signatures existed has none, and nothing is checked beyond what the runtime already checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .input_errors import SignatureError

NUMBER_KINDS = frozenset({"numeric", "boolean"})
_FINE = object()


def _is_number(v: Any) -> bool:
    """A number, a missing value, or a string that reads as a number (JSON clients send "1.5";
    and numpy turns ``[1.0, "x"]`` into strings, so "1.0" may have been a number)."""
    if v is None or isinstance(v, (int, float, np.integer, np.floating, np.bool_)):
        return True
    if isinstance(v, (str, bytes, np.str_)):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class SignatureCheck:
    """The checks of one deployed version; ``SignatureCheck(None)`` checks nothing."""

    def __init__(self, signature: dict | None):
        inputs = (signature or {}).get("inputs") or []
        self.entries = {e["name"]: e for e in inputs}

    def column(self, name: str, values: np.ndarray) -> None:
        """Raise :class:`SignatureError` if *values* cannot be column *name* of the signature."""
        entry = self.entries.get(name)
        if entry is None:
            return
        kind, dtype = entry["kind"], entry["dtype"]
        if kind in NUMBER_KINDS:
            if values.dtype.kind in "biuf":
                return
            bad = next((v for v in values.ravel().tolist() if not _is_number(v)), _FINE)
            if bad is not _FINE:
                raise SignatureError(f"column {name!r} is {kind} ({dtype}) in the model's signature; "
                                     f"got text such as {_shown(bad)}")
        elif kind == "text":
            if values.dtype.kind in "biufc":
                raise SignatureError(f"column {name!r} is text in the model's signature; got numbers")
            if values.dtype.kind == "O":
                bad = next((v for v in values.ravel().tolist() if not isinstance(v, str)), None)
                if bad is not None:
                    raise SignatureError(f"column {name!r} is text in the model's signature; "
                                         f"got {type(bad).__name__} {_shown(bad)}")

    def columns(self, names: list[str], cols: list[np.ndarray]) -> None:
        for name, col in zip(names, cols):
            self.column(name, np.asarray(col))

    def matrix(self, names: list[str] | None, arr: np.ndarray) -> None:
        """An ``[N, F]`` tensor whose column *i* is feature ``names[i]``."""
        if not self.entries or not names or arr.ndim != 2 or arr.shape[1] != len(names):
            return
        kinds = {self.entries[n]["kind"] for n in names if n in self.entries}
        if arr.dtype.kind in "biuf" and "text" not in kinds:
            return  # numbers for numbers (the common case): nothing to look at
        for i, name in enumerate(names):
            self.column(name, arr[:, i])
