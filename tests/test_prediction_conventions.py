"""Predictions follow scikit-learn's conventions (issue 9, point 4), for every kind of model the
product trains and in every path a user has: ``load_model`` in the kernel, the own model server
through ``client.predict`` / ``%aiaas predict`` (OIP v2 outputs ``predict`` and
``predict_proba``), its plain ``POST /predict/{name}``, and its batcher (concurrent requests run
as one call).

``predict_proba`` rows are probabilities (>= 0, summing to 1) of shape (n, n_classes) in the
order of ``classes_`` — ``[1 - p, p]`` for one-output binary nets — and are compared with what
the trained torch module itself gives, mapped the way its loss defines. Models are trained by
the project's trainer (``run_training``, as a worker runs it) and registered as the kernel does;
one is trained as a real job on the session's LocalCluster from a notebook cell. The server is
the real one on loopback, stopped in teardown.
"""

from __future__ import annotations

import json
import re
import types
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from support import serving_models as sm
from aiaas_jupyter.errors import DataError, EndpointError, ModelSpecError
from aiaas_jupyter.artifacts.codec import TORCH_META_FILE, OnnxModel, load_model_files
from aiaas_jupyter.artifacts.text_model import TextModel
from aiaas_jupyter.training import TrainSpec, run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FEATURES = [f"f{i}" for i in range(6)]


# ----------------------------------------------------------------------------- the models
def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Six numeric features; y3 (3 string classes), y025 (int classes 0, 2, 5), yb (binary), yr (real)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    k = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)
    df = pd.DataFrame(X, columns=FEATURES)
    return df.assign(y3=np.array(list("abc"))[k], y025=np.array([0, 2, 5])[k],
                     yb=np.where(X[:, 0] - X[:, 1] > 0, "pos", "neg"), yr=X @ np.arange(1.0, 7.0))


def mlp(out: int, *tail: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, out), *tail)


def _two(p: torch.Tensor) -> torch.Tensor:
    return torch.stack([1 - p, p], dim=1)


def _custom_loss(probabilities, target):  # a plain function: its name says nothing about the outputs
    return nn.functional.nll_loss(torch.log(probabilities + 1e-9), target)


#: name → (module, target column, loss, what the module's outputs become as probabilities)
CASES = {
    "cross-entropy": (lambda: mlp(3), "y3", None, lambda o: torch.softmax(o, 1)),
    "cross-entropy-wide": (lambda: mlp(5), "y025", nn.CrossEntropyLoss(), lambda o: torch.softmax(o[:, :3], 1)),
    "bce-with-logits": (lambda: mlp(1), "yb", None, lambda o: _two(torch.sigmoid(o[:, 0]))),
    "bce-sigmoid": (lambda: mlp(1, nn.Sigmoid()), "yb", nn.BCELoss(), lambda o: _two(o[:, 0])),
    "nll-logsoftmax": (lambda: mlp(3, nn.LogSoftmax(dim=1)), "y3", nn.NLLLoss(), torch.exp),
    "custom-loss-softmax": (lambda: mlp(3, nn.Softmax(dim=1)), "y3", _custom_loss, lambda o: o),
}
CLASSES = {"y3": ["a", "b", "c"], "y025": [0, 2, 5], "yb": ["neg", "pos"]}


def train(module, target: str, loss=None, epochs: int = 8):
    df = frame()
    data = df[FEATURES + [target]].rename(columns={target: "y"})
    return run_training(TrainSpec(model=module, target="y", loss=loss, epochs=epochs, lr=1e-2), data,
                        lambda event: None)


@pytest.fixture(scope="module")
def torch_models():
    """Each case trained once: {name: (trained module, TrainResult)}; plus a regressor."""
    out = {}
    for name, (build, target, loss, _) in CASES.items():
        module = build()
        out[name] = (module, train(module, target, loss))
    reg = mlp(1)
    out["regressor"] = (reg, train(reg, "yr", epochs=20))
    return out


