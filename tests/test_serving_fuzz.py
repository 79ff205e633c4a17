"""Property tests of the model server's request handling (issue 10 point 4: zero 5xx from bad
input), against a real server process on loopback (``state.ensure_server``) serving a tabular
classifier, a text pipeline and the built-in embedding model.

Hypothesis builds OIP v2 inference bodies — valid ones, and valid ones with one part mutated
(wrong types, shapes, datatypes, parameters, huge numbers, NaN/Infinity, unicode and lone
surrogate ids, deep nesting) — plus plain ``/predict`` bodies, OpenAI embeddings bodies and raw
bytes. Every answer must be < 500 with a JSON ``{"error": ...}`` when it is a 4xx; every valid
body must get a 200 with the right output shapes and the same predictions as the model loaded
in this process. Examples are bounded and derandomized (a fixed seed: the same run every time).
"""

from __future__ import annotations

import json
import math
import types

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import serving_models as sm
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.artifacts.codec import load_model_files
from aiaas_jupyter.serving import oip, state

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EMB = "all-minilm-l6-v2"
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def fuzz(n: int):
    """Bounded, reproducible: derandomize fixes the seed; no database, no deadline (a busy box)."""
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def served(tmp_path_factory, one_torch_thread):
    home = tmp_path_factory.mktemp("fuzz-home")
    reg = Registry(home)
    sm.register(reg, "iris", sm.train_iris(n_estimators=5))
    sm.register_text_pipeline(reg, "text", sm.text_pipeline())
    info = state.ensure_server(home, embeddings=True, deploy=("iris", "text"), wait_s=240)
    try:
        iris = load_model_files("sklearn", reg.read_artifacts("iris"))
        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=120) as client:
            yield types.SimpleNamespace(http=client, iris=iris, url=info.url)
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


