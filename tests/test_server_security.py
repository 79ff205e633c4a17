"""Issue 10, the Jupyter server's half: no Dask connection to an address from the registry,
secrets only where the user sent them, a private registry home, and ``/aiaas/api`` answering
every malformed request with a 4xx and a JSON message (a seeded hypothesis run against the real
server extension, over real sockets).

Real parts only: a jupyter_server started by pytest-jupyter with the extension, a real TCP
"scheduler" that answers with a Dask-framed pickle (and a control run proving that payload
does execute in a real ``distributed.Client``), a real HTTP server on loopback recording the
headers it receives, a real embedded Dask cluster for the kernel's snapshot.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socketserver
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from aiaas_jupyter import cluster_snapshot
from aiaas_jupyter.errors import EndpointAuthError, EndpointError, InvalidNameError, RegistryError, ServingError
from aiaas_jupyter.registry import JobRecord, Registry, parse_ref
from aiaas_jupyter.registry.endpoints_table import allowed_key_env
from aiaas_jupyter.server.manager import SidebarManager
from aiaas_jupyter.serving import state

pytest_plugins = ["pytest_jupyter.jupyter_server"]

API = ("aiaas", "api")
SECRET = "sk-secret-never-leaves-7f3a9c"
KEY_VAR = "SECURITY_TEST_API_KEY"


# ---- real loopback peers -------------------------------------------------------------------

class Evil:
    """Unpickling this creates ``path``: proof that code ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _SchedulerHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1
        self.request.sendall(self.server.payload)
        time.sleep(0.5)


