"""Running a ``%%aiaas preprocess`` cell: notebook functions in it, and one clear error.

Notebook functions. A cell such as ``df["t"] = df["t"].apply(norm)`` or
``df = df.map_partitions(clean)`` calls functions of earlier cells. They travel to the workers
by value (cloudpickle) with the task graph; what used to break is Dask's *meta inference*:
to learn the output's columns and dtypes, Dask calls the function in the kernel on two rows
of made-up data (``"a"`` and ``<NA>`` for a string column, ``1`` for numbers), and a function
written for the real data (``s.strip()``, ``int(v)``) fails on them with a long "Metadata
inference failed" traceback. While a cell runs, :class:`real_data_meta` gives Dask a second
chance: when inference on made-up data fails, the function is called on the first real rows
of its input (computed on the cluster) and its output is the meta. If it fails on real
data too, that is the user's error, and they see it as such. ``--per-partition`` cells run on
the workers in a namespace of their own: the notebook names the cell uses travel with it
(:func:`notebook_env`).

One clear error. Whatever fails — the cell in the kernel (a bad column, a typo), a notebook
function on a worker, a partition that cannot be read, writing ``--save`` — is one
:class:`~.errors.PreprocessError` line, with the traceback of the user's lines under it
(library frames left out, see :mod:`.tracebacks`). Nothing is bound to the output name then.
"""

from __future__ import annotations

import re
import threading
import traceback
import types
import warnings

from .errors import PreprocessError
from .tracebacks import format_remote_traceback, global_names, index_of, one_line, remember_source

#: real rows a failed meta inference retries on (the function runs on them in the kernel)
SAMPLE_ROWS = 20
#: notebook names a --per-partition cell never takes along (IPython's own)
_IPYTHON_NAMES = re.compile(r"^(In|Out|get_ipython|exit|quit|_+|_i+|_i?\d+|_[oid]h)$")
_METADATA_FAILED = "Metadata inference failed"

_state = threading.local()
_install_lock = threading.Lock()
_installed: bool | None = None


class PreparedCell:
    """What :func:`apply_body` made: the output frame and where the code it ran came from."""

    def __init__(self, frame, code_index, filename: str | None, per_partition: bool = False):
        self.frame, self.code_index, self.filename = frame, code_index, filename
        self.per_partition = per_partition


def apply_body(client, ddf, body, namespace: dict | None, per_partition: bool) -> PreparedCell:
    """Bind ``df`` to *ddf*, run *body* (cell text or a function); the new ``df``. A failure in
    the kernel is a :class:`PreprocessError` (where ``"kernel"``)."""
    ns = namespace if namespace is not None else {}
    if body is None or (isinstance(body, str) and not body.strip()):
        return PreparedCell(ddf, None, None)
    if callable(body):
        index, filename = index_of(body), None
        run = (lambda: ddf.map_partitions(body)) if per_partition else (lambda: body(ddf))  # noqa: E731
    else:
        filename = remember_source(body, "preprocess cell")
        try:
            code = compile(body, filename, "exec")
        except SyntaxError as exc:
            raise PreprocessError(f"the preprocess cell has a syntax error: {exc.msg} (line {exc.lineno})",
                                  "".join(traceback.format_exception_only(type(exc), exc)), where="kernel") from None
        names = global_names(code)
        index = index_of(*(ns[n] for n in names if n in ns and n != "df"), code=[code])
        if per_partition:
            from .remote import run_cell_on_partition

            env = notebook_env(names, ns)
            run = lambda: ddf.map_partitions(run_cell_on_partition, body, filename, env)  # noqa: E731
        else:
            run = lambda: _exec_cell(code, ns, ddf)  # noqa: E731
    try:
        with real_data_meta(client):
            out = run()
    except PreprocessError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's cell: any error is theirs, said in one line
        raise _kernel_error(exc, ddf, index, per_partition) from None
    return PreparedCell(out, index, filename, per_partition)


