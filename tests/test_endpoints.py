"""The endpoints table and the serving clients, over real sockets.

Remote services (an OpenAI-compatible API, a REST model, failing servers) are a local
stand-in (tests/support/standin_server.py); the v2 codec is checked against the server's own parser.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.errors import (DataError, EndpointAuthError, EndpointError, EndpointNotFoundError,
                                  InvalidNameError)
from aiaas_jupyter.registry import Registry, db
from support.standin_server import CHAT_MODEL, EMBED_MODEL, running, vector

SECRET = "sk-test-5f3a9c1e7d2b4a6f8e0c"


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(tmp_path / "home")


@pytest.fixture(scope="module")
def standin():
    with running(SECRET) as s:
        yield s


# ---------------------------------------------------------------------------- registry table
def test_add_get_list_remove_endpoint(reg, monkeypatch):
    monkeypatch.setenv("STANDIN_KEY", SECRET)
    ep = reg.add_endpoint("gpt", "https://api.example.com/v1/", "openai", api_key_env="STANDIN_KEY",
                          model="gpt-4o-mini")
    assert (ep.url, ep.protocol, ep.api_key_env, ep.model) == ("https://api.example.com/v1", "openai",
                                                               "STANDIN_KEY", "gpt-4o-mini")
    assert reg.get_endpoint("gpt") == ep and ep.key_is_set()
    reg.add_endpoint("iris-remote", "http://10.0.0.5:8080", "v2")
    assert [e.name for e in reg.list_endpoints()] == ["gpt", "iris-remote"]
    assert reg.get_endpoint("iris-remote").remote_model == "iris-remote"
    # re-adding a name updates it
    reg.add_endpoint("iris-remote", "http://10.0.0.6:8080", "v2", model="iris")
    assert reg.get_endpoint("iris-remote").url == "http://10.0.0.6:8080"
    reg.remove_endpoint("gpt")
    with pytest.raises(EndpointNotFoundError, match="no endpoint named 'gpt'"):
        reg.get_endpoint("gpt")
    with pytest.raises(EndpointNotFoundError, match="did you mean 'iris-remote'"):
        reg.remove_endpoint("iris-remot")
    reg.add_endpoint("gpt", "https://api.example.com/v1", "openai", api_key_env="STANDIN_KEY")
    monkeypatch.delenv("STANDIN_KEY")
    assert not reg.get_endpoint("gpt").key_is_set()  # read at call time, never stored


@pytest.mark.parametrize("kwargs, expected", [
    (dict(name="../x", url="http://h", protocol="v2"), "invalid endpoint name"),
    (dict(name="a", url="ftp://h/x", protocol="v2"), "invalid endpoint URL"),
    (dict(name="a", url="http://", protocol="v2"), "invalid endpoint URL"),
    (dict(name="a", url="http://h:99999/v2", protocol="v2"), "invalid port"),
    (dict(name="a", url="http://h:0", protocol="v2"), "invalid port"),
    (dict(name="a", url="http://h:x/v1", protocol="openai"), "invalid port"),
    (dict(name="a", url="https://user:pw@h/v1", protocol="openai"), "must not contain credentials"),
    (dict(name="a", url="https://h/v1?api_key=abc", protocol="openai"), "query string"),
    (dict(name="a", url="http://h", protocol="grpc"), "invalid protocol 'grpc'"),
    (dict(name="a", url="http://h", protocol="openai", api_key_env=SECRET), "NAME of an environment variable"),
    (dict(name="a", url="http://h", protocol="v2", model="a b"), "invalid remote model name"),
])
def test_invalid_endpoints_are_refused_in_one_line(reg, kwargs, expected):
    with pytest.raises((EndpointError, InvalidNameError)) as err:
        reg.add_endpoint(**kwargs)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert reg.list_endpoints() == []


def test_a_key_value_passed_as_the_variable_name_is_refused(reg, monkeypatch):
    monkeypatch.setenv("MY_KEY", "abcdefghijklmnop")  # a value that is also a valid identifier
    with pytest.raises(EndpointError, match="got the value of an environment variable"):
        reg.add_endpoint("a", "http://h", "openai", api_key_env="abcdefghijklmnop")


def test_the_key_value_is_never_written(reg, monkeypatch):
    monkeypatch.setenv("STANDIN_KEY", SECRET)
    reg.add_endpoint("gpt", "https://api.example.com/v1", "openai", api_key_env="STANDIN_KEY")
    files = list(reg.home.rglob("*"))
    assert files and all(SECRET.encode() not in f.read_bytes() for f in files if f.is_file())


def test_a_version_1_database_gets_the_endpoints_table(tmp_path):
    """A registry created before endpoints existed is upgraded in place, keeping its data."""
    from aiaas_jupyter.registry import jobs_table, versions_table

    home = tmp_path / "old"
    home.mkdir()
    with sqlite3.connect(home / "registry.sqlite3") as conn:
        conn.executescript(versions_table.SCHEMA + jobs_table.SCHEMA + "PRAGMA user_version = 1;")
        conn.execute("INSERT INTO model_names VALUES ('kept', 2)")
    reg = Registry(home)
    assert reg.list_endpoints() == []
    reg.add_endpoint("e", "http://h", "rest")
    with sqlite3.connect(home / "registry.sqlite3") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        assert conn.execute("SELECT name FROM model_names").fetchall() == [("kept",)]
    assert [e.name for e in Registry(home).list_endpoints()] == ["e"]


# ---------------------------------------------------------------------------- transport
def _http(**kw):
    from aiaas_jupyter.serving_client.transport import Http

    return Http({"Authorization": f"Bearer {SECRET}"}, backoff=0.01, **kw)


def test_retries_on_503_then_succeeds(standin):
    standin.flaky, before = 2, standin.hits["flaky"]
    http = _http()
    assert http.post_json(f"{standin.url}/flaky", {}) == {"ok": True}
    assert (http.attempts, http.retries, standin.hits["flaky"] - before) == (3, 2, 3)


def test_gives_up_after_three_tries_with_one_line(standin):
    standin.flaky = 5
    http = _http()
    with pytest.raises(EndpointError) as err:
        http.post_json(f"{standin.url}/flaky?token=hidden", {})
    standin.flaky = 0
    assert str(err.value) == f"POST {standin.url}/flaky → 503: warming up"
    assert http.attempts == 3


def test_long_retry_after_is_not_waited_for(standin):
    http, t0 = _http(), time.monotonic()
    with pytest.raises(EndpointError) as err:
        http.post_json(f"{standin.url}/limited", {})
    assert time.monotonic() - t0 < 2 and http.attempts == 1
    assert "→ 429: quota exhausted" in str(err.value) and "retry after 3600 s" in str(err.value)


def test_connection_errors_are_retried_then_reported():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http = _http()
    with pytest.raises(EndpointError) as err:
        http.request("GET", f"http://127.0.0.1:{port}/v2/health/ready")
    assert http.attempts == 3 and http.retries == 2
    assert str(err.value).startswith(f"GET http://127.0.0.1:{port}/v2/health/ready → connection failed")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("code, fmt, cls, message", [
    (422, "error", EndpointError, "failure 422 via error"),
    (400, "message", EndpointError, "failure 400 via message"),
    (500, "detail", EndpointError, "failure 500 via detail"),
    (502, "text", EndpointError, "plain failure 502 second line"),
    (404, "error", EndpointNotFoundError, "failure 404 via error"),
    (401, "error", EndpointAuthError, "failure 401 via error"),
    (403, "error", EndpointAuthError, "failure 403 via error"),
])
def test_remote_errors_are_one_line(standin, code, fmt, cls, message):
    http = _http()
    with pytest.raises(cls) as err:
        http.post_json(f"{standin.url}/status/{code}?fmt={fmt}", {"x": 1})
    text = str(err.value)
    assert text.startswith(f"POST {standin.url}/status/{code} → {code}: {message}")
    assert "\n" not in text and SECRET not in text and http.attempts == 1


def test_an_echoed_key_is_masked(standin):
    with pytest.raises(EndpointError) as err:
        _http().post_json(f"{standin.url}/leaky", {})
    assert SECRET not in str(err.value) and "key *** is not allowed here" in str(err.value)


def test_timeout_is_one_line(standin):
    http = _http(timeout=0.5)
    with pytest.raises(EndpointError, match=r"POST .*/slow → no answer within 0.5 s"):
        http.post_json(f"{standin.url}/slow", {})


def test_nan_is_refused_before_sending(standin):
    with pytest.raises(DataError, match="NaN or infinite"):
        _http().post_json(f"{standin.url}/rest/echo", {"x": float("nan")})


def test_reprs_hold_no_secret():
    from aiaas_jupyter.serving_client.clients import OpenAIClient, RestClient, V2Client

    for obj in (OpenAIClient("http://h/v1", "m", SECRET), V2Client("http://h", "m", {"Authorization": SECRET}),
                RestClient("http://h", {"Authorization": SECRET}), _http()):
        assert SECRET not in repr(obj) and SECRET not in str(vars(obj).get("http", ""))


# ---------------------------------------------------------------------------- v2 codec
def test_v2_inputs_use_the_right_datatypes_and_the_server_parses_them():
    from aiaas_jupyter.serving import oip
    from aiaas_jupyter.serving_client.clients import v2_inputs

    arrays = {"BOOL": np.array([True, False]), "UINT8": np.array([1, 255], np.uint8),
              "UINT16": np.array([1, 2], np.uint16), "UINT32": np.array([1, 2], np.uint32),
              "UINT64": np.array([1, 2**63], np.uint64), "INT8": np.array([-1, 2], np.int8),
              "INT16": np.array([-1, 2], np.int16), "INT32": np.array([[-1, 2]], np.int32),
              "INT64": np.array([-(2**62), 2], np.int64), "FP16": np.array([0.5, 1.5], np.float16),
              "FP32": np.array([[0.25], [1.5]], np.float32), "FP64": np.array([1e-300, 2.5]),
              "BYTES": np.array(["héllo", "wörld"])}
    for datatype, array in arrays.items():
        [tensor] = v2_inputs(array)
        assert (tensor["datatype"], tensor["shape"]) == (datatype, list(array.shape))
        name, parsed = oip.decode_tensor(tensor)
        assert name == "input-0" and parsed.shape == array.shape
        assert parsed.tolist() == array.tolist()


def test_v2_frame_sends_one_input_per_column_and_outputs_decode():
    from aiaas_jupyter.serving_client.clients import v2_decode, v2_inputs

    frame = pd.DataFrame({"a": [1.5, 2.5], "n": [1, 2], "s": ["x", "y"]})
    tensors = v2_inputs(frame)
    assert [(t["name"], t["datatype"], t["shape"]) for t in tensors] == [
        ("a", "FP64", [2]), ("n", "INT64", [2]), ("s", "BYTES", [2])]
    assert tensors[2]["data"] == ["x", "y"]
    with pytest.raises(DataError, match="column 's' has missing values"):
        v2_inputs(frame.assign(s=["x", None]))
    assert v2_inputs(["one", "two"])[0]["datatype"] == "BYTES"
    out = v2_decode({"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]})
    assert out.dtype == np.float32 and out.tolist() == [[1, 2], [3, 4]]
    labels = v2_decode({"name": "p", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]})
    assert labels.dtype == object and labels.tolist() == ["a", "b"]


# ---------------------------------------------------------------------------- protocol clients
def test_openai_chat_retries_a_429_and_sends_the_key(standin):
    from aiaas_jupyter.serving_client.clients import OpenAIClient

    client = OpenAIClient(f"{standin.url}/v1", CHAT_MODEL, SECRET, backoff=0.01)
    standin.chat_429, before = 1, standin.hits["chat"]
    t0 = time.monotonic()
    assert client.chat("  What is 2+2? ") == "**echo:** What is 2+2?"
    assert time.monotonic() - t0 >= 0.9  # Retry-After: 1 was honoured
    assert standin.hits["chat"] - before == 2 and client.http.retries == 1
    assert standin.seen_auth[-1] == f"Bearer {SECRET}"
    assert client.models() == [CHAT_MODEL, EMBED_MODEL]


def test_openai_wrong_key_is_an_auth_error_without_the_key(standin):
    from aiaas_jupyter.serving_client.clients import OpenAIClient

    with pytest.raises(EndpointAuthError) as err:
        OpenAIClient(f"{standin.url}/v1", CHAT_MODEL, "sk-wrong-key-123456").chat("hi")
    assert str(err.value).startswith(f"POST {standin.url}/v1/chat/completions → 401: incorrect API key provided")
    assert "sk-wrong" not in str(err.value)


def test_openai_embeddings_keep_input_order(standin):
    from aiaas_jupyter.serving_client.clients import OpenAIClient

    client = OpenAIClient(f"{standin.url}/v1", EMBED_MODEL, SECRET)
    texts = ["banana", "a", "kiwi"]
    matrix = client.embed(texts)
    assert matrix.shape == (3, 3) and matrix.tolist() == [vector(t) for t in texts]
    one = client.embed("papaya")
    assert one.shape == (3,) and one.tolist() == vector("papaya")


def test_rest_client_posts_json(standin):
    from aiaas_jupyter.serving_client.clients import RestClient

    client = RestClient(f"{standin.url}/rest/echo")
    payload = {"records": [{"a": np.int64(1), "b": np.float32(0.5)}], "when": pd.Timestamp("2024-01-02")}
    assert client.post(payload) == {"echo": {"records": [{"a": 1, "b": 0.5}], "when": "2024-01-02T00:00:00"}}
