"""Input signatures (issue 15 point 3): recorded from the training data with every version, shown by
``%aiaas models show``, published in the OIP model metadata and the OpenAPI document, and checked at
the model server's door (400 naming the column) and before batch inference."""

from __future__ import annotations

import types

import dask.dataframe as dd
import httpx
import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.errors import DataError
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state
from aiaas_jupyter.training import TrainSpec, run_training
from support import serving_models as sm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mixed(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numbers (float and int), a string category and a bool, with string labels."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"size": rng.normal(size=n), "count": rng.integers(0, 9, n),
                       "color": rng.choice(["red", "green", "blue"], n), "flag": rng.random(n) < 0.5})
    df["label"] = np.where(df["size"] + (df.color == "red") > 0.5, "yes", "no")
    return df


def _mixed_model():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return Pipeline([("prep", ColumnTransformer([("onehot", OneHotEncoder(), ["color"])], remainder="passthrough")),
                     ("lr", LogisticRegression())])


def test_the_trainers_record_what_they_were_trained_on():
    res = run_training(TrainSpec(model=_mixed_model(), target="label"), _mixed(), lambda e: None)
    assert res.extra["signature"] == {
        "inputs": [{"name": "size", "dtype": "float64", "kind": "numeric"},
                   {"name": "count", "dtype": "int64", "kind": "numeric"},
                   {"name": "color", "dtype": str(_mixed()["color"].dtype), "kind": "categorical"},
                   {"name": "flag", "dtype": "bool", "kind": "boolean"}],
        "target": {"name": "label", "dtype": str(_mixed()["label"].dtype)},
        "classes": ["no", "yes"]}
    text = sm.train_text_ct().extra["signature"]  # a ColumnTransformer vectorising column "text"
    assert text["inputs"] == [{"name": "text", "dtype": str(sm.text_frame()["text"].dtype), "kind": "text"}]
    mlp = sm.train_mlp().extra["signature"]
    assert [(i["name"], i["dtype"], i["kind"]) for i in mlp["inputs"]] == [(f"f{i}", "float32", "numeric")
                                                                          for i in range(8)]
    assert mlp["target"] == {"name": "y", "dtype": "int64"} and mlp["classes"] == [0, 1, 2]


def test_jobs_register_it_and_models_show_prints_it(aiaas, shell):
    import torch

    job = aiaas.train(_mixed_model(), _mixed(), "label", name="sig-mixed", block=True)
    mv = job.result()
    assert [i["kind"] for i in mv.extra["signature"]["inputs"]] == ["numeric", "numeric", "categorical", "boolean"]
    shown = repr(shell.run_line_magic("aiaas", f"models show {mv.ref}"))  # the card the cell shows
    line = next(li for li in shown.splitlines() if li.startswith("signature"))
    assert "float64 numeric: size | int64 numeric: count | " in line and "| bool boolean: flag -> label (" in line
    assert line.endswith("; classes no, yes)")

    # a torch job on a dask frame reads it partition by partition: the signature comes from the partitions
    frame = sm.mlp_frame(n=200, seed=1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    streamed = aiaas.train(net, dd.from_pandas(frame, npartitions=2), "y", name="sig-stream", epochs=1,
                           batch_size=50, block=True).result()
    assert [i["dtype"] for i in streamed.extra["signature"]["inputs"]] == ["float32"] * 8


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("signature-home")
    reg = Registry(home)
    sm.register(reg, "mixed", run_training(TrainSpec(model=_mixed_model(), target="label"), _mixed(), lambda e: None))
    sm.register(reg, "text-ct", sm.train_text_ct())
    sm.register(reg, "mlp", sm.train_mlp())
    info = state.ensure_server(home, deploy=("mixed", "text-ct", "mlp"))
    try:
        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as client:
            yield types.SimpleNamespace(reg=reg, url=info.url, http=client)
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


def test_the_server_publishes_it(served):
    meta = served.http.get("/v2/models/mixed").json()
    assert meta["parameters"]["signature"] == served.reg.get("mixed").extra["signature"]
    doc = httpx.get(served.url + "/openapi.json").json()
    assert doc["components"]["schemas"]["Signature"]["properties"]["inputs"]["items"]["properties"]["kind"]["enum"] \
        == ["numeric", "boolean", "text", "categorical", "datetime"]


@pytest.mark.parametrize("path, body, message", [
    ("/predict/mixed", [{"size": "big", "count": 1, "color": "red", "flag": True}],
     "column 'size' is numeric (float64) in the model's signature; got text such as 'big'"),
    ("/predict/mixed", {"records": [{"size": 0.1, "count": 1, "color": "red", "flag": True},
                                    {"size": 0.2, "count": "three", "color": "blue", "flag": False}]},
     "column 'count' is numeric (int64) in the model's signature; got text such as 'three'"),
    ("/v2/models/mixed/infer", {"inputs": [
        {"name": "size", "shape": [1], "datatype": "BYTES", "data": ["x"]},
        {"name": "count", "shape": [1], "datatype": "INT64", "data": [1]},
        {"name": "color", "shape": [1], "datatype": "BYTES", "data": ["red"]},
        {"name": "flag", "shape": [1], "datatype": "BOOL", "data": [True]}]},
     "column 'size' is numeric (float64) in the model's signature; got text such as 'x'"),
    ("/predict/text-ct", [{"text": 5}], "column 'text' is text in the model's signature; got int 5"),
    ("/v2/models/mlp/infer", {"inputs": [{"name": "input", "shape": [1, 8], "datatype": "BYTES",
                                          "data": ["1", "2", "3", "4", "5", "6", "7", "eight"]}]},
     "column 'f7' is numeric (float32) in the model's signature; got text such as 'eight'"),
])
def test_requests_that_contradict_it_are_400_naming_the_column(served, path, body, message):
    r = served.http.post(path, json=body)
    assert r.status_code == 400 and r.json() == {"error": message}, r.text


def test_requests_that_fit_it_are_answered(served):
    ok = served.http.post("/predict/mixed", json=[{"size": 2.0, "count": 3, "color": "red", "flag": True},
                                                  {"size": -2.0, "count": 1, "color": "blue", "flag": False}])
    assert ok.status_code == 200 and ok.json()["predictions"] == ["yes", "no"], ok.text
    numeric_strings = served.http.post("/predict/mixed", json=[{"size": "2.5", "count": 3, "color": "red",
                                                                "flag": True}])
    assert numeric_strings.status_code == 200 and numeric_strings.json()["predictions"] == ["yes"]
    text = served.http.post("/predict/text-ct", json={"text": "the cat purr fur"})
    assert text.status_code == 200 and text.json()["label"] == "pets"


def test_batch_inference_checks_the_frame_before_any_task(aiaas):
    mv = sm.register(aiaas.registry, "sig-batch",
                     run_training(TrainSpec(model=_mixed_model(), target="label"), _mixed(), lambda e: None))
    frame = _mixed(50, seed=3).drop(columns="label").astype({"size": str})
    with pytest.raises(DataError, match=r"column 'size' is numeric \(float64\) in sig-batch:1's signature; "
                                        r"the frame has it as"):
        aiaas.predict(mv.ref, frame, on_cluster=True, progress=False)
    good = aiaas.predict(mv.ref, _mixed(50, seed=3).drop(columns="label"), on_cluster=True, progress=False)
    assert set(good.compute().prediction) <= {"yes", "no"}
