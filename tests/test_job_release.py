"""An ended job holds nothing on the cluster (issue 14): a worker that dies afterwards has no
finished job to train again.

Before, the kernel kept every job's Dask future; Dask keeps a held result in its worker's memory
and recomputes it when that worker dies — 12 kills re-ran 36 finished trainings. Here, on a real
CLI cluster (`dask scheduler` + `dask worker` processes under their nannies), a finished job's key
leaves the scheduler, and SIGKILL of the worker that trained it runs nothing again.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from dask import config as dask_config

from aiaas_jupyter.client import AiaasClient
from aiaas_jupyter.remote import event_topic
from support.cli_cluster import start_cli_cluster


@pytest.fixture(scope="module")
def killable(tmp_path_factory):
    """A CLI cluster of its own (2 workers under nannies): these tests SIGKILL its workers."""
    d = tmp_path_factory.mktemp("killable")
    with start_cli_cluster(d, n_workers=2, resources=None) as info:
        yield info


def _wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_a_finished_job_is_not_trained_again_when_its_worker_dies(killable, tmp_path, iris_frame):
    from sklearn.tree import DecisionTreeClassifier

    client = AiaasClient(tmp_path / "home")
    client.connect(killable["address"])
    try:
        dask = client.dask
        with dask_config.set({"aiaas.jobs.event-delay": 0}):  # every start is seen, however short the job
            job = client.train(DecisionTreeClassifier(random_state=0), iris_frame, "target", name="released",
                               block=True)
        assert job.status == "finished" and job.future is None
        key = job.record.key
        # the kernel let go of the task: the scheduler forgets it (and the worker its result)
        _wait(lambda: not dask.run_on_scheduler(lambda dask_scheduler, k=key: k in dask_scheduler.tasks),
              10, "the scheduler to forget the finished task")
        starts = lambda: sum(1 for _, msg in dask.get_events(event_topic(job.id))  # noqa: E731
                             if isinstance(msg, dict) and msg.get("stage") == "start")
        assert starts() == 1
        # SIGKILL the worker that trained it; its nanny starts a new one
        worker = job.record.worker
        pid = dask.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: worker not in dask.scheduler_info(n_workers=-1)["workers"], 30, "the worker to go")
        # a held result would be back on the scheduler at once, waiting or processing again
        assert not dask.run_on_scheduler(lambda dask_scheduler, k=key: k in dask_scheduler.tasks)
        dask.wait_for_workers(2, timeout=60)
        time.sleep(2.0)  # what Dask would recompute starts within this
        assert starts() == 1  # no second training of the finished job
        assert [v.version for v in client.registry.versions("released")] == [1]
        assert client.job(job.id).status == "finished"
    finally:
        client.disconnect()


def _big_frame(rows: int = 20_000, cols: int = 12):
    """2 MB: over SMALL_FRAME_BYTES, so the job's data is scattered, not carried in the task."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, cols))
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(cols)]).assign(y=(X[:, 0] > 0).astype(int))


def _kill_mid_fit(client, job) -> str:
    """SIGKILL the worker fitting *job* once its fit began; the worker's address."""
    _wait(lambda: job.latest.get("stage") == "fit", 60, "the job to start fitting")
    worker = job.latest["worker"]
    pid = client.dask.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)
    return worker


def test_a_job_whose_data_died_is_sent_again_and_finishes(killable, tmp_path):
    """A large frame is scattered to one worker, and the task runs there (where its data is); when
    that worker dies the only copy of the data is gone and Dask drops the task. 7 of 20 such jobs
    were reported "cancelled; nothing was registered" though nobody cancelled them. The kernel
    still holds the frame: it scatters it again and resubmits (a retry, said as such), and the
    job finishes with one version. (Dask's active memory manager undoes a replica made with
    ``replicate``, so a second copy up front does not help.)"""
    from sklearn.ensemble import RandomForestClassifier

    client = AiaasClient(tmp_path / "home")
    client.connect(killable["address"])
    try:
        client.dask.wait_for_workers(2, timeout=60)
        job = client.train(RandomForestClassifier(n_estimators=150, random_state=0), _big_frame(), "y",
                           name="resent")
        killed = _kill_mid_fit(client, job)  # the worker holding the frame's only copy
        mv = job.result(timeout=120)
        assert job.status == "finished" and not job.cancel_requested
        assert [v.version for v in client.registry.versions("resent")] == [1]
        assert mv.extra["attempt"] == 2 and mv.extra["retry_reason"] == f"worker {killed} died with its data"
        assert [e["stage"] for e in job.events].count("retry") == 1
        rec = client.registry.get_job(job.id)
        assert rec.status == "finished" and rec.info["attempt"] == 2
        client.dask.wait_for_workers(2, timeout=60)
    finally:
        client.disconnect()


def test_a_job_whose_data_died_past_its_retries_is_lost_not_cancelled(killable, tmp_path):
    """With no retry left, such a job is lost (not "cancelled": nobody cancelled it), and says why."""
    from sklearn.ensemble import RandomForestClassifier

    from aiaas_jupyter.errors import JobError

    client = AiaasClient(tmp_path / "home")
    client.connect(killable["address"])
    try:
        client.dask.wait_for_workers(2, timeout=60)
        with dask_config.set({"aiaas.jobs.retries": 0}):
            job = client.train(RandomForestClassifier(n_estimators=150, random_state=0), _big_frame(), "y",
                               name="orphan")
            _kill_mid_fit(client, job)
            with pytest.raises(JobError, match=r"was lost: the cluster dropped its task .*nothing was registered"):
                job.result(timeout=120)
        assert job.status == "lost" and not job.cancel_requested
        assert client.registry.get_job(job.id).status == "lost"
        assert "orphan" not in {m["name"] for m in client.registry.list_models()}
        client.dask.wait_for_workers(2, timeout=60)  # the nanny's new worker is up: the cluster stops at once
    finally:
        client.disconnect()
