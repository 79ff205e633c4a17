"""Trainers run in-process (no Dask) on small seeded data; assertions are on measured values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.errors import DataError, ModelSpecError
from aiaas_jupyter.training import TrainSpec, data_fingerprint, detect_framework, run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(model, df, target="y", **kw):
    events = []
    result = run_training(TrainSpec(model=model, target=target, **kw), df, events.append)
    return result, events


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame  # target column: "target"


def synthetic_multiclass(n=4000, d=64, k=10, seed=0):
    """X~N(0,1), W~N(0,1), y = argmax(X@W + 0.5*noise): learnable, not trivially."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, k))
    y = np.argmax(X @ W + 0.5 * rng.normal(size=(n, k)), axis=1)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(d)])
    df["y"] = y
    return df


# ------------------------------------------------------------------ framework detection
def test_detect_framework():
    from sklearn.linear_model import LogisticRegression
    from torch import nn

    assert detect_framework(LogisticRegression()) == "sklearn"
    assert detect_framework(nn.Linear(2, 2)) == "torch"
    with pytest.raises(ModelSpecError, match="got int"):
        detect_framework(42)
    with pytest.raises(ModelSpecError, match="class LogisticRegression"):
        detect_framework(LogisticRegression)


def test_model_42_is_a_spec_error(iris):
    with pytest.raises(ModelSpecError, match="scikit-learn estimator/pipeline or a torch.nn.Module"):
        _run(42, iris, target="target")


def test_missing_target_names_available_columns(iris):
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(DataError) as err:
        _run(RandomForestClassifier(), iris, target="species")
    assert "'species'" in str(err.value)
    assert "sepal length (cm)" in str(err.value) and "target" in str(err.value)


# ------------------------------------------------------------------ scikit-learn
def test_random_forest_iris(iris):
    from sklearn.ensemble import RandomForestClassifier
    from aiaas_jupyter.artifacts.codec import load_sklearn

    result, events = _run(RandomForestClassifier(random_state=0), iris, target="target")
    assert result.framework == "sklearn" and result.device == "cpu"
    assert result.metrics["accuracy"] >= 0.9 and result.metrics["f1_macro"] >= 0.9
    assert (result.n_train, result.n_test) == (120, 30)
    assert [e["stage"] for e in events] == ["fit", "evaluate", "done"]
    assert [e["progress"] for e in events] == [0.0, 0.9, 1.0]
    assert events[-1]["metrics"] == result.metrics
    assert result.extra["task"] == "classification" and result.extra["classes"] == [0, 1, 2]
    assert result.extra["target"] == "target" and len(result.extra["feature_names"]) == 4
    assert result.params["n_estimators"] == 100 and result.params["random_state"] == 0
    json.dumps([result.params, result.metrics, result.extra, result.library_versions])
    assert {"python", "numpy", "pandas", "scikit-learn", "skops"} <= set(result.library_versions)
    assert result.data_fingerprint == data_fingerprint(iris)

    # The artifact predicts exactly like a deterministic retrain on the same split.
    from sklearn.model_selection import train_test_split

    loaded = load_sklearn(result.artifacts["model.skops"])
    X, y = iris.drop(columns=["target"]), iris["target"]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    reference = RandomForestClassifier(random_state=0).fit(X_tr, y_tr)
    np.testing.assert_array_equal(loaded.predict(X_te), reference.predict(X_te))
    assert (loaded.predict(X_te) == y_te).mean() == pytest.approx(result.metrics["accuracy"])


def test_unset_random_state_gets_the_seed(iris):
    from sklearn.ensemble import RandomForestClassifier

    a, _ = _run(RandomForestClassifier(n_estimators=10), iris, target="target", seed=3)
    b, _ = _run(RandomForestClassifier(n_estimators=10), iris, target="target", seed=3)
    assert a.params["random_state"] == 3 and a.extra["seeded_random_state"] == ["random_state"]
    from aiaas_jupyter.artifacts.codec import load_sklearn

    X = iris.drop(columns=["target"])
    np.testing.assert_array_equal(load_sklearn(a.artifacts["model.skops"]).predict_proba(X),
                                  load_sklearn(b.artifacts["model.skops"]).predict_proba(X))


def test_random_forest_synthetic():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)]).assign(y=y)
    result, _ = _run(RandomForestClassifier(n_estimators=100, max_depth=5), df)
    assert result.metrics["accuracy"] >= 0.8  # measured 0.845
    assert result.params["max_depth"] == 5


