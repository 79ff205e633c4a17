"""The model server, for real: a server process started with ``state.ensure_server`` on a
registry home holding models trained by the project's trainers, exercised over loopback HTTP.

One server for the module (with the built-in embedding model, loaded once); it is stopped in
the fixture's teardown. Predictions are compared with the same registered models loaded
in-process.
"""

from __future__ import annotations

import asyncio
import json
import time
import types

import httpx
import numpy as np
import pytest

from support import serving_models as sm
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.artifacts.codec import load_model_files
from aiaas_jupyter.serving import state

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EMB = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def served(tmp_path_factory, one_torch_thread):
    home = tmp_path_factory.mktemp("serving-home")
    reg = Registry(home)
    sm.register(reg, "iris", sm.train_iris())
    sm.register_text_pipeline(reg, "text", sm.text_pipeline())
    sm.register(reg, "text-ct", sm.train_text_ct())
    sm.register(reg, "mlp", sm.train_mlp())
    info = state.ensure_server(home, embeddings=True, deploy=("iris", "text", "text-ct", "mlp"))
    try:
        local = {n: load_model_files(reg.get(n).framework, reg.read_artifacts(n))
                 for n in ("iris", "text", "text-ct", "mlp")}
        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as client:
            yield types.SimpleNamespace(home=home, reg=reg, info=info, url=info.url, http=client, local=local)
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


@pytest.fixture(scope="module")
def iris_X():
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame.drop(columns="target").sample(30, random_state=1)


def infer(http, name, inputs, **extra):
    return http.post(f"/v2/models/{name}/infer", json={"inputs": inputs, **extra})


def out(resp, name="predict"):
    assert resp.status_code == 200, resp.text
    o = next(o for o in resp.json()["outputs"] if o["name"] == name)
    return np.array(o["data"]).reshape(o["shape"]) if o["datatype"] != "BYTES" else o["data"]


# --------------------------------------------------------------------------- health, auth, metadata
def test_health_needs_no_token(served):
    assert httpx.get(served.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(served.url + "/v2/health/ready").json() == {"ready": True}


PROTECTED = [("GET", "/v2"), ("GET", "/v2/models/iris"), ("GET", "/v2/models/iris/ready"),
             ("GET", "/v2/models/iris/versions/1"), ("POST", "/v2/models/iris/infer"),
             ("POST", "/v2/models/iris/versions/1/infer"), ("POST", "/predict/iris"),
             ("GET", "/v1/models"), ("POST", "/v1/embeddings"), ("GET", "/admin/deployments"),
             ("POST", "/admin/deployments"), ("DELETE", "/admin/deployments/iris"), ("GET", "/admin/stats"),
             ("GET", "/no/such/route")]


@pytest.mark.parametrize("method, path", PROTECTED)
def test_every_other_route_needs_the_token(served, method, path):
    r = httpx.request(method, served.url + path, json={})
    assert r.status_code == 401 and "bearer" in r.json()["error"]
    r = httpx.request(method, served.url + path, json={}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403 and r.json() == {"error": "invalid token"}
    assert served.http.get("/v2/models/iris").status_code == 200  # nothing was undeployed


def test_server_and_model_metadata(served):
    meta = served.http.get("/v2").json()
    assert meta["name"] == "aiaas-jupyter" and meta["version"]
    m = served.http.get("/v2/models/iris").json()
    assert m["name"] == "iris" and m["versions"] == ["1"] and m["platform"] == "sklearn"
    assert m["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in m["outputs"]] == ["predict", "predict_proba"]
    assert m["outputs"][0]["datatype"] == "INT64" and m["outputs"][1]["shape"] == [-1, 3]
    assert m["parameters"]["feature_names"][0] == "sepal length (cm)"
    assert served.http.get("/v2/models/iris/versions/1").json()["name"] == "iris"
    assert served.http.get("/v2/models/text").json()["inputs"][0]["datatype"] == "BYTES"
    assert served.http.get("/v2/models/text").json()["outputs"][0]["datatype"] == "BYTES"
    assert served.http.get("/v2/models/mlp").json()["inputs"][0] == {"name": "input", "datatype": "FP32",
                                                                     "shape": [-1, 8]}
    assert served.http.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert served.http.get("/v2/models/iris/versions/1/ready").status_code == 200
    assert served.http.get("/v2/models/iris/versions/2/ready").status_code == 404
    assert served.http.get("/v2/models/nope/ready").status_code == 404


def test_openapi_document(served):
    r = httpx.get(served.url + "/openapi.json")  # no token needed
    doc = r.json()
    assert r.status_code == 200 and doc["openapi"].startswith("3.")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}", "/v2/models/{name}/ready",
                 "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer", "/predict/{name}",
                 "/v1/models", "/v1/embeddings", "/admin/deployments", "/admin/deployments/{name}"):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "token from HOME/server/token"}
    assert state.read_token(served.home) not in r.text
    schemas = doc["components"]["schemas"]
    assert {"label", "prediction", "predictions", "probabilities"} <= set(schemas["PlainResponse"]["properties"])
    assert "predict_url" in schemas["DeployResponse"]["required"]


