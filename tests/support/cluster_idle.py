"""Wait for a Dask cluster to have nothing running, so that a test about where tasks land starts
from a clean slate: a task an earlier test cancelled keeps its worker thread until it returns (Dask
cannot stop a thread), and meanwhile the scheduler's work stealing sends new tasks to the other
worker, which made "both workers were used" depend on the previous test."""

from __future__ import annotations

import time


def _busy(dask_worker) -> int:
    state = dask_worker.state
    return state.executing_count + len(state.long_running) + len(state.ready)


def wait_until_idle(dask_client, timeout: float = 60.0) -> None:
    """Return once no worker executes, holds ready or long-running tasks and the scheduler has
    nothing processing; fail the test if that does not happen within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        workers = dask_client.run(_busy)
        processing = dask_client.processing()
        if not any(workers.values()) and not any(processing.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster still busy after {timeout:.0f} s: {workers} {processing}")
        time.sleep(0.1)
