"""The processes of one ``aiaas serve --workers N`` server agreeing on what they serve.

Each process has its own event loop, models and batchers (a batch never crosses processes), and
all of them accept on one listening socket, so any of them may take a deploy and any may take the
next request. A deploy, canary, promote, rollback or undeploy therefore

1. changes the state of the process that took it and writes that name's entry of
   ``deployments.json`` (under a file lock: :mod:`.deployments`);
2. bumps the **generation** in a small block of shared memory;
3. answers only once every other process has *applied* that generation: each one looks at the
   generation every :data:`TICK_S` seconds and, when it moved, reconciles with
   ``deployments.json`` (loads what is new, swaps what was promoted, drops what is gone).

So a client that got its 200 for a deploy is answered by the new version whichever process takes
its next request; requests already in flight finish on the version they started on, as in one
process. The same block carries each process' last activity and requests in flight, which the
supervisor (:mod:`.supervisor`) reads for the server's idle timeout.

Why shared memory and not a pipe to the supervisor: the generation is one number that a process
reads without a message, a lock or a wake-up, and nothing is lost if a process restarts — it
reads the file when it starts.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("aiaas_jupyter.serving")

#: how often a process looks for a new generation (and publishes its activity)
TICK_S = 0.02
#: the longest a deploy waits for the other processes to load what it loaded
AGREE_TIMEOUT_S = 300.0

_APPLIED, _READY, _LAST, _IN_FLIGHT, _FAILED = range(5)
_FIELDS = 5


def block_size(n_workers: int) -> int:
    """Doubles in the shared block: the generation, the started flag, then :data:`_FIELDS` per process."""
    return 2 + _FIELDS * n_workers


class PeersError(RuntimeError):
    """Another process of the server did not follow a change: it did not apply it in time, or
    could not load what it names (it keeps serving what it served). The message says which."""


class Peers:
    """One process' view of the shared block (``multiprocessing.RawArray('d', block_size(n))``
    and a ``multiprocessing.Lock`` for the generation, both made by the supervisor)."""

    def __init__(self, block, lock, index: int, n_workers: int):
        self.block, self.lock, self.index, self.n = block, lock, index, n_workers

    def _at(self, worker: int, field: int) -> int:
        return 2 + _FIELDS * worker + field

    # -- this process ----------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return int(self.block[0])

    def applied(self, generation: int) -> None:
        self.block[self._at(self.index, _APPLIED)] = generation

    def ready(self, generation: int) -> None:
        """This process serves what ``deployments.json`` said at *generation*: count it in."""
        self.applied(generation)
        self.block[self._at(self.index, _READY)] = 1

    @property
    def started(self) -> bool:
        """Whether the start-up deployments (``--deploy``, ``--embeddings``) are done: until then
        every process answers ``/v2/health/ready`` with 503, as one process does."""
        return bool(self.block[1])

    def start_done(self) -> None:
        self.block[1] = 1

    def leaving(self) -> None:
        self.block[self._at(self.index, _READY)] = 0

    def activity(self, last: float, in_flight: int) -> None:
        """Publish the time (``time.monotonic``, the same clock in every process) of the last
        request that ended and how many are running."""
        self.block[self._at(self.index, _LAST)] = last
        self.block[self._at(self.index, _IN_FLIGHT)] = in_flight

    async def announce(self, timeout: float = AGREE_TIMEOUT_S) -> None:
        """A change this process made is written: bump the generation and wait until every
        ready process has applied it. :class:`PeersError` names the ones that did not."""
        with self.lock:  # held for two memory accesses
            generation = self.generation + 1
            self.block[0] = generation
        self.applied(generation)
        deadline = time.monotonic() + timeout
        while True:
            behind = self.behind(generation)
            if not behind:
                break
            if time.monotonic() > deadline:
                raise PeersError(f"server process {', '.join(map(str, behind))} did not follow the change "
                                 f"within {timeout:g} s (see the server log)")
            await asyncio.sleep(TICK_S / 4)
        failed = [w for w in range(self.n) if self.block[self._at(w, _READY)]
                  and self.block[self._at(w, _FAILED)] >= generation]
        if failed:
            raise PeersError(f"server process {', '.join(map(str, failed))} could not load the change and "
                             "serves what it served before (see the server log)")

    async def follow(self, reconcile, publish) -> None:
        """The loop every process runs beside serving: apply new generations (``await
        reconcile()``, which returns the names it could not bring up to date) and publish this
        process' activity (``publish()``)."""
        seen = int(self.block[self._at(self.index, _APPLIED)])
        while True:
            await asyncio.sleep(TICK_S)
            publish()
            generation = self.generation
            if generation > seen:
                try:
                    failed = await reconcile()
                except Exception:  # noqa: BLE001 - logged and reported to the process that asked
                    log.exception("server process %d could not follow generation %d", self.index, generation)
                    failed = True
                if failed:
                    self.block[self._at(self.index, _FAILED)] = generation
                seen = generation
                self.applied(generation)

    # -- every process (the supervisor too) --------------------------------------------------
    def behind(self, generation: int) -> list[int]:
        """The ready processes that have not applied *generation* yet."""
        return [w for w in range(self.n) if self.block[self._at(w, _READY)]
                and self.block[self._at(w, _APPLIED)] < generation]

    def is_ready(self, worker: int) -> bool:
        return bool(self.block[self._at(worker, _READY)])

    def idle_seconds(self, now: float | None = None) -> float:
        """How long no process has had a request running: 0 while any has one."""
        now = time.monotonic() if now is None else now
        last = 0.0
        for w in range(self.n):
            if self.block[self._at(w, _IN_FLIGHT)]:
                return 0.0
            last = max(last, self.block[self._at(w, _LAST)])
        return now - last if last else 0.0