def _exec_cell(code, ns: dict, ddf):
    missing = object()
    previous = ns.get("df", missing)
    ns["df"] = ddf
    try:
        exec(code, ns)  # the user's own cell, run like any other cell of the notebook
        return ns["df"]
    finally:
        if previous is missing:
            ns.pop("df", None)
        else:
            ns["df"] = previous


def notebook_env(names: set[str], namespace: dict) -> dict:
    """The notebook values a ``--per-partition`` cell refers to (functions, imports, constants)
    that can travel by value; dask collections and IPython's own names stay behind."""
    import cloudpickle

    env = {}
    for name in sorted(names):
        if name == "df" or name not in namespace or _IPYTHON_NAMES.match(name):
            continue
        value = namespace[name]
        if hasattr(value, "__dask_graph__"):
            continue
        try:
            cloudpickle.dumps(value)
        except Exception:  # noqa: BLE001 - co_names also holds attribute names: skip what cannot go
            continue
        env[name] = value
    return env


# -- meta inference on real rows ------------------------------------------------------------
class real_data_meta:
    """While active in this thread, Dask's failed meta inference for a user function is retried
    on real rows of its input (see the module docstring). Also silences Dask's "You did not
    provide metadata" warning, which this answers."""

    def __init__(self, client):
        self.client = client

    def __enter__(self):
        self._previous = getattr(_state, "client", None)
        _state.client = self.client if _install_fallback() else None
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=r"\s*You did not provide metadata", category=UserWarning)
        return self

    def __exit__(self, *exc_info):
        self._warnings.__exit__(*exc_info)
        _state.client = self._previous
        return False


def _install_fallback() -> bool:
    """Wrap (once) the two places of ``dask.dataframe.dask_expr._expr`` where a user function's
    meta is inferred: ``emulate`` (``apply``, ``map``, ...) and ``_get_meta_map_partitions``
    (``map_partitions``, which hands ``emulate`` made-up frames, not the collections). Outside
    :class:`real_data_meta` the wrappers only call the originals. False when this Dask has
    neither (then a failed inference is reported as such, with a hint)."""
    global _installed
    with _install_lock:
        if _installed is None:
            try:
                from dask.dataframe.dask_expr import _expr
            except ImportError:
                _installed = False
                return False
            _installed = any([_wrap(_expr, "emulate", _emulate_wrapper),
                              _wrap(_expr, "_get_meta_map_partitions", _map_partitions_wrapper)])
        return _installed


def _wrap(module, name: str, make) -> bool:
    original = getattr(module, name, None)
    if not callable(original):
        return False
    wrapper = make(original)
    wrapper.__wrapped__ = original
    setattr(module, name, wrapper)
    return True


def _active_client(exc: Exception):
    """The client of the cell running in this thread, when *exc* is a failed meta inference."""
    client = getattr(_state, "client", None)
    return client if client is not None and _METADATA_FAILED in str(exc) else None


def _emulate_wrapper(original):
    def emulate(func, *args, udf=False, **kwargs):
        try:
            return original(func, *args, udf=udf, **kwargs)
        except ValueError as exc:
            client = _active_client(exc)
            if client is None or not udf:
                raise
            return _on_real_rows(client, func, args, kwargs, exc)

    return emulate


def _map_partitions_wrapper(original):
    def _get_meta_map_partitions(args, dfs, func, kwargs, meta, parent_meta):
        try:
            return original(args, dfs, func, kwargs, meta, parent_meta)
        except ValueError as exc:
            client = _active_client(exc)
            if client is None:
                raise
            real_meta = _on_real_rows(client, func, args, kwargs, exc)  # as if the user passed meta=
            return original(args, dfs, func, kwargs, real_meta, parent_meta)

    return _get_meta_map_partitions


