"""Adaptive batching: concurrent requests for one model run as one predict call.

A scikit-learn ``predict`` costs ~0.5 ms whether it gets 1 row or 64, so under load most of
a lone-request server's time goes to per-call overhead. Here each deployment has a queue and
one worker thread:

* when the queue is idle, a request is dispatched at once (the next event-loop turn, so
  requests parsed in the same turn still join it): a lone request is never delayed;
* requests that arrive while a batch is running wait in the queue and go together as the
  next batch, up to ``max_batch_size`` rows, waiting at most ``max_wait_ms`` after the
  oldest of them arrived for the batch to fill;
* the call runs on the deployment's thread, so the event loop keeps parsing and answering;
* outputs are sliced back per request; if the batch call fails, each request is re-run alone
  so an error reaches only the request that caused it.

The per-batch bookkeeping is a deque, one future per request and one executor hop per batch.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

RunFn = Callable[[Any, frozenset], dict]
ConcatFn = Callable[[list], Any]


class Batcher:
    def __init__(self, run: RunFn, concat: ConcatFn, *, max_batch_size: int = 64,
                 max_wait_ms: float = 2.0, name: str = "model",
                 on_batch: Callable[[int, int], None] | None = None):
        self._run, self._concat = run, concat
        self._on_batch = on_batch  # (requests, rows) after each model call: the server's metrics
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self._queue: collections.deque = collections.deque()  # (part, n, want, future, t_arrival)
        self._rows = 0
        self._busy = False
        self._closing = False
        self._shut = False
        self._fill: asyncio.Future | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"aiaas-batch-{name}")
        self.batch_sizes: collections.Counter = collections.Counter()  # requests per batch → count
        self.rows = 0

    async def submit(self, part: Any, n: int, want: frozenset) -> dict[str, np.ndarray]:
        """Queue one request's part (``n`` rows); returns its outputs or raises its error."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.append((part, n, want, fut, time.monotonic()))
        self._rows += n
        if not self._busy:
            self._busy = True
            loop.create_task(self._drain())
        elif self._fill is not None and self._rows >= self.max_batch_size and not self._fill.done():
            self._fill.set_result(None)
        return await fut

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the next batch (read by the metrics at scrape time)."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        return self._busy

    def stats(self) -> dict:
        total = sum(self.batch_sizes.values())
        reqs = sum(k * v for k, v in self.batch_sizes.items())
        return {"batches": total, "requests": reqs, "rows": self.rows,
                "max_batch_requests": max(self.batch_sizes, default=0),
                "mean_batch_requests": reqs / total if total else 0.0,
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())}}

    def close(self) -> None:
        """Stop the thread once the queue is drained (requests already queued still run).

        A request that looked the deployment up just before it was replaced may still submit
        here after the thread is gone: it then runs on the loop's default executor."""
        self._closing = True
        if not self._busy:
            self._shutdown()

    def _shutdown(self) -> None:
        self._shut = True
        self._executor.shutdown(wait=False)

    async def _wait_to_fill(self, loop: asyncio.AbstractEventLoop) -> None:
        """Requests queued while the last batch ran: give stragglers until max_wait after the
        oldest arrival to join (skipped when the batch is already full or the wait is over)."""
        remaining = self._queue[0][4] + self.max_wait_s - time.monotonic()
        if remaining <= 0 or self._rows >= self.max_batch_size:
            return
        self._fill = loop.create_future()
        handle = loop.call_later(remaining, lambda f=self._fill: f.done() or f.set_result(None))
        try:
            await self._fill
        finally:
            handle.cancel()
            self._fill = None

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        first = True
        try:
            while self._queue:
                if not first and self.max_wait_s:
                    await self._wait_to_fill(loop)
                first = False
                batch, rows = [], 0
                while self._queue and (not batch or rows + self._queue[0][1] <= self.max_batch_size):
                    item = self._queue.popleft()
                    self._rows -= item[1]
                    if item[3].done():  # timed out / client gone while queued
                        continue
                    batch.append(item)
                    rows += item[1]
                if not batch:
                    continue
                want = frozenset().union(*(it[2] for it in batch))
                executor = None if self._shut else self._executor  # None: the loop's default
                try:
                    results = await loop.run_in_executor(executor, self._call, batch, want)
                except Exception as exc:  # noqa: BLE001 - never leave a request waiting forever
                    results = [exc] * len(batch)
                self.batch_sizes[len(batch)] += 1
                self.rows += rows
                if self._on_batch is not None:
                    self._on_batch(len(batch), rows)
                for item, res in zip(batch, results):
                    fut = item[3]
                    if fut.done():
                        continue
                    if isinstance(res, BaseException):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
        finally:
            self._busy = False
            if self._closing and not self._shut:
                self._shutdown()

    def _call(self, batch: list, want: frozenset) -> list:
        """On the worker thread: one call for the whole batch, or one per request on failure."""
        if len(batch) == 1:
            return [self._one(batch[0], want)]
        try:
            out = self._run(self._concat([it[0] for it in batch]), want)
            total = sum(it[1] for it in batch)
            if any(len(v) != total for v in out.values()):
                raise ValueError("the model returned a different number of rows than it was given")
        except Exception:
            return [self._one(it, want) for it in batch]
        results, start = [], 0
        for it in batch:
            n = it[1]
            results.append({k: v[start:start + n] for k, v in out.items()})
            start += n
        return results

    def _one(self, item: tuple, want: frozenset) -> Any:
        try:
            out = self._run(item[0], want)
            if any(len(v) != item[1] for v in out.values()):
                raise ValueError("the model returned a different number of rows than it was given")
            return out
        except Exception as e:  # handed to the request's future, reported by the HTTP layer
            return e