def torch_outputs(module: nn.Module, X: pd.DataFrame) -> torch.Tensor:
    with torch.no_grad():
        return module.eval()(torch.tensor(X[FEATURES].to_numpy(np.float32))).double()


def assert_probabilities(proba: np.ndarray, n: int, n_classes: int) -> None:
    assert proba.shape == (n, n_classes)
    assert (proba >= 0).all() and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def with_meta(artifacts: dict, drop: tuple[str, ...]) -> dict:
    """The artifacts as an older version would have them: without some fields of model.json."""
    meta = {k: v for k, v in json.loads(artifacts[TORCH_META_FILE]).items() if k not in drop}
    return {**artifacts, TORCH_META_FILE: json.dumps(meta).encode()}


# ----------------------------------------------------------------------------- torch: load_model
@pytest.mark.parametrize("case", list(CASES))
def test_torch_classifier_probabilities_follow_the_loss(torch_models, case):
    module, res = torch_models[case]
    target = CASES[case][1]
    X = frame(60, seed=7)
    model = load_model_files("torch", res.artifacts)
    assert isinstance(model, OnnxModel)
    assert model.classes_.tolist() == CLASSES[target] == res.extra["classes"]
    proba = model.predict_proba(X)
    assert_probabilities(proba, 60, len(CLASSES[target]))
    want = CASES[case][3](torch_outputs(module, X)).numpy()
    np.testing.assert_allclose(proba, want, atol=1e-5)
    pred = model.predict(X)
    assert pred.shape == (60,) and set(pred) <= set(CLASSES[target])
    np.testing.assert_array_equal(pred, model.classes_[want.argmax(axis=1)])
    assert (pred == X[target]).mean() >= 0.75  # chance is 1/3 or 1/2; measured 0.83-0.93


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("drop", [("outputs_are",), ("outputs_are", "loss")], ids=["old-meta", "no-loss"])
def test_older_versions_without_the_field_keep_working(torch_models, case, drop):
    """Versions registered before ``outputs_are`` existed read it from their recorded loss; without
    a loss either, from the graph's last operator (Softmax / Sigmoid / LogSoftmax, else logits)."""
    module, res = torch_models[case]
    X = frame(40, seed=8)
    old = load_model_files("torch", with_meta(res.artifacts, drop))
    np.testing.assert_allclose(old.predict_proba(X), CASES[case][3](torch_outputs(module, X)).numpy(), atol=1e-5)
    np.testing.assert_array_equal(old.predict(X), load_model_files("torch", res.artifacts).predict(X))


def test_torch_regressor_has_no_predict_proba(torch_models):
    module, res = torch_models["regressor"]
    X = frame(50, seed=9)
    model = load_model_files("torch", res.artifacts)
    pred = model.predict(X)
    assert pred.shape == (50,)
    np.testing.assert_allclose(pred, torch_outputs(module, X).numpy().ravel(), rtol=1e-4, atol=1e-4)
    assert not hasattr(model, "predict_proba") and not hasattr(model, "classes_")
    with pytest.raises(AttributeError, match="regressor"):
        model.predict_proba(X)


def test_torch_model_has_scikit_learn_surface(torch_models):
    module, res = torch_models["cross-entropy"]
    model = load_model_files("torch", res.artifacts)
    X = frame(30, seed=10)
    assert model.n_features_in_ == 6 and model.feature_names_in_.tolist() == FEATURES
    want = model.predict(X[FEATURES])
    # columns by name: another order, and extra columns (the targets) are fine
    np.testing.assert_array_equal(model.predict(X[FEATURES[::-1] + ["y3", "yb"]]), want)
    np.testing.assert_array_equal(model.predict(X[FEATURES].to_numpy()), want)
    np.testing.assert_allclose(model(X), torch_outputs(module, X).numpy(), atol=1e-5)  # raw outputs
    assert model.predict_proba(X[FEATURES].to_numpy()[0]).shape == (1, 3)  # one row
    with pytest.raises(DataError, match=r"lacks the model's feature column\(s\) \['f2'\]") as e:
        model.predict(X.drop(columns="f2"))
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"expected rows of 6 features, got shape \[30, 5\]"):
        model.predict(X[FEATURES[:5]].to_numpy())


