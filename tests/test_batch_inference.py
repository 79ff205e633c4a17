"""Batch inference on the cluster (issue 15 point 1): ``predict(..., on_cluster=True)``, ``embed(...,
on_cluster=True)`` and ``%aiaas predict|embed --on-cluster`` on the session's real LocalCluster
(2 worker processes). Predictions are compared value for value with the registered model loaded in
the kernel; the model is loaded once per worker process, whatever the number of partitions."""

from __future__ import annotations

import hashlib
import os

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

from aiaas_jupyter import batch_remote
from aiaas_jupyter.batch_job import BatchJob
from aiaas_jupyter.errors import (DataError, IntegrityError, JobCancelledError, JobFailedError,
                                  ModelNotFoundError, ModelSpecError)
from support.serving_models import register, text_frame, train_text_ct


def _frame(rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((rows, 5)), columns=[f"f{i}" for i in range(5)])
    X["label"] = np.where(X.f0 + 0.5 * X.f1 > 0, "up", "down")
    return X


@pytest.fixture(scope="module", autouse=True)
def _unload_models(aiaas):
    """The session's workers serve the other tests afterwards: they keep no model of these."""
    yield
    aiaas.dask.run(batch_remote.forget_models)


@pytest.fixture(scope="module")
def forest(aiaas):
    """A RandomForest on five numeric columns with string labels, registered by the trainer."""
    from sklearn.ensemble import RandomForestClassifier

    from aiaas_jupyter.training import TrainSpec, run_training

    res = run_training(TrainSpec(model=RandomForestClassifier(n_estimators=15, random_state=0), target="label"),
                       _frame(), lambda e: None)
    mv = register(aiaas.registry, "batch-rf", res)
    return mv, aiaas.load_model(mv.ref)


def _loads(aiaas) -> dict[str, int]:
    return {w: v["loads"] for w, v in aiaas.dask.run(batch_remote.model_loads).items()}


def test_predictions_on_the_workers_equal_the_kernels_and_keep_the_index(aiaas, forest):
    mv, local = forest
    data = _frame(3000, seed=1).drop(columns="label")
    data.index = pd.RangeIndex(10_000, 13_000)  # not 0..N: the output must follow the input's index
    ddf = dd.from_pandas(data.assign(extra="ignored"), npartitions=12)
    before = _loads(aiaas)
    scored = aiaas.predict(mv.ref, ddf, on_cluster=True, proba=True, progress=False)
    assert isinstance(scored, dd.DataFrame) and scored.npartitions == 12
    out = scored.compute()
    assert list(out.columns) == ["prediction", "proba_down", "proba_up"]
    assert out.index.equals(data.index)
    assert pd.api.types.is_string_dtype(out.prediction)  # labels are strings (Dask keeps them as such)
    assert (out.prediction.to_numpy() == local.predict(data)).all()
    np.testing.assert_allclose(out[["proba_down", "proba_up"]].to_numpy(), local.predict_proba(data))
    # again, by alias: the same artifact, so no worker loads anything new
    aiaas.registry.set_alias(mv.name, mv.version, "batch")
    again = aiaas.predict("batch-rf@batch", ddf, on_cluster=True, progress=False).compute()
    assert (again.prediction == out.prediction).all()
    after = _loads(aiaas)
    # 24 partitions on 2 processes: each process loaded the model at most once
    assert all(after[w] - before.get(w, 0) <= 1 for w in after), (before, after)
    assert sum(after[w] - before.get(w, 0) for w in after) >= 1


