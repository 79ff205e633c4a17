"""Real multi-process clusters: `dask scheduler` + `dask worker --resources GPU=1` CLI processes,
the per-GPU layout of the embedded cluster, re-attaching a job after its kernel died, and the
kernel/worker version check."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from aiaas_jupyter.client import AiaasClient
from support.cli_cluster import start_cli_cluster

from aiaas_jupyter.errors import AiaasVersionWarning, JobNotFoundError, ResourceError


def test_gpu_job_on_cli_cluster(cli_cluster, session_home, iris_frame):
    from sklearn.ensemble import RandomForestClassifier

    c = AiaasClient(home=session_home)
    try:
        table = c.connect(cli_cluster["address"])
        assert "external cluster" in table.title and "2 workers" in table.title and "2 GPUs" in table.title
        job = c.train(RandomForestClassifier(n_estimators=20, random_state=0), iris_frame, "target",
                      name="cli-gpu", gpus=1, block=True)
        mv = job.result()
        assert mv.metrics["accuracy"] > 0.85
        assert job.record.gpus == 1 and job.record.worker in {w["address"] for w in c.cluster_summary()["workers"]}
        assert job.record.gpu_seconds > 0  # the task held one GPU for its whole run
        with pytest.raises(ResourceError, match="no worker can hold 2 GPU"):
            c.train(RandomForestClassifier(), iris_frame, "target", name="cli-gpu", gpus=2)
        assert [v.version for v in c.registry.versions("cli-gpu")] == [mv.version]
    finally:
        c.disconnect()


def test_connect_by_scheduler_file(cli_cluster, session_home):
    c = AiaasClient(home=session_home)
    try:
        summary = c.connect(scheduler_file=cli_cluster["scheduler_file"])
        assert cli_cluster["address"] in summary.title
        assert {w["name"] for w in c.cluster_summary()["workers"]} == {"cli-0", "cli-1"}
    finally:
        c.disconnect()


KERNEL_THAT_DIES = textwrap.dedent("""
    import os, sys, time
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from aiaas_jupyter.client import AiaasClient

    class SlowDummy(DummyClassifier):
        def fit(self, X, y):
            time.sleep(4)
            return super().fit(X, y)

    c = AiaasClient()
    c.connect(sys.argv[1])
    job = c.train(SlowDummy(), load_iris(as_frame=True).frame, "target", name="outlives-kernel")
    while not job.events:  # running on a worker
        time.sleep(0.05)
    print(job.id, flush=True)
    os._exit(0)  # the kernel dies without saying goodbye
""")


def test_reattach_after_kernel_death(cli_cluster, session_home):
    out = subprocess.run([sys.executable, "-c", KERNEL_THAT_DIES, cli_cluster["address"]],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "AIAAS_HOME": str(session_home)})
    assert out.returncode == 0, out.stderr[-2000:]
    job_id = out.stdout.strip().splitlines()[-1]
    c = AiaasClient(home=session_home)
    try:
        assert c.registry.get_job(job_id).status in ("pending", "running")
        c.connect(cli_cluster["address"])
        job = c.attach(job_id)
        mv = job.result(timeout=60)
        assert mv.name == "outlives-kernel" and mv.job_id == job_id
        assert job.events[0]["stage"] == "start"  # history replayed from the scheduler's event log
        rec = c.registry.get_job(job_id)
        assert rec.status == "finished" and rec.version == mv.version
        assert rec.key not in c.dask.list_datasets()  # released once registered
        with pytest.raises(JobNotFoundError):
            c.attach("0123456789")
    finally:
        c.disconnect()


def test_embedded_per_gpu_layout(session_home):
    """Asked for 2 GPUs, the embedded cluster runs one worker per GPU, each seeing only its own."""
    c = AiaasClient(home=session_home)
    try:
        c.connect(gpus=2, threads_per_worker=1)
        summary = c.cluster_summary()
        assert summary["n_workers"] == 2 and summary["gpus"] == 2 and summary["max_gpus_per_worker"] == 1
        seen = c.dask.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        assert sorted(seen.values()) == ["0", "1"]
        plugins = c.dask.run(lambda dask_worker: sorted(dask_worker.plugins))
        assert all("aiaas-cuda-warmup" in p for p in plugins.values())
    finally:
        c.disconnect()


def test_version_mismatch_is_one_warning(tmp_path, session_home):
    """A worker whose scikit-learn reports another version triggers one clear warning."""
    fake = tmp_path / "fake-site"
    dist = fake / "scikit_learn-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: scikit-learn\nVersion: 0.0.1\n")
    with start_cli_cluster(tmp_path, n_workers=1, resources=None,
                           env_extra={"PYTHONPATH": str(fake)}) as cluster:
        c = AiaasClient(home=session_home)
        try:
            c.connect(cluster["address"])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                problems = c.check_versions("sklearn")
            mine = __import__("sklearn").__version__
            assert problems == [f"scikit-learn {mine} in the kernel, 0.0.1 on workers"]
            ours = [w for w in caught if issubclass(w.category, AiaasVersionWarning)]
            assert len(ours) == 1 and "version mismatch between kernel and workers" in str(ours[0].message)
        finally:
            c.disconnect()


def test_embedded_workers_get_an_environment_for_training(aiaas):
    """Threads for BLAS/OpenMP = the worker's Dask threads (Dask's nanny says 1), no
    MALLOC_TRIM_THRESHOLD_ (it freezes glibc's adaptive mmap threshold), one malloc arena (a task
    thread's own arena slowed a torch loop 11-24%): see cluster.worker_environ."""
    import os

    envs = aiaas.dask.run(lambda: {k: os.environ.get(k) for k in
                                   ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")})
    assert len(envs) == 2
    for env in envs.values():
        assert env == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_TRIM_THRESHOLD_": None,
                       "MALLOC_ARENA_MAX": "1"}, env


def test_only_our_one_arena_setting_is_taken_out_of_the_processes_that_are_not_workers():
    """Data-parallel ranks and the model server start without the workers' MALLOC_ARENA_MAX=1 (it
    leaks into the kernel's environment through Dask's nanny); a value the user set stays."""
    from aiaas_jupyter import malloc_env

    ours: dict = {}
    malloc_env.limit_for_workers(ours, environ={})
    assert ours == {"MALLOC_ARENA_MAX": "1", "AIAAS_WORKER_ARENA_MAX": "1"}
    assert malloc_env.without_worker_limit({**ours, "PATH": "/bin"}) == {"PATH": "/bin"}
    users: dict = {}
    malloc_env.limit_for_workers(users, environ={"MALLOC_ARENA_MAX": "4"})
    assert users == {}
    assert malloc_env.without_worker_limit({"MALLOC_ARENA_MAX": "4"}) == {"MALLOC_ARENA_MAX": "4"}