# ----------------------------------------------------------------------------- text and tabular scikit-learn
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A registry home with models registered as jobs register them, and a façade on it."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from aiaas_jupyter.client import AiaasClient

    path = tmp_path_factory.mktemp("conventions-home")
    client = AiaasClient(path)
    text = run_training(TrainSpec(model=make_pipeline(TfidfVectorizer(), LogisticRegression()), target="label"),
                        sm.text_frame(200, seed=1), lambda event: None)
    for name, res in (("reviews", text), ("iris", sm.train_iris())):
        sm.register(client.registry, name, res)
    return types.SimpleNamespace(path=path, client=client)


def test_text_pipeline_gives_one_prediction_per_row(home):
    model = home.client.load_model("reviews")
    assert isinstance(model, TextModel) and model.text_column == "text"
    texts = ["my dog and the kitten purr", "the stock market and bond yield"]
    df = pd.DataFrame({"id": [1, 2], "text": texts, "label": ["pets", "finance"]})
    assert model.predict(df).tolist() == ["pets", "finance"]  # was ONE prediction: the header got vectorized
    for same in (df[["text"]], df["text"], texts, np.array(texts), np.array(texts).reshape(-1, 1)):
        assert model.predict(same).tolist() == ["pets", "finance"]
    proba = model.predict_proba(df)
    assert_probabilities(proba, 2, 2)
    assert model.classes_.tolist() == ["finance", "pets"] and proba.argmax(axis=1).tolist() == [1, 0]
    np.testing.assert_allclose(proba, model.pipeline.predict_proba(texts))
    assert model.score(df, df["label"]) == 1.0
    assert set(model.named_steps) == {"tfidf" + "vectorizer", "logisticregression"}
    assert model.feature_names_in_.tolist() == ["text"] and model.n_features_in_ == 1
    with pytest.raises(DataError, match="no column 'text'") as e:
        model.predict(df.rename(columns={"text": "review"}))
    assert "\n" not in str(e.value) and "columns: id, review, label" in str(e.value)
    with pytest.raises(DataError, match="got one string"):
        model.predict(texts[0])


def test_tabular_sklearn_columns_as_scikit_learn_does(home, iris_frame):
    """load_model gives the fitted estimator itself: scikit-learn's own column checks apply
    (same names, same order); ``X[model.feature_names_in_]`` selects and orders them."""
    model = home.client.load_model("iris")
    X = iris_frame.drop(columns="target")
    want = model.predict(X)
    with pytest.raises(ValueError, match="same order as they were in fit"):
        model.predict(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="unseen at fit time"):
        model.predict(iris_frame)
    np.testing.assert_array_equal(model.predict(iris_frame[model.feature_names_in_]), want)
    assert_probabilities(model.predict_proba(X), len(X), 3)
    assert model.classes_.tolist() == [0, 1, 2]


def test_load_model_options_are_checked(home, torch_models):
    with pytest.raises(ModelSpecError, match="unexpected options for a scikit-learn model: module"):
        home.client.load_model("iris", module=nn.Linear(4, 3))
    with pytest.raises(ModelSpecError, match="unexpected options for a torch model: modul"):
        load_model_files("torch", torch_models["cross-entropy"][1].artifacts, modul=mlp(3))


# ----------------------------------------------------------------------------- through the model server
@pytest.fixture(scope="module")
def served(home, torch_models):
    """The torch models registered too, and all deployed on the home's real model server."""
    from aiaas_jupyter.serving import state

    for name in ("cross-entropy", "bce-sigmoid", "bce-with-logits", "regressor"):
        sm.register(home.client.registry, name, torch_models[name][1])
    try:
        for name in ("reviews", "iris", "cross-entropy", "bce-sigmoid", "bce-with-logits", "regressor"):
            home.client.deploy(name)
        info = state.find_server(home.path)
        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as http:
            yield types.SimpleNamespace(client=home.client, http=http)
    finally:
        state.stop_server(home.path)
        assert state.find_server(home.path) is None


