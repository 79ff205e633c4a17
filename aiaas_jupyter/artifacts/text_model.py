"""A scikit-learn text pipeline as ``load_model`` hands it out: one prediction per document.

A text vectorizer (TfidfVectorizer, CountVectorizer, ...) iterates whatever it is given. Given
a DataFrame it iterates the column *names*, so a pipeline trained on a frame's single text
column and then called with a 2-row frame of that column silently returns ONE prediction. The
trainer fed the vectorizer the column itself; :class:`TextModel` does the same at prediction
time, so the model takes what a notebook holds: a DataFrame with the text column (other
columns ignored), a Series, a list or array of strings.

It is a thin wrapper, not a copy: ``.pipeline`` is the registered scikit-learn Pipeline, and
every other attribute (``classes_``, ``named_steps``, ``get_params`` ...) is the pipeline's.

Whether a model takes text at all is decided here too, once (:func:`takes_text`): the trainer
asks it before fitting (to hand a vectorizer the documents) and the model server asks it when it
loads a version (to give the model one BYTES input), so the two always agree.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..errors import DataError

#: Pipeline methods whose first argument is the documents.
DOCUMENT_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function",
                              "score", "transform"})


class TextModel:
    """``pipeline`` trained on the text column ``text_column`` (None: trained on a list of strings)."""

    def __init__(self, pipeline: Any, text_column: str | None = None):
        self.pipeline = pipeline
        self.text_column = text_column
        self.n_features_in_ = 1
        if text_column is not None:
            self.feature_names_in_ = np.asarray([text_column], dtype=object)

    def __repr__(self) -> str:
        return f"TextModel(text_column={self.text_column!r}, pipeline={self.pipeline!r})"

    def documents(self, X: Any) -> Any:
        """What the vectorizer must see: one string per row of ``X``."""
        import pandas as pd

        if isinstance(X, (str, bytes)):
            raise DataError("expected several documents, got one string",
                            hint="wrap it in a list: model.predict([text])")
        if isinstance(X, pd.DataFrame):
            col = self.text_column
            if col is None and X.shape[1] == 1:
                return X.iloc[:, 0]
            if col is None:
                raise DataError(f"which column holds the text? the frame has {X.shape[1]} columns",
                                hint="pass the column: model.predict(df['COLUMN'])")
            if col not in X.columns:
                raise DataError(f"the frame has no column {col!r}, which this text model reads "
                                f"(columns: {', '.join(map(str, X.columns))})",
                                hint=f"rename the text column to {col!r} or pass the texts as a list")
            return X[col]
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 1:
            return X[:, 0]
        return X

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "pipeline":  # dunders, and no recursion before __init__
            raise AttributeError(name)
        attr = getattr(self.pipeline, name)
        if name not in DOCUMENT_METHODS:
            return attr

        @functools.wraps(attr)
        def on_documents(X, *args, **kwargs):
            return attr(self.documents(X), *args, **kwargs)

        return on_documents

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in dir(self.pipeline) if not n.startswith("_")})


def _is_vectorizer(step: Any) -> bool:
    """A text vectorizer (CountVectorizer, TfidfVectorizer, HashingVectorizer, or one derived
    from them): it turns documents into features, so it has ``build_analyzer``."""
    return callable(getattr(step, "build_analyzer", None))


def declared_text(extra: dict | None) -> tuple[bool, str | None]:
    """What the trainer recorded in a version's ``extra``: whether the model takes raw text
    (``input_kind == "text"``) and the training frame's text column (None: not one named column)."""
    if not extra or extra.get("input_kind") != "text":
        return False, None
    names = extra.get("feature_names") or []
    return True, (names[0] if len(names) == 1 else None)


def takes_text(model: Any, extra: dict | None = None) -> tuple[bool, str | None]:
    """Whether a scikit-learn model takes raw text, and the DataFrame column it reads itself
    (None: it takes the documents — a list, a Series).

    A Pipeline (or the model itself) starting with a text vectorizer takes the documents; one
    starting with a ColumnTransformer that vectorizes a single named column reads that column;
    otherwise what the trainer recorded (:func:`declared_text`) decides. The trainer, before
    fitting, feeds the documents exactly when the answer is ``(True, None)``."""
    steps = getattr(model, "steps", None)
    first = steps[0][1] if steps else model
    if _is_vectorizer(first):
        return True, None
    transformers = getattr(first, "transformers", None)
    if transformers and len(transformers) == 1:
        _, tr, col = transformers[0]
        inner = getattr(tr, "steps", None)
        tr = inner[0][1] if inner else tr
        if _is_vectorizer(tr) and isinstance(col, str):
            return True, col
    return declared_text(extra)


def wrap(model: Any, extra: dict | None) -> Any:
    """A model the trainer recorded as taking raw text (``extra["input_kind"] == "text"``) as a
    :class:`TextModel`; any other model as it is."""
    declared, column = declared_text(extra)
    return TextModel(model, column) if declared else model
