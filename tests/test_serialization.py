"""Artifacts round-trip through the safe formats, and unsafe ones are refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from aiaas_jupyter.errors import ModelSpecError, RegistryError, UnsafeArtifactError
from aiaas_jupyter.artifacts import codec as ser
from aiaas_jupyter.training import TrainSpec, run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def iris_xy():
    return load_iris(return_X_y=True, as_frame=True)


def user_function(X):
    return X * 2


class CustomEstimator(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


# ------------------------------------------------------------------ sklearn / skops
def test_skops_round_trip_with_trusted_sklearn_types(iris_xy):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    X, y = iris_xy
    for model in (RandomForestClassifier(n_estimators=5, random_state=0),  # sklearn...Tree
                  HistGradientBoostingClassifier(max_iter=5),  # ...TreePredictor
                  make_pipeline(StandardScaler(), LogisticRegression())):
        model.fit(X, y)
        loaded = ser.load_model_files("sklearn", {"model.skops": ser.dump_sklearn(model)})
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("make_model, bad_type", [
    (lambda: make_pipeline(FunctionTransformer(user_function), LogisticRegression()), "user_function"),
    (lambda: CustomEstimator(), "CustomEstimator"),
    (lambda: make_pipeline(FunctionTransformer(eval), LogisticRegression()), "builtins.eval"),
    # numpy.load is under a trusted prefix but is a function, not a class
    (lambda: make_pipeline(FunctionTransformer(np.load), LogisticRegression()), "numpy.load"),
])
def test_untrusted_types_are_refused(iris_xy, make_model, bad_type):
    model = make_model()
    data = ser.dump_sklearn(model)
    with pytest.raises(UnsafeArtifactError, match=bad_type):
        ser.load_sklearn(data)


def test_trust_is_exact_names_never_prefixes():
    from aiaas_jupyter.artifacts import trusted_types

    names = trusted_types.builtin_trusted_types()
    assert "sklearn.tree._tree.Tree" in names and "numpy.dtype" in names
    assert not any(n.endswith(".") or "*" in n for n in names)
    assert not hasattr(ser, "TRUSTED_TYPE_PREFIXES")


def test_garbage_bytes_are_a_registry_error():
    with pytest.raises(RegistryError, match="not a readable skops artifact"):
        ser.load_sklearn(b"definitely not a zip file")
    with pytest.raises(RegistryError, match="unknown framework"):
        ser.load_model_files("tensorflow", {})


# ------------------------------------------------------------------ torch
import torch  # noqa: E402 - a test dependency: a missing torch must fail, not skip
nn = torch.nn




def classification_frame(n=1500, d=16, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.argmax(X @ rng.normal(size=(d, k)), axis=1)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(d)]).assign(y=np.array(list("abcd"))[y])


def make_mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.fixture(scope="module")
def trained():
    df = classification_frame()
    torch.manual_seed(0)
    model = make_mlp()
    spec = TrainSpec(model=model, target="y", epochs=5, batch_size=64, lr=1e-2)
    result = run_training(spec, df, lambda e: None)
    return df, model, result


def test_safetensors_round_trip_into_fresh_module(trained):
    df, model, result = trained
    X = torch.tensor(df.drop(columns="y").to_numpy(np.float32))
    fresh = make_mlp()
    loaded = ser.load_torch(result.artifacts, module=fresh)
    assert loaded is fresh and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(X), model.eval()(X))
    assert next(model.parameters()).device.type == "cpu"  # model handed back on the CPU


def test_safetensors_wrong_architecture_is_clear(trained):
    with pytest.raises(ModelSpecError, match="do not fit Sequential"):
        ser.load_torch(trained[2].artifacts, module=nn.Sequential(nn.Linear(16, 8)))


def test_onnx_wrapper_matches_torch(trained):
    df, model, result = trained
    onnx_model = ser.load_model_files("torch", result.artifacts)
    assert isinstance(onnx_model, ser.OnnxModel)
    X_df = df.drop(columns="y")
    with torch.no_grad():
        logits = model.eval()(torch.tensor(X_df.to_numpy(np.float32))).numpy()
    expected = np.array(list("abcd"))[logits.argmax(1)]
    np.testing.assert_array_equal(onnx_model.predict(X_df), expected)
    np.testing.assert_array_equal(onnx_model.predict(X_df[X_df.columns[::-1]]), expected)  # by name
    np.testing.assert_allclose(onnx_model(X_df.to_numpy()), logits, rtol=1e-4, atol=1e-5)  # raw outputs
    proba = torch.softmax(torch.tensor(logits, dtype=torch.float64), 1).numpy()  # CrossEntropyLoss: logits
    np.testing.assert_allclose(onnx_model.predict_proba(X_df.to_numpy()), proba, atol=1e-5)
    assert onnx_model(X_df.to_numpy()[0]).shape == (1, 4)  # one sample as a 1-D row
    assert (onnx_model.predict(X_df) == df["y"]).mean() > 0.85  # measured 0.94 held out


def test_onnx_binary_threshold_and_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    df = pd.DataFrame(X, columns=list("abcd"))
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))  # logits -> BCEWithLogits
    res = run_training(TrainSpec(model=clf, target="y", epochs=5),
                       df.assign(y=np.where(X[:, 0] > 0, "pos", "neg")), lambda e: None)
    onnx_model = ser.load_torch(res.artifacts)
    with torch.no_grad():
        logits = clf(torch.tensor(X)).numpy().ravel()
    np.testing.assert_array_equal(onnx_model.predict(X), np.where(logits > 0, "pos", "neg"))

    reg = nn.Sequential(nn.Linear(4, 1))
    res = run_training(TrainSpec(model=reg, target="y", epochs=2), df.assign(y=X.sum(1)), lambda e: None)
    pred = ser.load_torch(res.artifacts).predict(df)
    with torch.no_grad():
        np.testing.assert_allclose(pred, reg(torch.tensor(X)).numpy().ravel(), rtol=1e-4, atol=1e-5)
    assert pred.shape == (600,)


def test_missing_onnx_asks_for_module(trained):
    files = {k: v for k, v in trained[2].artifacts.items() if k != "model.onnx"}
    with pytest.raises(ModelSpecError, match="no ONNX artifact") as err:
        ser.load_torch(files)
    assert "module=Sequential()" in str(err.value)


def test_onnx_export_failure_is_recorded_not_fatal(monkeypatch):
    def broken_export(*args, **kwargs):  # stands in for a model no exporter can handle
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    res = run_training(TrainSpec(model=make_mlp(), target="y", epochs=1),
                       classification_frame(n=200), lambda e: None)
    assert "model.onnx" not in res.artifacts and "unsupported operator" in res.extra["onnx_error"]
    assert json.loads(res.artifacts["model.json"])["onnx_error"] == res.extra["onnx_error"]
    with pytest.raises(ModelSpecError, match="export failed"):
        ser.load_torch(res.artifacts)


def test_tied_weights_are_saved():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    model = Tied()
    fresh = Tied()
    ser.load_torch({"model.safetensors": ser.dump_state_dict(model.state_dict())}, module=fresh)
    assert torch.equal(fresh.a.weight, model.a.weight) and torch.equal(fresh.b.bias, model.b.bias)
