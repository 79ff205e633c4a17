"""Torch checkpoints (training/checkpoints.py): safe data only, written atomically, and a run
resumed from one ends exactly where an uninterrupted run ends (same seed, same device)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from aiaas_jupyter.training import run_training  # noqa: E402
from aiaas_jupyter.training.base import TrainSpec  # noqa: E402
from aiaas_jupyter.training.checkpoints import (  # noqa: E402
    FILE, CheckpointError, CheckpointStore, JobCheckpoints, decode, encode, restore)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(y=y)


def mlp() -> "torch.nn.Module":
    torch.manual_seed(7)  # the same initial weights for every run
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(32, 3))


def spec(epochs: int = 6) -> TrainSpec:
    return TrainSpec(model=mlp(), target="y", epochs=epochs, batch_size=32, seed=3)


def weights(result) -> dict:
    from safetensors.torch import load

    blob = next(v for k, v in result.artifacts.items() if k.endswith(".safetensors"))
    return load(blob)


def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    df = frame()
    full = run_training(spec(), df, lambda e: None)

    store = CheckpointStore(str(tmp_path / "ckpt"))
    events: list = []
    died_after = 3

    def dies_after_epoch_3(event):  # the worker "dies" in epoch 4, after epoch 3's checkpoint
        events.append(event)

    ckpts = JobCheckpoints(store, "job1")
    stopped = run_training(spec(), df, dies_after_epoch_3,
                           should_stop=lambda: any(e.get("epoch") == died_after + 1 and e["stage"] == "epoch"
                                                   for e in events), checkpoints=ckpts)
    assert stopped is None and ckpts.saves == died_after  # stopped at epoch 4's end, before its save
    saved = decode((tmp_path / "ckpt" / "job1" / FILE).read_bytes())
    assert saved.epoch == died_after and [h["epoch"] for h in saved.history] == [1, 2, 3]

    resumed_events: list = []
    resumed = run_training(spec(), df, resumed_events.append, checkpoints=JobCheckpoints(store, "job1"))
    assert [e["epoch"] for e in resumed_events if e["stage"] == "resumed"] == [died_after]
    assert [e["epoch"] for e in resumed_events if e["stage"] == "epoch"] == [4, 5, 6]  # epochs 1-3 not redone
    assert resumed.extra["resumed_from_epoch"] == died_after
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics == full.metrics
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_the_file_is_safetensors_with_a_json_header_and_no_pickle(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(4, 8)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(1)
    blob = encode(model, opt, gen, 2, [{"epoch": 1}, {"epoch": 2}])
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    assert json.loads(header["__metadata__"]["format"]) == "aiaas-checkpoint/1"
    assert {k for k in header if k != "__metadata__"} >= {"model.0.weight", "optim.0.momentum_buffer",
                                                            "rng.torch", "rng.generator"}
    assert b"\x80\x04" not in blob[8:8 + length]  # no pickle protocol marker in the header
    fresh = mlp()
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.5, momentum=0.1)
    fresh_gen = torch.Generator().manual_seed(99)
    restore(decode(blob), fresh, fresh_opt, fresh_gen)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), fresh.parameters()))
    assert fresh_opt.param_groups[0]["lr"] == 0.1 and fresh_opt.param_groups[0]["momentum"] == 0.9
    assert torch.equal(fresh_opt.state[fresh_opt.param_groups[0]["params"][0]]["momentum_buffer"],
                       opt.state[opt.param_groups[0]["params"][0]]["momentum_buffer"])
    assert torch.equal(fresh_gen.get_state(), gen.get_state())


def test_writes_are_atomic_and_drop_removes_everything(tmp_path):
    store = CheckpointStore(f"file://{tmp_path}/c")
    store.write("abc123", b"first")
    store.write("abc123", b"second")
    job_dir = tmp_path / "c" / "abc123"
    assert sorted(p.name for p in job_dir.iterdir()) == [FILE]  # no temporary file left
    (job_dir / ".tmp-deadbeef").write_bytes(b"half a checkpoint")  # a worker killed mid-write
    assert store.read("abc123") == b"second"
    assert store.drop("abc123") and not job_dir.exists() and store.read("abc123") is None
    assert store.drop("abc123") is False
    with pytest.raises(ValueError):
        store.write("../escape", b"x")


def test_an_optimizer_whose_state_is_not_plain_data_trains_without_checkpoints(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    opt.param_groups[0]["tags"] = {"warm", "restart"}  # a set: not JSON, so not checkpointable
    ckpts = JobCheckpoints(CheckpointStore(str(tmp_path)), "job2")
    events: list = []
    result = run_training(TrainSpec(model=model, optimizer=opt, target="y", epochs=3, batch_size=64), frame(),
                          events.append, checkpoints=ckpts)
    assert result is not None and len(result.history) == 3
    assert ckpts.saves == 0 and "not plain data" in ckpts.disabled
    assert not (tmp_path / "job2").exists()
    warnings = [e["message"] for e in events if e["stage"] == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("no checkpoints for this job:")


def test_a_checkpoint_of_another_model_is_refused_with_one_line(tmp_path):
    store = CheckpointStore(str(tmp_path))
    JobCheckpoints(store, "job3").save(*_state_of(mlp()), 1, [{"epoch": 1, "metrics": {}}])
    other = torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    with pytest.raises(CheckpointError, match="does not fit this model") as e:
        run_training(TrainSpec(model=other, target="y", epochs=2), frame(), lambda ev: None,
                     checkpoints=JobCheckpoints(store, "job3"))
    assert "\n" not in str(e.value)


def test_min_interval_spaces_the_saves(tmp_path):
    ckpts = JobCheckpoints(CheckpointStore(str(tmp_path)), "job4", min_interval=3600)
    result = run_training(spec(epochs=4), frame(), lambda e: None, checkpoints=ckpts)
    assert result is not None and ckpts.saves == 0
    every = JobCheckpoints(CheckpointStore(str(tmp_path)), "job5", min_interval=0)
    run_training(spec(epochs=4), frame(), lambda e: None, checkpoints=every)
    assert every.saves == 3  # after epochs 1-3; the last epoch is packaged, not checkpointed


def _state_of(model):
    opt = torch.optim.AdamW(model.parameters())
    return model, opt, torch.Generator().manual_seed(0)
