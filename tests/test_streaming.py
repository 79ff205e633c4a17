"""A torch job on a dask DataFrame reads it partition by partition: data larger than a worker (issue 14).

The worker's task never holds the whole frame: it computes one partition at a time (the next
one meanwhile), trains on its rows and drops it. Shown on a worker whose memory limit is smaller
than the frame (the frame is generated partition by partition on the worker, so nothing holds
it whole anywhere), with the worker's memory sampled while it trains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from support.memory import peak_rss

torch = pytest.importorskip("torch")
dd = pytest.importorskip("dask.dataframe")

FEATURES = 31
ROWS_PER_PART = 200_000
PARTS = 60  # 60 x 200k rows x (31 float32 + 1 int64) columns = 1.45 GiB


def make_part(i: int) -> pd.DataFrame:
    """Partition *i* of the big frame, generated where it is computed (seeded by *i*)."""
    rng = np.random.default_rng(1000 + i)
    X = rng.standard_normal((ROWS_PER_PART, FEATURES), dtype=np.float32)
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(FEATURES)])
    df["y"] = (X[:, 0] - X[:, 1] > 0).astype(np.int64)
    return df


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def test_a_frame_larger_than_the_workers_memory_limit_trains_one_partition_at_a_time(tmp_path):
    import dask

    from aiaas_jupyter.client import AiaasClient

    ddf = dd.from_map(make_part, range(PARTS))
    frame_bytes = PARTS * ROWS_PER_PART * (FEATURES * 4 + 8)
    client = AiaasClient(home=str(tmp_path / "home"))
    with dask.config.set({"aiaas.cluster.memory-limit": "1GiB"}):
        client.connect(n_workers=1, threads_per_worker=1)
    try:
        (addr, info), = client.dask.scheduler_info(n_workers=-1)["workers"].items()
        limit = info["memory_limit"]
        assert frame_bytes > 1.3 * limit, (frame_bytes, limit)
        pid = client.dask.run(lambda: __import__("os").getpid())[addr]
        import psutil

        with peak_rss(lambda: [psutil.Process(pid)], interval=0.05) as peak:  # the worker while it trains
            job = client.train(_mlp(), ddf, "y", name="streamed", epochs=1, batch_size=8192, lr=0.01, block=True)
        mv = job.version
        assert job.status == "finished"
        assert mv.extra["streamed"] == {"partitions": PARTS}
        assert mv.extra["n_train"] == PARTS * ROWS_PER_PART - PARTS * (ROWS_PER_PART // 5)  # 20% held out per part
        assert mv.extra["n_test"] == 100_000 and mv.extra["evaluated_on"] == "held-out sample of 100000 rows"
        assert mv.metrics["accuracy"] > 0.95, mv.metrics
        assert 0 < peak[0] < 0.9 * limit, (peak[0], limit)  # the frame never was in it (nor half of it)
        assert client.dask.run(lambda: __import__("os").getpid())[addr] == pid  # the worker never restarted
    finally:
        client.disconnect()


def _small(n: int = 4000, parts: int = 5):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(y=(X[:, 0] > 0).astype(int))
    return dd.from_pandas(df, npartitions=parts)


def _small_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def test_a_streamed_job_resumes_from_its_checkpoint_like_an_uninterrupted_one(tmp_path):
    """The trainer on its own (Dask's synchronous scheduler computes the partitions): a run that
    stops after epoch 2 and resumes ends with the uninterrupted run's weights and metrics."""
    from aiaas_jupyter.training import run_training
    from aiaas_jupyter.training.base import TrainSpec
    from aiaas_jupyter.training.checkpoints import CheckpointStore, JobCheckpoints
    from aiaas_jupyter.training.partitions import PartitionStream

    ddf = _small()

    def stream():
        return PartitionStream(list(ddf.to_delayed()), classes=[0, 1])

    def spec():
        return TrainSpec(model=_small_mlp(), target="y", epochs=4, batch_size=64, seed=5)

    full = run_training(spec(), stream(), lambda e: None)
    assert full.extra["streamed"] == {"partitions": 5} and [h["epoch"] for h in full.history] == [1, 2, 3, 4]
    store = CheckpointStore(str(tmp_path / "ckpt"))
    events: list = []
    stopped = run_training(spec(), stream(), events.append, checkpoints=JobCheckpoints(store, "s1"),
                           should_stop=lambda: any(e.get("stage") == "epoch" and e["epoch"] == 3 for e in events))
    assert stopped is None
    again: list = []
    resumed = run_training(spec(), stream(), again.append, checkpoints=JobCheckpoints(store, "s1"))
    assert [e["epoch"] for e in again if e["stage"] == "resumed"] == [2]
    assert [e["epoch"] for e in again if e["stage"] == "epoch"] == [3, 4]
    assert resumed.metrics == full.metrics and resumed.data_fingerprint == full.data_fingerprint
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_a_dask_frame_in_a_torch_job_is_streamed_and_the_metrics_are_sound(aiaas, one_torch_thread):
    job = aiaas.train(_small_mlp(), _small(), "y", name="streamed-small", epochs=4, batch_size=64, lr=0.02,
                     block=True)
    mv = job.version
    assert mv.extra["streamed"] == {"partitions": 5} and mv.extra["classes"] == [0, 1]
    assert mv.extra["n_train"] + mv.extra["n_test"] == 4000 and mv.extra["n_test"] == 800
    assert mv.metrics["accuracy"] > 0.9, mv.metrics
    assert [e["epoch"] for e in job.events if e.get("stage") == "epoch"] == [1, 2, 3, 4]