# --------------------------------------------------------------------------- OIP v2 inference
def test_iris_all_input_forms(served, iris_X):
    want = served.local["iris"].predict(iris_X).tolist()
    proba = served.local["iris"].predict_proba(iris_X)
    X = iris_X.to_numpy()
    for dt in ("FP32", "FP64"):
        r = infer(served.http, "iris", [{"name": "input", "shape": list(X.shape), "datatype": dt,
                                         "data": X.reshape(-1).tolist()}])
        assert out(r).tolist() == want and r.json()["model_version"] == "1"
    named = [{"name": c, "shape": [len(X)], "datatype": "FP64", "data": iris_X[c].tolist()} for c in iris_X.columns]
    r = infer(served.http, "iris", named[::-1], id="req-42",
              outputs=[{"name": "predict_proba"}, {"name": "predict"}])
    body = r.json()
    assert body["id"] == "req-42" and [o["name"] for o in body["outputs"]] == ["predict_proba", "predict"]
    assert out(r).tolist() == want and np.allclose(out(r, "predict_proba"), proba)
    assert body["outputs"][0]["datatype"] == "FP64" and body["outputs"][0]["shape"] == [30, 3]
    r = infer(served.http, "iris", named, outputs=[{"name": "predict_proba"}])
    assert [o["name"] for o in r.json()["outputs"]] == ["predict_proba"]
    r = served.http.post("/v2/models/iris/versions/1/infer", json={"inputs": named})
    assert out(r).tolist() == want


def test_text_bytes(served):
    texts = sm.text_frame(20, seed=5)["text"].tolist()
    want = served.local["text"].predict(texts).tolist()
    r = infer(served.http, "text", [{"name": "text", "shape": [20], "datatype": "BYTES", "data": texts}],
              outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    assert out(r) == want and set(want) == {"pets", "finance"}
    assert r.json()["outputs"][0]["datatype"] == "BYTES"
    assert np.allclose(out(r, "predict_proba"), served.local["text"].predict_proba(texts))
    import pandas as pd

    r = infer(served.http, "text-ct", [{"name": "text", "shape": [20, 1], "datatype": "BYTES", "data": texts}])
    assert out(r) == served.local["text-ct"].predict(pd.DataFrame({"text": texts})).tolist()


def test_torch_fp32(served):
    X = sm.mlp_frame(seed=3).drop(columns="y").to_numpy(np.float32)[:25]
    model = served.local["mlp"]
    r = infer(served.http, "mlp", [{"name": "input", "shape": [25, 8], "datatype": "FP32",
                                    "data": X.reshape(-1).tolist()}], outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    assert out(r).tolist() == model.predict(X).tolist()
    assert np.allclose(out(r, "predict_proba"), model.predict_proba(X), atol=1e-5)


def _big_body():
    return b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["' + b"a" * (9 << 20) + b'"]}]}'