def test_pipeline_and_string_labels(iris):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names = np.array(["setosa", "versicolor", "virginica"])
    df = iris.assign(target=names[iris["target"]])
    result, _ = _run(make_pipeline(StandardScaler(), LogisticRegression()), df, target="target")
    assert result.metrics["accuracy"] >= 0.9  # measured 0.933
    assert result.extra["classes"] == list(names)
    assert isinstance(result.params["steps"], str)  # estimators are repr'd, not dropped


def test_regression():
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge

    X, y = make_regression(n_samples=500, n_features=8, noise=5.0, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).assign(y=y)
    result, _ = _run(Ridge(), df)
    assert result.extra["task"] == "regression" and "classes" not in result.extra
    assert result.metrics["r2"] >= 0.99 and result.metrics["mae"] > 0 and result.metrics["rmse"] > 0


def test_sklearn_rejects_torch_options(iris):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ModelSpecError, match="only apply to torch"):
        _run(LogisticRegression(), iris, target="target", loss=object())


# ------------------------------------------------------------------ fingerprint
def test_data_fingerprint():
    df = synthetic_multiclass(n=200)
    fp = data_fingerprint(df)
    assert len(fp) == 64 and fp == data_fingerprint(df.copy()) == data_fingerprint(df.reset_index(drop=True).set_axis(range(5, 205)))
    changed = df.copy()
    changed.iloc[17, 3] += 1e-3
    assert data_fingerprint(changed) != fp
    assert data_fingerprint(df.astype({"y": "float64"})) != fp  # dtype is part of it
    assert data_fingerprint(df.rename(columns={"f0": "g0"})) != fp


# ------------------------------------------------------------------ torch
import torch  # noqa: E402 - a test dependency: a missing torch must fail, not skip
nn = torch.nn




def mlp(d_in, hidden, d_out, *tail):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out), *tail)


def test_torch_mlp_multiclass():
    df = synthetic_multiclass()
    result, events = _run(mlp(64, 64, 10), df, epochs=5, batch_size=64, lr=3e-3)
    assert result.framework == "torch" and result.device == "cpu"
    assert result.metrics["accuracy"] >= 0.8  # chance is ~0.1; measured 0.8675
    assert result.params["loss"] == "CrossEntropyLoss" and result.params["optimizer"] == "AdamW"
    assert result.params["n_parameters"] == 64 * 64 + 64 + 64 * 10 + 10
    epochs = [e for e in events if e["stage"] == "epoch"]
    assert result.history == epochs and [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5]
    losses = [e["loss"] for e in epochs]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert [e["val_loss"] for e in epochs][-1] < [e["val_loss"] for e in epochs][0]
    assert all(e["samples_per_s"] > 0 and 0 < e["progress"] <= 1 for e in epochs)
    assert events[0]["stage"] == "fit" and events[-1]["stage"] == "done"
    assert result.extra["classes"] == list(range(10))
    assert set(result.artifacts) == {"model.safetensors", "model.onnx", "model.json"}
    assert result.metrics["accuracy"] == epochs[-1]["val_accuracy"]


def test_torch_is_deterministic_for_a_seed():
    df = synthetic_multiclass(n=1000)
    a, _ = _run(mlp(64, 32, 10), df, epochs=2, batch_size=128)
    b, _ = _run(mlp(64, 32, 10), df, epochs=2, batch_size=128)
    assert a.metrics == b.metrics
    assert a.artifacts["model.safetensors"] == b.artifacts["model.safetensors"]


@pytest.mark.parametrize("rows, share, n_train, n_test, expected", [
    (None, None, 80_000, 20_000, 20_000),         # no bound: every held-out row
    (10_000, None, 80_000, 20_000, 10_000),
    (10_000, 0.02, 80_000, 20_000, 4_800),        # W1: 3 x 0.02 x 80,000
    (None, 0.02, 80_000, 20_000, 4_800),
    (10_000, 0.02, 1_600_000, 400_000, 10_000),   # a 2M-row job keeps its 10,000
    (10_000, 0.02, 40_000, 10_000, 2_400),
    (10_000, 0.02, 20_000, 5_000, 2_000),         # never under 2,000 ...
    (10_000, 0.02, 8_000, 1_500, 1_500),          # ... unless fewer are held out
    (1_000, 0.02, 80_000, 20_000, 1_000),         # the row cap under the floor still holds
    (None, 0.07, 12_000, 3_000, 2_520),           # 2,520 exactly, not one more from float rounding
    (None, None, 10, 0, 1),
])
def test_the_per_epoch_evaluation_sample_is_bounded_by_rows_and_by_its_share_of_an_epoch(rows, share, n_train,
                                                                                          n_test, expected):
    from aiaas_jupyter.training.base import epoch_eval_size

    spec = TrainSpec(model=None, target="y", epoch_eval_rows=rows, epoch_eval_share=share)
    assert epoch_eval_size(spec, n_train, n_test) == expected


