"""A job survives the death of its worker (issue 14), on a real CLI cluster (`dask scheduler` +
`dask worker` processes under nannies; the test SIGKILLs the worker mid-training):

- a torch job resumes on another worker from its last checkpoint and ends with the same weights
  and accuracy as an uninterrupted run (same seed), sooner than a restart from scratch would;
- a scikit-learn job starts again from scratch; both say so in their record and in `%aiaas jobs`;
- a job whose worker dies more often than ``aiaas.jobs.retries`` allows fails with one line;
- every outcome registers at most one version and leaves no checkpoint behind.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
from dask import config as dask_config

from aiaas_jupyter.client import AiaasClient
from aiaas_jupyter.views import jobs_table
from support.cli_cluster import start_cli_cluster

torch = pytest.importorskip("torch")

EPOCHS = 12


@pytest.fixture(scope="module")
def killable(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    with start_cli_cluster(d, n_workers=2, resources=None) as info:
        yield info


@pytest.fixture
def client(killable, tmp_path):
    c = AiaasClient(tmp_path / "home")
    c.connect(killable["address"])
    c.dask.wait_for_workers(2, timeout=60)
    c.dask.run(lambda: __import__("torch") and None)  # warm: a retry does not wait on an import
    ckpt = tmp_path / "checkpoints"
    with dask_config.set({"aiaas.checkpoints.url": f"file://{ckpt}", "aiaas.jobs.event-delay": 0}):
        yield c
    c.disconnect()
    assert not ckpt.exists() or not any(ckpt.iterdir())  # nothing left behind, whatever the outcome


def _frame():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 16)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(y=y)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2))


def _kill_when(client, job, predicate, timeout=120.0) -> tuple[str, float]:
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        time.sleep(0.02)
    assert predicate(), f"job never reached the point to kill it: {job.latest}"
    worker = job.record.worker
    pid = client.dask.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)
    return worker, time.time()


def _epoch(job) -> int:
    return max((e.get("epoch") or 0 for e in job.events if e.get("stage") == "epoch"), default=0)


def test_a_torch_job_resumes_from_its_checkpoint_after_its_worker_is_killed(client):
    df = _frame()
    t0 = time.time()
    full = client.train(_model(), df, "y", name="steady", epochs=EPOCHS, batch_size=32, seed=1, block=True)
    full_s = time.time() - t0
    assert full.status == "finished"

    t0 = time.time()
    job = client.train(_model(), df, "y", name="survivor", epochs=EPOCHS, batch_size=32, seed=1)
    killed, t_kill = _kill_when(client, job, lambda: _epoch(job) >= 5)
    mv = job.result(timeout=180)
    total_s = time.time() - t0

    assert job.status == "finished" and [v.version for v in client.registry.versions("survivor")] == [1]
    resumed = [e["epoch"] for e in job.events if e.get("stage") == "resumed"]
    assert len(resumed) == 1 and resumed[0] >= 5  # epochs 1..resumed[0] were not trained again
    assert [e["stage"] for e in job.events].count("retry") == 1
    epochs_after = [e["epoch"] for e in job.events[job.events.index(next(e for e in job.events
                                                                         if e.get("stage") == "resumed")):]
                    if e.get("stage") == "epoch"]
    assert epochs_after == list(range(resumed[0] + 1, EPOCHS + 1))
    # the same seed, the same batches, the same dropout masks: the same model
    assert mv.metrics == full.version.metrics
    assert [h["loss"] for h in mv.extra["history"]] == [h["loss"] for h in full.version.extra["history"]]
    assert mv.extra["attempt"] == 2 and mv.extra["resumed_epoch"] == resumed[0]
    assert mv.extra["retry_reason"] == f"worker {killed} died" and mv.extra["worker"] != killed
    # sooner than a restart from scratch, which would take the time until the kill plus a whole run
    assert total_s < (t_kill - t0) + full_s
    rec = client.registry.get_job(job.id)
    assert rec.info["attempt"] == 2 and rec.info["resumed_epoch"] == resumed[0]
    note = next(r["note"] for r in jobs_table([rec]).records())
    assert note == f"attempt 2: resumed at epoch {resumed[0]} after worker {killed} died"
    assert "resumed at epoch" in repr(job)


def test_a_scikit_learn_job_restarts_from_scratch(client):
    from sklearn.dummy import DummyClassifier

    class Slow(DummyClassifier):
        def fit(self, X, y):
            time.sleep(3)
            return super().fit(X, y)

    job = client.train(Slow(), _frame(), "y", name="restarted")
    killed, _ = _kill_when(client, job, lambda: job.latest.get("stage") == "fit")
    mv = job.result(timeout=120)
    assert job.status == "finished" and [v.version for v in client.registry.versions("restarted")] == [1]
    assert mv.extra["attempt"] == 2 and "resumed_epoch" not in mv.extra
    note = next(r["note"] for r in jobs_table([client.registry.get_job(job.id)]).records())
    assert note == f"attempt 2: restarted from scratch after worker {killed} died"


def test_past_its_retries_a_job_fails_with_one_line_and_registers_nothing(client):
    from aiaas_jupyter.errors import JobFailedError, ModelNotFoundError

    with dask_config.set({"aiaas.jobs.retries": 0}):
        job = client.train(_model(), _frame(), "y", name="given-up", epochs=EPOCHS, batch_size=32)
        _kill_when(client, job, lambda: _epoch(job) >= 2)
        with pytest.raises(JobFailedError) as e:
            job.result(timeout=120)
    assert job.status == "error" and "\n" not in str(e.value)
    assert "its worker died 1 times, more than aiaas.jobs.retries = 0 allows" in str(e.value)
    with pytest.raises(ModelNotFoundError):
        client.registry.versions("given-up")
    rec = client.registry.get_job(job.id)
    assert rec.status == "error" and rec.version is None
    # the retry it was not allowed stopped: both workers are free again
    deadline = time.time() + 30
    while client.dask.processing() and any(client.dask.processing().values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(client.dask.processing().values())


def test_a_data_parallel_job_whose_rank_dies_fails_with_one_line_and_never_hangs(client):
    """Rank 1's worker is SIGKILLed mid-training: rank 0's next all-reduce fails (or times out
    after aiaas.jobs.data-parallel-timeout), the group fails as one job, in one line."""
    from aiaas_jupyter.errors import JobError

    with dask_config.set({"aiaas.jobs.data-parallel-timeout": 15}):
        job = client.train(_model(), _frame(), "y", name="ddp-killed", epochs=200, batch_size=32, workers=2)
        deadline = time.time() + 120
        while _epoch(job) < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert _epoch(job) >= 2, job.latest
        ranks = client.dask.processing()
        rank1 = next(w for w, keys in ranks.items() if any(str(k).endswith("-rank1") for k in keys))
        t_kill = time.time()
        os.kill(client.dask.run(os.getpid, workers=[rank1])[rank1], signal.SIGKILL)
        with pytest.raises(JobError) as e:
            job.result(timeout=90)
    assert time.time() - t_kill < 60  # the timeout bounds it; a dead peer usually fails it at once
    # rank 1's shard died with its worker, so Dask drops the group's task: lost (its message says
    # why); had rank 0's collective failed first, an error naming it
    assert job.status in ("lost", "error") and "\n" not in str(e.value)
    assert "a worker holding its data died" in str(e.value) or "rank" in str(e.value)
    with pytest.raises(Exception, match="no model named"):
        client.registry.versions("ddp-killed")
    client.dask.wait_for_workers(2, timeout=60)
    deadline = time.time() + 30  # nothing of the group keeps a worker busy
    while any(client.dask.processing().values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(client.dask.processing().values())
