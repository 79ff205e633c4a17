"""Connect to a Dask cluster, or start the embedded one.

Two ways in, one result (a ``distributed.Client``):

* **embedded** (no address): a ``LocalCluster`` of worker *processes* sized to the machine.
  When GPUs are present each GPU is owned by exactly one worker, which sees only that GPU
  (``CUDA_VISIBLE_DEVICES``) and advertises the resource ``GPU=1`` so that
  ``submit(..., resources={"GPU": n})`` lands on it. dask-cuda's ``LocalCUDACluster`` is used
  when installed. GPU workers start CUDA in the background as soon as they start, so the first
  job does not pay the ~11 s CUDA start-up.
* **external** (``tcp://HOST:PORT`` or a scheduler file): any Dask deployment — dask-kubernetes,
  dask-jobqueue, dask-gateway, a hand-started ``dask scheduler`` — reached by address, with a
  bounded connect timeout.

This module imports dask lazily (at call time) so that ``%load_ext`` stays light.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess

from . import malloc_env
from .errors import ClusterError
from .settings import config

def detect_gpus() -> list[str]:
    """GPU ids this process may use, without importing torch.

    ``CUDA_VISIBLE_DEVICES`` (when set) restricts the list, as it would for CUDA itself.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


@dataclasses.dataclass
class ClusterSpec:
    """How the embedded cluster is laid out (decided before anything starts)."""

    n_workers: int
    threads_per_worker: int
    gpu_ids: list[str]
    memory_limit: str | int | None = "auto"

    @classmethod
    def for_machine(cls, n_workers=None, threads_per_worker=None, gpus=None,
                    memory_limit=None) -> "ClusterSpec":
        cpus = os.cpu_count() or 1
        gpus = config("cluster.gpus") if gpus is None else gpus
        if gpus in (None, "auto"):
            gpu_ids = detect_gpus()
        else:
            # An explicit count lays out that many GPU workers; ids come from the machine
            # when it has enough, else 0..N-1 (what CUDA_VISIBLE_DEVICES would name).
            found = detect_gpus()
            gpu_ids = found[: int(gpus)] if len(found) >= int(gpus) else [str(i) for i in range(int(gpus))]
        n_workers = n_workers or config("cluster.n-workers")
        threads = threads_per_worker or config("cluster.threads-per-worker")
        if gpu_ids:
            n_workers = len(gpu_ids)
        elif not n_workers:
            n_workers = max(1, min(cpus, 4)) if cpus <= 4 else max(2, cpus // 2)
        if not threads:
            threads = max(1, cpus // n_workers)
        return cls(int(n_workers), int(threads), gpu_ids,
                   memory_limit or config("cluster.memory-limit"))


def worker_environ(threads: int) -> dict[str, str]:
    """Environment for worker processes that run ML jobs, set before they start.

    Dask's defaults suit many small numpy tasks, not one training job per worker:
    ``OMP_NUM_THREADS=1`` (and MKL/OpenBLAS) would leave all but one of the worker's cores
    idle in torch and scikit-learn, and any explicit ``MALLOC_TRIM_THRESHOLD_`` turns off
    glibc's adaptive mmap threshold, which made a PyTorch MLP ~40% slower (benchmarks/W1).
    ``MALLOC_ARENA_MAX=1`` (unless set already; see :mod:`.malloc_env`): a task runs in one of
    the worker's threads, whose own glibc arena made a torch loop 11-24% slower.
    Workers log at WARNING: Dask restores their INFO level while they close, and their INFO
    lines ("Received 'close-stream'") would land in the notebook cell.
    """
    import dask.config
    import distributed  # noqa: F401 - registers the distributed.* config defaults

    env = {k: str(v) for k, v in (dask.config.get("distributed.nanny.pre-spawn-environ") or {}).items()}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    malloc_env.limit_for_workers(env)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if "DASK_LOGGING__DISTRIBUTED" not in os.environ:
        env["DASK_LOGGING__DISTRIBUTED"] = "warning"
    return env


def start_embedded(spec: ClusterSpec):
    """Start the embedded cluster described by *spec*; return ``(cluster, client)``."""
    import dask.config

    # Nannies read this when created and keep it for restarts of their worker; the scheduler reads
    # its memory manager's policies when created.
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(spec.threads_per_worker),
                          "distributed.scheduler.active-memory-manager.policies": keep_broadcast_policies()}):
        return _start_embedded(spec)


