"""Functions that run on Dask workers (and must be importable there).

They live in the package, not in a notebook or a test module, because the scheduler and the
workers unpickle task graphs by reference: every process of the cluster imports this module.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import uuid

from . import torch_thread

_stops_lock = threading.Lock()
_STOPS: dict[str, threading.Event] = {}  # job id -> "stop at the next epoch", on this worker


def event_topic(job_id: str) -> str:
    """The job's own topic: what a kernel that re-attaches to it replays and follows."""
    return f"aiaas-job-{job_id}"


def kernel_topic(client_id: str) -> str:
    """One topic for every job a kernel's Dask client submits, subscribed to once.

    Why not only the job's topic: subscribing is a message to the scheduler, and the Dask
    client batches its messages 10 ms apart, so a subscription sent just before the task
    held the task back by up to 10 ms; unsubscribing at the end did the same to the next job.
    """
    return f"aiaas-kernel-{client_id}"


def use_worker_threads(worker) -> None:
    """torch (imported when the task's model was unpickled) uses the worker's threads, whatever
    OMP_NUM_THREADS Dask gave the process: a job and a sweep trial alike."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, worker.state.nthreads))


def _stop_flag(job_id: str) -> threading.Event:
    with _stops_lock:
        return _STOPS.setdefault(job_id, threading.Event())


@contextlib.contextmanager
def job_stop_flag(job_id: str):
    """The flag :func:`stop_job` sets, for as long as the job's task runs on this worker."""
    try:
        yield _stop_flag(job_id)
    finally:
        with _stops_lock:
            _STOPS.pop(job_id, None)


def stop_job(job_id: str, only_if_running: bool = False) -> bool:
    """Run on a worker (``client.run``): ask job *job_id*'s training to stop at its next epoch
    boundary (a torch job also at its ~1 s progress tick). Dask's cancel does not interrupt a
    task's thread: without this a cancelled job kept its worker until its last epoch.
    *only_if_running*: for a cancel sent to every worker (the kernel does not know yet where
    the job runs): only the worker running it keeps a flag. Returns whether one was set."""
    if only_if_running:
        with _stops_lock:
            flag = _STOPS.get(job_id)
        if flag is None:
            return False
    else:
        flag = _stop_flag(job_id)
    flag.set()
    return True


class HeldEvents:
    """A job's progress events on its worker, held back for the task's first *delay* seconds.

    Why: every event is a message to the scheduler and on to the kernel, handled on both
    event loops; a job's first three (start, fit, evaluate) cost a short job about a third
    of its dispatch time (W0: 25.5-26.2 ms with none vs 28.7-34.6 ms with them, same run
    conditions), and nobody can watch a job that ends within a blink anyway. So the events of
    the first *delay* seconds wait: if the task is still running then, they all go, in order,
    and later ones go at once; if it ended, they are dropped (:meth:`close`): the result
    carries the final metrics and history, and the kernel marks the job finished from it.
    Sending happens under the lock, so a flush and a new event never swap places."""

    def __init__(self, send, delay: float, loop=None):
        self._send = send
        self._held: list[dict] = []
        self._lock = threading.Lock()
        self._open = delay <= 0
        self._closed = False
        if not self._open:
            if loop is not None:  # the worker's event loop times it: no thread per job
                loop.add_callback(loop.call_later, delay, self.open)
            else:
                timer = threading.Timer(delay, self.open)
                timer.daemon = True
                timer.start()

    def __call__(self, event: dict) -> None:
        with self._lock:
            if self._closed:
                return
            if not self._open:
                self._held.append(event)
                return
            self._send(event)

    def open(self) -> None:
        """The delay is over: send what was held, then let every event through."""
        with self._lock:
            if self._closed or self._open:
                return
            self._open = True
            held, self._held = self._held, []
            for event in held:
                self._send(event)

    def close(self) -> None:
        """The task ended: what is still held is dropped (its result says it all)."""
        with self._lock:
            self._closed = True
            self._held.clear()


