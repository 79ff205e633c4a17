"""The OpenAI ``POST /v1/embeddings`` request and answer, with the limits that keep one
request from occupying the server.

Why limits here: one request with 20,000 texts ran 37 s, answered 161 MB and (its token
counting and JSON encoding running on the event loop) stalled every other model for 6.8 s
(issue 10). OpenAI's own limits are the model: at most :data:`MAX_INPUTS` texts per request
and :data:`MAX_TOTAL_TOKENS` tokens in all — a request over them is a 413 that says which,
before the model runs. The CPU work (tokenising, building and encoding the answer) runs in
worker threads (:func:`count_tokens`, :func:`answer` are called off the loop by the app).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

#: most texts in one request (OpenAI's limit)
MAX_INPUTS = 2048
#: most tokens in one request, all texts together (OpenAI's limit)
MAX_TOTAL_TOKENS = 300_000


class RequestError(ValueError):
    """A request the server will not run; ``status`` is 400 (malformed) or 413 (too large)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def read(body: Any) -> tuple[Any, list[str], str]:
    """``(model or None, texts, encoding_format)`` of a request body, checked."""
    if not isinstance(body, dict):
        raise RequestError(400, "expected a JSON object with 'input' and 'model'")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, "'model' must be a string")
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise RequestError(400, "'input' must be a string or a non-empty list of strings")
    if len(texts) > MAX_INPUTS:
        raise RequestError(413, f"'input' has {len(texts)} texts; at most {MAX_INPUTS} per request")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise RequestError(400, "'encoding_format' must be 'float' or 'base64'")
    return model, texts, fmt


def count_tokens(runtime, texts: list[str]) -> int:
    """Tokens in all texts (the model's own tokenizer, as ``usage`` reports them), or a 413
    over :data:`MAX_TOTAL_TOKENS`. Runs in a worker thread: tokenising 2048 texts takes a while."""
    tokens = runtime.count_tokens(texts)
    if tokens > MAX_TOTAL_TOKENS:
        raise RequestError(413, f"'input' has {tokens} tokens; at most {MAX_TOTAL_TOKENS} per request")
    return tokens


def answer(name: str, emb: np.ndarray, fmt: str, tokens: int) -> dict:
    """The OpenAI response object (float lists, or base64 of little-endian float32)."""
    emb = np.asarray(emb)
    if fmt == "base64":
        vectors = [base64.b64encode(np.ascontiguousarray(v, "<f4").tobytes()).decode() for v in emb]
    else:
        vectors = emb.tolist()
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
