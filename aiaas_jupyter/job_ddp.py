"""Planning a data-parallel job on the cluster: which workers, where they meet, who gets which rows.

The dispatcher (:meth:`.job_dispatch.JobDispatcher.submit`) submits one ``remote_ddp.rank_task``
per worker and a ``remote_ddp.collect`` over them; this module decides what they get:

- :func:`place` picks N distinct workers (with G GPUs each) or refuses at once, in one line;
- :func:`rendezvous` asks rank 0's worker for a free port: the ranks meet at its host;
- :func:`shards` gives each rank its rows: an in-kernel frame is split into train and held-out
  rows as one worker would split it, each part cut in N interleaved shards, each rank's scattered
  straight to its worker; a dask DataFrame's partitions are dealt out
  round-robin and each rank computes only its own — no worker holds the whole frame;
- :func:`classes` are the whole frame's class labels, so that every shard codes them alike.
"""

from __future__ import annotations

from .data import is_pandas
from .errors import ResourceError

#: a target with more distinct values than this is a regression target, not class labels
MAX_CLASSES = 10_000


def place(dask_client, n: int, gpus_per_worker: int) -> list[str]:
    """N distinct workers for the ranks (the ones with the most free slots first)."""
    info = dask_client.scheduler_info(n_workers=-1)["workers"]
    fit = sorted(addr for addr, w in info.items()
                 if not gpus_per_worker or (w.get("resources") or {}).get("GPU", 0) >= gpus_per_worker)
    if len(fit) < n:
        what = f" with {gpus_per_worker} GPU(s) each" if gpus_per_worker else ""
        raise ResourceError(f"--workers {n} needs {n} workers{what}; the cluster has {len(fit)}",
                            hint="add workers (or lower --workers)")
    return fit[:n]


def rendezvous(dask_client, rank0_worker: str) -> str:
    """``tcp://HOST:PORT`` on rank 0's host, with a port free there."""
    from .remote_ddp import free_port

    port = dask_client.run(free_port, workers=[rank0_worker])[rank0_worker]
    host = rank0_worker.split("://", 1)[-1].rsplit(":", 1)[0]
    return f"tcp://{host}:{port}"


def shards(dask_client, frame, workers: list[str], spec=None, labels: list | None = None) -> list:
    """Each rank's data: a future already on (or computed on) its worker, or the recipes of its
    partitions (:class:`~.training.partitions.PartitionStream`). An in-kernel frame is split here
    as the one-worker trainer splits it (*spec*'s seed and test size, stratified for class
    labels), and each rank gets ``(its train rows, its test rows)``."""
    n = len(workers)
    if is_pandas(frame):
        import numpy as np
        import pandas as pd

        from .training import common

        train, test = np.arange(len(frame)), np.arange(0)
        if spec is not None:
            train, test, _, _ = common.split(spec, np.arange(len(frame)), pd.Series(frame[spec.target].to_numpy()),
                                             labels is not None)
        return [dask_client.scatter((frame.iloc[train[r::n]], frame.iloc[test[r::n]]), workers=[w], direct=False)
                for r, w in enumerate(workers)]
    parts = frame.to_delayed()
    if len(parts) < n:
        raise ResourceError(f"--workers {n} needs at least {n} partitions; the frame has {len(parts)}",
                            hint=f"repartition it first: df.repartition(npartitions={n})")
    from .training.partitions import PartitionStream, streamable

    if streamable(frame):  # each rank reads its partitions itself, one at a time
        return [PartitionStream(parts[r::n], labels, numbers=list(range(r, len(parts), n)), total=len(parts))
                for r in range(n)]
    import dask

    out = []
    for r, w in enumerate(workers):
        mine = dask.delayed(_concat)(parts[r::n])
        out.append(dask_client.compute(mine, workers=[w], allow_other_workers=False))
    return out


def _concat(parts):
    import pandas as pd

    return pd.concat(parts) if len(parts) > 1 else parts[0]


def classes(frame, target: str) -> list | None:
    """The whole frame's sorted class labels when the target looks like labels, else None."""
    import pandas as pd

    y = frame[target]
    if pd.api.types.is_float_dtype(y.dtype):
        return None
    values = y.drop_duplicates() if is_pandas(frame) else y.drop_duplicates(split_out=1)  # a tree reduction, no shuffle
    values = values if is_pandas(frame) else values.compute()
    if len(values) > MAX_CLASSES:
        return None
    return sorted(values.dropna().tolist())


__all__ = ["classes", "place", "rendezvous", "shards", "MAX_CLASSES"]
