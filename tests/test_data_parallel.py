"""One torch model trained data-parallel on 2 Dask worker processes (gloo, CPU): issue 14.

The ranks meet at rank 0's worker (a port it found free), each trains on its own shard, the
gradients are averaged by DistributedDataParallel, and one version is registered: its weights are
every rank's weights, and its accuracy is within 1% of the one-worker run with the same effective
batch and epochs.
"""

from __future__ import annotations

import os
import re
import time

import dask
import numpy as np
import pandas as pd
import pytest

from support.memory import peak_rss

torch = pytest.importorskip("torch")

EPOCHS = 6


def _frame(n: int = 6000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 16)).astype(np.float32)
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(y=y)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))


class HoldsTheGil(torch.nn.Module):
    """Rank 0's first training batch runs a regular expression that backtracks for hours inside
    ``re``'s C code, which never lets go of the GIL: what a ``torch.distributed`` wait that holds
    it does to a process (CI once saw a Dask worker frozen 552 s that way)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inner = torch.nn.Linear(16, 3)

    def forward(self, x):
        import torch.distributed as dist

        if self.training and dist.is_initialized() and dist.get_rank() == 0:
            re.match(r"(a|aa)+$", "a" * 64 + "b")
        return self.inner(x)


def _rank_worker(aiaas, job, rank: int, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for worker, keys in aiaas.dask.processing().items():
            if any(str(k) == f"{job.record.key}-rank{rank}" for k in keys):
                return worker
        time.sleep(0.05)
    raise AssertionError(f"rank {rank} of {job.id} never ran")


def _answer_time(aiaas, worker: str, bound: float = 10.0) -> float:
    """Seconds *worker* took to run a no-op (``inf`` past *bound*: its event loop is frozen)."""
    import threading

    done = threading.Event()
    t0 = time.time()
    threading.Thread(target=lambda: (aiaas.dask.run(lambda: 1, workers=[worker]), done.set()), daemon=True).start()
    return time.time() - t0 if done.wait(bound) else float("inf")


def _weights_of(aiaas, mv) -> dict:
    from safetensors.torch import load

    return load(next(v for k, v in aiaas.registry.read_artifacts(mv).items() if k.endswith(".safetensors")))


def test_two_workers_train_one_model_like_one_worker_with_the_same_effective_batch(aiaas, one_torch_thread):
    from aiaas_jupyter.training.torch_ddp import weights_sha256

    df = _frame()
    one = aiaas.train(_model(), df, "y", name="ddp-one", epochs=EPOCHS, batch_size=64, seed=2, block=True)
    two = aiaas.train(_model(), df, "y", name="ddp-two", epochs=EPOCHS, batch_size=32, seed=2, block=True,
                      workers=2)
    assert one.status == "finished" and two.status == "finished"
    mv = two.version
    ranks = mv.extra["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and len({r["worker"] for r in ranks}) == 2  # two processes
    assert sum(r["n_train"] for r in ranks) == mv.extra["n_train"] and mv.extra["n_train"] >= 0.75 * len(df)
    assert mv.params["workers"] == 2 and mv.params["effective_batch_size"] == 64
    assert mv.extra["data_parallel"] == {"workers": 2, "backend": "gloo"}
    # every rank ended with these weights (collect compares the ranks' digests; here the registered ones)
    model = _model()
    model.load_state_dict(_weights_of(aiaas, mv))
    assert weights_sha256(model) == mv.extra["weights_sha256"]
    # the same learning problem, the same effective batch and epochs: the same quality
    assert abs(mv.metrics["accuracy"] - one.version.metrics["accuracy"]) <= 0.01, (mv.metrics, one.version.metrics)
    assert mv.metrics["accuracy"] > 0.8
    assert [e["epoch"] for e in two.events if e.get("stage") == "epoch"] == list(range(1, EPOCHS + 1))  # rank 0 reports
    # the registered model predicts like a model trained on one worker would
    loaded = aiaas.load_model("ddp-two")
    X = df.drop(columns="y").iloc[:200]
    assert np.asarray(loaded.predict(X)).shape == (200,)


_UNEVEN = [1500, 300, 900, 100, 700, 500]  # rows per partition: rank 0 gets 3100 rows, rank 1 900


def _uneven_part(i: int) -> pd.DataFrame:
    """Partition *i* of an uneven frame, generated where it is computed (seeded by *i*)."""
    rng = np.random.default_rng(100 + i)
    X = rng.normal(size=(_UNEVEN[i], 16)).astype(np.float32)
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(len(X), 3)), axis=1)
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(16)]).assign(y=y)


def test_a_dask_frame_is_streamed_by_each_rank_partition_by_partition(aiaas, one_torch_thread):
    """Each rank reads its own partitions one at a time; ranks whose shares differ (3100 vs 900
    rows) keep in step (no hang, the same weights); the held-out rows and counts are exactly the
    one-worker streaming trainer's, and the quality is the same."""
    dd = pytest.importorskip("dask.dataframe")

    ddf = dd.from_map(_uneven_part, range(len(_UNEVEN)))
    one = aiaas.train(_model(), ddf, "y", name="ddp-stream-one", epochs=8, batch_size=64, seed=3, block=True)
    job = aiaas.train(_model(), ddf, "y", name="ddp-stream", epochs=8, batch_size=32, seed=3, block=True, workers=2)
    assert job.status == "finished" and one.status == "finished"
    mv, ref = job.version, one.version
    assert mv.extra["streamed"] == {"partitions": 6, "rank_partitions": 3}
    ranks = mv.extra["ranks"]
    assert [r["n_train"] + r["n_test"] for r in ranks] == [3100, 900]  # every row once, on its rank
    assert (mv.extra["n_train"], mv.extra["n_test"]) == (ref.extra["n_train"], ref.extra["n_test"]) == (3200, 800)
    assert mv.extra["evaluated_on"] == ref.extra["evaluated_on"] == "held-out sample of 800 rows"
    epochs = [e for e in job.events if e.get("stage") == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 9))
    # the ranks took the same number of steps: an epoch trains 2 x (the smaller share's 720 training rows, in
    # batches of 32), not the 3200 rows both shares hold (measured: 1472 a epoch)
    assert all(e["samples_per_s"] * e["seconds"] <= 2 * 720 + 64 for e in epochs), epochs
    model = _model()
    model.load_state_dict(_weights_of(aiaas, mv))
    from aiaas_jupyter.training.torch_ddp import weights_sha256

    assert weights_sha256(model) == mv.extra["weights_sha256"]
    assert mv.metrics["accuracy"] > 0.8 and abs(mv.metrics["accuracy"] - ref.metrics["accuracy"]) <= 0.03, \
        (mv.metrics, ref.metrics)