def test_a_pandas_frame_or_a_parquet_glob_and_saving_to_parquet(aiaas, forest, tmp_path):
    mv, local = forest
    data = _frame(2000, seed=2).drop(columns="label")
    from_pandas = aiaas.predict(mv.ref, data, on_cluster=True, progress=False)
    assert from_pandas.npartitions >= 2
    assert (from_pandas.compute().prediction.to_numpy() == local.predict(data)).all()

    src = tmp_path / "in"
    dd.from_pandas(data, npartitions=3).to_parquet(str(src))
    target = tmp_path / "scored"
    saved = aiaas.predict(mv.ref, str(src / "*.parquet"), on_cluster=True, save=str(target), progress=False)
    assert sorted(p.name for p in target.iterdir()) == ["part.00000.parquet", "part.00001.parquet",
                                                          "part.00002.parquet"]
    back = saved.compute().sort_index()
    assert back.index.equals(data.index) and (back.prediction.to_numpy() == local.predict(data)).all()

    with pytest.raises(DataError, match="exists and is not empty; nothing was scored"):
        aiaas.predict(mv.ref, data, on_cluster=True, save=str(target), progress=False)
    job = aiaas.predict(mv.ref, data.iloc[:100], on_cluster=True, save=str(target), overwrite=True,
                        block=False, progress=False)
    assert isinstance(job, BatchJob)
    assert len(job.result(timeout=60).compute()) == 100 and job.status == "finished"
    assert "saved to" in repr(job)


def test_a_text_pipeline_and_a_torch_model(aiaas, one_torch_thread):
    import torch

    mv = register(aiaas.registry, "batch-text", train_text_ct(seed=0))
    texts = text_frame(300, seed=5)
    got = aiaas.predict(mv.ref, dd.from_pandas(texts, npartitions=4), on_cluster=True, progress=False).compute()
    expected = aiaas.load_model(mv.ref).predict(texts)
    assert (got.prediction.to_numpy() == expected).all() and set(expected) == {"pets", "finance"}

    df = _frame(1200, seed=3)
    df["label"] = (df.label == "up").astype("int64")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    job = aiaas.train(net, df, "label", name="batch-mlp", epochs=3, batch_size=64, block=True)
    tv = job.result()
    data = df.drop(columns="label")
    got = aiaas.predict(tv.ref, dd.from_pandas(data, npartitions=3), on_cluster=True, proba=True,
                        progress=False).compute()
    onnx = aiaas.load_model(tv.ref)
    assert got.prediction.dtype == np.int64 and (got.prediction.to_numpy() == onnx.predict(data)).all()
    np.testing.assert_allclose(got[["proba_0", "proba_1"]].to_numpy(), onnx.predict_proba(data), rtol=1e-5)


def test_what_is_wrong_is_said_before_anything_runs(aiaas, forest):
    mv, _ = forest
    data = _frame(200).drop(columns="label")
    with pytest.raises(DataError, match=r"lacks 2 of batch-rf:\d+'s 5 input columns: 'f3', 'f4'"):
        aiaas.predict(mv.ref, data[["f0", "f1", "f2"]], on_cluster=True, progress=False)
    with pytest.raises(ModelNotFoundError):
        aiaas.predict("no-such-model", data, on_cluster=True, progress=False)
    with pytest.raises(DataError, match="cannot use a list as input"):
        aiaas.predict(mv.ref, [[1, 2, 3, 4, 5]], on_cluster=True, progress=False)
    with pytest.raises(DataError, match="takes numeric features"):
        aiaas.predict(mv.ref, data, on_cluster=True, column="f0", progress=False)
    with pytest.raises(ModelSpecError, match="built-in all-minilm-l6-v2"):
        aiaas.embed(mv.name, data, on_cluster=True, progress=False)
    with pytest.raises(Exception, match="options of on_cluster=True"):
        aiaas.predict(mv.ref, data, save="/tmp/x")


