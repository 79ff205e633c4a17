"""Plain functions on the cluster: ``aiaas_jupyter.map(func, items)`` and ``%aiaas map``.

Why: the first thing a notebook user asks of a cluster is what ``multiprocessing.Pool.map``
does on one machine — run *my* function (defined in a cell, a closure, a lambda) over a list
and give the results back in order. Dask's ``client.map`` does the scheduling; this module adds
what a notebook needs around it:

* **chunks** — the items (zipped like builtin ``map`` when several iterables are given) are cut
  into chunks, one Dask task each (:func:`.remote.map_chunk`), so 10 000 tiny items are tens of
  tasks, not 10 000 (see :func:`auto_chunksize`);
* **one bad item costs no other result** — a chunk returns its values *and* its failed items;
  ``errors="raise"`` (the default, as builtin ``map``) ends the map at the first failure with one
  :class:`~.errors.MapError` naming the item's index and showing the user's lines
  (:mod:`.tracebacks`), the results that came back stay in :meth:`MapJob.partial`;
  ``errors="return"`` puts the MapError in the failed item's place (like
  ``asyncio.gather(return_exceptions=True)``);
* **progress** — results are fetched chunk by chunk as tasks finish (which also frees worker
  memory early); a kernel shows a bar that updates in place (display id), elsewhere one line
  of text on stderr;
* **a handle** — ``block=False`` returns a :class:`MapJob` (``result``, ``cancel``, ``status``,
  ``done``, ``partial``), shaped like :class:`~.job_handle.Job` (see :mod:`.map_job`).
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Iterable

from .errors import AiaasError, ResourceError
from .map_job import MapJob

ERRORS = ("raise", "return")
#: up to this many items, every item is its own task (finest progress, best balance)
MIN_TASKS = 200
#: beyond that, about this many tasks per worker thread (enough to balance and show progress)
TASKS_PER_THREAD = 16


def auto_chunksize(n_items: int, n_threads: int) -> int:
    """Items per task: 1 up to ``max(MIN_TASKS, TASKS_PER_THREAD × threads)`` items, then as
    many as keep the number of tasks there (each task costs the scheduler ~1 ms)."""
    target = max(MIN_TASKS, TASKS_PER_THREAD * max(1, n_threads))
    return max(1, math.ceil(n_items / target))


_PICKLE_HINT = ("functions and items travel with cloudpickle: open files, locks, connections cannot; "
                "create those inside the function")


def _check_picklable(obj, message: str) -> None:
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the user's to fix
        raise AiaasError(f"{message}: {_innermost(exc)}", hint=_PICKLE_HINT) from None


def _innermost(exc: BaseException) -> str:
    """The root cause of a (chained) pickling error, as ``Type: message``."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__}: {exc}"


def check_resources(dask_client, resources: dict | None) -> None:
    """Refuse a request no worker can ever hold (Dask would wait for one forever)."""
    if not resources:
        return
    workers = dask_client.scheduler_info(n_workers=-1).get("workers", {}).values()
    if any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers):
        return
    have = sorted({f"{k}={v}" for w in workers for k, v in (w.get("resources") or {}).items()})
    raise ResourceError(f"no worker can hold {', '.join(f'{k}={v}' for k, v in resources.items())}: "
                        f"the workers advertise {', '.join(have) or 'no resources'}",
                        hint="lower the request, or start workers with --resources NAME=N")


def run_map(dask_client, func: Callable, iterables: Iterable[Iterable], *, chunksize: int | None = None,
            errors: str = "raise", retries: int = 0, resources: dict | None = None, block: bool = True,
            show: Callable[[MapJob], None] | None = None):
    """Map *func* over the zipped *iterables* on the cluster; the results list, or a
    :class:`MapJob` with ``block=False``. ``show(map_job)``: the caller's view of it (the
    façade's presenter), called once the tasks are submitted."""
    if not callable(func):
        raise AiaasError(f"map: the function must be callable, got {type(func).__name__}")
    if errors not in ERRORS:
        raise AiaasError(f"map: errors must be one of {', '.join(ERRORS)}, got {errors!r}")
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise AiaasError(f"map: chunksize must be a whole number ≥ 1, got {chunksize!r}")
    if not isinstance(retries, int) or retries < 0:
        raise AiaasError(f"map: retries must be a whole number ≥ 0, got {retries!r}")
    iterables = list(iterables)
    if not iterables:
        raise AiaasError("map: give at least one iterable of items", hint="aiaas_jupyter.map(f, [1, 2, 3])")
    try:
        args = list(zip(*iterables))
    except TypeError as exc:
        raise AiaasError(f"map: the items must be iterable: {exc}") from None
    check_resources(dask_client, resources)
    if chunksize is None:
        threads = sum(w.get("nthreads", 1) for w in
                      dask_client.scheduler_info(n_workers=-1).get("workers", {}).values())
        chunksize = auto_chunksize(len(args), threads)
    job = MapJob(func, args, chunksize, errors)
    if args:
        _submit(dask_client, job, func, retries=retries, resources=resources)
    else:
        job.follow(dask_client, [], [])  # nothing to do: finished at once
    if show is not None:
        show(job)
    if not block:
        return job
    try:
        job.wait()
    except KeyboardInterrupt:  # like Ctrl-C in Pool.map: stop the cluster's work too
        job.cancel()
        raise
    return job.result()


def _submit(dask_client, job: MapJob, func: Callable, *, retries: int, resources: dict | None) -> None:
    """One task per chunk (:func:`.remote.map_chunk`), keyed so the dashboard names the map."""
    from .remote import map_chunk

    _check_picklable(func, f"map {job.name}: cannot send the function to the workers")
    starts, chunks = job.chunks()
    keys = [f"aiaas-map-{job.name}-{job.id}-{i}" for i in range(len(starts))]
    quiet = logging.getLogger("distributed.protocol.pickle")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its ERROR + traceback: we say it in one line
    try:
        futures = dask_client.map(map_chunk, starts, chunks, fn=func, key=keys, pure=False,
                                  stop_on_error=job.errors == "raise", item_retries=retries,
                                  resources=resources or None)
    except Exception as exc:  # noqa: BLE001 - pickling an item failed (the function was checked)
        raise AiaasError(f"map {job.name}: cannot send the items to the workers: {_innermost(exc)}",
                         hint=_PICKLE_HINT) from None
    finally:
        quiet.setLevel(level)
    job.follow(dask_client, starts, futures)