@pytest.mark.parametrize("batch_size, eval_batch", [(128, 4096), (4096, 4096), (5000, 5000)])
def test_torch_held_out_rows_are_measured_in_batches_of_the_training_batch_or_4096(monkeypatch, batch_size, eval_batch):
    """Not larger than the training batch (on the CPU a larger one makes glibc map and fault in
    new activation buffers on every evaluation), and not tiny when the training batch is."""
    from aiaas_jupyter.training import torch as torch_trainer
    from aiaas_jupyter.training.base import eval_batch_size

    assert eval_batch_size(batch_size) == eval_batch
    batches = []
    evaluate = torch_trainer._evaluate
    monkeypatch.setattr(torch_trainer, "_evaluate", lambda *a: batches.append(a[-1]) or evaluate(*a))
    result, _ = _run(mlp(64, 32, 10), synthetic_multiclass(n=2000), epochs=2, batch_size=batch_size)
    assert batches == [eval_batch, eval_batch]
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and result.n_test == 400


def test_torch_intermediate_epochs_are_evaluated_on_a_sample_and_the_last_on_every_held_out_row(monkeypatch):
    """``epoch_eval_rows``: epochs but the last are measured on the first rows of the shuffled
    held-out split (their events say how many); the last epoch and the metrics on all of them,
    the same as with no sample (the sample changes no weight)."""
    import torch as t

    from aiaas_jupyter.training import torch as torch_trainer

    df = synthetic_multiclass(n=2000)  # 400 held out
    evaluated = []  # rows of each evaluation
    evaluate = torch_trainer._evaluate
    monkeypatch.setattr(torch_trainer, "_evaluate", lambda m, f, X, *a: evaluated.append(len(X)) or evaluate(m, f, X, *a))
    sampled, ev_s = _run(mlp(64, 32, 10), df, epochs=3, batch_size=128, epoch_eval_rows=150)
    assert evaluated == [150, 150, 400]
    whole, ev_w = _run(mlp(64, 32, 10), df, epochs=3, batch_size=128)
    epochs_s = [e for e in ev_s if e["stage"] == "epoch"]
    epochs_w = [e for e in ev_w if e["stage"] == "epoch"]
    assert [e.get("val_rows") for e in epochs_s] == [150, 150, None]
    assert all("val_rows" not in e for e in epochs_w)
    assert sampled.n_test == 400 and sampled.metrics == whole.metrics
    assert sampled.artifacts["model.safetensors"] == whole.artifacts["model.safetensors"]
    assert epochs_s[-1]["val_accuracy"] == epochs_w[-1]["val_accuracy"]
    assert epochs_s[0]["loss"] == epochs_w[0]["loss"]  # the same training
    # stopped after an intermediate epoch: the model handed back is measured on every held-out row
    asked = []

    def stop_after_first_epoch():
        asked.append(1)
        return len([e for e in events if e["stage"] == "epoch"]) >= 1

    events: list = []
    spec = TrainSpec(model=mlp(64, 32, 10), target="y", epochs=3, batch_size=128, epoch_eval_rows=150)
    evaluated.clear()
    fitted = torch_trainer.fit(spec, df, events.append, should_stop=stop_after_first_epoch)
    assert fitted.stopped and fitted.epochs_run == 1 and asked and evaluated == [150, 400]
    assert fitted.metrics["accuracy"] == epochs_w[0]["val_accuracy"]  # the first epoch's model, on all 400
    assert fitted.metrics["loss"] == events[-1]["loss"] and t.is_tensor(fitted.export["sample"])


def binary_frame(n=2000, d=64, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(d)]).assign(y=y)


