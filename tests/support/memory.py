"""Sampling the resident memory of processes while a test's job runs (psutil)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterable, Iterator


@contextlib.contextmanager
def peak_rss(processes: Callable[[], Iterable], interval: float = 0.02) -> Iterator[list[int]]:
    """Inside the block, the largest resident memory seen among ``processes()`` (psutil
    ``Process`` objects, asked again at each sample: children come and go) is kept in the
    yielded list's only item; sampled every *interval* seconds until the block ends."""
    import psutil

    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                procs = list(processes())
            except psutil.NoSuchProcess:
                procs = []
            for proc in procs:
                try:
                    peak[0] = max(peak[0], proc.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
