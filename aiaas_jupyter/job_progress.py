"""A running job's progress, written to the registry while it runs.

Why: readers outside the kernel (the JupyterLab sidebar through the server extension,
``%aiaas jobs`` in another kernel) only see the registry's jobs table. Before this, the
kernel wrote a job there at submit and at completion only, so they showed "pending 0 %"
until the very end. Now the kernel's event handler also records status ``running``, the
start time, the worker and the progress.

Threads: progress events arrive on the Dask client's event-loop thread (``subscribe_topic``
handlers). A SQLite write there could stall the loop (the busy timeout waits up to 30 s for
another process's write lock), so :meth:`ProgressRecorder.observe` only notes what to write,
and one daemon thread, started with the first event and gone when idle, does the writing.

Throttling, per job: the first write waits ``first_delay`` (0.25 s) after the job's first
event, then every change of phase (start, fit, evaluate) is written at once; within a phase
at most one write per ``interval`` seconds, and the newest values are written in the end
(trailing edge), so the registry is never more than ``interval`` behind the kernel. Why the
first delay: a job that ends within it (W0: tens of milliseconds) would only write rows
that the completion overwrites at once; ending, it drops what is pending, so a short job
pays for no live write at all, and a reader polling the registry (the sidebar: every 2 s)
sees at most a quarter second less of "running". The trainer's last event ("done") is never
urgent, for the same reason. Writes go through ``Registry.update_live_job``, which leaves a
job that already ended alone: a late progress write can never undo "finished". A failed
write is logged and dropped; the job goes on, and its final record is written by the
completion callback as before. Nothing happens on the submit path (dispatch latency).

The writer thread, once started, stays (idle on a condition) for ``linger`` seconds after
its last write: starting a thread per job cost the event loop, where ``observe`` runs, a
thread start (and the wait for it to run) on every job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

#: the stages trainers emit (see ``aiaas_jupyter.training``) grouped into phases; the
#: per-batch/per-epoch stages are one phase, so an epoch does not by itself force a write
PHASES = {"start": "start", "fit": "fit", "train": "fit", "epoch": "fit", "evaluate": "evaluate",
          "done": "done"}

#: stages never written at once (only at the throttled pace): the final write follows them
NOT_URGENT = frozenset({"done"})

Write = Callable[[str, dict], Any]

#: seconds from a job's first event to its first write (see the module docstring)
FIRST_DELAY = 0.25
#: seconds the idle writer thread waits for more work before it ends
LINGER = 30.0


def phase_of(stage: str | None) -> str | None:
    """The phase of a trainer stage; an unknown stage is a phase of its own."""
    return PHASES.get(stage, stage) if stage is not None else None


class ProgressRecorder:
    """Throttled, off-loop writer of live job fields; ``write(job_id, fields)`` persists."""

    def __init__(self, write: Write, interval: float = 1.0, first_delay: float = FIRST_DELAY,
                 linger: float = LINGER):
        self.write = write
        self.interval = float(interval)
        self.first_delay = min(float(first_delay), self.interval)  # never more than interval behind
        self.linger = float(linger)
        self._cond = threading.Condition()
        self._pending: dict[str, dict] = {}     # job id -> newest fields not written yet
        self._due: dict[str, float] = {}        # job id -> monotonic time they may be written
        self._last_write: dict[str, float] = {}
        self._phase: dict[str, str | None] = {}
        self._ended: set[str] = set()
        self._thread: threading.Thread | None = None
        self._writing = False                   # a write is under way (outside the lock)
        self.writes = 0                         # successful writes, for the curious (and tests)
        self.failures = 0

    def observe(self, job_id: str, fields: dict, stage: str | None = None) -> None:
        """Note a job's newest live fields. Cheap and non-blocking: safe on the event loop."""
        now = time.monotonic()
        phase = phase_of(stage)
        with self._cond:
            if job_id in self._ended:
                return
            first = job_id not in self._phase
            urgent = not first and self._phase[job_id] != phase and stage not in NOT_URGENT
            self._phase[job_id] = phase
            self._pending.setdefault(job_id, {}).update(fields)
            last = self._last_write.get(job_id)
            if last is None:  # nothing written yet: the first write keeps its delay
                due = self._due.get(job_id, now + self.first_delay)
            else:
                due = now if urgent else last + self.interval
            self._due[job_id] = min(self._due.get(job_id, due), due)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aiaas-job-progress", daemon=True)
                self._thread.start()
            else:
                self._cond.notify_all()  # the writer (idle() may be waiting too)

    def end(self, job_id: str) -> None:
        """The job reached a final state: drop what is pending and write nothing more for it."""
        with self._cond:
            self._ended.add(job_id)
            for table in (self._pending, self._due, self._last_write, self._phase):
                table.pop(job_id, None)
            self._cond.notify_all()  # a writer waiting for this job's window has nothing left

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until everything observed so far is written (or dropped); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._writing:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                self._writing = False
                self._cond.notify_all()  # wake idle()
                idle_since = time.monotonic()
                while True:
                    now = time.monotonic()
                    if not self._pending:
                        if now - idle_since >= self.linger:
                            self._thread = None
                            return
                        self._cond.wait(self.linger - (now - idle_since))
                        continue
                    job_id, due = min(self._due.items(), key=lambda item: item[1])
                    if due <= now:
                        break
                    self._cond.wait(due - now)
                fields = self._pending.pop(job_id)
                del self._due[job_id]
                self._last_write[job_id] = now
                self._writing = True
            self._write(job_id, fields)

    def _write(self, job_id: str, fields: dict) -> None:
        try:
            self.write(job_id, fields)
            self.writes += 1
        except Exception as exc:  # noqa: BLE001 - a registry hiccup must not touch the job
            self.failures += 1
            log.warning("could not record the progress of job %s: %s: %s", job_id, type(exc).__name__, exc)


__all__ = ["ProgressRecorder", "PHASES", "phase_of"]