@pytest.fixture
def hostile_scheduler(tmp_path):
    """A TCP listener on 127.0.0.1 that answers every connection with a Dask-framed message
    carrying a pickle that creates ``marker``. Yields (address, server, marker)."""
    from distributed.comm.tcp import _add_frames_header
    from distributed.protocol import dumps, to_serialize

    marker = tmp_path / "pwned"
    frames, _, _ = _add_frames_header(dumps({"op": "handshake", "x": to_serialize(Evil(str(marker)))}))
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SchedulerHandler)
    server.daemon_threads = True
    server.connections, server.payload = 0, b"".join(bytes(f) for f in frames)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}", server, marker
    server.shutdown()
    server.server_close()
    thread.join(5)


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.seen.append((self.path, dict(self.headers.items())))
        self.send_response(401 if self.path.endswith("/models") and "authorization" not in
                           {k.lower() for k in self.headers.keys()} else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    """A real HTTP server on loopback that records every request's path and headers."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


# ---- the server, on a home each test prepares ------------------------------------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    monkeypatch.setenv("AIAAS_HOME", str(path))
    return path


@pytest.fixture
def jp_server_config(home):
    return {"ServerApp": {"jpserver_extensions": {"aiaas_jupyter": True}}}


async def get_json(jp_fetch, *path):
    response = await jp_fetch(*API, *path)
    assert response.code == 200
    return json.loads(response.body)


# ---- 2. no Dask connection from the Jupyter server --------------------------------------------

def test_the_hostile_scheduler_is_real(hostile_scheduler):
    """Control: a real ``distributed.Client`` connecting to it does run the payload (in a
    subprocess), so the zero below means something."""
    address, server, marker = hostile_scheduler
    code = f"from distributed import Client\ntry:\n    Client({address!r}, timeout=5)\nexcept Exception:\n    pass"
    subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True, check=True)
    assert server.connections >= 1 and marker.exists()


async def test_cluster_route_never_connects_to_a_recorded_scheduler(hostile_scheduler, home, jp_fetch):
    address, server, marker = hostile_scheduler
    reg = Registry(home)
    reg.record_job(JobRecord(id="j1", model="m", status="running", scheduler=address))
    cluster_snapshot.record(home, {"scheduler": address, "workers": [], "n_workers": 0, "threads": 0,
                                   "memory_gb": 0, "gpus": 0, "dashboard": "javascript:alert(1)"})
    answer = await get_json(jp_fetch, "cluster")
    for path in (("models",), ("jobs",), ("endpoints",), ("cluster",), ("sweeps",)):  # every route the sidebar polls
        await jp_fetch(*API, *path)
    await asyncio.sleep(0.3)
    assert server.connections == 0 and not marker.exists()
    assert answer["scheduler"] == address and answer["reachable"] is True  # this process wrote it, alive
    assert answer["dashboard"] is None  # only http(s) links reach the sidebar's href
    assert answer["stale"] is False and 0 <= answer["age_s"] < 60 and answer["recorded_at"]


def test_server_side_has_no_dask_client():
    """The extension's modules import nothing from Dask's distributed (its comms unpickle)."""
    import aiaas_jupyter.server.handlers as handlers
    import aiaas_jupyter.server.manager as manager

    for module in (manager, handlers):
        source = Path(module.__file__).read_text()
        assert "from distributed" not in source and "import distributed" not in source


def test_snapshot_follows_the_kernel_connect_and_disconnect(tmp_path):
    """The kernel's real path: connect an embedded cluster, the sidebar sees its workers;
    disconnect, it sees the cluster gone. No snapshot before: "no cluster yet"."""
    from aiaas_jupyter.client import AiaasClient

    home = tmp_path / "kernel-home"
    assert SidebarManager(home).cluster() == {"scheduler": None}
    client = AiaasClient(home)
    client.connect(n_workers=1, threads_per_worker=1, gpus=0)
    try:
        seen = SidebarManager(home).cluster()
        assert seen["scheduler"] == client.dask.scheduler.address and seen["reachable"] is True
        assert (seen["n_workers"], seen["threads"], seen["gpus"]) == (1, 1, 0)
        assert seen["workers"][0]["threads"] == 1 and seen["stale"] is False
        assert stat.S_IMODE(os.stat(cluster_snapshot.path(home)).st_mode) == 0o600
    finally:
        client.disconnect()
    gone = SidebarManager(home).cluster()
    assert gone["scheduler"] == seen["scheduler"] and gone["reachable"] is False


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"scheduler": 5}', b"{" * 5000,
                                     b'{"scheduler": "tcp://x:1", "pid": -1, "workers": [1, {"threads": "x"}],'
                                     b' "threads": 1e400, "recorded_at": "yesterday", "n_workers": true}'])
def test_a_damaged_snapshot_is_shown_safely(tmp_path, content):
    home = tmp_path / "h"
    home.mkdir()
    cluster_snapshot.path(home).write_bytes(content)
    seen = SidebarManager(home).cluster()
    if seen["scheduler"] is None:
        assert seen == {"scheduler": None}
    else:
        assert seen["reachable"] is False and seen["stale"] is True and seen["age_s"] is None
        assert seen["workers"] == [{"address": "", "name": "", "threads": 0, "memory_gb": 0, "gpus": 0}]
        assert seen["threads"] == 0 and seen["n_workers"] == 1
    json.dumps(seen, allow_nan=False)


# ---- 3. secrets go only where the user sent them ----------------------------------------------

@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "HF_TOKEN", "MY_SERVICE_KEY", "GITHUB_TOKEN", "X_KEY"])
def test_api_key_variables_that_fit_the_rule(name, tmp_path):
    assert allowed_key_env(name)
    assert Registry(tmp_path).add_endpoint("e", "http://h", "openai", api_key_env=name).api_key_env == name


@pytest.mark.parametrize("name", ["JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "AIAAS_SECRET_KEY",
                                  "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY", "AWS_SECRET_ACCESS_KEY",
                                  "AWS_SESSION_TOKEN", "PATH", "HOME", "openai_api_key", "A" * 61 + "_KEY",
                                  "1_KEY", "MY-KEY", "KEY", ""])
def test_api_key_variables_outside_the_rule_are_refused(name, tmp_path):
    reg = Registry(tmp_path)
    assert not allowed_key_env(name)
    with pytest.raises(EndpointError) as err:
        reg.add_endpoint("e", "http://h", "openai", api_key_env=name)
    assert "_KEY or _TOKEN" in err.value.hint and "\n" not in str(err.value)
    assert reg.list_endpoints() == []


def _plant_row(home: Path, name: str, url: str, var: str) -> None:
    """What the attack did: write the row straight into SQLite, past every check."""
    Registry(home).add_endpoint("placeholder", "http://127.0.0.1:9", "v2")  # creates the schema
    with sqlite3.connect(home / "registry.sqlite3") as conn:
        conn.execute("INSERT INTO endpoints (name, url, protocol, api_key_env, model, created) "
                     "VALUES (?, ?, 'openai', ?, NULL, '2026-01-01')", (name, url, var))


async def test_a_planted_row_never_gets_the_jupyter_token(home, recorder, jp_fetch, jp_serverapp, monkeypatch):
    server, url = recorder
    monkeypatch.setenv("JUPYTER_TOKEN", SECRET)
    _plant_row(home, "planted", f"{url}/v1", "JUPYTER_TOKEN")
    response = await jp_fetch(*API, "endpoints")
    planted = next(e for e in json.loads(response.body)["endpoints"] if e["name"] == "planted")
    assert planted["api_key_set"] is False and planted["health"] == "up, needs a key (401)"
    # and the kernel's calls refuse to read it, before any request
    from aiaas_jupyter.client import AiaasClient

    with pytest.raises(EndpointAuthError, match="not an API-key variable"):
        AiaasClient(home).ask("planted", "hi")
    AiaasClient(home).endpoints()  # the kernel's listing checks health without that variable
    assert server.seen and all(SECRET not in json.dumps(headers) for _, headers in server.seen)
    assert all("authorization" not in {k.lower() for k in headers} for _, headers in server.seen)


async def test_health_checks_from_the_server_carry_no_credentials(home, recorder, jp_fetch, monkeypatch):
    """A legitimate endpoint with its key set: the Jupyter server's check sends no header at
    all; the user's own kernel listing does send the key, to that endpoint only."""
    server, url = recorder
    monkeypatch.setenv(KEY_VAR, SECRET)
    Registry(home).add_endpoint("llm", f"{url}/v1", "openai", api_key_env=KEY_VAR)
    body = await get_json(jp_fetch, "endpoints")
    (ep,) = body["endpoints"]
    assert ep["api_key_set"] is True and ep["health"] == "up, needs a key (401)"
    assert [p for p, _ in server.seen] == ["/v1/models"]
    assert "authorization" not in {k.lower() for k in server.seen[0][1]}
    from aiaas_jupyter.client import AiaasClient

    rows = {r["name"]: r for r in AiaasClient(home).endpoints().records()}
    assert rows["llm"]["health"] == "up" and server.seen[-1][1].get("Authorization") == f"Bearer {SECRET}"


async def test_a_set_key_appears_in_no_answer_file_or_log(home, recorder, jp_fetch, jp_serverapp, caplog,
                                                          monkeypatch):
    server, url = recorder
    caplog.set_level(logging.DEBUG)
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    loggers = [jp_serverapp.log, logging.getLogger("tornado.access"), logging.getLogger("tornado.application")]
    for logger in loggers:
        logger.addHandler(handler)
    monkeypatch.setenv(KEY_VAR, SECRET)
    reg = Registry(home)
    reg.add_endpoint("llm", f"{url}/v1", "openai", api_key_env=KEY_VAR)
    reg.record_job(JobRecord(id="j", model="m", status="finished"))
    bodies = [(await jp_fetch(*API, *p)).body for p in (("models",), ("jobs",), ("endpoints",), ("cluster",), ("sweeps",))]
    from aiaas_jupyter.client import AiaasClient

    table = AiaasClient(home).endpoints()
    for logger in loggers:
        logger.removeHandler(handler)
    assert "aiaas/api/endpoints" in log.getvalue()  # the server's own log was captured
    shown = b"".join(bodies).decode() + repr(table) + table._repr_html_() + caplog.text + log.getvalue()
    assert KEY_VAR in shown and SECRET not in shown
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "registry.sqlite3" for p in files)
    assert all(SECRET.encode() not in p.read_bytes() for p in files)


