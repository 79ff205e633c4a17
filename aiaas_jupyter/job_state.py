"""JobState: the mutable truth of one training job, changed only through named transitions.

Modelled on ``distributed.client.FutureState``: a :class:`~.job_handle.Job` is a thin handle
over one of these, as a ``Future`` is over its ``FutureState``; the dispatcher
(:mod:`.job_dispatch`) drives it, views follow it through :meth:`JobState.add_listener`. Keeping
every write here is what lets the next issues add states (``retry`` when a worker dies) without
hunting for the other places that set ``status``.

Transitions are methods — ``running``, ``progress``, ``finished``, ``error``, ``cancelled``,
``lost``, ``retry`` — each checked against :data:`TRANSITIONS`: an illegal one (``finished →
running``) raises :class:`~.errors.JobError` and changes nothing. The statuses themselves are the
registry's (:mod:`.registry.jobs_table`), never a second list.

Threads: progress events arrive on the Dask client's event-loop thread and the completion on a
Dask callback thread; the notebook thread only reads. ``_lock`` guards the fields and the
listener list; listeners are called outside it. ``_done`` is set last — after the record is
final and every listener (including a view's final redraw) has run — so ``result()`` never sees a
half-ended job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

from .clock import now_iso
from .listeners import Listeners
from .errors import AiaasError, JobCancelledError, JobError, JobFailedError
from .registry.jobs_table import LIVE, STATUSES, TERMINAL

if TYPE_CHECKING:  # pragma: no cover
    from .registry import JobRecord, ModelVersion

_log = logging.getLogger(__name__)

#: transition -> (the statuses it may start from, the status it leads to; None: unchanged)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "running": (("pending",), "running"),
    "progress": (LIVE, None),          # the first event of a pending job implies running
    "finished": (LIVE, "finished"),
    "error": (LIVE, "error"),
    "cancelled": (LIVE, "cancelled"),
    "lost": (LIVE, "lost"),
    "retry": (LIVE, "pending"),
}
assert all(to is None or to in STATUSES for _, to in TRANSITIONS.values())

Listener = Callable[["dict | None"], None]


class JobState:
    """The record, events, version, error and listeners of one job; see the module docstring."""

    def __init__(self, record: "JobRecord", *, started_at: float | None = None):
        self.record = record
        self.events: list[dict] = []
        self.version: "ModelVersion | None" = None
        self.exception: AiaasError | None = None  # the error it ended with
        self.remote_traceback = ""
        #: wall-clock start of the job in this process (``time.time()``), for its duration
        self.started_at = time.time() if started_at is None else started_at
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._listeners = Listeners(self._lock, f"job {record.id}", _log)
        if record.status in TERMINAL:
            self._done.set()

    @classmethod
    def ended(cls, record: "JobRecord", version=None, error: AiaasError | None = None) -> "JobState":
        """The state of a job that ended before this process saw it (an earlier kernel's)."""
        if record.status not in TERMINAL:
            raise JobError(f"job {record.id} is {record.status}, not ended")
        state = cls(record)
        state.version, state.exception = version, error
        return state

    # -- reading ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> str:
        return self.record.status

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def live_fields(self) -> dict | None:
        """What the registry's live row should say now (None once the job ended)."""
        with self._lock:
            r = self.record
            if r.status in TERMINAL:
                return None
            return {"status": r.status, "started": r.started, "worker": r.worker, "progress": r.progress}

    def outcome(self) -> "ModelVersion":
        """The registered version of an ended job, or the error that fits how it ended."""
        if self.exception is not None:
            raise self.exception
        if self.version is None:
            raise JobFailedError(f"job {self.id} ended as {self.status} and registered no model",
                                 hint=self.record.error or "see %aiaas jobs")
        return self.version

    # -- transitions -----------------------------------------------------------------------
    def _check(self, transition: str) -> str | None:
        """The status *transition* leads to; JobError (nothing changed) when it is illegal now."""
        allowed, to = TRANSITIONS[transition]
        if self.record.status not in allowed:
            raise JobError(f"job {self.id}: {transition} is not allowed from {self.record.status}")
        return to

    def running(self, worker: str | None = None) -> None:
        """pending → running: a worker started it."""
        with self._lock:
            self._check("running")
            self.record.status = "running"
            self.record.started = now_iso()
            if worker is not None:
                self.record.worker = worker
            listeners = self._listeners.snapshot()
        self._notify(listeners, {"stage": "running", "worker": worker})

    def progress(self, event: dict) -> None:
        """A progress event from the worker (epoch, loss, ...); the first implies running."""
        with self._lock:
            self._check("progress")
            self.events.append(event)
            if self.record.status == "pending":
                self.record.status = "running"
                self.record.started = now_iso()
            self.record.worker = event.get("worker", self.record.worker)
            if event.get("progress") is not None:
                self.record.progress = float(event["progress"])
            # taken with the event, as add_listener snapshots: a listener added now misses no
            # event and is told none twice
            listeners = self._listeners.snapshot()
        self._notify(listeners, event)

    def retry(self, reason: str) -> int:
        """pending/running → pending again (its worker died, it is resubmitted): the attempt
        counter and the reason go into the record's ``info``; listeners get a ``retry`` event.
        Returns the new attempt number (the first run is attempt 1)."""
        with self._lock:
            self._check("retry")
            info = dict(self.record.info or {})
            attempt = int(info.get("attempt", 1)) + 1
            info.update(attempt=attempt, retry_reason=reason)
            info.pop("resumed_epoch", None)  # the new attempt says whether it resumed
            self.record.info = info
            self.record.status, self.record.started, self.record.worker = "pending", None, None
            self.record.progress = 0.0
            event = {"stage": "retry", "attempt": attempt, "reason": reason}
            self.events.append(event)
            listeners = self._listeners.snapshot()
        self._notify(listeners, event)
        return attempt

    def annotate(self, **info) -> dict:
        """Add *info* to the record's ``info`` (e.g. the epoch a retried job resumed at);
        returns the whole ``info`` as it now is."""
        with self._lock:
            self.record.info = {**(self.record.info or {}), **info}
            return dict(self.record.info)

    def finished(self, version: "ModelVersion | None", fields: dict | None = None) -> None:
        """The model is registered (*fields*: what the registry row got, e.g. duration)."""
        self._end("finished", fields, version=version)

    def error(self, exc: AiaasError, remote_traceback: str = "", fields: dict | None = None) -> None:
        self._end("error", fields, exc=exc, remote_traceback=remote_traceback)

    def cancelled(self, exc: JobCancelledError, fields: dict | None = None) -> None:
        self._end("cancelled", fields, exc=exc)

    def lost(self, reason: str, fields: dict | None = None) -> JobError:
        """The job can never finish (its cluster went away); returns the error it now holds."""
        exc = JobError(f"job {self.id} was lost: {reason}")
        self._end("lost", fields, exc=exc)
        return exc

    def _end(self, transition: str, fields: dict | None, *, version=None, exc: AiaasError | None = None,
             remote_traceback: str = "") -> None:
        with self._lock:
            status = self._check(transition)
            for key, value in (fields or {}).items():
                setattr(self.record, key, value)
            self.record.status = status
            self.record.finished = now_iso()
            if status == "finished":
                self.record.progress = 1.0
            self.version, self.exception, self.remote_traceback = version, exc, remote_traceback
            if exc is not None:
                self.record.error = str(exc)
            listeners = self._listeners.snapshot()
        self._notify(listeners, None)  # views draw their final picture before waiters wake
        self._done.set()

    # -- listeners ---------------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(event)`` after each event and ``fn(None)`` once the job has ended. Events
        seen so far are replayed first (and the end, if it came). Returns the remover."""
        def missed():
            return [(e,) for e in self.events] + ([(None,)] if self.record.status in TERMINAL else [])

        return self._listeners.add(fn, missed)

    def _notify(self, listeners, event: "dict | None") -> None:
        self._listeners.notify(listeners, event)


__all__ = ["JobState", "TRANSITIONS"]