def test_a_failing_partition_is_one_line_and_a_cancel_keeps_nothing(aiaas, forest):
    mv, _ = forest
    data = _frame(400).drop(columns="label")
    bad = dd.from_pandas(data.assign(f2=np.where(data.index == 350, np.inf, data.f2)), npartitions=4)
    with pytest.raises(JobFailedError, match=r"predict batch-rf:\d+: partition 3 failed on the worker: "
                                             r"ValueError: Input X contains infinity"):
        aiaas.predict(mv.ref, bad, on_cluster=True, progress=False)
    with pytest.raises(DataError, match=r"column 'f2' is numeric \(float64\) in batch-rf:\d+'s signature"):
        aiaas.predict(mv.ref, dd.from_pandas(data, npartitions=4).assign(f2="text"), on_cluster=True, progress=False)

    big = dd.from_pandas(_frame(40_000, seed=4).drop(columns="label"), npartitions=200)
    job = aiaas.predict(mv.ref, big, on_cluster=True, block=False, progress=False)
    job.cancel()
    assert job.status == "cancelled" and job.done()
    with pytest.raises(JobCancelledError):
        job.result(timeout=5)


def test_the_worker_checks_the_artifacts_sha256(aiaas, forest):
    mv, _ = forest
    files = aiaas.registry.read_artifacts(mv)
    tampered = {name: data + b"\0" for name, data in files.items()}
    spec = {"ref": mv.ref, "kind": "tabular", "framework": "sklearn", "shas": dict(mv.artifacts),
            "extra": mv.extra, "inputs": [f"f{i}" for i in range(5)], "prediction": "prediction",
            "prediction_dtype": "object", "proba_columns": [], "save": None,
            "meta": pd.DataFrame({"prediction": pd.Series(dtype=object)})}
    part = _frame(10).drop(columns="label")
    aiaas.dask.run(batch_remote.forget_models)  # a loaded model is reused as it is: load it afresh
    fut = aiaas.dask.submit(batch_remote.score_partition, part, tampered, spec, pure=False)
    with pytest.raises(IntegrityError, match="reached the worker corrupted"):
        fut.result(timeout=60)
    assert hashlib.sha256(files["model.skops"]).hexdigest() == mv.artifacts["model.skops"]
    ok = aiaas.dask.submit(batch_remote.score_partition, part, files, spec, pure=False).result(timeout=60)
    assert len(ok) == 10


def test_embeddings_of_a_text_column_on_the_workers(aiaas):
    from aiaas_jupyter.serving.runtime import sentence_model

    texts = text_frame(40, seed=7)
    texts.index = pd.RangeIndex(500, 540)
    out = aiaas.embed("all-minilm-l6-v2", dd.from_pandas(texts, npartitions=2), on_cluster=True,
                      column="text", progress=False).compute()
    assert out.shape == (40, 384) and out.index.equals(texts.index) and out.dtypes.unique().tolist() == [np.float32]
    local = sentence_model(limit_threads=False).encode(texts.text.tolist(), convert_to_numpy=True)
    np.testing.assert_allclose(out.to_numpy(), local, atol=1e-4)
    with pytest.raises(DataError, match="which column holds the text"):
        aiaas.embed("all-minilm-l6-v2", texts.assign(other="x"), on_cluster=True, progress=False)


def test_the_magic(shell, aiaas, forest):
    mv, local = forest
    data = _frame(500, seed=6).drop(columns="label")
    shell.user_ns["to_score"] = dd.from_pandas(data, npartitions=2)
    res = shell.run_cell(f"%aiaas predict {mv.ref} --input to_score --on-cluster --proba -o scored")
    assert res.success, res.error_in_exec
    scored = shell.user_ns["scored"].compute()
    assert (scored.prediction.to_numpy() == local.predict(data)).all() and "proba_up" in scored
    for line, message in ((f"%aiaas predict {mv.ref} --input to_score --save out.parquet", "go with --on-cluster"),
                          (f"%aiaas predict {mv.ref} --input '[[1,2]]' --on-cluster", "must be a DataFrame variable"),
                          (f"%aiaas predict {mv.ref} --input to_score --on-cluster --endpoint", "do not go together")):
        with pytest.raises(UsageError, match=message):
            shell.run_line_magic("aiaas", line.removeprefix("%aiaas "))
    assert not os.path.exists("out.parquet")
