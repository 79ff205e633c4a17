"""BatchJob: the handle of one batch inference on the cluster (:mod:`.batch_scoring`).

Shaped like :class:`~.map_job.MapJob` (``result``, ``cancel``, ``status``, ``done``, ``wait``,
``add_listener``, a bar as its HTML view), so the façade's presenter shows it the same way.
It follows one Dask future per partition; nothing of the results comes to the kernel. A
partition that fails ends the job with one line naming the partition and the worker's error,
and cancels what is still pending; ``cancel()`` does the same for the user.

``result()`` is the scored dask DataFrame, its partitions held in the workers' memory — or, when
the job wrote its results (``save=URL``), that dataset read back lazily from the URL.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from typing import Any, Callable

from .display import progress_bar_html
from .errors import AiaasError, JobCancelledError, JobFailedError
from .listeners import Listeners
from .tracebacks import format_remote_traceback, one_line

_log = logging.getLogger(__name__)
_COLORS = {"finished": "#2e7d32", "error": "#c62828", "cancelled": "#757575"}


class BatchJob:
    """``what`` (e.g. ``"predict iris-rf:3"``) over ``n_parts`` partitions."""

    def __init__(self, what: str, n_parts: int, *, save: str | None = None):
        self.name = what
        self.n_parts = n_parts
        self.save = save
        self.status = "running"
        self.n_done = 0
        self.seconds: float | None = None
        self._t0 = time.time()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._listeners = Listeners(self._lock, what, _log)
        self._error: AiaasError | None = None
        self._futures: list = []
        self._keep: list = []      # what the results need while they live (the model's files)
        self._frame: Any = None
        self._client = None

    # -- following the partitions -----------------------------------------------------------
    def follow(self, dask_client, frame, futures: list, keep: list) -> None:
        """Track *futures* (one per partition of the persisted *frame*); *keep* stays referenced
        while the results live (a lost partition is recomputed from it)."""
        self._client, self._frame, self._futures, self._keep = dask_client, frame, list(futures), list(keep)
        if not self._futures:
            self._finish("finished")
        for i, fut in enumerate(self._futures):
            fut.add_done_callback(lambda f, i=i: self._on_part(i, f))

    def _on_part(self, index: int, fut) -> None:
        status = fut.status
        if status == "finished":
            with self._lock:
                if self.status != "running":
                    return
                self.n_done += 1
                last = self.n_done == self.n_parts
                listeners = self._listeners.snapshot()
            if last:
                self._finish("finished")
            else:
                self._listeners.notify(listeners, self, {"done": self.n_done})
        elif status == "error":
            try:
                exc, tb = fut.exception(timeout=5), fut.traceback(timeout=5)
            except Exception as e:  # noqa: BLE001 - the scheduler went away: say that instead
                exc, tb = e, None
            self._finish("error", _failure(self.name, index, exc, tb))
        elif status == "cancelled":
            self._finish("cancelled", JobCancelledError(f"{self.name} was cancelled"))

    def _finish(self, status: str, error: AiaasError | None = None) -> None:
        with self._lock:
            if self.status != "running":
                return
            self.status, self._error = status, error
            self.seconds = time.time() - self._t0
            pending = [f for f in self._futures if not f.done()]
            if status != "finished":  # nothing of a failed run is kept
                self._futures, self._frame, self._keep = [], None, []
            elif self.save:  # written: the workers hold nothing more for it
                self._futures, self._keep = [], []
        if pending and self._client is not None and self._client.status == "running":
            self._client.cancel(pending)
        self._listeners.notify(self._listeners.snapshot(), self, None)
        self._done.set()

    # -- the handle -------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        return 1.0 if self.status == "finished" else (self.n_done / self.n_parts if self.n_parts else 0.0)

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def exception(self, timeout: float | None = None) -> AiaasError | None:
        self.wait(timeout)
        return self._error

    def result(self, timeout: float | None = None):
        """The scored dask DataFrame (or, with ``save``, the written dataset read back lazily)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.name} is still running ({self.n_done}/{self.n_parts} partitions)")
        if self._error is not None:
            raise self._error
        if self.save:
            import dask.dataframe as dd

            return dd.read_parquet(self.save)
        return self._frame

    def cancel(self) -> None:
        """Stop it: pending partitions are cancelled and nothing of it is kept."""
        self._finish("cancelled", JobCancelledError(f"{self.name} was cancelled"))

    def add_listener(self, fn: Callable[["BatchJob", "dict | None"], None]) -> Callable[[], None]:
        """``fn(job, {"done": n})`` as partitions finish, ``fn(job, None)`` once it has ended."""
        return self._listeners.add(fn, lambda: [(self, None)] if self.status != "running" else [])

    # -- how it looks -------------------------------------------------------------------------
    def _summary(self) -> dict:
        out: dict[str, Any] = {"partitions": f"{self.n_done}/{self.n_parts}"}
        if self.save:
            out["saved to"] = self.save
        seconds = self.seconds if self.seconds is not None else time.time() - self._t0
        out["wall time"] = f"{seconds:.2f} s"
        if self._error is not None:
            out["error"] = str(self._error)
        return out

    def __repr__(self) -> str:
        seconds = self.seconds if self.seconds is not None else time.time() - self._t0
        where = f", saved to {self.save}" if self.save and self.status == "finished" else ""
        return (f"<BatchJob {self.name}: {self.status}, {self.n_done}/{self.n_parts} partitions"
                f"{where}, {seconds:.2f} s>")

    def _repr_html_(self) -> str:
        color = _COLORS.get(self.status, "#1565c0")
        rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in self._summary().items())
        return (f"<div class='aiaas-batch'><b>aiaas {html.escape(self.name)}</b> "
                f"<span style='color:{color}'>{html.escape(self.status)}</span><br>"
                f"{progress_bar_html(self.progress, color)}<table>{rows}</table></div>")


def _failure(what: str, index: int, exc: BaseException, tb) -> AiaasError:
    """A partition's error as the kernel raises it: our own errors (a column the model lacks, a
    corrupted artifact) keep their class and hint, anything else is a JobFailedError with the
    worker's traceback (library frames left out)."""
    if isinstance(exc, AiaasError) and type(exc).__init__ is AiaasError.__init__:
        return type(exc)(f"{what}: partition {index}: {exc.message}", exc.hint)
    return JobFailedError(f"{what}: partition {index} failed on the worker: {one_line(exc)}",
                          remote_traceback=format_remote_traceback(exc, tb, None, user_only=True),
                          hint="nothing of this run is kept; fix the input or the model and run it again")