@pytest.mark.parametrize("name, body, status, message", [
    ("iris", {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP128", "data": [1, 2, 3, 4]}]},
     400, "unknown datatype 'FP128'"),
    ("iris", {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
     400, "needs 8 values, got 4"),
    ("iris", {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
     422, "expected 4 features per row, got 3"),
    ("iris", {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]},
     400, "column 'sepal length (cm)' is numeric (float64) in the model's signature; got text such as 'a'"),
    ("iris", {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
              "outputs": [{"name": "logits"}]}, 400, "unknown output 'logits'"),
    ("iris", {"inputs": [{"name": "input", "shape": [0, 4], "datatype": "FP32", "data": []}]}, 422, "no rows"),
    ("text", {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, 400,
     "column 'text' is text in the model's signature; got numbers (send BYTES)"),
    ("text", {"inputs": []}, 400, "non-empty list"),
    ("nope", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}, 404, "no model deployed"),
    ("iris/versions/7", {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
     404, "deployed at version 1, not 7"),
    ("iris", b"{not json", 400, "not valid JSON"),
    ("iris", b"", 400, "empty request body"),
    ("iris", _big_body(), 413, "request body over"),
])
def test_bad_requests(served, name, body, status, message):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = served.http.post(f"/v2/models/{name}/infer", **kw)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert set(r.json()) == {"error"}


def test_body_too_large_when_streamed(served):
    def chunks():
        for _ in range(10):
            yield b" " * (1 << 20)

    r = served.http.post("/v2/models/iris/infer", content=chunks())  # no Content-Length
    assert r.status_code == 413


# --------------------------------------------------------------------------- plain and OpenAI forms
def test_predict_plain_seed_002_text_gets_label_and_probabilities(served):
    """What a requests user writes: post {"text": t}, read ["label"]."""
    model = served.local["text"]
    r = served.http.post("/predict/text", json={"text": "my kitten has soft fur"})
    body = r.json()
    assert r.status_code == 200 and body["label"] == "pets" and body["predictions"] == ["pets"]
    proba = model.predict_proba(["my kitten has soft fur"])[0]
    assert set(body) == {"label", "predictions", "probabilities"}
    assert list(body["probabilities"]) == ["finance", "pets"] == list(model.classes_)
    assert np.allclose(list(body["probabilities"].values()), proba)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-9 and body["probabilities"]["pets"] > 0.5

    texts = ["bond yield and stock price", "a dog with a leash", "my kitten purrs"]
    batch = served.http.post("/predict/text", json={"text": texts}).json()
    assert set(batch) == {"predictions", "probabilities"}  # a batch: one entry per input, no single label
    assert batch["predictions"] == model.predict(texts).tolist() == ["finance", "pets", "pets"]
    assert np.allclose([list(p.values()) for p in batch["probabilities"]], model.predict_proba(texts))
    # the ColumnTransformer text model (trained on a "text" column) answers the same way
    one = served.http.post("/predict/text-ct", json={"text": texts[0]}).json()
    assert one["label"] == "finance" and one["predictions"] == ["finance"]
    records = served.http.post("/predict/text-ct", json=[{"text": t} for t in texts]).json()
    assert records["predictions"] == ["finance", "pets", "pets"]


def test_predict_plain_records_and_rows(served, iris_X):
    model = served.local["iris"]
    want, proba = model.predict(iris_X).tolist(), model.predict_proba(iris_X)
    records = iris_X.to_dict(orient="records")
    for body in (records, {"records": records}, {"instances": records}, {"instances": iris_X.to_numpy().tolist()},
                 iris_X.to_numpy().tolist()):
        answer = served.http.post("/predict/iris", json=body).json()
        assert answer["predictions"] == want and len(answer["probabilities"]) == 30
        assert np.allclose([[p[str(c)] for c in model.classes_] for p in answer["probabilities"]], proba)
    first = records[0]
    for body in (first, {"record": first}):  # ONE record: a single answer, classes as string keys
        answer = served.http.post("/predict/iris", json=body).json()
        assert answer["label"] == want[0] and answer["predictions"] == want[:1]
        assert list(answer["probabilities"]) == ["0", "1", "2"]
        assert np.allclose(list(answer["probabilities"].values()), proba[0])


def test_predict_plain_torch_uses_the_runtime_probabilities(served):
    X = sm.mlp_frame(seed=4).drop(columns="y").iloc[:5]
    v2 = infer(served.http, "mlp", [{"name": "input", "shape": [5, 8], "datatype": "FP32",
                                     "data": X.to_numpy(np.float32).reshape(-1).tolist()}],
               outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    answer = served.http.post("/predict/mlp", json=X.to_dict(orient="records")).json()
    assert answer["predictions"] == out(v2).tolist()
    assert [list(p) for p in answer["probabilities"]] == [["0", "1", "2"]] * 5
    assert np.allclose([list(p.values()) for p in answer["probabilities"]], out(v2, "predict_proba"), atol=1e-6)
    one = served.http.post("/predict/mlp", json={"record": X.iloc[0].to_dict()}).json()
    assert one["label"] == answer["predictions"][0]


def test_predict_plain_regression_and_embedding(served):
    from sklearn.linear_model import LinearRegression

    from aiaas_jupyter.training import TrainSpec, run_training

    frame = sm.mlp_frame(n=120, d=3, seed=5).rename(columns={"y": "target"})
    frame["target"] = frame["target"].astype(float) * 1.5 + frame["f0"]
    res = run_training(TrainSpec(model=LinearRegression(), target="target", seed=0), frame, lambda e: None)
    sm.register(served.reg, "linreg", res)
    served.http.post("/admin/deployments", json={"ref": "linreg"}).raise_for_status()
    try:
        local = load_model_files("sklearn", served.reg.read_artifacts("linreg"))
        X = frame.drop(columns="target").iloc[:4]
        want = local.predict(X).tolist()
        one = served.http.post("/predict/linreg", json=X.iloc[0].to_dict()).json()
        assert set(one) == {"prediction", "predictions"} and np.isclose(one["prediction"], want[0])
        many = served.http.post("/predict/linreg", json=X.to_dict(orient="records")).json()
        assert set(many) == {"predictions"} and np.allclose(many["predictions"], want)
    finally:
        served.http.delete("/admin/deployments/linreg")
    emb = served.http.post(f"/predict/{EMB}", json={"text": "a cat on a mat"}).json()
    assert len(emb["embedding"]) == 384 and emb["predictions"] == [emb["embedding"]]
    assert np.array(served.http.post(f"/predict/{EMB}", json={"text": ["a", "b"]}).json()["predictions"]).shape == (2, 384)


@pytest.mark.parametrize("name, body, status, message", [
    ("iris", [{"sepal length (cm)": 1.0}], 422, "lacks feature"),
    ("iris", {"text": "a flower"}, 422, "takes numeric features, not text"),
    ("iris", [[1.0, 2.0]], 422, "expected 4 features per row, got 2"),
    ("iris", [[1, 2, 3, 4], [1]], 400, "same number of numbers"),
    ("iris", {"records": [], "id": 3}, 400, "unexpected keys"),
    ("iris", {}, 400, "empty object"),
    ("iris", [], 400, "the list is empty"),
    ("iris", "just a string", 400, 'expected {"text": "..."}'),
    ("iris", 42, 400, 'expected {"text": "..."}'),
    ("iris", {"record": [1, 2]}, 400, "'record' must be an object"),
    ("text", {"text": 5}, 400, "'text' must be a string or a list of strings"),
    ("text", {"text": ["ok", 5]}, 400, "'text' must be a string or a list of strings"),
    ("text", {"text": []}, 400, "'text' is an empty list"),
    ("nope", {"text": "x"}, 404, "no model deployed as 'nope'"),
])
def test_predict_plain_bad_bodies_are_4xx_json(served, name, body, status, message):
    r = served.http.post(f"/predict/{name}", json=body)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert set(r.json()) == {"error"}


def test_openai_models_and_embeddings(served):
    models = served.http.get("/v1/models").json()
    assert models["object"] == "list" and {m["id"] for m in models["data"]} >= {EMB, "iris", "text"}
    texts = ["A cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly bond yields rose sharply."]
    r = served.http.post("/v1/embeddings", json={"model": EMB, "input": texts})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "list" and body["model"] == EMB
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and all(d["object"] == "embedding" for d in body["data"])
    vecs = np.array([d["embedding"] for d in body["data"]])
    assert vecs.shape == (3, 384)
    cos = (vecs @ vecs.T) / np.outer(np.linalg.norm(vecs, axis=1), np.linalg.norm(vecs, axis=1))
    assert cos[0, 1] > cos[0, 2] + 0.2 and cos[0, 1] > cos[1, 2] + 0.2
    one = served.http.post("/v1/embeddings", json={"model": EMB, "input": texts[0]}).json()
    assert np.allclose(one["data"][0]["embedding"], vecs[0], atol=1e-5)
    import base64

    b64 = served.http.post("/v1/embeddings", json={"model": EMB, "input": texts[:1],
                                                   "encoding_format": "base64"}).json()
    assert np.allclose(np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), "<f4"), vecs[0], atol=1e-5)
    assert served.http.post("/v1/embeddings", json={"model": "nope", "input": "x"}).status_code == 404
    assert served.http.post("/v1/embeddings", json={"model": EMB, "input": [1, 2]}).status_code == 400
    r = infer(served.http, EMB, [{"name": "text", "shape": [1], "datatype": "BYTES", "data": texts[:1]}])
    assert np.allclose(out(r, "embedding")[0], vecs[0], atol=1e-5)


# --------------------------------------------------------------------------- admin
def test_deploy_and_undeploy(served):
    r = served.http.post("/admin/deployments", json={"name": "iris-copy", "ref": "iris:1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "iris-copy", "version": 1, "ref": "iris:1", "framework": "sklearn",
                        "url": f"{served.url}/v2/models/iris-copy",
                        "predict_url": f"{served.url}/predict/iris-copy"}
    listed = {d["name"]: d for d in served.http.get("/admin/deployments").json()["deployments"]}
    assert listed["iris-copy"]["loaded_at"] and listed["iris"]["framework"] == "sklearn"
    assert listed["iris-copy"]["predict_url"] == f"{served.url}/predict/iris-copy"
    assert served.http.get("/v2/models/iris-copy/ready").status_code == 200
    assert served.http.delete("/admin/deployments/iris-copy").json() == {"name": "iris-copy", "undeployed": True}
    assert served.http.get("/v2/models/iris-copy/ready").status_code == 404
    assert served.http.delete("/admin/deployments/iris-copy").status_code == 404
    saved = json.loads((served.home / "server" / "deployments.json").read_text())
    assert "iris-copy" not in saved and saved["iris"] == {"ref": "iris", "version": 1}
    r = served.http.post("/admin/deployments", json={"name": "x", "ref": "no-such-model@prod"})
    assert r.status_code == 404 and "no-such-model" in r.json()["error"]
    assert served.http.post("/admin/deployments", json={"ref": "builtin:gpt-9"}).status_code == 404
    assert served.http.post("/admin/deployments", json={"name": "x"}).status_code == 400
    assert served.http.post("/admin/deployments", json={"name": "../evil", "ref": "iris"}).status_code == 400
    assert served.http.post("/admin/deployments", json=["iris"]).status_code == 400


def test_alias_repoint_and_redeploy_under_load(served):
    """Requests keep flowing while iris@prod moves from v1 to v2 and is redeployed: none
    fails, and answers switch from version 1 to version 2 exactly once per client."""
    reg = served.reg
    v2 = sm.register(reg, "iris", sm.train_iris(seed=1, n_estimators=5))
    reg.set_alias("iris", 1, "prod")
    assert served.http.post("/admin/deployments", json={"name": "iris-prod", "ref": "iris@prod"}).json()["version"] == 1
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
    seen: list[tuple[int, float, float, str]] = []  # (client, start, end, version)
    failures: list[str] = []

    async def main():
        async with httpx.AsyncClient(base_url=served.url, headers=served.info.headers(), timeout=30) as c:
            done = asyncio.Event()

            async def client(k):
                while not done.is_set():
                    t0 = time.monotonic()
                    r = await c.post("/v2/models/iris-prod/infer", json=body)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                    else:
                        seen.append((k, t0, time.monotonic(), r.json()["model_version"]))

            tasks = [asyncio.create_task(client(k)) for k in range(12)]
            await asyncio.sleep(0.4)
            reg.set_alias("iris", v2.version, "prod")
            t_req = time.monotonic()
            r = await c.post("/admin/deployments", json={"name": "iris-prod", "ref": "iris@prod"})
            t_done = time.monotonic()
            await asyncio.sleep(0.4)
            done.set()
            await asyncio.gather(*tasks)
            return r, t_req, t_done

    r, t_req, t_done = asyncio.run(main())
    assert r.status_code == 200 and r.json()["version"] == 2
    assert failures == []
    assert {v for *_, v in seen} == {"1", "2"}
    assert all(v == "1" for _, _, end, v in seen if end < t_req)
    assert all(v == "2" for _, start, _, v in seen if start > t_done)
    assert sum(1 for _, start, _, _ in seen if start > t_done) > 5
    for k in range(12):  # per client: 1 ... 1 2 ... 2
        versions = [v for c, *_, v in sorted(seen, key=lambda s: s[1]) if c == k]
        assert versions == sorted(versions)
    assert served.http.delete("/admin/deployments/iris-prod").status_code == 200


def test_adaptive_batching_really_batches(served):
    """64 requests sent at once over 64 open connections: answered correctly, in batches.

    A large request goes first and keeps the deployment's batch thread busy, so the 64 are
    certain to arrive while a batch runs (on a loaded 2-core machine the server could
    otherwise take each one alone as it comes, which is correct but proves nothing)."""
    served.http.post("/admin/deployments", json={"name": "text-batch", "ref": "text"}).raise_for_status()
    texts = sm.text_frame(64, seed=9)["text"].tolist()
    want = served.local["text"].predict(texts).tolist()
    big = sm.text_frame(64, seed=10)["text"].tolist() * 300  # 19,200 rows: ~0.1-0.3 s of predict
    port = int(served.url.rsplit(":", 1)[1])
    token = state.read_token(served.home)

    def request(rows: list[str]) -> bytes:
        payload = json.dumps({"inputs": [{"name": "text", "shape": [len(rows)], "datatype": "BYTES",
                                          "data": rows}]}).encode()
        return (b"POST /v2/models/text-batch/infer HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)

    async def read_answer(reader):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        return head.split(b" ")[1], json.loads(await reader.readexactly(length))

    async def main():
        conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(65)))
        (big_reader, big_writer), rest = conns[0], conns[1:]
        big_writer.write(request(big))
        await big_writer.drain()
        await asyncio.sleep(0.02)  # the big one is parsed and running
        for (reader, writer), text in zip(rest, texts):  # all written before any is read
            writer.write(request([text]))
        answers = [await read_answer(reader) for reader, _ in rest]
        big_answer = await read_answer(big_reader)
        for _, writer in conns:
            writer.close()
        return big_answer, answers

    big_answer, answers = asyncio.run(main())
    assert big_answer[0] == b"200" and len(big_answer[1]["outputs"][0]["data"]) == len(big)
    assert [a[0] for a in answers] == [b"200"] * 64
    assert [a[1]["outputs"][0]["data"][0] for a in answers] == want
    stats = served.http.get("/admin/stats").json()["models"]["text-batch"]
    assert stats["requests"] == 65 and stats["rows"] == 64 + len(big)
    assert stats["max_batch_requests"] > 1 and stats["batches"] < 65, stats
    meta = served.http.get("/v2/models/text-batch").json()
    assert meta["parameters"]["batching"]["requests"] == 65
    served.http.delete("/admin/deployments/text-batch")


def test_nan_input_is_answered_not_crashed(served):
    """JSON NaN (which Python clients send) reaches the model: an answer or a 422, never a 500."""
    r = served.http.post("/v2/models/iris/infer", content=b'{"inputs": [{"name": "input", "shape": [1, 4], '
                                                          b'"datatype": "FP64", "data": [NaN, 1, 2, 3]}]}')
    assert r.status_code in (200, 422), r.text
    assert served.http.get("/v2/models/iris/ready").status_code == 200
