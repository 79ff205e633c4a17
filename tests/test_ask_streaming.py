"""Streamed chat answers (issue 15 point 6): ``%%aiaas ask`` shows the answer as an OpenAI-compatible
endpoint streams it (``stream: true``, server-sent events). The remote service is out of reach, so
the endpoint is the local stand-in (tests/support/standin_server.py), which streams one word per
chunk over a real socket; the client, the magic and a real Jupyter kernel's display are ours."""

from __future__ import annotations

import os
import time

import jupyter_client
import pytest

from aiaas_jupyter.errors import EndpointAuthError, EndpointError
from aiaas_jupyter.serving_client.clients import OpenAIClient, sse_data
from support.kernel_io import errors as _errors
from support.kernel_io import execute as _execute
from support.standin_server import CHAT_MODEL, running

KEY = "sk-stream-test-0123456789"
PROMPT = "one two three four five"


@pytest.fixture(scope="module")
def standin():
    with running(KEY) as standin:
        yield standin


@pytest.fixture
def llm(aiaas, standin, monkeypatch):
    monkeypatch.setenv("STANDIN_API_KEY", KEY)
    aiaas.add_endpoint("stream-llm", f"{standin.url}/v1", "openai", api_key_env="STANDIN_API_KEY", model=CHAT_MODEL)
    yield "stream-llm"
    aiaas.remove_endpoint("stream-llm")


def test_server_sent_events_are_read_as_the_spec_says():
    lines = ["data: {\"a\": 1}", "", ": a comment", "event: x", "data: first", "data: second", "", "data: [DONE]"]
    assert list(sse_data(iter(lines))) == ['{"a": 1}', "first\nsecond", "[DONE]"]


def test_pieces_arrive_as_the_endpoint_sends_them(standin):
    standin.stream_delay = 0.2
    try:
        client = OpenAIClient(f"{standin.url}/v1", CHAT_MODEL, KEY)
        t0, stamps, pieces = time.monotonic(), [], []
        for piece in client.chat_stream(PROMPT):
            stamps.append(time.monotonic() - t0)
            pieces.append(piece)
    finally:
        standin.stream_delay = 0.05
    assert "".join(pieces) == client.chat(PROMPT) == f"**echo:** {PROMPT}"
    assert len(pieces) == 6
    assert stamps[0] < 0.6 and stamps[-1] >= 1.1  # the first piece long before the last: streamed, not buffered


def test_errors_before_and_during_the_stream_are_one_line(standin):
    with pytest.raises(EndpointAuthError, match=r"chat/completions → 401: incorrect API key provided"):
        next(OpenAIClient(f"{standin.url}/v1", CHAT_MODEL, "sk-wrong-key-000000").chat_stream(PROMPT))
    client = OpenAIClient(f"{standin.url}/v1", CHAT_MODEL, KEY)
    got = []
    with pytest.raises(EndpointError, match=r"the stream failed after 16 characters: the model is overloaded$"):
        for piece in client.chat_stream("[fail mid-stream] please"):
            got.append(piece)
    assert "".join(got) == "**echo:** [fail "
    with pytest.raises(EndpointError, match=r"the stream broke after 16 characters: RemoteProtocolError"):
        list(client.chat_stream("[drop mid-stream] please"))


def test_the_magic_and_the_api(aiaas, shell, llm, capsys):
    pieces = aiaas.ask(llm, PROMPT, stream=True)
    assert "".join(pieces) == f"**echo:** {PROMPT}"
    assert shell.run_cell_magic("aiaas", f"ask {llm} -o streamed", PROMPT) is None
    assert shell.user_ns["streamed"] == f"**echo:** {PROMPT}"
    assert f"**echo:** {PROMPT}" in capsys.readouterr().out  # a terminal shell: written as it arrives
    whole = shell.run_cell_magic("aiaas", f"ask {llm} --no-stream -o whole", PROMPT)
    assert whole.text == shell.user_ns["whole"] == f"**echo:** {PROMPT}"
    with pytest.raises(EndpointError, match="the stream failed after 16 characters"):
        shell.run_cell_magic("aiaas", f"ask {llm} -o never", "[fail mid-stream] please")
    assert "never" not in shell.user_ns


def test_a_kernel_renders_the_answer_in_place_as_it_arrives(standin, tmp_path):
    """In JupyterLab: one Markdown output, updated in place (update_display_data) while words arrive."""
    standin.stream_delay = 0.15
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "AIAAS_HOME": str(tmp_path), "STANDIN_API_KEY": KEY}, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        setup = _execute(kc, "%load_ext aiaas_jupyter\n"
                             f"%aiaas endpoints add llm --url {standin.url}/v1 --protocol openai "
                             f"--api-key-env STANDIN_API_KEY --model {CHAT_MODEL}")
        assert not _errors(setup), _errors(setup)
        messages = _execute(kc, f"%%aiaas ask llm -o answer\n{PROMPT} six seven eight")
        assert not _errors(messages), _errors(messages)
        shown = [m for m in messages if m["msg_type"] == "display_data"]
        updates = [m["content"]["data"]["text/markdown"] for m in messages if m["msg_type"] == "update_display_data"]
        assert len(shown) == 1 and "text/markdown" in shown[0]["content"]["data"]
        assert not [m for m in messages if m["msg_type"] == "execute_result"]  # shown once, not twice
        assert len(updates) >= 4, updates  # re-rendered progressively, not once at the end
        texts = [u.removesuffix(" ▍") for u in updates]  # the cursor shows while words still arrive
        assert updates[0].endswith(" ▍") and not updates[-1].endswith(" ▍")
        assert all(b.startswith(a) and len(a) < len(b) for a, b in zip(texts, texts[1:]) if a != b)
        assert updates[-1] == f"**echo:** {PROMPT} six seven eight"
        check = _execute(kc, "print(repr(answer))")
        out = "".join(m["content"]["text"] for m in check if m["msg_type"] == "stream")
        assert out.strip() == repr(f"**echo:** {PROMPT} six seven eight")
    finally:
        standin.stream_delay = 0.05
        kc.stop_channels()
        km.shutdown_kernel(now=True)
