"""Reading request JSON and writing answers, safely for any bytes a client may send.

Why not plain ``json.loads`` / ``json.dumps``: each failed on some input with a 500
(issue 10) — a body nested thousands deep raised ``RecursionError``; a lone surrogate
(``"\\ud800"``, valid JSON escape, invalid Unicode) was echoed back and failed to encode;
and a large answer was encoded in one C call that holds the GIL (and the event loop) for
its whole length. So:

* :func:`parse` refuses bodies that are not UTF-8, nested deeper than :data:`MAX_DEPTH`
  (found by a cheap scan of the bytes *before* the recursive parser runs), or holding a
  string that is not valid Unicode — each a :class:`BodyError` with a message (HTTP 400);
* :func:`encode` writes the same bytes as ``json.dumps(separators=(",", ":"),
  ensure_ascii=False)`` but in slices, so a thread encoding a big answer gives the GIL back
  between slices, and never fails on a surrogate (it is written as its ``\\uXXXX`` escape).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

#: deepest nesting of arrays/objects a request may have (an OIP tensor needs 2 + its rank)
MAX_DEPTH = 64
#: scalars per encoded slice: ~0.5 ms of encoding between two chances for other threads
SLICE = 4096

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# a \uD800-\uDFFF escape: only then can json.loads produce a lone surrogate from UTF-8 text
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BodyError(ValueError):
    """The body is not JSON this server accepts; the message is safe to return (HTTP 400)."""


def depth(body: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings, in C/numpy speed (no recursion)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def parse(body: bytes) -> Any:
    """Bytes → the JSON value, or BodyError saying why not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(f"request body is not UTF-8 (byte {e.start})") from None
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and depth(body) > MAX_DEPTH:
        raise BodyError(f"request JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text)
    except RecursionError:  # not reachable after the scan; kept so it can never be a 500
        raise BodyError(f"request JSON is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise BodyError(f"request body is not valid JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(text) and not _valid_unicode(value):
        raise BodyError("request JSON holds a string that is not valid Unicode (a lone surrogate escape)")
    return value


def _valid_unicode(value: Any) -> bool:
    """Every string (keys too) encodes as UTF-8; iterative, as the value may be deep."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


def encode(obj: Any) -> bytes:
    """Compact JSON bytes of ``obj`` (our own answers: dicts and lists of plain values)."""
    return "".join(_pieces(obj)).encode("utf-8", "backslashreplace")


def _pieces(obj: Any):
    if isinstance(obj, dict):
        yield "{"
        for i, (k, v) in enumerate(obj.items()):
            yield ("," if i else "") + _dumps(str(k)) + ":"
            yield from _pieces(v)
        yield "}"
    elif isinstance(obj, list) and obj and isinstance(obj[0], (dict, list)):
        yield "["
        for i, v in enumerate(obj):
            if i:
                yield ","
            yield from _pieces(v)
        yield "]"
    elif isinstance(obj, list) and len(obj) > SLICE:
        yield "["
        for start in range(0, len(obj), SLICE):
            yield ("," if start else "") + _dumps(obj[start:start + SLICE])[1:-1]
        yield "]"
    else:
        yield _dumps(obj)