def post(served, path: str, body) -> httpx.Response:
    """POST a value as JSON (NaN/Infinity written as Python writes them), or raw bytes."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")
    r = served.http.post(path, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code < 500, (path, content[:300], r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json"
    answer = r.json()
    if r.status_code >= 400:
        assert isinstance(answer.get("error"), str) and answer["error"], answer
    return r


# --------------------------------------------------------------------------- strategies
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)
weird_numbers = st.one_of(st.floats(), st.integers(-2**70, 2**70), st.just(10**30), st.just(-0.0),
                          st.just(float("nan")), st.just(float("inf")))
json_values = st.recursive(
    st.none() | st.booleans() | weird_numbers | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20)
lone_surrogates = st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\ud83d"])


@st.composite
def valid_oip(draw):
    """A valid request for iris: one [N, 4] FP32/FP64 tensor, optional outputs, id, parameters."""
    n = draw(st.integers(1, 6))
    rows = draw(st.lists(st.lists(finite, min_size=4, max_size=4), min_size=n, max_size=n))
    datatype = draw(st.sampled_from(["FP32", "FP64"]))
    nested = draw(st.booleans())
    data = rows if nested else [v for r in rows for v in r]
    body = {"inputs": [{"name": "input", "shape": [n, 4], "datatype": datatype, "data": data}]}
    outputs = draw(st.none() | st.lists(st.sampled_from(["predict", "predict_proba"]), min_size=1,
                                        max_size=2, unique=True))
    if outputs is not None:
        body["outputs"] = [{"name": o} for o in outputs]
    if draw(st.booleans()):
        body["id"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        body["parameters"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    return body


MUTATIONS = ("shape", "datatype", "data", "data_item", "name", "id", "surrogate_id", "outputs",
             "parameters", "inputs", "extra_tensor", "body", "deep", "tensor_field")


@st.composite
def mutated_oip(draw):
    """A valid request with one part replaced by something else (maybe still valid)."""
    body = draw(valid_oip())
    t = body["inputs"][0]
    what = draw(st.sampled_from(MUTATIONS))
    if what == "shape":
        t["shape"] = draw(st.one_of(json_values, st.lists(st.integers(-5, 10**31), max_size=70),
                                    st.just([0, 10**30]), st.just([1] * 65)))
        if draw(st.booleans()):  # no values: only the shape itself can be wrong
            t["data"] = []
    elif what == "datatype":
        t["datatype"] = draw(st.one_of(st.sampled_from(list(oip.DATATYPES)), json_values))
    elif what == "data":
        t["data"] = draw(json_values)
    elif what == "data_item":
        flat = t["data"] if not isinstance(t["data"][0], list) else t["data"][0]
        flat[draw(st.integers(0, len(flat) - 1))] = draw(json_values)
    elif what == "name":
        t["name"] = draw(json_values)
    elif what == "id":
        body["id"] = draw(json_values)
    elif what == "surrogate_id":
        body["id"] = draw(lone_surrogates)
    elif what == "outputs":
        body["outputs"] = draw(st.one_of(json_values, st.lists(st.fixed_dictionaries({"name": json_values}))))
    elif what == "parameters":
        body["parameters"] = draw(json_values)
    elif what == "inputs":
        body["inputs"] = draw(json_values)
    elif what == "extra_tensor":
        body["inputs"].append(dict(t, name=draw(st.sampled_from(["input", "x", FEATURES[0]]))))
    elif what == "body":
        body = draw(json_values)
    elif what == "deep":
        depth = draw(st.integers(30, 3000))
        t["data"] = json.loads("[" * depth + "1" + "]" * depth) if depth < 900 else None
        if t["data"] is None:
            return json.dumps(body).replace('"data": null', '"data": ' + "[" * depth + "1" + "]" * depth).encode()
    else:
        del t[draw(st.sampled_from(["name", "shape", "datatype", "data"]))]
    return body


# --------------------------------------------------------------------------- OIP v2
@fuzz(120)
@given(body=valid_oip())
def test_valid_oip_bodies_get_the_models_answer(served, body):
    r = post(served, "/v2/models/iris/infer", body)
    assert r.status_code == 200, r.text
    answer = r.json()
    t = body["inputs"][0]
    X = np.asarray(t["data"], dtype=np.float32 if t["datatype"] == "FP32" else np.float64).reshape(t["shape"])
    n = len(X)
    outputs = {o["name"]: o for o in answer["outputs"]}
    wanted = [o["name"] for o in body.get("outputs", [])] or ["predict"]
    assert list(outputs) == wanted
    if "id" in body:
        assert answer["id"] == body["id"]
    import pandas as pd

    frame = pd.DataFrame(X.astype(np.float64), columns=FEATURES)
    if "predict" in outputs:
        assert outputs["predict"]["shape"] == [n]
        assert outputs["predict"]["data"] == served.iris.predict(frame).tolist()
    if "predict_proba" in outputs:
        assert outputs["predict_proba"]["shape"] == [n, 3]
        np.testing.assert_allclose(np.reshape(outputs["predict_proba"]["data"], (n, 3)),
                                   served.iris.predict_proba(frame), atol=1e-9)


@fuzz(300)
@given(body=mutated_oip())
def test_mutated_oip_bodies_never_get_a_server_error(served, body):
    r = post(served, "/v2/models/iris/infer", body)
    if r.status_code == 200:  # a mutation that kept the body valid: the answer is well formed
        assert all(math.prod(o["shape"]) == len(o["data"]) for o in r.json()["outputs"])


@fuzz(60)
@given(body=mutated_oip())
def test_mutated_oip_bodies_to_the_text_and_embedding_models(served, body):
    post(served, "/v2/models/text/infer", body)
    if isinstance(body, dict) and isinstance(body.get("inputs"), list) and body["inputs"] \
            and isinstance(body["inputs"][0], dict):
        body["inputs"][0].update(datatype="BYTES")  # mostly numbers as BYTES: refused, never a 5xx
    post(served, f"/v2/models/{EMB}/infer", body)


@fuzz(60)
@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=4), ident=st.text(max_size=20))
def test_valid_bytes_bodies_to_the_text_model(served, texts, ident):
    body = {"id": ident, "inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    r = post(served, "/v2/models/text/infer", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == ident and out["outputs"][0]["shape"] == [len(texts)]
    assert set(out["outputs"][0]["data"]) <= {"pets", "finance"}


# --------------------------------------------------------------------------- plain /predict
plain_bodies = st.one_of(
    json_values,
    st.lists(st.fixed_dictionaries({f: st.one_of(finite, json_values) for f in FEATURES}), min_size=1, max_size=4),
    st.lists(st.lists(st.one_of(finite, json_values), max_size=6), min_size=1, max_size=4),
    st.fixed_dictionaries({"text": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=30), max_size=3),
                                             json_values)}),
    st.fixed_dictionaries({"record": json_values}),
    st.fixed_dictionaries({"records": json_values}),
    st.fixed_dictionaries({"instances": st.lists(st.lists(finite, min_size=4, max_size=4), max_size=3)}),
    st.fixed_dictionaries({"text": lone_surrogates}),
)


@fuzz(150)
@given(body=plain_bodies, model=st.sampled_from(["iris", "text", EMB]))
def test_plain_bodies_never_get_a_server_error(served, body, model):
    r = post(served, f"/predict/{model}", body)
    if r.status_code == 200:
        assert isinstance(r.json()["predictions"], list)


# --------------------------------------------------------------------------- /v1/embeddings
embedding_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"input": st.one_of(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=3),
                                              json_values, lone_surrogates)},
                          optional={"model": st.one_of(st.just(EMB), json_values),
                                    "encoding_format": st.one_of(st.sampled_from(["float", "base64"]), json_values),
                                    "user": json_values}),
)


@fuzz(80)
@given(body=embedding_bodies)
def test_embedding_bodies_never_get_a_server_error(served, body):
    r = post(served, "/v1/embeddings", body)
    if r.status_code == 200:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = r.json()["data"]
        assert [d["index"] for d in data] == list(range(len(texts)))
        if body.get("encoding_format", "float") == "float":
            assert all(len(d["embedding"]) == 384 for d in data)


# --------------------------------------------------------------------------- raw bytes, every POST route
@fuzz(120)
@given(body=st.one_of(st.binary(min_size=1, max_size=200),
                      st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
                      st.integers(1, 5000).map(lambda d: b'{"inputs": ' + b"[" * d + b"]" * d + b"}")),
       path=st.sampled_from(["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer", "/predict/iris",
                             "/predict/text", "/v1/embeddings", f"/v2/models/{EMB}/infer"]))
def test_raw_bytes_never_get_a_server_error(served, body, path):
    r = post(served, path, body)
    assert r.status_code in (400, 404, 422), r.text