# ---- registry home, database and token: private ----------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_fresh_home_is_private_whatever_the_umask(tmp_path, umask):
    home = tmp_path / "fresh" / "home"
    old = os.umask(umask)
    try:
        reg = Registry(home)
        reg.add_endpoint("e", "http://h", "v2")
        with reg.db.read() as conn:  # a reader beside the writer: WAL files exist now
            conn.execute("SELECT 1").fetchone()
            reg.record_job(JobRecord(id="j", model="m"))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir() if p.is_file()}
        state.write_token(home)
        cluster_snapshot.record(home, {"scheduler": "tcp://127.0.0.1:1"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert modes["registry.sqlite3"] == 0o600 and modes.get("registry.sqlite3-wal", 0o600) == 0o600
    assert modes.get("registry.sqlite3-shm", 0o600) == 0o600 and "registry.sqlite3-wal" in modes
    assert stat.S_IMODE((home / "server").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "server" / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE(cluster_snapshot.path(home).stat().st_mode) == 0o600


def test_an_existing_loose_home_and_database_are_tightened(tmp_path):
    home = tmp_path / "loose"
    Registry(home).add_endpoint("e", "http://h", "v2")
    os.chmod(home, 0o777)
    os.chmod(home / "registry.sqlite3", 0o666)
    Registry(home).add_endpoint("f", "http://h", "v2")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "registry.sqlite3").stat().st_mode) == 0o600


def test_a_symlinked_token_is_replaced_never_written_through_and_never_read(tmp_path):
    home = tmp_path / "home"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (home / "server").mkdir(parents=True)
    (home / "server" / "token").symlink_to(victim)
    with pytest.raises(ServingError, match="refusing the model server token"):
        state.read_token(home)  # a planted link is not read (its target would go out as a bearer token)
    token = state.write_token(home)
    assert victim.read_text() == "precious"
    path = home / "server" / "token"
    assert not path.is_symlink() and path.read_text() == token and state.read_token(home) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in (home / "server").iterdir()] == ["token"]  # no temp file left


