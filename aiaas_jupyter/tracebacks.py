"""Remote tracebacks that show the user's own lines.

Code defined in a notebook cell travels to the workers by value (cloudpickle). On the way its
code objects lose the name of the file they came from — cloudpickle ≥ 3.1.3 calls every one
``<dynamic-code>`` — so a traceback formatted from a worker's exception cannot find the cell's
source in the kernel's ``linecache``, and the user sees ``File "<dynamic-code>", line 4, in fit``
with no line.

The kernel still holds the code it sent. :class:`CodeIndex` records, for the code objects of
what a job ships (the model's notebook-defined classes, functions, closures) and of the cells
the product compiled itself, *function name + line range → the kernel's file name*. Function
names and line numbers survive pickling whatever the file is called, so
:func:`format_remote_traceback` can put the kernel's file name back into each frame whose file
the kernel cannot read, and ``traceback`` then finds the lines as for local code.
"""

from __future__ import annotations

import itertools
import linecache
import os
import re
import sys
import sysconfig
import traceback
import types
from typing import Any, Iterable

#: how many objects one index walks at most (models are small graphs; a cap keeps submit fast)
MAX_OBJECTS = 5000
_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), range, memoryview)


class CodeIndex:
    """Where the code a job shipped came from: ``(function name, line) → file name``."""

    def __init__(self) -> None:
        self._spans: dict[str, list[tuple[int, int, str]]] = {}
        self._seen: set[int] = set()

    # -- building --------------------------------------------------------------------------
    def add_code(self, code: types.CodeType) -> "CodeIndex":
        """Index *code* and every code object nested in it (functions, lambdas, classes)."""
        stack = [code]
        while stack:
            co = stack.pop()
            if id(co) in self._seen:
                continue
            self._seen.add(id(co))
            lines = [line for _, _, line in co.co_lines() if line is not None]
            if lines and _readable(co.co_filename):
                self._spans.setdefault(co.co_name, []).append((min(lines), max(lines), co.co_filename))
            stack.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
        return self

    def add_objects(self, *objects: Any) -> "CodeIndex":
        """Index the code reachable from *objects* that would travel by value.

        Walks instances (their class and attributes), containers, functions (their closures)
        and classes defined in the notebook (``__main__``) or in no importable module —
        exactly what cloudpickle ships by value; library code travels by reference and its
        frames name real files already.
        """
        todo = list(objects)
        visited: set[int] = set()
        while todo and len(visited) < MAX_OBJECTS:
            obj = todo.pop()
            if isinstance(obj, _LEAVES + (types.ModuleType,)) or id(obj) in visited:  # modules go by reference
                continue
            visited.add(id(obj))
            if isinstance(obj, types.MethodType):
                todo.append(obj.__func__)
            elif isinstance(obj, types.FunctionType):
                if _by_value(obj):
                    self.add_code(obj.__code__)
                    todo.extend(c.cell_contents for c in (obj.__closure__ or ()) if _cell_full(c))
                    todo.extend(obj.__defaults__ or ())
                    # notebook helpers it calls travel with it (cloudpickle ships referenced globals)
                    todo.extend(obj.__globals__[n] for n in global_names(obj.__code__) if n in obj.__globals__)
            elif isinstance(obj, type):
                for klass in obj.__mro__:
                    if _by_value(klass):
                        todo.extend(vars(klass).values())
            elif isinstance(obj, (staticmethod, classmethod)):
                todo.append(obj.__func__)
            elif isinstance(obj, property):
                todo.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
            elif isinstance(obj, dict):
                todo.extend(obj.values())
            elif isinstance(obj, (list, tuple, set, frozenset)):
                todo.extend(list(obj)[:MAX_OBJECTS])
            else:
                todo.append(type(obj))
                attrs = getattr(obj, "__dict__", None)
                if isinstance(attrs, dict):
                    todo.extend(attrs.values())
        return self

    def __len__(self) -> int:
        return sum(len(v) for v in self._spans.values())

    # -- using -----------------------------------------------------------------------------
    def locate(self, name: str, lineno: int | None) -> str | None:
        """The kernel's file name of function *name* covering *lineno*, when exactly one fits."""
        if lineno is None:
            return None
        files = {f for lo, hi, f in self._spans.get(name, ()) if lo <= lineno <= hi}
        return files.pop() if len(files) == 1 else None


