"""The tasks of a data-parallel job, run on Dask workers (importable there, like :mod:`.remote`).

A job on N workers is N :func:`rank_task` tasks, each pinned to its own worker with its own
shard, and one :func:`collect` task that depends on all of them: the job's future. Each rank
trains in a child process of its task (:mod:`.rank_process`), so no wait inside
``torch.distributed`` can freeze a Dask worker. When a rank fails (its worker died, a
collective timed out because another rank died, its process stalled), ``collect`` errs with
it, and the job fails with one line.
"""

from __future__ import annotations

import hashlib
import time

from .errors import JobError
from .remote import HeldEvents, event_topic, job_stop_flag


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

    import cloudpickle
    from distributed import get_worker

    from . import rank_process

    worker = get_worker()
    started = time.time()
    events = None
    if rank == 0:
        topic = [event_topic(job_id), kernel] if kernel else event_topic(job_id)
        events = HeldEvents(lambda event: worker.log_event(topic, event), event_delay, loop=worker.loop)

    def emit(event: dict) -> None:
        if events is not None:
            events({**event, "job": job_id, "worker": worker.address, "elapsed": round(time.time() - started, 3)})

    emit({"stage": "start", "progress": 0.0, "run": uuid.uuid4().hex[:12]})
    payload = cloudpickle.dumps({"spec": spec, "shard": shard, "rank": rank, "world": world,
                                 "init_method": init_method, "classes": classes, "timeout_s": timeout_s})
    try:
        facts = rank_process.run(payload, threads=max(1, worker.state.nthreads), emit=emit,
                                 stop_requested=stop.is_set, stall_s=timeout_s)
        if "result" in facts:
            emit({"stage": "done", "progress": 1.0, "metrics": facts["result"].metrics})
    except rank_process.RankFailed as e:
        what = {"collective": "lost its group", "stalled": "stalled"}.get(e.kind, "failed")
        raise JobError(f"rank {rank} of {world} {what}: {e}",
                       hint="a worker of the job died, or a rank stalled longer than "
                            "aiaas.jobs.data-parallel-timeout" if e.kind != "died" else "see the worker's log") from None
    finally:
        if events is not None:
            events.close()
    facts.update(worker=worker.address, seconds=time.time() - started)
    return facts


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
