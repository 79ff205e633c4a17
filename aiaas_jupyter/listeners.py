"""Listeners: the callbacks through which views follow a job or a map, told on other threads.

One implementation for :class:`~.job_state.JobState` and :class:`~.map_job.MapJob`, because the
rules are the same and subtle: a listener added late is first told what it missed (*replay*,
taken under the owner's lock together with the registration, so no event is lost or told twice);
listeners are called outside the lock; and a listener that raises is logged on the owner's
logger, never allowed to break the owner's event stream or its completion.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable


class Listeners:
    """The callbacks of one owner, guarded by the owner's own lock."""

    def __init__(self, lock, name: str, log: logging.Logger):
        self._lock = lock      # the owner's: registration and its state change under one lock
        self._name = name      # "job 1a2b…", "map f": what a failure log line names
        self._log = log
        self._fns: list[Callable] = []

    def add(self, fn: Callable, replay: Callable[[], Iterable[tuple]] | None = None) -> Callable[[], None]:
        """Register *fn*; ``replay()`` (run under the lock) gives the argument tuples it missed,
        which it is told at once. The caller must not hold the lock. Returns the remover."""
        with self._lock:
            self._fns.append(fn)
            missed = list(replay()) if replay is not None else []
        for args in missed:
            self.call(fn, *args)

        def remove() -> None:
            with self._lock:
                if fn in self._fns:
                    self._fns.remove(fn)

        return remove

    def snapshot(self) -> list[Callable]:
        """The listeners now; call it holding the owner's lock, with the change being told."""
        return list(self._fns)

    def notify(self, fns: Iterable[Callable], *args: Any) -> None:
        """Tell each of *fns* (a :meth:`snapshot`); call it without holding the lock."""
        for fn in fns:
            self.call(fn, *args)

    def call(self, fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a view bug must not stop what it follows
            self._log.exception("aiaas: a listener of %s failed", self._name)


__all__ = ["Listeners"]
