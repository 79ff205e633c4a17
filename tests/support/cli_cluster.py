"""A Dask cluster started from the command line, as a user starts one: ``dask scheduler`` and N
``dask worker`` processes on loopback (the ``cli_cluster`` fixture of tests/conftest.py, and
tests/test_cluster.py for clusters of its own shape)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


@contextlib.contextmanager
def start_cli_cluster(d: Path, n_workers: int = 2, resources: str | None = "GPU=1", env_extra=None):
    """`dask scheduler` + N `dask worker` processes on loopback, as a user would start them."""
    sched_file = d / "scheduler.json"
    # the README's plain recipe ("Outgrowing one machine"): the scheduler keeps broadcast copies
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__POLICIES": "[]",
           **(env_extra or {})}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=open(d / "scheduler.log", "w"), stderr=subprocess.STDOUT, env=env)]
    try:
        _wait_for(lambda: sched_file.exists() and sched_file.stat().st_size > 0, 60, "scheduler file")
        for i in range(n_workers):
            cmd = [str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                   "--no-dashboard", "--name", f"cli-{i}", "--local-directory", str(d / f"w{i}")]
            if resources:
                cmd += ["--resources", resources]
            procs.append(subprocess.Popen(cmd, stdout=open(d / f"worker{i}.log", "w"),
                                          stderr=subprocess.STDOUT, env=env))
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout=30) as c:
            c.wait_for_workers(n_workers, timeout=60)
        address = json.loads(sched_file.read_text())["address"]
        yield {"address": address, "scheduler_file": str(sched_file), "dir": d}
    finally:
        stop_processes(procs)


def stop_processes(procs: list[subprocess.Popen], grace: float = 20) -> None:
    """SIGTERM (workers before the scheduler), then SIGKILL what is still there after *grace*."""
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