_BIG_ROWS, _BIG_FEATURES = 100_000, 31  # a partition: 100k x (31 float32 + 1 int64) = 13.2 MB


def _big_part(i: int) -> pd.DataFrame:
    rng = np.random.default_rng(2000 + i)
    X = rng.standard_normal((_BIG_ROWS, _BIG_FEATURES), dtype=np.float32)
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(_BIG_FEATURES)]).assign(y=(X[:, 0] > X[:, 1]).astype(np.int64))


def _rank_peak_rss(aiaas, train) -> tuple[int, object]:
    """The largest resident memory of any process the workers started (the rank processes)
    while *train()* ran; and what *train()* returned."""
    import psutil

    workers = [psutil.Process(pid) for pid in aiaas.dask.run(lambda: __import__("os").getpid()).values()]
    with peak_rss(lambda: [child for w in workers for child in w.children(recursive=True)]) as peak:
        out = train()
    return peak[0], out


def test_a_rank_never_holds_its_share_of_a_streamed_frame(aiaas, one_torch_thread):
    """40 partitions (528 MB; 264 MB a rank) trained on 2 ranks: no rank process grows by more than a
    few partitions over the same job on 4 partitions (measured: +0 MB, 645 MB both; the same job
    with each rank's share computed into it, as before: +840 MB)."""
    dd = pytest.importorskip("dask.dataframe")

    def mlp():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(_BIG_FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    def train(parts: int, name: str):
        return aiaas.train(mlp(), dd.from_map(_big_part, range(parts)), "y", name=name, epochs=1,
                           batch_size=8192, lr=0.01, block=True, workers=2)

    small_peak, small = _rank_peak_rss(aiaas, lambda: train(4, "ddp-stream-small"))
    big_peak, big = _rank_peak_rss(aiaas, lambda: train(40, "ddp-stream-big"))
    assert small.status == big.status == "finished"
    share = 20 * _BIG_ROWS * (_BIG_FEATURES * 4 + 8)
    assert 0 < small_peak and big_peak - small_peak < 0.3 * share, (small_peak, big_peak, share)
    assert big.version.extra["streamed"] == {"partitions": 40, "rank_partitions": 20}
    assert big.version.extra["n_train"] == 40 * (_BIG_ROWS - _BIG_ROWS // 5)
    assert big.version.metrics["accuracy"] > 0.95, big.version.metrics


def test_a_dask_frame_persisted_in_the_cluster_is_dealt_out_by_partitions(aiaas, one_torch_thread):
    dd = pytest.importorskip("dask.dataframe")

    ddf = aiaas.dask.persist(dd.from_pandas(_frame(4000), npartitions=4))
    job = aiaas.train(_model(), ddf, "y", name="ddp-dask", epochs=2, batch_size=32, block=True, workers=2)
    assert job.status == "finished"
    assert "streamed" not in job.version.extra  # its partitions live in the cluster: computed into each rank
    ranks = job.version.extra["ranks"]
    assert sum(r["n_train"] + r["n_test"] for r in ranks) == 4000  # every row once, none twice


def test_more_workers_than_the_cluster_has_is_refused_up_front(aiaas):
    from aiaas_jupyter.errors import ModelSpecError, ResourceError

    before = {r.id for r in aiaas.registry.list_jobs(1000)}
    with pytest.raises(ResourceError, match=r"^--workers 5 needs 5 workers; the cluster has 2") as e:
        aiaas.train(_model(), _frame(200), "y", name="ddp-too-many", workers=5)
    assert "\n" not in str(e.value)
    from sklearn.dummy import DummyClassifier

    with pytest.raises(ModelSpecError, match="trains a torch model data-parallel"):
        aiaas.train(DummyClassifier(), _frame(200), "y", name="ddp-sklearn", workers=2)
    assert {r.id for r in aiaas.registry.list_jobs(1000)} == before  # nothing recorded, nothing submitted


def test_the_magic_takes_workers(shell, aiaas):
    from IPython.utils.capture import capture_output

    shell.user_ns["ddp_frame"] = _frame(2000)
    with capture_output():
        shell.run_cell_magic("aiaas", "train --data ddp_frame --target y --name ddp-magic --workers 2 "
                                      "--epochs 2 --batch-size 32 --block",
                             "import torch\ntorch.manual_seed(0)\n"
                             "model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))")
    mv = aiaas.registry.get("ddp-magic")
    assert mv.params["workers"] == 2 and len(mv.extra["ranks"]) == 2


def test_a_rank_whose_peers_never_come_gives_up_within_the_timeout(monkeypatch):
    """The group's bound on waiting: a rank alone fails after the timeout instead of hanging, and
    the failure is recognised as the group's (it becomes one line naming the rank)."""
    import time

    from aiaas_jupyter.rank_process import _collective_failure
    from aiaas_jupyter.remote_ddp import free_port
    from aiaas_jupyter.training.base import TrainSpec
    from aiaas_jupyter.training.torch_ddp import fit_rank

    for var in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "AIAAS_PINNED_SOCKET_IFNAME"):
        monkeypatch.delenv(var, raising=False)  # what the rank pins here stays in this test
    t0 = time.time()
    with pytest.raises(RuntimeError) as e:
        fit_rank(TrainSpec(model=_model(), target="y", epochs=1), _frame(200), lambda ev: None, rank=0, world=2,
                 init_method=f"tcp://127.0.0.1:{free_port()}", classes=[0, 1, 2], timeout_s=3)
    assert time.time() - t0 < 30
    assert _collective_failure(e.value), repr(e.value)


def test_a_regression_target_trains_data_parallel_too(aiaas, one_torch_thread):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(t=X[:, 0] * 2.0 - X[:, 1] + 0.1 * rng.normal(size=3000))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    job = aiaas.train(model, df, "t", name="ddp-reg", epochs=8, batch_size=32, lr=0.01, block=True, workers=2)
    mv = job.version
    assert mv.params["loss"] == "MSELoss" and mv.extra["task"] == "regression"
    assert set(mv.metrics) >= {"r2", "mse"} and mv.metrics["r2"] > 0.9, mv.metrics


def test_a_rank_stuck_holding_the_gil_fails_its_job_and_never_freezes_its_worker(aiaas):
    """Each rank trains in a child process of its task: the stuck one is silenced, not its worker
    (which answers at once throughout), and is killed after aiaas.jobs.data-parallel-timeout; its
    peer's collective times out the same way; the job fails in one line and registers nothing."""
    from aiaas_jupyter.errors import JobError, ModelNotFoundError

    with dask.config.set({"aiaas.jobs.data-parallel-timeout": 6}):
        job = aiaas.train(HoldsTheGil(), _frame(2000), "y", name="ddp-stuck", epochs=3, batch_size=32, workers=2)
        rank0 = _rank_worker(aiaas, job, 0)
        time.sleep(3)  # the rank is in its first batch by now (its process was started by earlier tests)
        answers = [_answer_time(aiaas, rank0) for _ in range(4)]
        t0 = time.time()
        with pytest.raises(JobError) as e:
            job.result(timeout=120)
    assert max(answers) < 2, answers  # the worker's event loop never stopped
    assert time.time() - t0 < 60
    message = str(e.value)
    assert "\n" not in message and re.search(r"rank (0 of 2 stalled: its process gave no sign of life for \d+ s and was killed"
                                                r"|1 of 2 lost its group)", message), message
    assert job.status == "error"
    with pytest.raises(ModelNotFoundError):
        aiaas.registry.versions("ddp-stuck")
    deadline = time.time() + 30  # both ranks ended: nothing keeps a worker busy
    while any(aiaas.dask.processing().values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(aiaas.dask.processing().values())


@pytest.mark.parametrize("data", ["in-kernel", "streamed"])
def test_cancelling_a_data_parallel_job_stops_every_rank_at_an_epoch_end(aiaas, one_torch_thread, data):
    from aiaas_jupyter.errors import JobCancelledError, ModelNotFoundError

    frame = _frame(2000)
    if data == "streamed":  # each rank reading its partitions: the stop is agreed between partitions
        frame = pytest.importorskip("dask.dataframe").from_pandas(frame, npartitions=4)
    job = aiaas.train(_model(), frame, "y", name="ddp-cancelled", epochs=500, batch_size=32, workers=2)
    deadline = time.time() + 120
    while not any(e.get("stage") == "epoch" for e in job.events) and time.time() < deadline:
        time.sleep(0.05)
    assert any(e.get("stage") == "epoch" for e in job.events), job.events
    t0 = time.time()
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.result(timeout=60)
    assert job.status == "cancelled"
    deadline = time.time() + 30  # each rank stopped at its epoch's end and gave its worker back
    while any(aiaas.dask.processing().values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(aiaas.dask.processing().values()) and time.time() - t0 < 30
    with pytest.raises(ModelNotFoundError):
        aiaas.registry.versions("ddp-cancelled")


def test_the_interface_is_pinned_to_the_route_to_rank_0_unless_the_user_chose_one(monkeypatch):
    """Ours (marked) is recomputed in every rank: a process started by one that ran a rank in-process
    inherits it, and on another host "lo" would send the peers to 127.0.0.1. The user's stays."""
    from aiaas_jupyter.training.torch_ddp import PINNED_BY_US, pin_interface

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "inherited0")
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "users-choice")
    monkeypatch.setenv(PINNED_BY_US, "inherited0")
    pin_interface("tcp://127.0.0.1:29500")
    loopback = os.environ["GLOO_SOCKET_IFNAME"]
    assert loopback != "inherited0" and os.environ[PINNED_BY_US] == loopback  # lo, or however it is named
    assert os.environ["NCCL_SOCKET_IFNAME"] == "users-choice"
