"""Job: one training run on the cluster, modelled on ``distributed.Future``.

(The module is not called ``jobs``: ``aiaas_jupyter.jobs()`` is the API function listing jobs,
and a submodule of that name would shadow it.)

A Job wraps the Dask future of the training task and adds what a notebook user wants to see:
status, progress, the current epoch and loss (streamed from the worker as Dask events), the
registered model version once it finishes, and a live view: in a Jupyter kernel the
``JobProgress`` widget (:mod:`.widgets.progress`, which updates itself over comm messages),
elsewhere an HTML view that updates in place through a display id.

Listeners (``add_listener``) are how widgets follow a job: they are called on Dask's threads
after each event and once at the end, and must be quick; a listener that raises is logged,
never allowed to break the event stream or the job's completion.

Threads: progress events arrive on the Dask client's event-loop thread and the completion
callback runs on a Dask callback thread; the notebook thread only reads. ``_done`` is the one
synchronisation point: it is set after the model is registered (or the failure recorded), so
``result()`` never returns a job whose model is half-registered.
"""

from __future__ import annotations

import datetime as _dt
import html
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from .display import fmt, progress_bar_html
from .errors import AiaasError, JobCancelledError, JobFailedError
from .registry.jobs_table import TERMINAL
from .tracebacks import format_remote_traceback

if TYPE_CHECKING:  # pragma: no cover
    from .registry import JobRecord, ModelVersion