# ---- 4. /aiaas/api: bad input is a 4xx with a JSON message ------------------------------------

@pytest.mark.parametrize("ref", ["m:99999999999999999999999", "m:2147483648", "m:0", "m:" + "9" * 5000])
def test_huge_versions_are_bad_names(ref):
    with pytest.raises(InvalidNameError, match="invalid version") as err:
        parse_ref(ref)
    assert len(str(err.value)) < 400
    assert parse_ref("m:2147483647") == ("m", 2**31 - 1, None)


def test_huge_int_versions_are_refused_by_the_registry_api(tmp_path):
    reg = Registry(tmp_path)
    for version in (2**31, 10**30, 0, -1, True):
        with pytest.raises(InvalidNameError):
            reg.set_alias("m", version, "prod")
        with pytest.raises(InvalidNameError):
            reg.delete("m", version)
    for limit in (10**30, 0, -5, 2.5, "50", True):  # the jobs listing's limit, from Python too
        with pytest.raises(RegistryError, match="limit must be a whole number from 1 to 1000000"):
            reg.list_jobs(limit)
    assert reg.list_jobs(10**6) == []


@pytest.mark.parametrize("content", [b"garbage", b"[1, 2]", b"{}", b'{"url": "http://x", "pid": 99999999999999999999}',
                                     b'{"url": "http://x", "pid": -1}', b'{"url": 5, "pid": 1}', b"\xff\xfe",
                                     b"[" * 10000])
async def test_a_damaged_server_json_reads_as_not_running(home, content, jp_fetch):
    (home / "server").mkdir(parents=True)
    (home / "server" / "server.json").write_bytes(content)
    body = await get_json(jp_fetch, "endpoints")
    assert body["server"]["running"] is False and body["server"]["url"] is None
    assert "damaged" in body["server"]["problem"] and "server.json" in body["server"]["problem"]
    assert state.read_server_info(home) is None and state.find_server(home) is None
    assert state.stop_server(home) is False  # and never signals a pid it cannot trust


