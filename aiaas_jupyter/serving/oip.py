"""Open Inference Protocol v2 (KServe v2 / Triton / MLServer REST) codec: JSON tensors ↔ numpy.

A tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` the row-major flattening of
the array (nested lists are accepted too, as several clients send them). Decoding is strict so a
bad request is a 400 naming the tensor, never a numpy error (or a silent coercion: ``"1.5"`` is
not an FP32, 300 is not a UINT8, 1.5 is not an INT64) deep inside a model. Only the standard
library and numpy are used, so the codec stays cheap on the hot path.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: OIP datatype → numpy dtype (BYTES are held as object arrays of ``str``).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8), "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dt: name for name, dt in DATATYPES.items() if name != "BYTES"}
#: most dimensions a tensor may have (numpy itself stops at 64; no model here takes more than 3)
MAX_RANK = 32
#: most values one tensor may hold: an 8 MiB body holds at most ~4 million ("1," each)
MAX_ELEMENTS = 10_000_000
MAX_NAME = 256


class CodecError(ValueError):
    """A malformed request or tensor; the message is safe to return to the client (400)."""


def datatype_of(arr: np.ndarray) -> str:
    """The OIP datatype for an array (strings/objects → BYTES)."""
    name = _BY_DTYPE.get(arr.dtype)
    if name is not None:
        return name
    if arr.dtype.kind in "OUS":
        return "BYTES"
    raise CodecError(f"no Open Inference Protocol datatype for numpy dtype {arr.dtype}")


def _flatten(data: list) -> list:
    """Row-major flattening of nested lists (a flat list is returned as is, without copying)."""
    if not data or not isinstance(data[0], list):
        return data
    out: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _numeric(flat: list, datatype: str, dtype: np.dtype, name: str) -> np.ndarray:
    try:
        raw = np.asarray(flat)
    except (ValueError, TypeError):
        raise CodecError(f"input {name!r}: data must be a list of numbers") from None
    kind = raw.dtype.kind
    if kind in "fO" and dtype.kind in "iu" and all(type(v) is int for v in flat):
        # ints no common numpy dtype holds (e.g. -1 with 2**64-1) became float/object: exact path
        try:
            return np.array(flat, dtype=dtype)
        except OverflowError:
            raise CodecError(f"input {name!r}: value out of range for {datatype}") from None
    if raw.size == 0:
        return np.zeros(0, dtype)
    if datatype == "BOOL":
        if kind == "b":
            return raw
        if kind in "iu" and ((raw == 0) | (raw == 1)).all():
            return raw.astype(np.bool_)
        raise CodecError(f"input {name!r}: BOOL data must be true/false")
    if kind not in "biuf":
        raise CodecError(f"input {name!r}: {datatype} data must be numbers, got {_what(flat)}")
    if dtype.kind == "f":
        if datatype == "FP16" and kind == "f" and np.isfinite(raw).all() \
                and np.abs(raw).max(initial=0.0) > 65504.0:
            raise CodecError(f"input {name!r}: value out of range for FP16")
        return raw.astype(dtype, copy=False)
    # integer target: integral values within range only
    if kind == "f":
        if not np.isfinite(raw).all() or (raw != np.floor(raw)).any():
            raise CodecError(f"input {name!r}: {datatype} data must be integers")
    info = np.iinfo(dtype)
    if kind == "b":
        return raw.astype(dtype)
    lo, hi = raw.min(), raw.max()
    if lo < info.min or hi > info.max:
        raise CodecError(f"input {name!r}: value out of range for {datatype} "
                         f"[{info.min}, {info.max}]")
    return raw.astype(dtype, copy=False)


def _what(flat: list) -> str:
    for v in flat:
        if not isinstance(v, (int, float)):
            return type(v).__name__
    return "mixed values"


def _bytes(flat: list, name: str) -> np.ndarray:
    for v in flat:
        if type(v) is not str:
            raise CodecError(f"input {name!r}: BYTES data must be UTF-8 strings, got {type(v).__name__}")
    arr = np.empty(len(flat), dtype=object)
    arr[:] = flat
    return arr


def decode_tensor(t: Any) -> tuple[str, np.ndarray]:
    """One request tensor → ``(name, array of its shape)``; CodecError explains what is wrong."""
    if not isinstance(t, dict):
        raise CodecError("each input must be an object with name, shape, datatype and data")
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise CodecError("each input needs a non-empty string 'name'")
    if len(name) > MAX_NAME:  # names are echoed in messages: keep those short
        raise CodecError(f"an input name is longer than {MAX_NAME} characters")
    shape, datatype, data = t.get("shape"), t.get("datatype"), t.get("data")
    if not isinstance(t.get("parameters", {}), dict):
        raise CodecError(f"input {name!r}: 'parameters' must be an object")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise CodecError(f"input {name!r}: 'shape' must be a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise CodecError(f"input {name!r}: shape has {len(shape)} dimensions; at most {MAX_RANK}")
    if any(d > MAX_ELEMENTS for d in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise CodecError(f"input {name!r}: the shape holds more than {MAX_ELEMENTS} values")
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise CodecError(f"input {name!r}: unknown datatype {datatype!r}; expected one of "
                         f"{', '.join(DATATYPES)}")
    if not isinstance(data, list):
        raise CodecError(f"input {name!r}: 'data' must be a list")
    flat = _flatten(data)
    expected = math.prod(shape)
    if len(flat) != expected:
        raise CodecError(f"input {name!r}: shape {shape} needs {expected} values, got {len(flat)}")
    if datatype == "BYTES":
        arr = _bytes(flat, name)
    else:
        arr = _numeric(flat, datatype, dtype, name)
        if arr.ndim != 1:  # nested elements inside a "flat" list: [[1,2],3] etc.
            raise CodecError(f"input {name!r}: data is not a list of scalars")
    return name, arr.reshape(shape)


def encode_tensor(name: str, arr: np.ndarray) -> dict:
    """An output array → OIP tensor dict (row-major ``data``; BYTES as UTF-8 strings)."""
    arr = np.asarray(arr)
    datatype = datatype_of(arr)
    if datatype == "BYTES":
        data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in arr.reshape(-1).tolist()]
    else:
        data = arr.reshape(-1).tolist()
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}


def decode_request(body: Any) -> tuple[list[tuple[str, np.ndarray]], list[str] | None, str | None]:
    """An inference request → ``(inputs, requested output names or None, id or None)``."""
    if not isinstance(body, dict):
        raise CodecError("the request body must be a JSON object with 'inputs'")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise CodecError("'inputs' must be a non-empty list of tensors")
    req_id = body.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise CodecError("'id' must be a string")
    outputs = body.get("outputs")
    names = None
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                    and isinstance(o.get("parameters", {}), dict)
                                                    for o in outputs):
            raise CodecError("'outputs' must be a list of objects with a string 'name' "
                             "(and an object 'parameters')")
        names = [o["name"] for o in outputs] or None
    params = body.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise CodecError("'parameters' must be an object")
    tensors = [decode_tensor(t) for t in inputs]
    if len({n for n, _ in tensors}) != len(tensors):
        raise CodecError("input names must be unique")
    return tensors, names, req_id


def encode_response(model_name: str, version: str, outputs: dict[str, np.ndarray],
                    req_id: str | None = None) -> dict:
    out = {"model_name": model_name, "model_version": version,
           "outputs": [encode_tensor(n, a) for n, a in outputs.items()]}
    if req_id is not None:
        out["id"] = req_id
    return out
