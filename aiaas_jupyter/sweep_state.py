"""SweepState: the mutable truth of one sweep and its trials, changed only through named transitions.

The sweep's counterpart of :class:`~.job_state.JobState`: the :class:`~.sweep_handle.Sweep` handle
reads it, the dispatcher (:mod:`.sweep_dispatch`) drives it, views (the leaderboard widget, the
text table) follow it through :meth:`SweepState.add_listener`. Keeping every write here is what
lets a leaderboard trust what it reads: a trial's status only moves forward (pending → running →
finished / pruned / error / cancelled / lost), checked against :data:`TRIAL_TRANSITIONS`, and the
sweep's counts and best trial are derived from the trials, never kept twice by hand.

Threads: trial events arrive on the Dask client's event-loop thread, trial ends on the sweep's
driver thread; the notebook thread reads. ``_lock`` guards records and listeners; listeners are
called outside it; ``_done`` is set last, after the final listener call.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from typing import TYPE_CHECKING, Callable

from .clock import now_iso
from .errors import AiaasError, SweepError
from .listeners import Listeners
from .registry.sweeps_table import (SWEEP_LIVE, SWEEP_TERMINAL, TRIAL_LIVE, TRIAL_STATUSES,
                                    TRIAL_TERMINAL)

if TYPE_CHECKING:  # pragma: no cover
    from .registry import ModelVersion, SweepRecord, TrialRecord

_log = logging.getLogger(__name__)

#: trial transition -> (statuses it may start from, status it leads to)
TRIAL_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "running": (("pending",), "running"),
    "finished": (TRIAL_LIVE, "finished"),
    "pruned": (TRIAL_LIVE, "pruned"),
    "error": (TRIAL_LIVE, "error"),
    "cancelled": (TRIAL_LIVE, "cancelled"),
    "lost": (TRIAL_LIVE, "lost"),
}
#: sweep transition -> (statuses it may start from, status it leads to)
SWEEP_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "running": (("pending",), "running"),
    "finished": (SWEEP_LIVE, "finished"),
    "error": (SWEEP_LIVE, "error"),
    "cancelled": (SWEEP_LIVE, "cancelled"),
    "lost": (SWEEP_LIVE, "lost"),
}
assert all(to in TRIAL_STATUSES for _, to in TRIAL_TRANSITIONS.values())

Listener = Callable[["dict | None"], None]


def better(a: float | None, b: float | None, direction: str) -> bool:
    """Whether value *a* beats *b* for *direction* (None and NaN never beat anything)."""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return False
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return a > b if direction == "max" else a < b


class SweepState:
    """The records, version, error and listeners of one sweep; see the module docstring."""

    def __init__(self, record: "SweepRecord", trials: "list[TrialRecord] | tuple" = ()):
        self.record = record
        self._trials: dict[int, "TrialRecord"] = {t.number: t for t in trials}
        self.version: "ModelVersion | None" = None
        self.exception: AiaasError | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._events: list[dict] = []  # trial-level events, for late listeners
        self._listeners = Listeners(self._lock, f"sweep {record.id}", _log)
        if record.status in SWEEP_TERMINAL:
            self._done.set()

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

    def trial_records(self) -> "list[TrialRecord]":
        with self._lock:
            return [copy.deepcopy(self._trials[n]) for n in sorted(self._trials)]

    def trial(self, number: int) -> "TrialRecord":
        with self._lock:
            return copy.deepcopy(self._trials[number])

    def counts(self) -> dict[str, int]:
        with self._lock:
            return self._counts()

    def _counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self._trials.values():
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def best(self) -> "TrialRecord | None":
        """The finished trial with the best value (pruned trials never win)."""
        with self._lock:
            best = self._best()
            return copy.deepcopy(best) if best is not None else None

    def _best(self) -> "TrialRecord | None":
        best = None
        for t in self._trials.values():
            if t.status == "finished" and better(t.value, best.value if best else None, self.record.direction):
                best = t
        return best

    def sweep_fields(self) -> dict:
        """What the registry's sweep row should say now (status, counts, best), from the trials."""
        with self._lock:
            return self._sweep_fields()

    def _sweep_fields(self) -> dict:
        best = self._best()
        return {"status": self.record.status, "counts": self._counts(),
                "best_trial": best.number if best else None, "best_value": best.value if best else None}

    # -- trial transitions -------------------------------------------------------------------
    # Each returns the sweep row's new derived fields (counts, best), for the dispatcher to write.
    def trial_added(self, trial: "TrialRecord") -> dict:
        """A new trial (pending, or running when re-attached)."""
        def change():
            if trial.number in self._trials:
                raise SweepError(f"sweep {self.id}: trial {trial.number} exists already")
            self._trials[trial.number] = trial
            if self.record.status == "pending":
                self.record.status = "running"
            return {"kind": "trial", "number": trial.number, "status": trial.status}

        return self._transition(change)

    def trial_running(self, number: int, worker: str | None) -> dict:
        def change():
            t = self._move(number, "running")
            t.started, t.worker = t.started or now_iso(), worker or t.worker
            return {"kind": "trial", "number": number, "status": "running"}

        return self._transition(change)

    def trial_epoch(self, number: int, entry: dict, value: float | None, worker: str | None = None) -> dict:
        """One epoch/rung of a trial (``entry``: epoch, metrics, seconds); the first implies running."""
        def change():
            t = self._trials.get(number)
            if t is None or t.status not in TRIAL_LIVE:
                raise SweepError(f"sweep {self.id}: trial {number} is not live")
            if t.status == "pending":
                t.status, t.started = "running", now_iso()
            t.worker = worker or t.worker
            t.history.append(entry)
            t.value = value if value is not None else t.value
            return {"kind": "epoch", "number": number, "epoch": entry.get("epoch"), "value": value}

        return self._transition(change)

    def trial_ended(self, number: int, transition: str, **fields) -> dict:
        """finished / pruned / error / cancelled / lost, with the trial's final fields."""
        def change():
            t = self._move(number, transition)
            for key, value in fields.items():
                setattr(t, key, value)
            t.finished = t.finished or now_iso()
            return {"kind": "trial", "number": number, "status": t.status}

        return self._transition(change)

    def _move(self, number: int, transition: str) -> "TrialRecord":
        allowed, to = TRIAL_TRANSITIONS[transition]
        t = self._trials.get(number)
        if t is None:
            raise SweepError(f"sweep {self.id} has no trial {number}")
        if t.status not in allowed:
            raise SweepError(f"sweep {self.id}: trial {number} cannot become {to} from {t.status}")
        t.status = to
        return t

    def _transition(self, change: Callable[[], dict]) -> dict:
        """Apply *change* under the lock (it raises SweepError and changes nothing when illegal),
        refresh the derived fields, then tell the listeners outside the lock."""
        with self._lock:
            if self.record.status in SWEEP_TERMINAL:
                raise SweepError(f"sweep {self.id} is {self.record.status}")
            event = change()
            self._events.append(event)
            fields = self._sweep_fields()
            for key, value in fields.items():
                setattr(self.record, key, value)
            listeners = self._listeners.snapshot()
        self._listeners.notify(listeners, event)
        return fields

    # -- sweep transitions -------------------------------------------------------------------
    def finished(self, version: "ModelVersion | None", fields: dict | None = None) -> None:
        self._end("finished", fields, version=version)

    def error(self, exc: AiaasError, fields: dict | None = None) -> None:
        self._end("error", fields, exc=exc)

    def cancelled(self, exc: AiaasError, fields: dict | None = None) -> None:
        self._end("cancelled", fields, exc=exc)

    def lost(self, reason: str, fields: dict | None = None) -> SweepError:
        exc = SweepError(f"sweep {self.id} was lost: {reason}")
        self._end("lost", fields, exc=exc)
        return exc

    def _end(self, transition: str, fields: dict | None, *, version=None, exc: AiaasError | None = None):
        with self._lock:
            allowed, to = SWEEP_TRANSITIONS[transition]
            if self.record.status not in allowed:
                raise SweepError(f"sweep {self.id}: {transition} is not allowed from {self.record.status}")
            for key, value in (fields or {}).items():
                setattr(self.record, key, value)
            self.record.status = to
            self.record.finished = self.record.finished or now_iso()
            self.version, self.exception = version, exc
            if exc is not None:
                self.record.error = str(exc)
            listeners = self._listeners.snapshot()
        self._listeners.notify(listeners, None)
        self._done.set()

    # -- listeners ---------------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """``fn(event)`` after each trial event, ``fn(None)`` once the sweep ended; what was
        missed is replayed first. Returns the remover."""
        def missed():
            return [(e,) for e in self._events] + ([(None,)] if self.record.status in SWEEP_TERMINAL else [])

        return self._listeners.add(fn, missed)


__all__ = ["SweepState", "TRIAL_TRANSITIONS", "SWEEP_TRANSITIONS", "better"]