def _pct(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


valid_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(lambda n: ".." not in n)
names = st.one_of(
    valid_names, valid_names,  # half valid: the paths behind the name check get fuzzed too
    st.text(max_size=40).map(lambda t: _pct(t.encode("utf-8", "surrogatepass"))),  # incl. lone surrogates
    st.binary(min_size=1, max_size=40).map(_pct),  # not UTF-8 at all
    st.sampled_from(["..", "%2E%2E", "a..b", "iris:99999999999999999999", "iris@", "-x", "a" * 5000, "%00"]),
)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _refs_to(name: str):
    """Bodies naming this very model: the requests that get past the name check."""
    return st.one_of(
        st.integers(min_value=-(10**40), max_value=10**40).map(lambda v: f"{name}:{v}"),
        st.text(max_size=30).map(lambda t: f"{name}@{t}"),
        st.text(max_size=30).map(lambda t: f"{name}:{t}"),
    ).map(lambda ref: json.dumps({"ref": ref}).encode("utf-8", "surrogatepass"))


def _bodies(name: str):
    return st.one_of(
        st.just(b""),
        _refs_to(name),
        st.integers(1, 12_000).map(_nested),
        st.integers(1, 12_000).map(lambda d: b'{"ref": ' * d + b"1" + b"}" * d),
        st.binary(max_size=200),
        st.just(b"x" * 200_000),
        st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4),
                     max_leaves=10).map(lambda v: json.dumps(v).encode()),
    )


requests = names.flatmap(lambda name: st.tuples(st.just(name), _bodies(name)))

headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Accept", "Content-Encoding", "X-Requested-With", "Accept-Charset", "Range"]),
    # what a client can put on the wire (h11 refuses the rest): visible ASCII and obs-text bytes
    st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40)
    .map(str.strip).filter(bool).map(lambda v: v.encode("latin-1")),
    max_size=3,
)

routes = st.sampled_from(["GET models", "GET models/{}", "POST models/{}/deploy", "POST models/{}/undeploy",
                          "GET endpoints", "GET jobs", "GET cluster", "PUT models/{}", "DELETE models/{}",
                          "PATCH endpoints", "GET models/{}/deploy", "GET {}", "POST models/{}/x/deploy"])


async def test_fuzz_the_api_no_server_errors(home, jp_fetch, jp_http_port, jp_base_url, jp_auth_header):
    """Seeded hypothesis run (derandomized, 150 examples) against the real server extension,
    through a real socket, on a home with a job, a remote endpoint and a damaged server.json:
    every answer is < 500, JSON, and a 4xx carries a "message"."""
    reg = Registry(home)
    reg.record_job(JobRecord(id="j1", model="m", scheduler="ucx://10.0.0.1:1"))
    reg.add_endpoint("remote", "http://127.0.0.1:9/v1", "openai", api_key_env=KEY_VAR)
    (home / "server").mkdir()
    (home / "server" / "server.json").write_text('{"url": "tls://x", "pid": 1e400}')
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}aiaas/api/"
    seen: dict[int, int] = {}

    @settings(max_examples=150, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @example(route="POST models/{}/deploy", request=("m", b'{"ref": "m:99999999999999999999999"}'), extra={})
    @example(route="POST models/{}/deploy", request=("m", _nested(10_000)), extra={})
    @example(route="POST models/{}/deploy", request=("m", b"\xff\xfe{"), extra={})
    @example(route="POST models/{}/deploy", request=("m", b" " * 200_000), extra={})
    @example(route="GET models/{}", request=("%ED%A0%80", b""), extra={})
    @example(route="GET models/{}", request=("..", b""), extra={})  # normalised to the bare prefix
    @given(route=routes, request=requests, extra=headers)
    def check(route, request, extra):
        name, body = request
        method, path = route.split(" ")
        request_headers = {**extra, **jp_auth_header}
        note(f"{method} {path.format(name)[:200]} headers={extra} body={body[:200]!r} ({len(body)} bytes)")
        with httpx.Client(timeout=30) as client:
            response = client.request(method, base + path.format(name), headers=request_headers,
                                      content=body if method != "GET" else None)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        note(f"-> {response.status_code} {response.headers.get('content-type')} {response.text[:300]!r}")
        assert response.status_code < 500, (method, path.format(name)[:100], body[:100], response.text[:300])
        answer = response.json()
        if response.status_code >= 400:
            assert isinstance(answer, dict) and answer.get("message"), response.text[:300]

    started = time.perf_counter()
    await asyncio.to_thread(check)  # the server runs on this loop: hypothesis drives it from a thread
    elapsed = time.perf_counter() - started
    print(f"fuzz: {sum(seen.values())} requests in {elapsed:.1f} s, statuses {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= 150 and elapsed < 60
    assert {200, 400, 404, 405, 413} <= set(seen)