def format_remote_traceback(exc: BaseException, tb, index: CodeIndex | None = None,
                            user_only: bool = False) -> str:
    """``traceback.format_exception`` of a worker's exception, with the user's lines shown.

    A frame whose file the kernel cannot read (``<dynamic-code>``, a temp file of the worker)
    is given the kernel's file name when *index* knows the function at that line. *user_only*
    leaves out the frames of installed libraries (dask, pandas, ...) and of this package (all
    but the last when no frame is the user's), and says how many it left out.
    """
    if tb is None:
        return ""
    frames = traceback.extract_tb(tb)
    hidden = 0
    if user_only and frames:
        kept = [fr for fr in frames if not library_file(fr.filename)] or [frames[-1]]
        hidden = len(frames) - len(kept)
        frames = traceback.StackSummary.from_list(kept)
    if index is not None and len(index):
        fixed = []
        for fr in frames:
            if fr.lineno and not linecache.getline(fr.filename, fr.lineno):
                home = index.locate(fr.name, fr.lineno)
                if home is not None:
                    fr = traceback.FrameSummary(home, fr.lineno, fr.name)
            fixed.append(fr)
        frames = traceback.StackSummary.from_list(fixed)
    head = "Traceback (most recent call last):\n"
    if hidden:
        head += f"  ({hidden} frame{'s' if hidden > 1 else ''} of libraries not shown)\n"
    tail = traceback.format_exception_only(type(exc), exc)
    return head + "".join(frames.format()) + "".join(tail)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LIBRARY_DIRS = tuple(sorted({p + os.sep for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "purelib", "platlib"))
                              if p}))


_OTHER_PYTHON = re.compile(r"/(site|dist)-packages/|/lib/python\d\.\d+/")


def library_file(filename: str) -> bool:
    """Is *filename* code of Python, an installed library or this package (not the user's)?
    Also true for such paths of another machine (a worker's ``site-packages``)."""
    return (filename.startswith(_LIBRARY_DIRS + (_PACKAGE_DIR, "<frozen "))
            or _OTHER_PYTHON.search(filename) is not None or filename.endswith(".pyx"))


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the first of a long message; the traceback has it all)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] + (" …" if len(lines) > 1 else "") if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def global_names(code: types.CodeType) -> set[str]:
    """Names *code* (and the code nested in it) looks up: globals, and attribute names too
    (``co_names`` mixes them), which is harmless where the caller only looks names up."""
    names: set[str] = set()
    stack = [code]
    while stack:
        co = stack.pop()
        names.update(co.co_names)
        stack.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return names


_SOURCES = itertools.count(1)


def remember_source(source: str, label: str) -> str:
    """A unique file name for code the product compiles itself (a cell), registered in
    ``linecache`` so that tracebacks, local or remote, show its lines."""
    name = f"<aiaas {label} {next(_SOURCES)}>"
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    return name


def _readable(filename: str) -> bool:
    """Can the kernel show lines of this file (a cell in linecache, or a file on disk)?"""
    return bool(linecache.getline(filename, 1)) or bool(linecache.getlines(filename))


def _by_value(obj: Any) -> bool:
    """Would cloudpickle send *obj* by value (defined in the notebook, not in a module)?"""
    module = getattr(obj, "__module__", None)
    return module is None or module == "__main__" or module not in sys.modules


def _cell_full(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def index_of(*objects: Any, code: Iterable[types.CodeType] = ()) -> CodeIndex:
    """A :class:`CodeIndex` of *objects* and of the compiled cells in *code*."""
    index = CodeIndex()
    for co in code:
        index.add_code(co)
    return index.add_objects(*objects)
