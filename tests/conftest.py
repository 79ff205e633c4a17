"""Real parts for the tests: a LocalCluster of processes, a CLI-started scheduler + workers,
an IPython shell with the extension loaded, and a throwaway registry home."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# the session-end leak check: no process of this run alive, no temporary file left (issue 9)
from leakcheck import pytest_configure, pytest_sessionfinish  # noqa: F401

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    # Not exported as AIAAS_HOME: the notebooks, run in the same session, have their own.
    return tmp_path_factory.mktemp("aiaas-home")


@pytest.fixture(scope="session")
def aiaas(session_home):
    """The façade connected to a real embedded LocalCluster (2 worker processes)."""
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=session_home)
    client.connect(n_workers=2, threads_per_worker=1, gpus=0)
    yield client
    client.disconnect()


@pytest.fixture(scope="session")
def shell(aiaas):
    """A real IPython InteractiveShell with %load_ext aiaas_jupyter, bound to the test façade."""
    from IPython.core.interactiveshell import InteractiveShell

    from aiaas_jupyter.magics import AiaasMagics

    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "aiaas_jupyter")
    sh.register_magics(AiaasMagics(sh, client=aiaas))
    return sh


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
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
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
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="session")
def cli_cluster(tmp_path_factory):
    """`dask scheduler` + two `dask worker --resources GPU=1` processes on loopback."""
    with start_cli_cluster(tmp_path_factory.mktemp("cli-cluster")) as info:
        yield info


@pytest.fixture
def iris_frame():
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from a second intra-op thread; on a busy 2-core runner it
    only adds OpenMP contention (seen: a 0.6 s test taking 20 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
