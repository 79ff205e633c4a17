"""The tasks of a data-parallel job, run on Dask workers (importable there, like :mod:`.remote`).

A job on N workers is N :func:`rank_task` tasks, each pinned to its own worker with its own
shard, and one :func:`collect` task that depends on all of them: the job's future. When a rank
fails (its worker died, or a collective timed out because another rank died), ``collect`` errs
with it, and the job fails with one line.
"""

from __future__ import annotations

import hashlib
import time

from .errors import JobError
from .remote import HeldEvents, event_topic, job_stop_flag, use_worker_threads


def free_port() -> int:
    """A TCP port free on this worker's host now (``client.run`` on rank 0's worker): where the
    ranks meet. The kernel cannot know which ports are free there."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def rank_task(spec, shard, job_id: str, kernel: str | None, rank: int, world: int, init_method: str,
              classes: list | None, timeout_s: float, event_delay: float = 0.0) -> dict:
    """Train one rank; rank 0 also reports progress and packages the model (``facts["result"]``)."""
    with job_stop_flag(job_id) as stop:
        return _rank(stop, spec, shard, job_id, kernel, rank, world, init_method, classes, timeout_s, event_delay)


def _rank(stop, spec, shard, job_id, kernel, rank, world, init_method, classes, timeout_s, event_delay) -> dict:
    import uuid

    from distributed import get_worker

    from .training.torch_ddp import fit_rank

    worker = get_worker()
    use_worker_threads(worker)
    started = time.time()
    events = None
    if rank == 0:
        topic = [event_topic(job_id), kernel] if kernel else event_topic(job_id)
        events = HeldEvents(lambda event: worker.log_event(topic, event), event_delay, loop=worker.loop)

    def emit(event: dict) -> None:
        if events is not None:
            events({**event, "job": job_id, "worker": worker.address, "elapsed": round(time.time() - started, 3)})

    emit({"stage": "start", "progress": 0.0, "run": uuid.uuid4().hex[:12]})
    try:
        try:
            fitted, facts = fit_rank(spec, shard, emit, rank=rank, world=world, init_method=init_method,
                                     classes=classes, timeout_s=timeout_s, should_stop=stop.is_set)
        except RuntimeError as e:
            if not _collective_failure(e):
                raise
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise JobError(f"rank {rank} of {world} lost its group: {first}",
                           hint="a worker of the job died, or a rank stalled longer than "
                                "aiaas.jobs.data-parallel-timeout") from None
        if fitted is not None and not fitted.stopped:
            from .training import package

            if isinstance(shard, (tuple, list)):  # (train rows, test rows): the fingerprint is of both
                import pandas as pd

                shard = pd.concat(shard)
            facts["result"] = package(fitted, shard)
            emit({"stage": "done", "progress": 1.0, "metrics": facts["result"].metrics})
    finally:
        if events is not None:
            events.close()
    facts.update(worker=worker.address, seconds=time.time() - started)
    return facts


def _collective_failure(exc: RuntimeError) -> bool:
    """Whether *exc* came from torch.distributed (a peer gone, a timeout), not from the model."""
    import torch.distributed as dist

    backend_error = getattr(dist, "DistBackendError", None)
    if backend_error is not None and isinstance(exc, backend_error):
        return True
    text = str(exc).lower()
    return any(word in text for word in ("gloo", "nccl", "connection reset", "connection closed", "timed out",
                                         "rendezvous", "store"))


def collect(ranks: list[dict], gpus_per_worker: int = 0):
    """The job's result: rank 0's model, once every rank ended with the same weights."""
    digests = {r["sha256"] for r in ranks}
    if len(digests) != 1:
        raise JobError(f"the {len(ranks)} ranks ended with different weights ({len(digests)} distinct)",
                       hint="a model whose forward pass differs between processes cannot train data-parallel")
    result = ranks[0].get("result")
    if result is None:  # stopped (cancelled)
        return None
    shards = hashlib.sha256(",".join(r["fingerprint"] for r in ranks).encode()).hexdigest()
    seconds = max(r["seconds"] for r in ranks)
    result.data_fingerprint = shards  # of the N shards, in rank order
    result.extra.update(
        worker=ranks[0]["worker"], task_seconds=seconds, weights_sha256=digests.pop(),
        gpu_seconds=sum(r["seconds"] for r in ranks) * gpus_per_worker,
        ranks=[{k: r[k] for k in ("rank", "worker", "n_train", "n_test", "seconds")} for r in ranks])
    return result


__all__ = ["collect", "free_port", "rank_task"]
