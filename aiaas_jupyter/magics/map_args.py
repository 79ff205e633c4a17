"""FUNC and ITEMS of ``%aiaas map FUNC ITEMS... [-o OUT]``.

Never ``eval``: a magic line must not run code the user did not write as code. FUNC is a
name looked up in the notebook (``f``, ``np.sqrt``; builtins too), ITEMS are notebook variables
or Python literals read with :func:`ast.literal_eval` (``[1, 2, 3]``, ``("a", "b")``), plus
``range(...)`` of literal integers. A literal split by spaces (``[1, 2, 3]`` unquoted) is put
back together: the shortest run of words that reads as one item source wins.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from IPython.core.error import UsageError

from ..errors import DataError

_NOT_FOUND = object()
#: the most items a ``range(...)`` of the line may give: every item becomes part of a task, built in
#: the kernel first, so ``range(10**12)`` would fill its memory instead of failing
MAX_RANGE_ITEMS = 10**7


def resolve_function(name: str, namespace: dict):
    """The callable FUNC names: ``f``, ``module.attr`` of a notebook name, or a builtin."""
    head, *rest = name.split(".")
    if not head.isidentifier() or not all(part.isidentifier() for part in rest):
        raise UsageError(f"%aiaas map: FUNC must be a name such as f or np.sqrt, got {name!r} "
                         "(see %aiaas map --help)")
    obj = namespace.get(head, getattr(builtins, head, _NOT_FOUND))
    for part in rest:
        obj = getattr(obj, part, _NOT_FOUND) if obj is not _NOT_FOUND else obj
    if obj is _NOT_FOUND:
        raise DataError(f"%aiaas map: no function named {name!r} in the notebook",
                        hint="define it in a cell first (def f(x): ...), or import it")
    if not callable(obj):
        raise DataError(f"%aiaas map: {name} is a {type(obj).__name__}, not a function")
    return obj


def resolve_items(words: list[str], namespace: dict) -> list[Any]:
    """One iterable per ITEMS source (variables or literals), in order."""
    out, i = [], 0
    while i < len(words):
        for j in range(i + 1, len(words) + 1):
            value = _read(" ".join(words[i:j]), namespace)
            if value is not _NOT_FOUND:
                break
        else:
            word = words[i]
            if word.isidentifier():
                raise DataError(f"%aiaas map: no variable named {word!r} in the notebook",
                                hint="define it first, or give a literal such as [1, 2, 3] or range(10)")
            raise UsageError(f"%aiaas map: cannot read ITEMS {' '.join(words[i:])!r}: give notebook variables "
                             "or Python literals such as [1, 2, 3] or range(10) (quote literals with strings: "
                             "'[\"a\", \"b\"]'; see %aiaas map --help)")
        try:
            iter(value)
        except TypeError:
            raise UsageError(f"%aiaas map: ITEMS {' '.join(words[i:j])!r} is not a list or other iterable "
                             f"(got {type(value).__name__})") from None
        out.append(value)
        i = j
    return out


def _read(text: str, namespace: dict) -> Any:
    text = text.strip()
    if text.isidentifier():
        return namespace.get(text, _NOT_FOUND)
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return _NOT_FOUND
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" \
            and not node.keywords and 1 <= len(node.args) <= 3:
        try:
            bounds = [ast.literal_eval(arg) for arg in node.args]
        except ValueError:
            return _NOT_FOUND
        return _bounded_range(text, bounds) if all(type(b) is int for b in bounds) else _NOT_FOUND
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_FOUND


def _bounded_range(text: str, bounds: list[int]) -> range:
    """``range(*bounds)``, refused (one UsageError) when empty-stepped or too long to map over."""
    if len(bounds) == 3 and bounds[2] == 0:
        raise UsageError(f"%aiaas map: {text}: the step of a range must not be 0")
    items = range(*bounds)
    try:
        n = len(items)
    except OverflowError:  # more items than a C ssize_t holds
        n = MAX_RANGE_ITEMS + 1
    if n > MAX_RANGE_ITEMS:
        raise UsageError(f"%aiaas map: {text[:60]} has more than {MAX_RANGE_ITEMS:,} items "
                         "(map over a smaller range, or use Dask directly for bigger data)")
    return items
