"""Functions that run on Dask workers (and must be importable there).

They live in the package, not in a notebook or a test module, because the scheduler and the
workers unpickle task graphs by reference: every process of the cluster imports this module.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import time

#: packages a job needs on both sides; compared before the first dispatch
JOB_PACKAGES = ("aiaas-jupyter", "dask", "distributed", "cloudpickle", "numpy", "pandas",
                "scikit-learn", "skops", "torch", "safetensors")


def event_topic(job_id: str) -> str:
    return f"aiaas-job-{job_id}"


def package_versions() -> dict[str, str | None]:
    """Python and :data:`JOB_PACKAGES` versions in this process (None where not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in JOB_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def train_task(spec, data, job_id: str):
    """Run one training job on this worker, streaming progress events to the kernel.

    Returns a :class:`~aiaas_jupyter.training.base.TrainResult` (plain data and artifact bytes).
    """
    from distributed import get_worker

    from .training import run_training

    worker = get_worker()
    topic = event_topic(job_id)
    started = time.time()

    def emit(event: dict) -> None:
        worker.log_event(topic, {**event, "job": job_id, "worker": worker.address,
                                 "elapsed": round(time.time() - started, 3)})

    torch = sys.modules.get("torch")  # imported when the task's model was unpickled
    if torch is not None:  # use the worker's threads, whatever OMP_NUM_THREADS Dask gave it
        torch.set_num_threads(max(1, worker.state.nthreads))
    emit({"stage": "start", "progress": 0.0})
    result = run_training(spec, data, emit)
    task_seconds = time.time() - started
    result.extra.update(worker=worker.address, task_seconds=task_seconds,
                        gpu_seconds=task_seconds * spec.gpus if spec.gpus else 0.0)
    return result


def run_cell_on_partition(part, code: str, filename: str):
    """``--per-partition``: run the cell body as pandas code with ``df`` bound to one partition."""
    import numpy as np
    import pandas as pd

    # a copy: the partition may be persisted input data that must not change under its owner
    namespace = {"df": part.copy(), "pd": pd, "np": np, "__name__": "__aiaas_partition__"}
    exec(compile(code, filename, "exec"), namespace)  # the user's own cell, on their own cluster
    out = namespace.get("df")
    if not isinstance(out, pd.DataFrame):
        raise TypeError(f"the cell must leave `df` a pandas DataFrame, got {type(out).__name__}")
    return out
