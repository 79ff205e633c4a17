"""Training jobs on a real LocalCluster of worker processes, through the magic and the façade."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from aiaas_jupyter.errors import (ClusterError, DataError, InvalidNameError, ModelNotFoundError, JobCancelledError, JobFailedError,
                                  ModelSpecError, ResourceError)

RF_CELL = "from sklearn.ensemble import RandomForestClassifier\nmodel = RandomForestClassifier(random_state=0)\n"


def versions_of(aiaas, name):
    try:
        return [v.version for v in aiaas.registry.versions(name)]
    except ModelNotFoundError:  # a model with no versions is not in the registry at all
        return []


def test_train_rf_on_iris_blocking(shell, aiaas, iris_frame):
    shell.user_ns["iris"] = iris_frame
    with capture_output() as cap:
        shell.run_cell_magic("aiaas", "train --data iris --target target --name iris-rf --block", RF_CELL)
    mv = aiaas.registry.get("iris-rf")
    assert mv.framework == "sklearn"
    assert mv.metrics["accuracy"] >= 0.9
    assert mv.params["random_state"] == 0 and mv.params["n_estimators"] == 100
    assert mv.source == RF_CELL
    assert len(mv.data_fingerprint) == 64 and set(mv.artifacts) == {"model.skops"}
    assert mv.library_versions["scikit-learn"]
    # the cell output carries lineage in its metadata
    meta = cap.outputs[-1].metadata
    assert meta["aiaas"] == {"model": "iris-rf", "version": mv.version, "job": mv.job_id,
                             "data_fingerprint": mv.data_fingerprint}
    # the model loads back from the skops artifact and predicts like a fitted RF
    model = aiaas.load_model("iris-rf")
    X = iris_frame.drop(columns="target")
    assert (model.predict(X) == iris_frame["target"]).mean() > 0.95
    # the job is recorded: finished, registered, with its worker and wall time
    rec = aiaas.registry.get_job(mv.job_id)
    assert rec.status == "finished" and rec.version == mv.version and rec.worker.startswith("tcp://")
    assert rec.duration_s > 0 and rec.progress == 1.0


def test_nonblocking_job_object(shell, aiaas, iris_frame):
    shell.user_ns["iris"] = iris_frame
    with capture_output():
        shell.run_cell_magic("aiaas", "train --data iris --target target --name iris-rf5 -o job",
                             "from sklearn.ensemble import RandomForestClassifier\n"
                             "model = RandomForestClassifier(n_estimators=100, max_depth=5, random_state=1)")
    job = shell.user_ns["job"]
    mv = job.result(timeout=120)
    assert job.status == "finished" and job.progress == 1.0
    assert mv.name == "iris-rf5" and mv.params["max_depth"] == 5
    assert [e["stage"] for e in job.events][0] == "start" and job.events[-1]["stage"] == "done"
    assert "finished" in job._repr_html_() and "iris-rf5:" in repr(job)
    # %aiaas jobs lists it with its model version; %aiaas result shows the model card
    table = shell.run_line_magic("aiaas", "jobs")
    row = next(r for r in table.records() if r["id"] == job.id)
    assert row["status"] == "finished" and row["model"] == f"iris-rf5:{mv.version}" and row["progress"] == "100%"
    card = shell.run_line_magic("aiaas", f"result {job.id}")
    assert dict(card.rows)["model"] == mv.ref


def test_versions_aliases_and_delete_via_magics(shell, aiaas, iris_frame):
    shell.user_ns["iris"] = iris_frame
    with capture_output():
        for _ in range(2):
            shell.run_cell_magic("aiaas", "train --data iris --target target --name flowers --block", RF_CELL)
    assert versions_of(aiaas, "flowers") == [1, 2]
    with capture_output():
        shell.run_line_magic("aiaas", "models alias flowers 1 prod")
    card = shell.run_line_magic("aiaas", "models show flowers@prod")
    assert dict(card.rows)["model"] == "flowers:1" and dict(card.rows)["aliases"] == "prod"
    listing = {r["model"]: r for r in shell.run_line_magic("aiaas", "models").records()}
    assert listing["flowers"]["latest"] == 2 and listing["flowers"]["aliases"] == "prod→1"
    with capture_output():
        shell.run_line_magic("aiaas", "models delete flowers:2")
    assert versions_of(aiaas, "flowers") == [1]
    with capture_output():
        shell.run_line_magic("aiaas", "models delete flowers")
    assert versions_of(aiaas, "flowers") == []


@pytest.mark.parametrize("cell, args, error, message", [
    ("x = 1", "--data iris --target target", ModelSpecError, "defines no `model`"),
    ("model = 42", "--data iris --target target", ModelSpecError, "got int"),
    (RF_CELL, "--data nosuch --target target", DataError, "no data named 'nosuch'"),
    (RF_CELL, "--data iris --target species", DataError, "target column 'species' is not in the data"),
    (RF_CELL, "--data iris --target target --gpus 1", ResourceError, "no worker can hold 1 GPU"),
    (RF_CELL, "--data iris --target target --name ../evil", InvalidNameError, "invalid model name"),
])
def test_bad_train_input_registers_nothing(shell, aiaas, iris_frame, capsys, cell, args, error, message):
    shell.user_ns["iris"] = iris_frame
    before = aiaas.registry.list_models(), len(aiaas.registry.list_jobs(1000))
    with pytest.raises(error) as info:
        shell.run_cell_magic("aiaas", f"train {args} --name bad-input --block" if "--name" not in args
                             else f"train {args} --block", cell)
    assert message in str(info.value).lower() or message in str(info.value)
    assert (aiaas.registry.list_models(), len(aiaas.registry.list_jobs(1000))) == before
    # shown in a notebook it is one line, no traceback
    shell.run_cell(f"%%aiaas train {args} --block\n{cell}")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines


def test_failed_job_shows_remote_error_and_registers_nothing(shell, aiaas, iris_frame, capsys):
    shell.user_ns["iris"] = iris_frame
    cell = ("from sklearn.base import BaseEstimator, ClassifierMixin\n"
            "class Broken(ClassifierMixin, BaseEstimator):\n"
            "    def fit(self, X, y):\n"
            "        raise RuntimeError('boom in fit')\n"
            "    def predict(self, X):\n"
            "        return X\n"
            "model = Broken()\n")
    with pytest.raises(JobFailedError) as info:
        with capture_output():
            shell.run_cell_magic("aiaas", "train --data iris --target target --name broken --block", cell)
    assert "RuntimeError: boom in fit" in str(info.value)
    assert "raise RuntimeError('boom in fit')" in info.value.remote_traceback
    assert versions_of(aiaas, "broken") == []
    rec = aiaas.registry.list_jobs(1)[0]
    assert rec.model == "broken" and rec.status == "error" and "boom in fit" in rec.error and rec.version is None
    # rendered in a notebook: the one-line error, then the remote traceback block
    shell.run_cell(f"%%aiaas train --data iris --target target --name broken --block\n{cell}")
    text = capsys.readouterr().out
    assert text.count("JobFailedError") == 1 and "--- remote traceback (on the worker) ---" in text


def test_cancel_a_running_job(shell, aiaas, iris_frame):
    shell.user_ns["iris"] = iris_frame
    cell = ("import time\nfrom sklearn.dummy import DummyClassifier\n"
            "class Slow(DummyClassifier):\n"
            "    def fit(self, X, y):\n"
            "        time.sleep(20)\n"
            "        return super().fit(X, y)\n"
            "model = Slow()\n")
    with capture_output():
        shell.run_cell_magic("aiaas", "train --data iris --target target --name slow -o slowjob", cell)
    job = shell.user_ns["slowjob"]
    assert job.wait(1) is False
    with capture_output():
        shell.run_line_magic("aiaas", f"cancel {job.id}")
    assert job.status == "cancelled"
    with pytest.raises(JobCancelledError):
        job.result(5)
    assert aiaas.registry.get_job(job.id).status == "cancelled"
    assert versions_of(aiaas, "slow") == []
    with pytest.raises(Exception, match="already cancelled"):
        shell.run_line_magic("aiaas", f"cancel {job.id}")


def test_cancelling_a_running_torch_job_frees_its_worker_at_the_next_epoch(aiaas, one_torch_thread):
    """Dask's cancel does not interrupt a running task: a cancelled job used to keep its worker
    until its last epoch (210 s seen). The job is now asked to stop on its worker, and does so
    within one epoch (or its ~1 s progress tick)."""
    import time

    import numpy as np
    import pandas as pd
    import torch

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 16)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(y=(X[:, 0] > 0).astype(int))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    job = aiaas.train(model, df, "y", name="long-torch", epochs=2000, batch_size=32)
    deadline = time.time() + 120
    while job.latest.get("epoch") is None and time.time() < deadline:  # running, one epoch done
        time.sleep(0.05)
    worker = job.record.worker
    assert worker and job.status == "running"
    aiaas.cancel(job.id)
    t0 = time.time()
    # the worker has one thread: this runs only once the cancelled training let go of it
    assert aiaas.dask.submit(lambda: 42, workers=[worker], allow_other_workers=False, pure=False).result(30) == 42
    assert time.time() - t0 < 10
    assert job.status == "cancelled" and versions_of(aiaas, "long-torch") == []


def test_jobs_survive_a_new_client(aiaas, iris_frame, session_home):
    """A kernel restart = a new façade on the same home: `%aiaas jobs` still lists the jobs."""
    from aiaas_jupyter.client import AiaasClient

    job = aiaas.train(__import__("sklearn.dummy", fromlist=["x"]).DummyClassifier(), iris_frame,
                      "target", name="restart-me", block=True)
    assert job.status == "finished"
    fresh = AiaasClient(home=session_home)
    ids = [r["id"] for r in fresh.jobs().records()]
    assert job.id in ids
    assert fresh.job(job.id).status == "finished"
    assert fresh.result(job.id).ref == f"restart-me:{job.version.version}"


def test_not_connected_and_unreachable(session_home):
    import time

    from aiaas_jupyter.client import AiaasClient

    c = AiaasClient(home=session_home)
    with pytest.raises(ClusterError, match="not connected"):
        c.status()
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match="could not reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s"):
        c.connect("tcp://127.0.0.1:9", timeout=2)
    assert time.perf_counter() - t0 < 15
    with pytest.raises(ClusterError, match="does not exist"):
        c.connect(scheduler_file="/nonexistent/scheduler.json")


def test_status_magic(shell, aiaas):
    table = shell.run_line_magic("aiaas", "status")
    assert "embedded LocalCluster" in table.title and "2 workers" in table.title
    assert len(table.rows) == 2 and all(r[2] == 1 for r in table.rows)
    assert "dashboard: http://" in table.note
    with pytest.raises(UsageError):
        shell.run_line_magic("aiaas", "status --nope")


def test_failed_connect_keeps_the_current_cluster(aiaas):
    before = aiaas.dask.scheduler.address
    with pytest.raises(ClusterError):
        aiaas.connect("tcp://127.0.0.1:9", timeout=1)
    assert aiaas.dask.scheduler.address == before and aiaas.status().rows


def test_defaults_come_from_dask_config(session_home):
    """`aiaas.cluster.*` in dask.config (or DASK_AIAAS__... variables) sets the defaults."""
    import dask

    from aiaas_jupyter.client import AiaasClient

    with dask.config.set({"aiaas.cluster.connect-timeout": "1s", "aiaas.cluster.address": "tcp://127.0.0.1:9"}):
        with pytest.raises(ClusterError, match="at tcp://127.0.0.1:9 within 1 s"):
            AiaasClient(home=session_home).connect()


def test_the_version_and_the_finished_job_are_one_transaction(tmp_path):
    """The end of a job writes the version row and the job's final fields in ONE transaction
    (one commit on the W0 path, and never a "finished" job without its version): when the job
    row cannot be written, no version is registered either — a failed job registers nothing."""
    from aiaas_jupyter.clock import now_iso
    from aiaas_jupyter.errors import JobNotFoundError
    from aiaas_jupyter.registry import JobRecord, Registry

    reg = Registry(tmp_path / "home")
    reg.record_job(JobRecord(id="a1b2c3d4e5", model="m", submitted=now_iso()))
    kw = dict(framework="sklearn", artifacts={"model.skops": b"0123456789"}, params={}, metrics={"accuracy": 0.75},
              library_versions={}, data_fingerprint="0" * 64, source="")
    with pytest.raises(JobNotFoundError):
        reg.register("m", job_id="ffffffffff", job_fields={"status": "finished", "progress": 1.0}, **kw)
    with pytest.raises(ModelNotFoundError):
        reg.versions("m")
    with pytest.raises(ValueError, match="unknown or read-only job field"):  # checked before any write
        reg.register("m", job_id="a1b2c3d4e5", job_fields={"nonsense": 1}, **kw)
    with pytest.raises(ModelNotFoundError):
        reg.versions("m")
    mv = reg.register("m", job_id="a1b2c3d4e5", job_fields={"status": "finished", "progress": 1.0}, **kw)
    rec = reg.get_job("a1b2c3d4e5")
    assert (mv.version, rec.status, rec.version, rec.progress) == (1, "finished", 1, 1.0)
    assert reg.read_artifacts("m:1") == {"model.skops": b"0123456789"}


def test_the_small_frame_estimate_follows_pandas():
    """The submit path sizes a frame without ``memory_usage`` (a few ms a job); the estimate must
    stay within a small factor of it, or small frames would be scattered / big ones inlined."""
    import numpy as np
    import pandas as pd

    from aiaas_jupyter.job_dispatch import SMALL_FRAME_BYTES, _shallow_nbytes

    rng = np.random.default_rng(0)
    frames = [pd.DataFrame(rng.standard_normal((200, 4))),
              pd.DataFrame({"a": rng.integers(0, 9, 50_000).astype("int8"), "b": rng.standard_normal(50_000),
                            "c": pd.Categorical(rng.choice(["x", "y"], 50_000)), "s": ["t"] * 50_000}),
              pd.DataFrame(rng.standard_normal((200_000, 3)).astype("float32"))]
    for frame in frames:
        pandas_says = int(frame.memory_usage(deep=False).sum())
        assert pandas_says / 2 <= _shallow_nbytes(frame) <= pandas_says * 2, (pandas_says, _shallow_nbytes(frame))
    assert _shallow_nbytes(frames[0]) < SMALL_FRAME_BYTES < _shallow_nbytes(frames[2])


def test_a_job_that_cannot_be_recorded_leaves_nothing_running(aiaas, iris_frame, monkeypatch):
    """The pending row is written while the task travels (after the submit, off the critical
    path); when that write fails, the task is cancelled, the error raised, and no job is left."""
    from sklearn.dummy import DummyClassifier

    from aiaas_jupyter.errors import RegistryError

    def fail(record):
        raise RegistryError("cannot record the job")

    before = set(aiaas.dispatcher.live_records())
    monkeypatch.setattr(aiaas.registry, "record_job", fail)
    with pytest.raises(RegistryError, match="cannot record the job"):
        aiaas.train(DummyClassifier(), iris_frame, "target", name="never-recorded")
    assert set(aiaas.dispatcher.live_records()) == before
    assert versions_of(aiaas, "never-recorded") == []
    monkeypatch.undo()
    job = aiaas.train(DummyClassifier(), iris_frame, "target", name="recorded", block=True)  # and the next works
    assert job.status == "finished" and aiaas.registry.get_job(job.id).version == job.version.version


@pytest.mark.parametrize("setting, expected", [
    ({"epoch-eval-rows": None}, [2000, 2000, None]),  # the default share, 0.02: 720 rows, so 2,000
    ({"epoch-eval-rows": 200}, [200, 200, None]),
    # 12,000 training rows: 3 x 0.07 x 12,000 = 2,520 of the 3,000 held out
    ({"epoch-eval-rows": None, "epoch-eval-share": 0.07}, [2520, 2520, None]),
    ({"epoch-eval-rows": 1000, "epoch-eval-share": 0.07}, [1000, 1000, None]),
    ({"epoch-eval-rows": 10000, "epoch-eval-share": 0.01}, [2000, 2000, None]),  # never under 2,000
    ({"epoch-eval-rows": None, "epoch-eval-share": None}, [None, None, None]),
])
def test_a_torch_jobs_per_epoch_evaluation_follows_the_epoch_eval_settings(aiaas, one_torch_thread,
                                                                            setting, expected):
    """``aiaas.jobs.epoch-eval-rows`` (default 10000) and ``epoch-eval-share`` (default 0.02): a
    job's epochs but the last are measured on at most that many of its held-out rows, and on no
    more than keep that evaluation to about that share of an epoch's training (a forward pass is a
    third of a training step per row: 3 x share x training rows, at least 2,000); the registered
    metrics on all of them (here 3,000)."""
    import dask
    import numpy as np
    import pandas as pd
    import torch

    rng = np.random.default_rng(3)
    X = rng.normal(size=(15000, 8)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(y=(X[:, 0] + X[:, 1] > 0).astype(int))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    with dask.config.set({f"aiaas.jobs.{k}": v for k, v in setting.items()}):
        job = aiaas.train(model, df, "y", name="eval-rows", epochs=3, batch_size=1024, lr=0.01, block=True)
    mv = job.version
    assert [e.get("val_rows") for e in mv.extra["history"]] == expected
    assert mv.extra["n_test"] == 3000 and mv.metrics["accuracy"] == mv.extra["history"][-1]["val_accuracy"] > 0.8


@pytest.mark.parametrize("key, bad, says", [
    *[("epoch-eval-rows", bad, "must be a whole number >= 1 or null") for bad in (0, -5, "many", 2.5, True)],
    *[("epoch-eval-share", bad, "must be a number in (0, 1] or null") for bad in (0, -0.5, 1.5, "some", True)],
])
def test_a_bad_epoch_eval_setting_is_one_line_before_anything_runs(aiaas, key, bad, says):
    import dask
    import numpy as np
    import pandas as pd
    import torch

    from aiaas_jupyter.errors import ConfigError

    df = pd.DataFrame({"a": np.arange(20, dtype=np.float32), "y": np.arange(20) % 2})
    model = torch.nn.Linear(1, 2)
    with dask.config.set({f"aiaas.jobs.{key}": bad}), pytest.raises(ConfigError) as err:
        aiaas.train(model, df, "y", name="bad-eval-setting", epochs=1)
    assert f"aiaas.jobs.{key} {says}" in str(err.value)
    assert "\n" not in str(err.value) and versions_of(aiaas, "bad-eval-setting") == []
