"""MapJob: the handle of one ``aiaas_jupyter.map`` (see :mod:`.fanout`), shaped like
:class:`~.job_handle.Job`: ``result``, ``cancel``, ``status``, ``done``, ``wait`` — plus
``partial()`` (the results that came back, also after a failure or a cancel) and ``failures``.

It follows the chunk futures :mod:`.fanout` submitted. Threads: Dask's callback thread (one for
every future of the process) only queues finished chunks; the map's collector thread brings
them back — one ``gather`` per batch, so the shared callback thread never waits on the network
— and stores them in order. ``_done`` is the one synchronisation point, set after the last
result is in place (or the error recorded).

Errors: ``errors="raise"`` ends the map at the first failed item with its
:class:`~.errors.MapError` (one line naming the item's index, the user's lines under it, see
:mod:`.tracebacks`) and cancels what is still pending; ``errors="return"`` puts the MapError in
the failed item's place. Views follow a map through :meth:`MapJob.add_listener` and live elsewhere
(:mod:`.presenting`: one line of text on stderr; in a kernel ``widgets/live_views``: a bar
updated in place through a display id).
"""

from __future__ import annotations

import html
import logging
import math
import reprlib
import threading
import time
import uuid
from typing import Any, Callable

from .display import progress_bar_html
from .errors import AiaasError, JobCancelledError, JobError, MapError
from .listeners import Listeners
from .tracebacks import format_remote_traceback, index_of, one_line

_log = logging.getLogger(__name__)
_COLORS = {"finished": "#2e7d32", "error": "#c62828", "cancelled": "#757575", "lost": "#757575"}
_MISSING = object()
_item_repr = reprlib.Repr()
_item_repr.maxstring = _item_repr.maxother = 40
_item_repr.maxlist = _item_repr.maxtuple = _item_repr.maxdict = 4


def func_name(func: Callable) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    return "lambda" if name == "<lambda>" else name