_log = logging.getLogger(__name__)
_COLORS = {"finished": "#2e7d32", "error": "#c62828", "cancelled": "#757575", "lost": "#757575"}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Job:
    """Handle to one training job. Returned at once by ``train``; ``result()`` waits."""

    def __init__(self, record: "JobRecord", future=None, on_finish=None, display_interval=0.25,
                 on_progress=None, code_index=None):
        self.record = record
        #: where the notebook code this job shipped came from (:mod:`.tracebacks`), for remote tracebacks
        self.code_index = code_index
        self.future = future
        self.events: list[dict] = []
        self.version: "ModelVersion | None" = None
        self.remote_traceback = ""
        self._exception: AiaasError | None = None
        self._on_finish = on_finish  # facade callback: register the model, persist the record
        # facade callback ``(job_id, live_fields, stage)``: persist live progress (job_progress)
        self._on_progress = on_progress
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._listeners: list[Callable] = []
        self.client = None  # the façade that started or attached it (set by AiaasClient)
        self._handle = None
        self._view = None  # the JobProgress widget shown by display() in a kernel
        self._pub = None
        self._last_draw = 0.0
        self._interval = display_interval
        self._t0 = time.time()
        if record.status in TERMINAL:
            self._done.set()

    # -- the Future-like API -------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def progress(self) -> float:
        return self.record.progress or 0.0

    @property
    def latest(self) -> dict:
        """The newest progress event (epoch, loss, ...)."""
        return self.events[-1] if self.events else {}

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> "ModelVersion":
        """Wait for the job; return the registered model version or raise its error."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} still {self.status} after {timeout} s")
        if self._exception is not None:
            raise self._exception
        if self.version is None:
            raise JobFailedError(f"job {self.id} ended as {self.status} and registered no model",
                                 hint=self.record.error or "see %aiaas jobs")
        return self.version

    @property
    def error(self) -> AiaasError | None:
        """The error the job ended with (None while running or when it succeeded)."""
        return self._exception

    def exception(self) -> AiaasError | None:
        self._done.wait()
        return self._exception

    def cancel(self) -> None:
        if self.future is not None and not self.done():
            self.future.cancel()

    # -- listeners (widgets) ------------------------------------------------------------
    def add_listener(self, fn: Callable[["Job", "dict | None"], None]) -> Callable[[], None]:
        """Call ``fn(job, event)`` after each progress event and ``fn(job, None)`` once the job
        has ended (status, version and error already set). Events seen so far are replayed
        first (and the end, if it came). Returns a function that removes the listener."""
        with self._lock:
            self._listeners.append(fn)
            seen, ended = list(self.events), self.record.status in TERMINAL
        for event in seen:
            self._call(fn, event)
        if ended:
            self._call(fn, None)

        def remove() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return remove

    def _call(self, fn, event) -> None:
        try:
            fn(self, event)
        except Exception:  # noqa: BLE001 - a widget bug must not stop the job's events
            _log.exception("aiaas: a listener of job %s failed", self.id)

    def _notify(self, listeners, event: "dict | None") -> None:
        for fn in listeners:
            self._call(fn, event)

    # -- called by the facade's Dask hooks ----------------------------------------------
    def _on_event(self, event: Any) -> None:
        """Dask ``subscribe_topic`` handler: ``event`` is ``(timestamp, msg)``."""
        msg = event[1] if isinstance(event, tuple) else event
        if not isinstance(msg, dict):
            return
        with self._lock:
            self.events.append(msg)
            if self.record.status == "pending":
                self.record.status = "running"
                self.record.started = now_iso()
            self.record.worker = msg.get("worker", self.record.worker)
            if msg.get("progress") is not None:
                self.record.progress = float(msg["progress"])
            r = self.record
            live = None if r.status in TERMINAL else {"status": r.status, "started": r.started,
                                                      "worker": r.worker, "progress": r.progress}
            # taken with the event, as add_listener snapshots: a listener added now misses no event
            # and is told none twice
            listeners = list(self._listeners) if self._listeners else ()
        if live is not None and self._on_progress is not None:
            self._on_progress(self.id, live, msg.get("stage"))
        self._notify(listeners, msg)
        self.redraw(force=msg.get("stage") in ("start", "done"))

    def _finish(self, status: str, version=None, error: AiaasError | None = None,
                remote_traceback: str = "") -> None:
        with self._lock:
            self.record.status = status
            self.record.finished = now_iso()
            if status == "finished":
                self.record.progress = 1.0
            self.version = version
            self._exception = error
            self.remote_traceback = remote_traceback
            if error is not None:
                self.record.error = str(error)
            listeners = list(self._listeners)
        self._notify(listeners, None)
        self.redraw(force=True)  # before waking waiters: a blocking cell must end on the final view
        self._done.set()

    @staticmethod
    def describe_remote_failure(job_id: str, exc: BaseException, tb, code_index=None) -> AiaasError:
        """Turn the exception a task raised into the one clear error the user sees.

        The remote traceback shows the lines of notebook-defined code (*code_index*, see
        :mod:`.tracebacks`), whatever the pickled code's file was called on the worker."""
        if isinstance(exc, AiaasError):  # a domain error raised on the worker: already clear
            return exc
        text = format_remote_traceback(exc, tb, code_index)
        where = f" on the worker" if text else ""
        return JobFailedError(f"job {job_id} failed{where}: {type(exc).__name__}: {exc}",
                              remote_traceback=text)

    @staticmethod
    def cancelled_error(job_id: str) -> JobCancelledError:
        return JobCancelledError(f"job {job_id} was cancelled; nothing was registered")

    # -- display -------------------------------------------------------------------------
    def lineage(self) -> dict:
        v = self.version
        return {"aiaas": {"model": self.record.model, "version": v.version if v else None,
                          "job": self.id, "data_fingerprint": v.data_fingerprint if v else None}}

    def display(self) -> None:
        """Show the live view in the current cell: the JobProgress widget in a Jupyter kernel
        (it updates itself), else the HTML view, which later events update in place."""
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        self._pub = getattr(shell, "display_pub", None)
        self._view = _progress_widget(self, shell)
        self._handle = display(self._view if self._view is not None else self, display_id=True,
                               metadata=self.lineage())

    def redraw(self, force: bool = False) -> None:
        if self._handle is None:
            return
        if self._view is not None and not (force and self.status in TERMINAL):
            # the widget follows the job by itself; its output is rewritten once, at the end, so
            # a saved notebook keeps the final text/html and the lineage in its metadata
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        # Updates come from Dask's threads, which ipykernel would attribute to the cell that
        # started them (`%aiaas connect`); front-ends only listen to the cell running now, so
        # send them as that cell's output (the train cell itself while it is running).
        pub, token = self._pub, None
        latest = getattr(pub, "_parent_header_global", None)
        if latest and hasattr(pub, "set_thread_parent"):
            token = pub.set_thread_parent(latest)
        try:
            self._handle.update(self._view if self._view is not None else self, metadata=self.lineage())
        finally:
            if token is not None:
                pub.reset_thread_parent(token)

    def _summary(self) -> dict:
        r = self.record
        ev = next((e for e in reversed(self.events) if e.get("epoch") is not None), self.latest)
        out = {"job": r.id, "model": r.model, "status": r.status, "progress": f"{self.progress:.0%}",
               "worker": r.worker, "gpus": r.gpus}
        if ev.get("epoch") is not None:
            out["epoch"] = f"{ev['epoch']}/{ev.get('epochs', '?')}"
        if ev.get("loss") is not None:
            out["loss"] = ev["loss"]
        if self.version is not None:
            out["registered"] = self.version.ref
            out["metrics"] = self.version.metrics
        if r.duration_s is not None:
            out["wall time"] = f"{r.duration_s:.2f} s"
        if r.status == "finished":
            out["GPU-seconds"] = f"{r.gpu_seconds or 0.0:.2f}"
        if r.error:
            out["error"] = r.error
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={fmt(v)}" for k, v in self._summary().items() if v not in (None, ""))
        return f"<Job {parts}>"

    def _repr_html_(self) -> str:
        s = self._summary()
        color = _COLORS.get(self.status, "#1565c0")
        rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(fmt(v))}</td></tr>"
                       for k, v in s.items() if k not in ("progress",) and v not in (None, ""))
        tb = ""
        if self.remote_traceback:
            tb = f"<details><summary>remote traceback</summary><pre>{html.escape(self.remote_traceback)}</pre></details>"
        return (f"<div class='aiaas-job'><b>aiaas job {html.escape(self.id)}</b> "
                f"<span style='color:{color}'>{html.escape(self.status)}</span><br>"
                f"{progress_bar_html(self.progress, color)}<table>{rows}</table>{tb}</div>")


def _progress_widget(job: Job, shell):
    """A JobProgress for *job* in a Jupyter kernel (setting ``aiaas.jobs.widget``), else None."""
    from .settings import config

    if type(shell).__name__ != "ZMQInteractiveShell" or str(config("jobs.widget")).lower() in ("false", "0", "no"):
        return None
    try:
        from .widgets.progress import JobProgress

        return JobProgress(job, client=job.client)
    except ImportError:  # ipywidgets / matplotlib missing: the HTML view still works
        return None
    except Exception:  # noqa: BLE001 - a widget bug must not cost the job its live view
        _log.exception("aiaas: could not build the JobProgress widget; showing the HTML view")
        return None