@pytest.fixture
def sh(served):
    """The IPython shell with %aiaas bound to this home's façade for one test (then the previous
    binding again, whichever fixture made it)."""
    from IPython.core.interactiveshell import InteractiveShell

    from aiaas_jupyter.magics import AiaasMagics

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiaas_jupyter")
    previous = shell.magics_manager.registry.get("AiaasMagics")
    shell.register_magics(AiaasMagics(shell, client=served.client))
    yield shell
    shell.register_magics(previous)


@pytest.mark.parametrize("name, n_classes", [("cross-entropy", 3), ("bce-sigmoid", 2), ("bce-with-logits", 2),
                                             ("iris", 3)])
def test_server_predict_proba_matches_load_model(served, sh, iris_frame, name, n_classes):
    X = iris_frame.sample(25, random_state=3) if name == "iris" else frame(25, seed=11)  # with the target(s)
    local = served.client.load_model(name)
    out = served.client.predict(name, X, outputs=["predict", "predict_proba"])
    assert_probabilities(out["predict_proba"], 25, n_classes)
    np.testing.assert_allclose(out["predict_proba"], local.predict_proba(X[local.feature_names_in_]), atol=1e-5)
    assert out["predict"].tolist() == local.predict(X[local.feature_names_in_]).tolist()
    reordered = X[X.columns[::-1]]  # the server takes columns by name, extra ones dropped
    assert served.client.predict(name, reordered).tolist() == out["predict"].tolist()
    meta = served.http.get(f"/v2/models/{name}").json()
    assert meta["outputs"][1] == {"name": "predict_proba", "datatype": "FP64", "shape": [-1, n_classes]}
    assert meta["parameters"]["classes"] == local.classes_.tolist()
    # %aiaas predict --proba: the same probabilities in the notebook
    sh.user_ns["X_conv"] = X
    np.testing.assert_allclose(sh.run_line_magic("aiaas", f"predict {name} --input X_conv --proba"),
                               out["predict_proba"])


def test_server_regressor_gives_values(served):
    X = frame(20, seed=12)
    pred = served.client.predict("regressor", X)
    assert pred.shape == (20,)
    np.testing.assert_allclose(pred, served.client.load_model("regressor").predict(X), rtol=1e-5, atol=1e-5)
    with pytest.raises(EndpointError, match="unknown output 'predict_proba'"):
        served.client.predict("regressor", X, outputs=["predict_proba"])


def test_server_text_model_one_prediction_per_row(served, sh):
    df = pd.DataFrame({"id": [1, 2], "text": ["my dog and the kitten purr", "the stock market and bond yield"],
                       "label": ["pets", "finance"]})
    assert served.client.predict("reviews", df).tolist() == ["pets", "finance"]
    sh.user_ns["df_conv"] = df
    proba = sh.run_line_magic("aiaas", "predict reviews --input df_conv --proba")
    assert_probabilities(proba, 2, 2)
    np.testing.assert_allclose(proba, served.client.load_model("reviews").predict_proba(df), atol=1e-9)
    # the plain route: {"text": ...}, bare strings, and records that carry other fields too
    for body in ({"text": df["text"].tolist()}, df["text"].tolist(), df.to_dict(orient="records")):
        r = served.http.post("/predict/reviews", json=body)
        assert r.status_code == 200 and r.json()["predictions"] == ["pets", "finance"], r.text
    r = served.http.post("/predict/reviews", json=[{"id": 1, "review": "my dog"}])
    assert r.status_code == 422 and "string field 'text'" in r.text


def test_plain_predict_route_gives_training_labels(served):
    X = frame(10, seed=13)
    local = served.client.load_model("bce-sigmoid")
    r = served.http.post("/predict/bce-sigmoid", json=X.to_dict(orient="records"))  # extra columns too
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == local.predict(X).tolist() and set(r.json()["predictions"]) <= {"neg", "pos"}