def keep_broadcast_policies() -> list:
    """The scheduler's memory-manager policies without ``ReduceReplicas``.

    A sweep sends its frame and plan to every worker once and a batch scoring its model
    (``scatter(broadcast=True)``); ``ReduceReplicas`` drops those copies whenever fewer tasks wait on
    them than workers hold them (between two trials, every 2 s), and the next trial on that worker
    fetches the frame again from another. Dask documents that broadcasting needs it off
    (``Client.scatter``); an external scheduler needs the same setting (README, "Outgrowing one machine").
    """
    import dask.config

    return [p for p in dask.config.get("distributed.scheduler.active-memory-manager.policies", default=[]) or []
            if not str(p.get("class", "")).endswith("ReduceReplicas")]


def _start_embedded(spec: ClusterSpec):
    from distributed import Client, LocalCluster

    dashboard = config("cluster.dashboard-address")
    if spec.gpu_ids and importlib.util.find_spec("dask_cuda"):
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(CUDA_VISIBLE_DEVICES=",".join(spec.gpu_ids),
                                   threads_per_worker=spec.threads_per_worker,
                                   resources={"GPU": 1}, dashboard_address=dashboard)
    elif spec.gpu_ids:
        cluster = _per_gpu_cluster(spec, dashboard)
    else:
        cluster = LocalCluster(n_workers=spec.n_workers, threads_per_worker=spec.threads_per_worker,
                               processes=True, memory_limit=spec.memory_limit,
                               dashboard_address=dashboard)
    client = Client(cluster)
    from .worker_process import EmbeddedWorker

    client.register_plugin(EmbeddedWorker(), name="aiaas-embedded-worker")  # ignore SIGINT, end at once
    if spec.gpu_ids:
        from .gpu_warmup import CudaWarmup

        client.register_plugin(CudaWarmup(), name="aiaas-cuda-warmup")
    return cluster, client


def _per_gpu_cluster(spec: ClusterSpec, dashboard: str):
    """One worker process per GPU, each seeing only its own device."""
    from distributed import Nanny, Scheduler, SpecCluster

    scheduler = {"cls": Scheduler, "options": {"dashboard_address": dashboard}}
    workers = {
        f"gpu-{gid}": {"cls": Nanny, "options": {
            "nthreads": spec.threads_per_worker,
            "memory_limit": spec.memory_limit,
            "resources": {"GPU": 1},
            "env": {"CUDA_VISIBLE_DEVICES": gid},
        }}
        for gid in spec.gpu_ids
    }
    return SpecCluster(workers=workers, scheduler=scheduler, name="aiaas-gpu")


def connect_external(address: str | None = None, scheduler_file: str | None = None,
                     timeout: float | str | None = None):
    """Attach to a running scheduler, failing clearly (one ClusterError line) within *timeout* s.

    Everything is checked before connecting (:mod:`.cluster_args`); a scheduler file is read
    here, so that a file that is not a scheduler's fails as such instead of inside Dask.
    """
    from distributed import Client

    from .cluster_args import check_address, check_timeout, probe_scheduler, read_scheduler_file

    timeout_s = check_timeout(config("cluster.connect-timeout") if timeout is None else timeout)
    if scheduler_file:
        address = read_scheduler_file(scheduler_file)
        target = f"{address} (from {scheduler_file})"
    else:
        address = target = check_address(address)
    spent = probe_scheduler(address, timeout_s, target)  # a scheduler answers; anything else fails here, in time
    try:
        return Client(address, timeout=max(timeout_s - spent, 0.5))
    except (OSError, TimeoutError) as exc:  # refused, unreachable, not a Dask scheduler, too slow
        raise ClusterError(f"could not reach the Dask scheduler at {target} within {timeout_s:g} s "
                           f"({type(exc).__name__})",
                           hint="is the scheduler running and the address right? "
                                "`%aiaas connect` with no address starts an embedded cluster") from None
    except ValueError as exc:
        raise ClusterError(f"bad scheduler address {target!r}: {exc}",
                           hint="use tcp://HOST:PORT") from None


def summarize(client) -> dict:
    """Workers, threads, memory and GPUs of the cluster behind *client* (one scheduler call)."""
    info = client.scheduler_info(n_workers=-1)
    workers = []
    for addr, w in sorted(info.get("workers", {}).items()):
        workers.append({
            "address": addr,
            "name": str(w.get("name", "")),
            "threads": w.get("nthreads", 0),
            "memory_gb": round((w.get("memory_limit") or 0) / 2**30, 2),
            "gpus": int((w.get("resources") or {}).get("GPU", 0)),
        })
    return {
        "scheduler": info.get("address", client.scheduler.address),
        "dashboard": client.dashboard_link if info.get("services", {}).get("dashboard") else None,
        "workers": workers,
        "n_workers": len(workers),
        "threads": sum(w["threads"] for w in workers),
        "memory_gb": round(sum(w["memory_gb"] for w in workers), 2),
        "gpus": sum(w["gpus"] for w in workers),
        "max_gpus_per_worker": max((w["gpus"] for w in workers), default=0),
    }
