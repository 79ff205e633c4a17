"""The one thread of a worker process on which its torch jobs train, when it trains on the CPU.

Why one thread: PyTorch's CPU kernels run on OpenMP (libgomp on Linux), and libgomp keeps a
team of helper threads for every thread that has called into torch, for as long as that thread
lives. Once all the teams' threads outnumber the CPUs, libgomp stops spinning between parallel
regions and puts its threads to sleep instead, and every region then waits for them to wake. A
Dask worker runs its tasks on a pool of threads, so after torch jobs had run on two of them,
every later job's loop paid for it: on a 2-core worker with 2 threads, the W1 loop slept ~1,000
times per epoch instead of ~150 and ran 6-7% slower than on a worker where only one thread had
ever run torch (two runs of 9 and 12 rotated 1-epoch loops, ``benchmarks/README.md``).

So a single-worker torch job on a CPU worker trains here (:func:`remote.train_task`). Two such
jobs on one worker take turns; each is set to use all of the worker's threads
(:func:`remote.use_worker_threads`), so running them at once would only share the same cores.
On a GPU the loop runs on the device and jobs keep the task's own thread. Sweep trials keep
theirs too: a trial waits at each rung for the sweep's verdict, which may depend on another
trial of the same worker, so they must not queue behind one another. Data-parallel ranks run in
processes of their own (:mod:`.rank_process`).

Stdlib only: a leaf. torch is looked up in ``sys.modules``, never imported here.
"""

from __future__ import annotations

import queue
import sys
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: the thread's name
THREAD_NAME = "aiaas-torch"

_lock = threading.Lock()
_calls: "queue.SimpleQueue | None" = None


def trains_on_cpu(model: Any) -> bool:
    """Whether *model* is a torch module that this process would train on the CPU."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module) and not torch.cuda.is_available()


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on this process's torch thread: its result, or its exception
    raised here (with the frames it was raised in). A call made on that thread runs at once."""
    global _calls
    if threading.current_thread().name == THREAD_NAME:
        return fn(*args, **kwargs)
    with _lock:
        if _calls is None:
            _calls = queue.SimpleQueue()
            # a daemon: a process ending (a worker closed mid-job) must not wait for a training
            threading.Thread(target=_serve, args=(_calls,), name=THREAD_NAME, daemon=True).start()
        calls = _calls
    future: Future = Future()
    calls.put((future, fn, args, kwargs))
    return future.result()


def _serve(calls: "queue.SimpleQueue") -> None:
    """The torch thread: run each call in turn, handing its outcome to the caller's future."""
    while True:
        future, fn, args, kwargs = calls.get()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the caller's to raise, as an executor does
            future.set_exception(exc)
        del future, fn, args, kwargs  # nothing of a finished job stays alive on this thread
