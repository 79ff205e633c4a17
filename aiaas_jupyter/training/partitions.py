"""A dask DataFrame handed to a trainer as its partitions, to be read one at a time.

Why not the frame itself: the job's task would then receive the whole frame computed, in one
worker's memory, and a frame larger than that memory kills the worker. This holds only the
partitions' recipes (their task graphs: read this file's rows, this slice, ...); the trainer
computes one partition in its own thread (Dask's synchronous scheduler), trains on it, drops it.
That needs the partitions' sources reachable from the worker (files under a URL, the data in
the graph itself); a frame persisted in the cluster's memory is gathered whole instead
(:func:`streamable`).
"""

from __future__ import annotations

import hashlib


class PartitionStream:
    """The recipes of a frame's partitions, and what the kernel knows of the whole frame.

    A plain class, not a dataclass or a list: Dask looks into those for things to compute
    before the task runs, which is exactly what must not happen here."""

    def __init__(self, parts: list, classes: list | None = None, numbers: list[int] | None = None,
                 total: int | None = None):
        self.parts = parts          #: one ``dask.delayed`` per partition, in order
        self.classes = classes      #: the whole frame's sorted class labels (None: not labels)
        #: each partition's number in the whole frame, and how many it has: a data-parallel rank
        #: holds every N-th partition (its seeds and held-out share follow the frame's numbering)
        self.numbers = list(range(len(parts))) if numbers is None else list(numbers)
        self.total = len(parts) if total is None else total
        self.fingerprints: dict[int, str] = {}  #: partition index -> its data fingerprint, once read
        self.dtypes = None  #: the columns' dtypes, noted from the first partition read (the signature's)

    def __len__(self) -> int:
        return len(self.parts)

    def compute(self, i: int):
        """Partition *i* as a pandas DataFrame, computed here (no task of the cluster waits on it)."""
        import dask

        return dask.compute(self.parts[i], scheduler="sync")[0]

    @property
    def fingerprint(self) -> str:
        """sha256 of the partitions' fingerprints in order (every partition was read once)."""
        h = hashlib.sha256()
        for i in range(len(self.parts)):
            h.update(self.fingerprints.get(i, "?").encode())
        return h.hexdigest()


def streamable(frame) -> bool:
    """Whether *frame*'s partitions can be computed by a worker on its own: none of them is
    data persisted in the cluster's memory (a future), which only the cluster can hand over."""
    from distributed import futures_of

    return not futures_of(frame)


__all__ = ["PartitionStream", "streamable"]
