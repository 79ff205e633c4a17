"""fit / package, early stops and stepped fits, run in-process (no Dask) on tiny seeded data.

A sweep drives the trainers trial by trial: it reads metric M from every epoch event, asks a
trial to stop through ``should_stop``, and packages only the trial it keeps. These tests hold
the trainers to that, with assertions on measured values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import aiaas_jupyter.training.torch as torch_trainer
from aiaas_jupyter.artifacts.codec import load_sklearn
from aiaas_jupyter.errors import ModelSpecError
from aiaas_jupyter.training import (Fitted, TrainSpec, fit, is_iterative, package,
                                    run_training)
from aiaas_jupyter.training.sklearn_steps import warm_start_sizes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TIMING_KEYS = {"seconds", "samples_per_s"}


def classification_frame(n=400, d=6, seed=0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=d, n_informative=4, random_state=seed)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(d)]).assign(y=y)


def regression_frame(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(d)]).assign(y=y)


def _fit(model, df, should_stop=None, **kw):
    events = []
    fitted = fit(TrainSpec(model=model, target="y", **kw), df, events.append, should_stop)
    return fitted, events


def _epochs(events):
    return [e for e in events if e["stage"] == "epoch"]


def mlp(d_in=6, hidden=16, d_out=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def _untimed(history):
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in history]


# ------------------------------------------------------------------ fit + package == run_training
def test_run_training_is_package_of_fit_sklearn():
    from sklearn.ensemble import RandomForestClassifier

    df = classification_frame()
    run_events = []
    a = run_training(TrainSpec(model=RandomForestClassifier(n_estimators=15), target="y"), df, run_events.append)
    fitted, events = _fit(RandomForestClassifier(n_estimators=15), df)
    assert isinstance(fitted, Fitted) and fitted.framework == "sklearn"
    assert (fitted.stopped, fitted.epochs_run, fitted.history) == (False, 1, [])
    b = package(fitted, df)
    assert [e["stage"] for e in events] == ["fit", "evaluate"]  # "done" is run_training's, after packaging
    assert [e["stage"] for e in run_events] == ["fit", "evaluate", "done"]
    assert run_events[-1]["metrics"] == a.metrics
    assert a.metrics == b.metrics == fitted.metrics and a.metrics["accuracy"] > 0.8
    assert a.params == b.params and a.data_fingerprint == b.data_fingerprint
    assert {k: v for k, v in a.extra.items() if k != "fit_seconds"} == \
        {k: v for k, v in b.extra.items() if k != "fit_seconds"}
    X = df.drop(columns=["y"])
    np.testing.assert_array_equal(load_sklearn(a.artifacts["model.skops"]).predict_proba(X),
                                  load_sklearn(b.artifacts["model.skops"]).predict_proba(X))


def test_run_training_is_package_of_fit_torch():
    df = classification_frame()
    a = run_training(TrainSpec(model=mlp(), target="y", epochs=3, batch_size=32, lr=1e-2), df,
                     lambda e: None)
    fitted, _ = _fit(mlp(), df, epochs=3, batch_size=32, lr=1e-2)
    assert next(fitted.model.parameters()).device.type == "cpu" and not fitted.model.training
    b = package(fitted, df)
    assert a.metrics == b.metrics == fitted.metrics and a.params == b.params
    assert a.artifacts["model.safetensors"] == b.artifacts["model.safetensors"]
    assert a.artifacts["model.json"] == b.artifacts["model.json"]
    assert set(b.artifacts) == {"model.safetensors", "model.onnx", "model.json"}
    assert _untimed(a.history) == _untimed(b.history) and len(b.history) == 3
    assert a.extra == b.extra and a.data_fingerprint == b.data_fingerprint


# ------------------------------------------------------------------ torch: epoch metrics, should_stop
def test_torch_epoch_events_carry_the_final_metric_names():
    fitted, events = _fit(mlp(), classification_frame(), epochs=4, batch_size=32, lr=1e-2)
    epochs = _epochs(events)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4] and fitted.history == epochs
    for e in epochs:
        assert set(e["metrics"]) == set(fitted.metrics) == {"accuracy", "loss", "val_loss"}
        assert e["metrics"] == {"accuracy": e["val_accuracy"], "loss": e["loss"], "val_loss": e["val_loss"]}
    assert epochs[-1]["metrics"] == fitted.metrics
    assert epochs[-1]["metrics"]["accuracy"] > epochs[0]["metrics"]["accuracy"] - 0.05
    assert fitted.metrics["accuracy"] > 0.8  # measured 0.9

    reg, events = _fit(mlp(5, 16, 1), regression_frame(), epochs=3, batch_size=32, lr=1e-2)
    last = _epochs(events)[-1]
    assert set(last["metrics"]) == {"r2", "mse", "loss", "val_loss"} == set(reg.metrics)
    assert last["metrics"]["r2"] == last["val_r2"] == reg.metrics["r2"]
    assert last["metrics"]["mse"] == last["val_mse"]


def test_torch_should_stop_after_an_epoch(monkeypatch):
    monkeypatch.setattr(torch_trainer, "PROGRESS_INTERVAL_S", 1e9)  # no tick: only the epoch-end asks
    df = classification_frame()
    events = []
    asked = []

    def after_two_epochs():
        asked.append(len(_epochs(events)))
        return len(_epochs(events)) >= 2

    fitted = fit(TrainSpec(model=mlp(), target="y", epochs=6, batch_size=32, lr=1e-2), df,
                 events.append, after_two_epochs)
    assert fitted.stopped and fitted.epochs_run == 2 and len(fitted.history) == 2
    assert asked == [1, 2]  # asked once per epoch, after its event
    assert [e["epoch"] for e in _epochs(events)] == [1, 2] and events[-1]["stage"] == "epoch"
    assert fitted.metrics == fitted.history[-1]["metrics"]
    assert fitted.params["epochs"] == 6 and fitted.extra["epochs_run"] == 2
    # the first two epochs are those of an uninterrupted run with the same seed
    full, _ = _fit(mlp(), df, epochs=6, batch_size=32, lr=1e-2)
    assert _untimed(full.history[:2]) == _untimed(fitted.history)
    assert not full.stopped and full.epochs_run == 6 and "stopped" not in full.extra
    result = package(fitted, df)  # a stopped trial still packages: the model it has
    assert result.metrics == fitted.metrics and "model.onnx" in result.artifacts


def test_torch_should_stop_at_the_progress_tick(monkeypatch):
    """Stopped inside an epoch: that partial epoch is not reported; the metrics measure the
    partly trained model that package() would export."""
    monkeypatch.setattr(torch_trainer, "PROGRESS_INTERVAL_S", 0.0)  # a tick after every batch
    df = classification_frame()
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    fitted, events = _fit(model, df, should_stop=lambda: True, epochs=5, batch_size=32, lr=1e-2)
    assert fitted.stopped and fitted.epochs_run == 0 and fitted.history == [] and not _epochs(events)
    assert [e["stage"] for e in events] == ["fit", "train"]
    assert set(fitted.metrics) == {"accuracy", "loss", "val_loss"}
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # one batch ran

    events = []
    fitted = fit(TrainSpec(model=mlp(), target="y", epochs=5, batch_size=32, lr=1e-2), df, events.append,
                 lambda: events[-1]["stage"] == "train" and events[-1]["epoch"] == 2)
    assert fitted.stopped and fitted.epochs_run == 1 and [e["epoch"] for e in _epochs(events)] == [1]
    assert [e["epoch"] for e in events if e["stage"] == "train"][-1] == 2
    assert fitted.metrics != fitted.history[-1]["metrics"]  # a batch of epoch 2 moved the weights


def test_torch_never_stopping_equals_no_check():
    df = classification_frame()
    a, _ = _fit(mlp(), df, epochs=3, batch_size=32, lr=1e-2)
    b, _ = _fit(mlp(), df, should_stop=lambda: False, epochs=3, batch_size=32, lr=1e-2)
    assert a.metrics == b.metrics and not b.stopped and b.epochs_run == 3
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


# ------------------------------------------------------------------ scikit-learn: which models step
def test_is_iterative():
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn.ensemble import BaggingClassifier

    assert is_iterative(RandomForestClassifier()) and is_iterative(GradientBoostingRegressor())
    assert is_iterative(RandomForestClassifier(oob_score=True)) and is_iterative(BaggingClassifier())
    assert not is_iterative(BaggingClassifier(oob_score=True))  # sklearn refuses oob with warm_start
    assert is_iterative(SGDClassifier()) and is_iterative(MLPClassifier())
    assert not is_iterative(MLPClassifier(solver="lbfgs"))  # no partial_fit with lbfgs
    assert not is_iterative(LogisticRegression())
    assert is_iterative(make_pipeline(StandardScaler(), RandomForestClassifier()))
    assert is_iterative(make_pipeline(TfidfVectorizer(), SGDClassifier()))
    assert not is_iterative(make_pipeline(StandardScaler(), LogisticRegression()))
    assert is_iterative(nn.Linear(2, 2))
    with pytest.raises(ModelSpecError):
        is_iterative(42)


def test_warm_start_sizes():
    assert warm_start_sizes(100, 4) == [25, 50, 75, 100]
    assert warm_start_sizes(10, 3) == [3, 7, 10]
    assert warm_start_sizes(3, 10) == [1, 2, 3]  # never a step that adds nothing
    assert warm_start_sizes(5, 2) == [3, 5]
    for n in range(1, 40):
        for k in range(1, 12):
            sizes = warm_start_sizes(n, k)
            assert sizes[-1] == n and all(b > a for a, b in zip(sizes, sizes[1:])) and sizes[0] >= 1


# ------------------------------------------------------------------ scikit-learn: warm_start steps
def test_warm_start_forest_in_steps_equals_one_fit():
    from sklearn.ensemble import RandomForestClassifier

    df = classification_frame()
    stepped, events = _fit(RandomForestClassifier(n_estimators=20), df, steps=4)
    epochs = _epochs(events)
    assert [e["stage"] for e in events] == ["fit"] + ["epoch"] * 4
    assert [(e["epoch"], e["epochs"], e["n_estimators"]) for e in epochs] == \
        [(1, 4, 5), (2, 4, 10), (3, 4, 15), (4, 4, 20)]
    assert [e["progress"] for e in epochs] == [0.25, 0.5, 0.75, 1.0]
    assert all(set(e["metrics"]) == {"accuracy", "f1_macro"} for e in epochs)
    assert all(e["val_accuracy"] == e["metrics"]["accuracy"] for e in epochs)  # what the job plot draws
    assert stepped.metrics == epochs[-1]["metrics"] and stepped.history == epochs
    assert not stepped.stopped and stepped.epochs_run == 4
    assert stepped.params["warm_start"] is False and stepped.params["n_estimators"] == 20
    assert stepped.extra["steps"] == {"kind": "warm_start", "planned": 4, "run": 4, "stopped": False}

    one, _ = _fit(RandomForestClassifier(n_estimators=20), df)
    X = df.drop(columns=["y"])
    assert stepped.metrics == one.metrics
    np.testing.assert_array_equal(stepped.model.predict_proba(X), one.model.predict_proba(X))
    result = package(stepped, df)
    np.testing.assert_array_equal(load_sklearn(result.artifacts["model.skops"]).predict_proba(X),
                                  one.model.predict_proba(X))
    assert result.history == epochs


def test_warm_start_stops_early_with_the_trees_it_has():
    from sklearn.ensemble import GradientBoostingRegressor

    df = regression_frame()
    events = []
    fitted = fit(TrainSpec(model=GradientBoostingRegressor(n_estimators=30), target="y", steps=3),
                 df, events.append, lambda: len(_epochs(events)) >= 2)
    assert fitted.stopped and fitted.epochs_run == 2 and len(fitted.model.estimators_) == 20
    assert fitted.params["n_estimators"] == 20 and fitted.params["warm_start"] is False
    assert set(fitted.metrics) == {"r2", "mae", "rmse"} == set(_epochs(events)[0]["metrics"])
    r2 = [e["metrics"]["r2"] for e in _epochs(events)]
    assert r2[1] > r2[0] and fitted.metrics["r2"] == r2[1]
    assert fitted.extra["steps"] == {"kind": "warm_start", "planned": 3, "run": 2, "stopped": True}
    # the 20-tree model is a 20-tree one-shot fit (same seed)
    one, _ = _fit(GradientBoostingRegressor(n_estimators=20), df)
    X = df.drop(columns=["y"])
    np.testing.assert_array_equal(fitted.model.predict(X), one.model.predict(X))


def test_pipeline_steps_only_its_final_estimator():
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = classification_frame()
    stepped, events = _fit(make_pipeline(StandardScaler(), ExtraTreesClassifier(n_estimators=9)), df, steps=3)
    assert [e["n_estimators"] for e in _epochs(events)] == [3, 6, 9]
    one, _ = _fit(make_pipeline(StandardScaler(), ExtraTreesClassifier(n_estimators=9)), df)
    X = df.drop(columns=["y"])
    np.testing.assert_array_equal(stepped.model.predict_proba(X), one.model.predict_proba(X))
    assert stepped.metrics == one.metrics


# ------------------------------------------------------------------ scikit-learn: partial_fit steps
def test_partial_fit_passes_in_seeded_order():
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split

    df = classification_frame()
    names = np.array(["no", "yes"])
    df = df.assign(y=names[df["y"]])  # string labels: classes come from the train split
    fitted, events = _fit(SGDClassifier(), df, steps=1, epochs=5, seed=3)
    epochs = _epochs(events)
    assert [(e["epoch"], e["epochs"]) for e in epochs] == [(i, 5) for i in range(1, 6)]
    assert all(set(e["metrics"]) == {"accuracy", "f1_macro"} for e in epochs)
    assert fitted.metrics == epochs[-1]["metrics"] and fitted.metrics["accuracy"] > 0.6  # measured 0.66 (LogisticRegression: 0.74)
    assert fitted.extra["classes"] == ["no", "yes"] and fitted.epochs_run == 5
    assert fitted.extra["steps"]["kind"] == "partial_fit"

    # the same passes by hand: same split, same shuffles, classes on the first call
    X, y = df.drop(columns=["y"]), df["y"]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=3, stratify=y)
    ref, rng = SGDClassifier(random_state=3), np.random.default_rng(3)
    accuracy = []
    for k in range(5):
        perm = rng.permutation(len(y_tr))
        ref.partial_fit(X_tr.iloc[perm], y_tr.to_numpy()[perm],
                        **({"classes": np.array(["no", "yes"])} if k == 0 else {}))
        accuracy.append((ref.predict(X_te) == y_te).mean())
    np.testing.assert_array_equal(fitted.model.coef_, ref.coef_)
    assert [e["metrics"]["accuracy"] for e in epochs] == pytest.approx(accuracy)

    stopped, events = _fit(SGDClassifier(), df, should_stop=lambda: True, steps=1, epochs=5, seed=3)
    assert stopped.stopped and stopped.epochs_run == 1 and len(_epochs(events)) == 1


def test_text_pipeline_with_partial_fit():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(2)
    good, bad = ["great", "lovely", "superb", "fine"], ["awful", "boring", "terrible", "dull"]
    labels = rng.integers(0, 2, size=120).astype(bool)
    texts = ["the film was " + " and ".join(rng.choice(good if p else bad, size=3)) for p in labels]
    df = pd.DataFrame({"text": texts, "y": np.where(labels, "pos", "neg")})
    fitted, events = _fit(make_pipeline(TfidfVectorizer(), SGDClassifier()), df, steps=1, epochs=3)
    assert len(_epochs(events)) == 3 and fitted.metrics["accuracy"] == 1.0
    assert fitted.extra["input_kind"] == "text"
    model = load_sklearn(package(fitted, df).artifacts["model.skops"])
    assert list(model.predict(["what a superb and lovely film", "dull and awful"])) == ["pos", "neg"]


# ------------------------------------------------------------------ non-iterative / steps == 0
def test_steps_are_ignored_by_a_non_iterative_estimator():
    from sklearn.linear_model import LogisticRegression

    df = classification_frame()
    plain, plain_events = _fit(LogisticRegression(), df)
    asked = []
    stepped, events = _fit(LogisticRegression(), df, should_stop=lambda: asked.append(1) or True, steps=5)
    assert [e["stage"] for e in events] == [e["stage"] for e in plain_events] == ["fit", "evaluate"]
    assert asked == [] and not stepped.stopped and stepped.epochs_run == 1 and stepped.history == []
    assert stepped.metrics == plain.metrics and stepped.params == plain.params
    assert "steps" not in stepped.extra
    np.testing.assert_array_equal(stepped.model.coef_, plain.model.coef_)
    np.testing.assert_array_equal(stepped.model.intercept_, plain.model.intercept_)


def test_steps_zero_is_the_plain_fit():
    """An iterative estimator with steps=0 is fitted once, exactly as sklearn fits it."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    df = classification_frame()
    fitted, events = _fit(RandomForestClassifier(n_estimators=10), df, steps=0)
    assert [e["stage"] for e in events] == ["fit", "evaluate"] and fitted.history == []
    X, y = df.drop(columns=["y"]), df["y"]
    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    ref = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_tr, y_tr)
    np.testing.assert_array_equal(fitted.model.predict_proba(X_te), ref.predict_proba(X_te))