def train_task(spec, data, job_id: str, kernel: str | None = None, event_delay: float = 0.0,
               checkpoints: dict | None = None):
    """Run one training job on this worker, streaming progress events to the kernel.

    Each event goes to the job's topic and, with *kernel*, to that kernel topic (one message
    to the scheduler either way); those of the first *event_delay* seconds are held back (see
    :class:`HeldEvents`). The "start" event names this run (``run``): when a worker dies, Dask
    runs the task again elsewhere, and the kernel tells a retry by the new run. *checkpoints*
    (``url``, ``storage_options``, ``min_interval``): where a torch job checkpoints and, run
    again, resumes from. Returns a :class:`~aiaas_jupyter.training.base.TrainResult` (plain
    data and artifact bytes).
    """
    stop = _stop_flag(job_id)  # first: a cancel sent to every worker finds it from here on
    from distributed import get_worker

    from .training import run_training

    worker = get_worker()
    topic = [event_topic(job_id), kernel] if kernel else event_topic(job_id)
    started = time.time()
    events = HeldEvents(lambda event: worker.log_event(topic, event), event_delay, loop=worker.loop)

    def emit(event: dict) -> None:
        events({**event, "job": job_id, "worker": worker.address, "elapsed": round(time.time() - started, 3)})

    emit({"stage": "start", "progress": 0.0, "run": uuid.uuid4().hex[:12]})

    def train():
        if stop.is_set():  # cancelled while it waited for the torch thread: nothing to train
            return None
        use_worker_threads(worker)  # torch's thread count is the calling thread's (OpenMP)
        return run_training(spec, data, emit, should_stop=stop.is_set,
                            checkpoints=_job_checkpoints(spec, job_id, checkpoints))

    try:  # a torch job on the CPU trains on the worker's torch thread (see torch_thread)
        result = torch_thread.run(train) if torch_thread.trains_on_cpu(spec.model) else train()
    finally:
        events.close()
        with _stops_lock:
            _STOPS.pop(job_id, None)
    if result is None:  # stopped: the job was cancelled, and its future with it
        return None
    task_seconds = time.time() - started
    result.extra.update(worker=worker.address, task_seconds=task_seconds,
                        gpu_seconds=task_seconds * spec.gpus if spec.gpus else 0.0)
    return result


def _job_checkpoints(spec, job_id: str, where: dict | None):
    """The job's checkpoints (torch only: a scikit-learn fit restarts from scratch)."""
    if not where or not where.get("url"):
        return None
    from .training import detect_framework

    if detect_framework(spec.model) != "torch":
        return None
    from .training.checkpoints import CheckpointStore, JobCheckpoints

    store = CheckpointStore(where["url"], where.get("storage_options"))
    return JobCheckpoints(store, job_id, where.get("min_interval", 0.0))


def drop_checkpoints(url: str, storage_options: dict | None, job_id: str) -> bool:
    """A job's checkpoints, removed (on a worker, when the kernel cannot reach *url* itself)."""
    from .training.checkpoints import CheckpointStore

    return CheckpointStore(url, storage_options).drop(job_id)


def run_cell_on_partition(part, code: str, filename: str, env: dict | None = None):
    """``--per-partition``: run the cell body as pandas code with ``df`` bound to one partition.

    *env* holds the notebook's names the cell uses (its functions, imports, constants), sent
    along by value, so a cell can call a function defined in an earlier cell."""
    import numpy as np
    import pandas as pd

    # a copy: the partition may be persisted input data that must not change under its owner
    namespace = {"pd": pd, "np": np, **(env or {}), "df": part.copy(), "__name__": "__aiaas_partition__"}
    exec(compile(code, filename, "exec"), namespace)  # the user's own cell, on their own cluster
    out = namespace.get("df")
    if not isinstance(out, pd.DataFrame):
        raise TypeError(f"the cell must leave `df` a pandas DataFrame, got {type(out).__name__}")
    return out


def map_chunk(start: int, chunk: list, fn, stop_on_error: bool = True, item_retries: int = 0):
    """``aiaas_jupyter.map``: ``fn(*args)`` for each argument tuple of one chunk of items.

    An item's exception is returned, not raised, so the chunk's other results survive:
    ``(values, failures)`` with one ``(index, exception, traceback dict)`` per failed item (the
    traceback as :mod:`tblib` data, from the user's function down, for the kernel to format).
    *item_retries* re-runs a failing item that many times more (here: Dask's own task retries
    never see an item's exception); *stop_on_error* ends the chunk at its first failure
    (``errors="raise"``: the map fails anyway, so spare the cluster).
    """
    values: list = []
    failures: list = []
    for offset, args in enumerate(chunk):
        for attempt in range(item_retries + 1):
            try:
                values.append(fn(*args))
                break
            except Exception as exc:  # noqa: BLE001 - the user's exception is the item's outcome
                if attempt == item_retries:
                    failures.append(_item_failure(start + offset, exc))
                    values.append(None)
        if failures and stop_on_error:
            break
    return values, failures


def _item_failure(index: int, exc: Exception) -> tuple:
    import cloudpickle
    from tblib import Traceback

    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # from fn down
    frames = Traceback(tb).to_dict() if tb is not None else None
    try:
        cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot travel still has a message
        exc = RuntimeError(f"{type(exc).__qualname__}: {exc}")
    return index, exc.with_traceback(None), frames