def _on_real_rows(client, func, args, kwargs, failure: Exception):
    from dask.dataframe.dask_expr import new_collection
    from dask.dataframe.dask_expr._collection import FrameBase
    from dask.dataframe.dask_expr._expr import Expr

    found = []

    def real(x):
        if isinstance(x, (list, tuple)):
            return type(x)(real(v) for v in x)
        if isinstance(x, dict):
            return {k: real(v) for k, v in x.items()}
        if isinstance(x, Expr):
            x = new_collection(x)
        if isinstance(x, FrameBase):
            found.append(x)
            # the first partition, else all (it may be filtered empty); the first alone is a
            # one-partition frame, so dask's head does not warn (on the worker) about few rows
            for part in (x.partitions[0], x):
                rows = client.compute(part.head(SAMPLE_ROWS, npartitions=-1, compute=False), sync=True)
                if len(rows):
                    return rows
            raise failure  # no real rows anywhere: nothing better to infer from
        return x

    real_args, real_kwargs = real(args), real(kwargs)
    if not found:
        raise failure
    return func(*real_args, **real_kwargs)  # the user's function on real rows: its error is theirs


# -- errors ---------------------------------------------------------------------------------
def _kernel_error(exc: Exception, ddf, index, per_partition: bool) -> PreprocessError:
    """A cell that raised in the kernel (or in a sample computation it started)."""
    tb = exc.__traceback__
    hint = _NAME_HINT[per_partition] if isinstance(exc, NameError) else None
    if _METADATA_FAILED in str(exc) and exc.__cause__ is not None:
        cause = exc.__cause__
        what = str(exc).split("\n", 1)[0].replace(_METADATA_FAILED, "Dask could not infer the output").rstrip(".")
        message = f"{what} from sample rows: {one_line(cause)}"
        hint = "no real rows reach it to infer from: pass meta=, e.g. .apply(f, meta=('t', 'object'))"
        exc, tb = cause, _joined(tb, cause.__traceback__)  # the cell's line, then the function's
    else:
        message = f"the preprocess cell raised {one_line(exc)}"
        if isinstance(exc, KeyError):
            hint = f"columns of the input: {', '.join(map(str, ddf.columns))}"
    return PreprocessError(message, format_remote_traceback(exc, tb, index, user_only=True), hint, where="kernel")


_NAME_HINT = {True: "a --per-partition cell sees df, pd, np and the notebook names it uses that can be pickled",
              False: "define it in an earlier cell (it is looked up when the cell runs)"}


def _joined(first, second):
    """Traceback *first* with *second* appended (a chained cause's frames after the cell's)."""
    entries = []
    while first is not None:
        entries.append(first)
        first = first.tb_next
    joined = second
    for tb in reversed(entries):
        joined = types.TracebackType(joined, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    return joined


def raise_failed_partition(client, collections: list, prepared: PreparedCell, output: str) -> None:
    """Wait for the persisted *collections*; a partition that failed on a worker (reading the
    input, a notebook function, the per-partition cell) is one :class:`PreprocessError`, and
    the rest of the work is cancelled."""
    from distributed import futures_of, wait

    futures = futures_of(collections)
    pending = set(futures)
    while pending:  # until all are done, or one failed (then stop there: the rest is cancelled)
        done, pending = wait(pending, return_when="FIRST_COMPLETED")
        if any(f.status == "error" for f in done):
            break
    failed = sorted((f for f in futures if f.status == "error"), key=lambda f: str(f.key))
    if not failed:
        return
    exc, tb = failed[0].exception(), failed[0].traceback()
    client.cancel(futures)
    text = format_remote_traceback(exc, tb, prepared.code_index, user_only=True)
    raise PreprocessError(f"preprocess → {output}: a partition failed on a worker: {one_line(exc)}",
                          text, hint=_NAME_HINT[prepared.per_partition] if isinstance(exc, NameError) else None)


def read_error(exc: Exception, source) -> PreprocessError:
    """The input could not be read (a damaged file, an unknown format inside the right suffix)."""
    return PreprocessError(f"cannot read the input {source!r}: {one_line(exc)}",
                           format_remote_traceback(exc, exc.__traceback__, user_only=True),
                           hint="check the files: every file of a glob needs the same columns", where="kernel")


def save_error(exc: Exception, path: str) -> PreprocessError:
    tb = getattr(exc, "__traceback__", None)
    return PreprocessError(f"could not save the result to {path}: {one_line(exc)}",
                           format_remote_traceback(exc, tb, user_only=True),
                           hint="check the path and that every column has one type", where="kernel")

