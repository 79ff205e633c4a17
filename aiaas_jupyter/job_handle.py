"""Job: the handle of one training run on the cluster, modelled on ``distributed.Future``.

(The module is not called ``jobs``: ``aiaas_jupyter.jobs()`` is the API function listing jobs,
and a submodule of that name would shadow it.)

As a ``Future`` is a thin handle over its ``FutureState``, a Job is a thin, read-mostly handle
over a :class:`~.job_state.JobState` (status, progress, events, the registered version, the
error) plus the Dask future of the training task while it runs (dropped once the job ended:
:meth:`drop_future`). It holds no view and no back-reference to the
façade: the dispatcher (:mod:`.job_dispatch`) moves its state, views follow it through
:meth:`add_listener` and live above the façade (:mod:`.presenting`, ``widgets/live_views``).
Its ``_repr_html_`` is a static snapshot, which the notebook's live view redraws in place.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Callable

from .display import fmt, progress_bar_html
from .views import retry_note
from .errors import AiaasError

if TYPE_CHECKING:  # pragma: no cover
    from .job_state import JobState
    from .registry import JobRecord, ModelVersion

_COLORS = {"finished": "#2e7d32", "error": "#c62828", "cancelled": "#757575", "lost": "#757575"}


class Job:
    """Handle to one training job. Returned at once by ``train``; ``result()`` waits."""

    def __init__(self, state: "JobState", future=None, code_index=None):
        self._state = state
        self.future = future
        self.cancel_requested = False
        #: why the job was given up (its worker died more often than retries allow), else None
        self.gave_up: str | None = None
        #: where the notebook code this job shipped came from (:mod:`.tracebacks`), for remote tracebacks
        self.code_index = code_index

    # -- the Future-like API -------------------------------------------------------------
    @property
    def record(self) -> "JobRecord":
        return self._state.record

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def status(self) -> str:
        return self._state.status

    @property
    def progress(self) -> float:
        return self._state.record.progress or 0.0

    @property
    def events(self) -> list[dict]:
        return self._state.events

    @property
    def latest(self) -> dict:
        """The newest progress event (epoch, loss, ...)."""
        events = self._state.events
        return events[-1] if events else {}

    @property
    def version(self) -> "ModelVersion | None":
        return self._state.version

    @property
    def error(self) -> AiaasError | None:
        """The error the job ended with (None while running or when it succeeded)."""
        return self._state.exception

    @property
    def remote_traceback(self) -> str:
        return self._state.remote_traceback

    def done(self) -> bool:
        return self._state.done()

    def wait(self, timeout: float | None = None) -> bool:
        return self._state.wait(timeout)

    def result(self, timeout: float | None = None) -> "ModelVersion":
        """Wait for the job; return the registered model version or raise its error."""
        if not self._state.wait(timeout):
            raise TimeoutError(f"job {self.id} still {self.status} after {timeout} s")
        return self._state.outcome()

    def exception(self) -> AiaasError | None:
        self._state.wait()
        return self._state.exception

    def cancel(self) -> None:
        if self.future is not None and not self.done():
            #: a task Dask cancels on its own (its only copy of the data died with a worker) is
            #: no cancellation of the user's: the dispatcher reports that job as lost
            self.cancel_requested = True
            self._stop()

    def give_up(self, reason: str) -> None:
        """End a job that cannot succeed (*reason*, one line): it fails, it is not cancelled."""
        if self.future is not None and not self.done():
            self.gave_up = reason
            self._stop()

    def _stop(self) -> None:
        future, worker = self.future, self.record.worker
        future.cancel()
        # Dask does not interrupt a running task's thread: we ask the worker to stop it. A job
        # in its first moments has not said where it runs yet (see remote.HeldEvents): then
        # every worker is asked, and only the one running it acts
        from .remote import stop_job

        if worker is not None:
            future.client.run(stop_job, self.id, workers=[worker], on_error="ignore")
        else:
            future.client.run(stop_job, self.id, True, on_error="ignore")

    def drop_future(self) -> None:
        """Let go of the training task's Dask future: the job ended and its outcome is recorded.
        A future held by the kernel keeps the task's result in a worker's memory, and Dask
        recomputes a held result whose worker dies — a finished job trained again, ahead of new
        work. An ended job holds nothing on the cluster."""
        self.future = None

    def add_listener(self, fn: Callable[["Job", "dict | None"], None]) -> Callable[[], None]:
        """Call ``fn(job, event)`` after each progress event and ``fn(job, None)`` once the job
        has ended (status, version and error already set). Events seen so far are replayed
        first (and the end, if it came). Returns a function that removes the listener.
        Listeners run on Dask's threads and must be quick; one that raises is logged, never
        allowed to break the event stream or the job's completion."""
        return self._state.add_listener(lambda event: fn(self, event))

    def lineage(self) -> dict:
        v = self.version
        return {"aiaas": {"model": self.record.model, "version": v.version if v else None,
                          "job": self.id, "data_fingerprint": v.data_fingerprint if v else None}}

    # -- how it looks ----------------------------------------------------------------------
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
        note = retry_note(r.info)
        if note:
            out["retry"] = note
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


__all__ = ["Job"]