def test_torch_sigmoid_bce():
    model = mlp(64, 32, 1, nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    result, _ = _run(model, binary_frame(), optimizer=opt, loss=nn.BCELoss(), epochs=10, batch_size=32)
    assert result.metrics["accuracy"] >= 0.9  # measured 0.96
    assert result.params["optimizer"] == "Adam" and result.params["loss"] == "BCELoss"
    assert result.params["lr"] == 0.001
    assert opt.state, "the user's optimizer was the one stepping"
    meta = json.loads(result.artifacts["model.json"])
    assert meta["output_dim"] == 1 and meta["threshold"] == 0.5 and meta["classes"] == [0, 1]


def test_torch_binary_default_loss_is_bce_with_logits():
    result, _ = _run(mlp(64, 16, 1), binary_frame(n=800), epochs=10, batch_size=32, lr=1e-2)
    assert result.params["loss"] == "BCEWithLogitsLoss"
    assert result.metrics["accuracy"] >= 0.8  # measured 0.88


def test_torch_optimizer_rebound_when_unpickled_apart():
    """Model and optimizer pickled separately no longer share Parameters: rebind them."""
    import copy

    model = mlp(64, 16, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    shipped = copy.deepcopy(model)
    before = [p.detach().clone() for p in shipped.parameters()]
    result, _ = _run(shipped, synthetic_multiclass(n=500), optimizer=opt, epochs=1, lr=0.05)
    assert result.params["lr"] == 0.05
    assert all(not torch.equal(a, b) for a, b in zip(before, shipped.parameters()))
    assert opt.param_groups[0]["params"][0] is next(shipped.parameters())


def test_torch_regression():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    df = pd.DataFrame(X, columns=list("abcdefgh")).assign(y=X @ rng.normal(size=8) + 0.1 * rng.normal(size=1000))
    result, _ = _run(mlp(8, 32, 1), df, epochs=20, batch_size=32, lr=1e-2)
    assert result.params["loss"] == "MSELoss" and result.extra["task"] == "regression"
    assert result.metrics["r2"] >= 0.9 and result.metrics["mse"] < 1.0  # measured r2 0.99


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        return self.head(self.conv(x.reshape(-1, 1, 8, 8)).flatten(1))


@pytest.fixture(scope="module")
def digits_result():
    from sklearn.datasets import load_digits

    df = load_digits(as_frame=True).frame  # 64 pixel columns + "target"
    df[df.columns[:-1]] = df[df.columns[:-1]] / 16.0
    torch.manual_seed(0)
    result, _ = _run(DigitsCNN(), df, target="target", epochs=10, batch_size=32, lr=3e-3)
    return df, result


def test_torch_cnn_digits(digits_result):
    _, result = digits_result
    assert result.metrics["accuracy"] >= 0.93  # measured 0.97
    assert result.params["module"] == "DigitsCNN"


def test_bad_torch_inputs():
    df = synthetic_multiclass(n=100)
    with pytest.raises(ModelSpecError, match="failed on a batch"):
        _run(mlp(10, 8, 10), df, epochs=1)
    with pytest.raises(ModelSpecError, match="12 classes but the model outputs 10"):
        _run(mlp(64, 8, 10), df.assign(y=np.arange(100) % 12), epochs=1)
    with pytest.raises(DataError, match="non-numeric columns: f3"):
        _run(mlp(64, 8, 10), df.assign(f3="x"), epochs=1)
    with pytest.raises(ModelSpecError, match="loss must be"):
        _run(mlp(64, 8, 10), df, loss=nn.CrossEntropyLoss, epochs=1)


def test_plain_text_pipeline_gets_the_documents():
    """make_pipeline(TfidfVectorizer(), LogisticRegression()) on a [text, label] frame: the
    vectorizer receives the text column itself, and the artifact predicts raw strings."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from aiaas_jupyter.artifacts.codec import load_sklearn

    rng = np.random.default_rng(2)
    good, bad = ["great", "lovely", "superb", "fine"], ["awful", "boring", "terrible", "dull"]
    texts, labels = [], []
    for _ in range(200):
        positive = bool(rng.integers(0, 2))
        words = rng.choice(good if positive else bad, size=3)
        texts.append("the film was " + " and ".join(words))
        labels.append("pos" if positive else "neg")
    df = pd.DataFrame({"text": texts, "label": labels})
    res = run_training(TrainSpec(model=make_pipeline(TfidfVectorizer(), LogisticRegression()), target="label"),
                       df, lambda e: None)
    assert res.metrics["accuracy"] == 1.0
    assert res.extra["input_kind"] == "text" and res.extra["feature_names"] == ["text"]
    model = load_sklearn(res.artifacts["model.skops"])
    assert list(model.predict(["what a superb and lovely film", "dull and awful"])) == ["pos", "neg"]