class MapJob:
    """Handle of one map over the cluster. Returned by ``map(..., block=False)``."""

    def __init__(self, func: Callable, args: list[tuple], chunksize: int, errors: str):
        self.id = uuid.uuid4().hex[:10]
        self.name = func_name(func)
        self.n_items = len(args)
        self.chunksize = chunksize
        self.errors = errors
        self.status = "pending"
        self.seconds: float | None = None
        self.n_done = 0  # items whose outcome (value or failure) came back
        self._args = args  # kernel-side, to describe a failed item
        self._code_index = index_of(func)
        self._results: list = [_MISSING] * len(args)
        self._failures: dict[int, MapError] = {}
        self._error: AiaasError | None = None
        self._futures: dict[int, Any] = {}  # chunk start -> Dask future, until its outcome is in
        self._client = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # the collector waits on it for finished chunks
        self._ready: list = []  # (chunk start, future) finished, not collected yet
        self._done = threading.Event()
        self._over = False  # set once, under the lock, by _finish: the collector's signal to end
        self._t0 = time.time()
        self._listeners = Listeners(self._lock, f"map {self.name}", _log)

    # -- the Future-like API -------------------------------------------------------------
    @property
    def n_tasks(self) -> int:
        return math.ceil(self.n_items / self.chunksize) if self.n_items else 0

    @property
    def n_failed(self) -> int:
        return len(self._failures)

    @property
    def progress(self) -> float:
        return self.n_done / self.n_items if self.n_items else 1.0

    @property
    def failures(self) -> dict[int, MapError]:
        """Failed items so far: index → :class:`MapError` (its ``exception`` is the worker's)."""
        with self._lock:
            return dict(self._failures)

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> list:
        """Wait; return the results in the items' order, or raise the map's error."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"map {self.name} still {self.status} after {timeout} s "
                               f"({self.n_done}/{self.n_items} items done)")
        if self._error is not None:
            raise self._error
        return list(self._results)

    def exception(self, timeout: float | None = None) -> AiaasError | None:
        self._done.wait(timeout)
        return self._error

    def partial(self) -> dict[int, Any]:
        """The results that came back so far (also after a failure or a cancel): index → value."""
        with self._lock:
            return {i: v for i, v in enumerate(self._results)
                    if v is not _MISSING and i not in self._failures}

    def cancel(self) -> None:
        """Stop the map: pending tasks are cancelled, results that came back stay (``partial``)."""
        self._finish("cancelled", JobCancelledError(
            f"map {self.name} was cancelled after {self.n_done} of {self.n_items} items",
            hint="the results that came back are in .partial()"))

    # -- submitting and collecting ---------------------------------------------------------
    def chunks(self) -> tuple[list[int], list[list[tuple]]]:
        """The chunks to submit: their first item's index, and their argument tuples."""
        starts = list(range(0, self.n_items, self.chunksize))
        return starts, [self._args[s:s + self.chunksize] for s in starts]

    def follow(self, dask_client, starts: list[int], futures: list) -> None:
        """Collect the chunks' futures as they finish (see :meth:`_collect`)."""
        if not futures:  # an empty map: finished at once
            self._finish("finished")
            return
        self._client = dask_client
        self.status = "running"
        self._futures = dict(zip(starts, futures))
        threading.Thread(target=self._collect, name=f"aiaas-map-{self.id}", daemon=True).start()
        for start, fut in zip(starts, futures):
            fut.add_done_callback(lambda f, start=start: self._on_chunk(start, f))

    def _on_chunk(self, start: int, fut) -> None:
        """Dask done-callback (one thread for every future of the process): just queue it."""
        with self._cond:
            self._ready.append((start, fut))
            self._cond.notify()

    def _collect(self) -> None:
        """The map's collector thread: brings back the finished chunks in batches, one
        ``gather`` (a round trip per worker, not per chunk) for all that finished meanwhile."""
        while True:
            with self._cond:
                while not self._ready and not self._over:
                    self._cond.wait()
                if self._over:
                    return
                batch, self._ready = self._ready, []
            try:
                self._take(batch)
            except Exception as exc:  # noqa: BLE001 - never leave a waiter hanging
                self._finish("error", MapError(f"map {self.name}: {one_line(exc)}", exception=exc))

    def _take(self, batch: list) -> None:
        for start, fut in batch:
            if fut.status == "cancelled":
                self._finish("lost", JobError(f"map {self.name} was lost: its tasks were cancelled "
                                              f"(the connection to the cluster closed?)",
                                              hint="the results that came back are in .partial()"))
                return
            if fut.status != "finished":  # the task itself failed (a dead worker, ...), not an item
                stop = min(start + self.chunksize, self.n_items)
                exc = fut.exception()
                text = format_remote_traceback(exc, fut.traceback(), self._code_index)
                self._finish("error", MapError(
                    f"map {self.name}: the task of items {start}–{stop - 1} failed: {one_line(exc)}",
                    remote_traceback=text, exception=exc))
                return
        try:
            outcomes = self._client.gather([fut for _, fut in batch])
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be unpickled here
            self._finish("error", MapError(f"map {self.name}: could not bring back results: "
                                           f"{one_line(exc)}", exception=exc))
            return
        for (start, _), (values, failed) in zip(batch, outcomes):
            self._store(start, values, failed)
        if self._failures and self.errors == "raise":
            self._finish("error", self._failures[min(self._failures)])
        elif self.n_done >= self.n_items:
            self._finish("finished")
        else:
            self._notify({"done": self.n_done})

    def _store(self, start: int, values: list, failed: list) -> None:
        errors = {index: self._describe_failure(index, exc, frames) for index, exc, frames in failed}
        with self._lock:
            self._futures.pop(start, None)
            for offset, value in enumerate(values):
                index = start + offset
                self._results[index] = errors.get(index, value)
            self._failures.update(errors)
            self.n_done += len(values)

    def _describe_failure(self, index: int, exc: BaseException, frames: dict | None) -> MapError:
        tb = None
        if frames:
            from tblib import Traceback

            tb = Traceback.from_dict(frames).as_traceback()
        args = self._args[index]
        item = _item_repr.repr(args[0] if len(args) == 1 else args)
        return MapError(f"map {self.name}: item {index} ({item}) failed on the worker: "
                        f"{one_line(exc)}",
                        remote_traceback=format_remote_traceback(exc, tb, self._code_index),
                        hint="errors=\"return\" (--errors return) keeps the other items' results",
                        index=index, exception=exc)

    def _finish(self, status: str, error: AiaasError | None = None) -> None:
        """End the map (once): tasks still pending are cancelled (their results would be ignored:
        the collector stops first, so their cancellation does not read as "lost")."""
        with self._lock:
            if self._over:
                return
            self._over = True
            self.status = status
            self._error = error
            self.seconds = time.time() - self._t0
            pending, self._futures = list(self._futures.values()), {}
            self._cond.notify_all()  # the collector ends
        if pending and status != "lost" and self._client is not None and self._client.status == "running":
            self._client.cancel(pending)
        self._notify(None)  # before waking waiters: a blocking cell ends on the final view
        self._done.set()

    # -- listeners (views) -----------------------------------------------------------------
    def add_listener(self, fn: Callable[["MapJob", "dict | None"], None]) -> Callable[[], None]:
        """Call ``fn(map_job, {"done": n})`` as results come back and ``fn(map_job, None)`` once
        the map has ended (told at once if it already has). Called on the map's threads; one
        that raises is logged, never allowed to stop the map. Returns the remover."""
        return self._listeners.add(fn, lambda: [(self, None)] if self._over else [])

    def _notify(self, event: "dict | None") -> None:
        with self._lock:
            listeners = self._listeners.snapshot()
        self._listeners.notify(listeners, self, event)

    # -- how it looks ------------------------------------------------------------------------
    def _summary(self) -> dict:
        out = {"items": self.n_items, "done": self.n_done, "failed": self.n_failed,
               "tasks": f"{self.n_tasks} (chunk size {self.chunksize})"}
        seconds = self.seconds if self.seconds is not None else time.time() - self._t0
        out["wall time"] = f"{seconds:.2f} s"
        if self._error is not None:
            out["error"] = str(self._error)
        return out

    def __repr__(self) -> str:
        seconds = self.seconds if self.seconds is not None else time.time() - self._t0
        failed = f", {self.n_failed} failed" if self.n_failed else ""
        return (f"<MapJob {self.name}: {self.status}, {self.n_done}/{self.n_items} items{failed}, "
                f"{self.n_tasks} tasks, {seconds:.2f} s>")

    def _repr_html_(self) -> str:
        color = _COLORS.get(self.status, "#1565c0")
        rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in self._summary().items())
        tb = getattr(self._error, "remote_traceback", "")
        if tb:
            tb = f"<details><summary>remote traceback</summary><pre>{html.escape(tb)}</pre></details>"
        return (f"<div class='aiaas-map'><b>aiaas map {html.escape(self.name)}</b> "
                f"<span style='color:{color}'>{html.escape(self.status)}</span><br>"
                f"{progress_bar_html(self.progress, color)}<table>{rows}</table>{tb}</div>")