def test_batched_requests_keep_their_rows(served):
    """Concurrent requests are concatenated into one model call and split again: each still gets
    its own probabilities."""
    parts = [frame(3 + i, seed=20 + i) for i in range(12)]
    local = served.client.load_model("cross-entropy")
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda X: served.client.predict("cross-entropy", X, outputs=["predict_proba"]),
                                parts))
    for X, answer in zip(parts, answers):
        np.testing.assert_allclose(answer["predict_proba"], local.predict_proba(X), atol=1e-5)


# ----------------------------------------------------------------------------- a real job (seed 003)
SEED_003 = """import torch
from torch import nn

class SeedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                                    nn.Linear(32, 1), nn.Sigmoid())

    def forward(self, x):
        return self.layers(x)

torch.manual_seed(0)
model = SeedNet()
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
loss = nn.BCELoss()
"""


def test_seed_003_job_load_model_and_module(shell, aiaas, monkeypatch):
    """Seed 003 as a user runs it: a 64-32-1 sigmoid MLP, Adam lr 0.001, BCE, 10 epochs, batch 32,
    trained by a job on the cluster; ``aiaas_jupyter.load_model`` gives the ONNX model with
    scikit-learn's surface, and with ``module=SeedNet()`` the torch module with its weights."""
    from IPython.utils.capture import capture_output
    from sklearn.datasets import load_breast_cancer

    import aiaas_jupyter
    from aiaas_jupyter import client as client_module

    monkeypatch.setattr(client_module, "_default", aiaas)  # the kernel's default façade is this test's
    df = load_breast_cancer(as_frame=True).frame
    features = df.columns[:-1]
    df[features] = (df[features] - df[features].mean()) / df[features].std()
    shell.user_ns["cancer"] = df
    with capture_output():
        shell.run_cell_magic("aiaas", "train --data cancer --target target --name seed003 --epochs 10 "
                                      "--batch-size 32 --block", SEED_003)
    mv = aiaas.model("seed003")
    assert mv.params["loss"] == "BCELoss" and mv.params["optimizer"] == "Adam" and mv.params["lr"] == 0.001
    assert mv.metrics["accuracy"] >= 0.9  # measured 0.956

    X = df[features].sample(40, random_state=0)
    model = aiaas_jupyter.load_model("seed003")
    assert isinstance(model, OnnxModel) and model.classes_.tolist() == [0, 1]
    proba = model.predict_proba(X)
    assert_probabilities(proba, 40, 2)
    # the notebook's own class, as a user writes it
    shell.run_cell("import aiaas_jupyter\nnet = aiaas_jupyter.load_model('seed003', module=SeedNet())")
    net = shell.user_ns["net"]
    assert isinstance(net, nn.Module) and type(net).__name__ == "SeedNet" and not net.training
    with torch.no_grad():
        p = net(torch.tensor(X.to_numpy(np.float32))).numpy().ravel()
    np.testing.assert_allclose(proba, np.column_stack([1 - p, p]), atol=1e-5)  # [1 - p, p]
    np.testing.assert_array_equal(model.predict(X), (p > 0.5).astype(int))
    assert isinstance(aiaas.load_model("seed003", module=shell.user_ns["SeedNet"]()), nn.Module)

    # a wrong architecture, or the class instead of an instance: one line each
    with pytest.raises(ModelSpecError) as e:
        aiaas_jupyter.load_model("seed003", module=nn.Sequential(nn.Linear(30, 8), nn.Linear(8, 1)))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("the weights do not fit Sequential: missing: 0.weight")
    assert "unexpected: layers.0.bias, layers.0.weight, layers.2.bias …" in msg
    assert "hint: build the same architecture as at training (SeedNet)" in msg
    with pytest.raises(ModelSpecError, match=re.escape("module must be an instance, got the class SeedNet")):
        aiaas_jupyter.load_model("seed003", module=shell.user_ns["SeedNet"])
