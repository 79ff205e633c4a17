"""Turning what a notebook holds into what a model endpoint takes.

``predict`` accepts a DataFrame, a numpy array, a list of records, a list of strings or one
string; each protocol wants its own shape of it (OIP tensors, our plain JSON, OpenAI
``input``). The conversions live here so the façade reads as "resolve, convert, call".
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError, EndpointError


def as_inputs(data: Any) -> Any:
    """Records → DataFrame; one string → [string]; nested lists → ndarray; the rest as is."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, (list, tuple)):
        if not data:
            raise DataError("the input is empty")
        if all(isinstance(r, dict) for r in data):
            import pandas as pd

            return pd.DataFrame.from_records(list(data))
        if all(isinstance(t, str) for t in data):
            return list(data)
        import numpy as np

        return np.asarray(data)
    if type(data).__name__ == "Series":
        return data.to_numpy()
    return data


def only_features(data: Any, server, name: str) -> Any:
    """A DataFrame for one of our models keeps just the model's feature columns (so a frame
    that still holds the target, or ids, can be sent as is)."""
    if not (hasattr(data, "columns") and hasattr(data, "loc")):
        return data
    try:
        meta = server.v2(name).metadata()
    except EndpointError:
        return data
    features = (meta.get("parameters") or {}).get("feature_names") or []
    if features and all(f in data.columns for f in features) and len(features) < len(data.columns):
        return data[features]
    return data


def rest_payload(data: Any) -> Any:
    """JSON for a plain REST model, in the same shapes as our own ``POST /predict/{name}``."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return data.to_dict(orient="records")
    if hasattr(data, "tolist"):
        return data.tolist()
    if isinstance(data, list) and data and all(isinstance(t, str) for t in data):
        return {"text": data}
    return data


def as_texts(texts: Any) -> str | list[str]:
    if isinstance(texts, str):
        return texts
    if hasattr(texts, "columns"):
        if len(texts.columns) != 1:
            raise DataError(f"embed takes texts: a DataFrame with one text column, not {len(texts.columns)}")
        texts = texts.iloc[:, 0]
    if hasattr(texts, "tolist"):
        texts = texts.tolist()
    if isinstance(texts, (list, tuple)) and texts and all(isinstance(t, str) for t in texts):
        return list(texts)
    raise DataError("embed takes a string or a non-empty list of strings")
