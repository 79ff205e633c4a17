"""Task functions the baselines submit to Dask.

They live in an importable module (not in ``w0_dispatch``'s ``__main__`` or a closure) so that
Dask pickles them by reference, exactly as a user's function from an installed package would
travel; the benchmark puts this directory on the workers' PYTHONPATH before the cluster
starts (see ``_common.add_bench_dir_to_worker_path``).
"""

from __future__ import annotations


def fit_dummy(frame, target: str):
    """W0 baseline: what a user would submit by hand — fit a DummyClassifier, return it."""
    from sklearn.dummy import DummyClassifier

    X = frame.drop(columns=[target])
    return DummyClassifier().fit(X, frame[target])


def torch_threads() -> dict:
    """W1 diagnostic: the worker's torch threads and the allocator setting, as the nanny left them.

    Dask's nanny exports ``distributed.nanny.pre-spawn-environ`` to every worker it spawns:
    OMP_NUM_THREADS=1, which torch honours whatever ``threads_per_worker`` says, and
    MALLOC_TRIM_THRESHOLD_=65536, which (any explicit value does) freezes glibc's mmap
    threshold so large activations are mmap'ed and unmapped on every batch.
    """
    import os

    import torch

    return {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_")}
