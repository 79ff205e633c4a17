"""The plain JSON form of ``POST /predict/{name}``: what a ``requests`` user sends and gets back.

The Open Inference Protocol is precise but verbose; most programs that call a model just
want ``requests.post(url, json={"text": t}, headers=h).json()["label"]``. This module reads
the body shapes that idiom produces and answers in the shape it expects, using only the
runtime's outputs (``predict``, ``predict_proba``, ``classes``), so every model the server
can load answers the same way.

Requests (one input → a *single* answer; a list → a *batch* answer, one entry per input):

* ``{"text": "..."}`` (single) or ``{"text": ["...", ...]}`` — text models;
* ``{"record": {...}}`` or a bare object of feature → value (single), ``[{...}, ...]``,
  ``{"records": [...]}`` or ``{"instances": [...]}`` (KServe v1) — records; rows may also be
  lists of numbers (``[[5.1, 3.5, 1.4, 0.2]]``) for tabular models.

Answers: ``predictions`` always (a list, one entry per input). A single classification adds
``label`` (the predicted class) and ``probabilities`` (``{class: p}``, keys are the classes
as strings) when the model has them; a batch adds ``probabilities`` as one such object per
input. A single regression adds ``prediction``; an embedding model ``embedding``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: body keys that hold a list of inputs
BATCH_KEYS = ("records", "instances")
EXPECTED = ('expected {"text": "..."}, {"text": [...]}, {"record": {...}}, a record object, '
            '[{...}, ...], {"records": [...]} or {"instances": [...]}')


class BadBody(ValueError):
    """The body has none of the accepted shapes (HTTP 400)."""


def read(runtime, body: Any) -> tuple[Any, int, bool]:
    """``(part, n, single)``: the runtime's part for the body, its row count, and whether
    the caller sent ONE input (and so gets ``label``/``prediction`` back)."""
    if isinstance(body, dict) and set(body) == {"text"}:
        texts = body["text"]
        single = isinstance(texts, str)
        texts = [texts] if single else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise BadBody("'text' must be a string or a list of strings")
        if not texts:
            raise BadBody("'text' is an empty list")
        part, n = runtime.from_texts(texts)
        return part, n, single
    if isinstance(body, dict) and set(body) == {"record"}:
        if not isinstance(body["record"], dict):
            raise BadBody("'record' must be an object of feature → value")
        part, n = runtime.from_records([body["record"]])
        return part, n, True
    if isinstance(body, dict):
        keys = [k for k in BATCH_KEYS if k in body]
        if len(keys) > 1 or (keys and len(body) > 1):
            raise BadBody(f"unexpected keys {sorted(body)}: {EXPECTED}")
        if not keys:
            if not body:
                raise BadBody(f"empty object: {EXPECTED}")
            part, n = runtime.from_records([body])  # one record, its features as keys
            return part, n, True
        body = body[keys[0]]
    if not isinstance(body, list):
        raise BadBody(EXPECTED)
    if not body:
        raise BadBody("no inputs: the list is empty")
    if all(isinstance(r, list) for r in body):  # rows of numbers: one [N, F] input
        try:
            rows = np.asarray(body, dtype=np.float64)
        except (TypeError, ValueError):
            raise BadBody("rows given as lists must all hold the same number of numbers") from None
        if rows.ndim != 2:
            raise BadBody("rows given as lists must all hold the same number of numbers")
        part, n = runtime.from_tensors([("input", rows)])
        return part, n, False
    part, n = runtime.from_records(body)
    return part, n, False


def outputs(runtime) -> tuple[str, ...]:
    """What to compute: ``predict`` (or the embedding), plus probabilities when the model has them."""
    if runtime.kind == "embedding":
        return tuple(runtime.default_outputs)
    if "predict_proba" in runtime.outputs:
        return ("predict", "predict_proba")
    return ("predict",)


def class_keys(classes: list | None, n: int) -> list[str]:
    """JSON object keys for the probability columns: the classes as strings (index if unknown)."""
    if not classes or len(classes) != n:
        return [str(i) for i in range(n)]
    return [("true" if c else "false") if isinstance(c, (bool, np.bool_)) else str(c) for c in classes]


def answer(runtime, out: dict[str, np.ndarray], single: bool) -> dict[str, Any]:
    """The response object for ``out`` (the runtime's outputs for this request)."""
    if runtime.kind == "embedding":
        vectors = np.asarray(out[runtime.default_outputs[0]]).tolist()
        return {"embedding": vectors[0], "predictions": vectors} if single else {"predictions": vectors}
    predictions = np.asarray(out["predict"]).tolist()
    result: dict[str, Any] = {}
    if runtime.task == "classification":
        proba = out.get("predict_proba")
        rows = None
        if proba is not None:
            proba = np.asarray(proba, dtype=np.float64)
            keys = class_keys(runtime.classes, proba.shape[1])
            rows = [dict(zip(keys, map(float, row))) for row in proba]
        if single:
            result["label"] = predictions[0]
        result["predictions"] = predictions
        if rows is not None:
            result["probabilities"] = rows[0] if single else rows
    else:
        if single:
            result["prediction"] = predictions[0]
        result["predictions"] = predictions
    return result
