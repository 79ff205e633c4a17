"""``aiaas serve --workers N`` (issue 15 point 7): N real serving processes on one port behind a
supervisor, agreeing on what they serve. Every request here goes over loopback to the real server;
"fresh connection" means a new TCP connection, which the kernel hands to whichever process accepts
it, so a check repeated on 30 fresh connections reaches every process with overwhelming odds
(and the placement test proves both take connections)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state
from support import serving_models as sm

BIN = Path(sys.executable).parent
ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _serving(pid: int) -> list[psutil.Process]:
    """The supervisor's live serving processes (not multiprocessing's resource tracker, nor one
    that died and is not reaped yet)."""
    out = []
    for p in psutil.Process(pid).children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
    return out


@contextlib.contextmanager
def _server(home: Path, *extra: str, workers: int = 2):
    proc = subprocess.Popen([str(BIN / "aiaas"), "serve", "--home", str(home), "--workers", str(workers),
                             "--idle-timeout", "0", *extra],
                            stdout=open(home / "serve.out", "w"), stderr=subprocess.STDOUT)
    try:
        def started():
            if proc.poll() is not None:
                pytest.fail(f"aiaas serve exited: {(home / 'serve.out').read_text()[-2000:]}")
            return state.read_server_info(home)

        info = _wait(started, 120, "server.json")
        _wait(lambda: httpx.get(info.url + "/v2/health/ready").status_code == 200, 120, "readiness")
        yield proc, info
    finally:
        children = [] if proc.poll() is not None else _serving(proc.pid)
        proc.terminate()
        proc.wait(30)
        for child in children:
            _wait(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 10, "a serving process")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-workers")
    reg = Registry(home)
    sm.register(reg, "iris", sm.train_iris(0))
    sm.register(reg, "iris", sm.train_iris(1, n_estimators=5))
    return home


@pytest.fixture(scope="module")
def served(home):
    with _server(home) as (proc, info):
        yield proc, info


def _fresh(info, method: str, path: str, **kw) -> httpx.Response:
    with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as c:
        return c.request(method, path, **kw)


def _versions(info, n: int = 30) -> list:
    """The version that answered each of *n* inference requests, each on a new connection."""
    out = []
    for _ in range(n):
        r = _fresh(info, "POST", "/v2/models/iris/infer", json=_oip())
        out.append(r.json().get("model_version") if r.status_code == 200 else r.status_code)
    return out


def _oip() -> dict:
    return {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in ROW.items()]}


def _counter(text: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_two_processes_take_connections_on_one_port(served):
    proc, info = served
    children = _serving(proc.pid)
    assert len(children) == 2 and info.pid == proc.pid  # server.json names the supervisor
    port = int(info.url.rsplit(":", 1)[1])
    clients = [httpx.Client(base_url=info.url, headers=info.headers()) for _ in range(16)]
    try:
        for c in clients:  # each one's keep-alive connection stays open, held by the process that took it
            assert c.get("/v2/health/live").status_code == 200
        held = {p.pid: sum(1 for conn in p.net_connections("tcp") if conn.laddr.port == port
                           and conn.status == psutil.CONN_ESTABLISHED) for p in children}
    finally:
        for c in clients:
            c.close()
    assert sum(held.values()) == 16 and all(held.values()), held


def test_a_deploy_is_answered_once_every_process_serves_it(served):
    _, info = served
    r = _fresh(info, "POST", "/admin/deployments", json={"ref": "iris:1"})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert _versions(info) == ["1"] * 30  # whichever process takes the connection
    r = _fresh(info, "POST", "/admin/deployments", json={"ref": "iris:2"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert _versions(info) == ["2"] * 30
    # and every process lists the same: the admin list on fresh connections
    assert {json.dumps(_fresh(info, "GET", "/admin/deployments").json()["deployments"][0]["version"])
            for _ in range(10)} == {"2"}


def test_a_canary_split_holds_across_processes_and_promote_drops_nothing(served):
    _, info = served
    assert _fresh(info, "POST", "/admin/deployments", json={"ref": "iris:1"}).status_code == 200
    r = _fresh(info, "POST", "/admin/deployments", json={"ref": "iris:2", "canary": 10})
    assert r.status_code == 200 and r.json()["canary"]["percent"] == 10
    clients = [httpx.Client(base_url=info.url, headers=info.headers()) for _ in range(8)]
    try:
        answered = [clients[i % 8].post("/v2/models/iris/infer", json=_oip()).json()["model_version"]
                    for i in range(2000)]
    finally:
        for c in clients:
            c.close()
    # each process counts its own share exactly (floor(k/10) of its k requests): 2 processes, within 2
    assert 198 <= answered.count("2") <= 200 and answered.count("1") + answered.count("2") == 2000
    # promote while requests run on 4 connections: none fails, and afterwards every process serves v2
    failures, stop = [], threading.Event()

    def hammer():
        with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as c:
            while not stop.is_set():
                r = c.post("/v2/models/iris/infer", json=_oip())
                if r.status_code != 200:
                    failures.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        r = _fresh(info, "POST", "/admin/deployments/iris/promote")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert r.status_code == 200 and r.json()["version"] == 2 and failures == []
    assert _versions(info) == ["2"] * 30
    assert json.loads((info.home / "server" / "deployments.json").read_text())["iris"] == {"ref": "iris:2",
                                                                                          "version": 2}


def test_metrics_sum_every_process(served):
    _, info = served
    assert _fresh(info, "POST", "/admin/deployments", json={"ref": "iris:1"}).status_code == 200
    before = _counter(_fresh(info, "GET", "/metrics").text, "aiaas_requests_total", model="iris", version="1",
                      route="predict", code="200")
    for _ in range(50):
        assert _fresh(info, "POST", "/predict/iris", json=[ROW]).status_code == 200
    texts = [_fresh(info, "GET", "/metrics").text for _ in range(6)]  # whichever process is asked
    for text in texts:
        assert _counter(text, "aiaas_requests_total", model="iris", version="1", route="predict",
                        code="200") == before + 50
        assert _counter(text, "aiaas_deployment_info", model="iris", version="1") == 1
        assert _counter(text, "aiaas_requests_in_flight", model="iris") == 0
        assert _counter(text, "aiaas_queue_depth", model="iris", version="2") == 0  # v2 left: not listed
        assert 'aiaas_queue_depth{model="iris",version="2"}' not in text


def test_concurrent_changes_of_two_names_both_hold(served):
    _, info = served
    with httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as a, \
            httpx.Client(base_url=info.url, headers=info.headers(), timeout=60) as b:
        results = {}
        threads = [threading.Thread(target=lambda c=c, n=n, ref=ref: results.__setitem__(
            n, c.post("/admin/deployments", json={"name": n, "ref": ref}).status_code))
            for c, n, ref in ((a, "left", "iris:1"), (b, "right", "iris:2"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == {"left": 200, "right": 200}
    saved = json.loads((info.home / "server" / "deployments.json").read_text())
    assert saved["left"]["version"] == 1 and saved["right"]["version"] == 2
    for _ in range(20):
        names = {d["name"]: d["version"] for d in _fresh(info, "GET", "/admin/deployments").json()["deployments"]}
        assert names["left"] == 1 and names["right"] == 2
    for name in ("left", "right"):
        assert _fresh(info, "DELETE", f"/admin/deployments/{name}").status_code == 200
    for _ in range(20):
        assert _fresh(info, "POST", "/predict/left", json=[ROW]).status_code == 404


def test_a_serving_process_that_dies_is_replaced_and_serves_the_same(served):
    proc, info = served
    assert _fresh(info, "POST", "/admin/deployments", json={"ref": "iris:2"}).status_code == 200
    victim = _serving(proc.pid)[0]
    victim.send_signal(signal.SIGKILL)
    _wait(lambda: len(_serving(proc.pid)) == 2 and victim.pid not in {p.pid for p in _serving(proc.pid)}, 60,
          "a new serving process")
    # the new one took no connection before serving what the others serve
    assert _versions(info, 40) == ["2"] * 40
    assert "starting it again" in (info.home / "serve.out").read_text()


def test_stop_ends_every_process_and_leaves_nothing(tmp_path):
    with _server(tmp_path, "--deploy", "builtin:echo") as (proc, info):
        children = _serving(proc.pid)
        r = _fresh(info, "POST", "/v2/models/echo/infer",
                   json={"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a b", "c"]}]})
        assert r.json()["outputs"][0]["data"] == ["a b", "c"]  # the no-op model: W4's ceiling
        out = subprocess.run([str(BIN / "aiaas"), "stop", "--home", str(tmp_path)], capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == "stopped"
        assert proc.wait(30) == 0
        _wait(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children), 10,
              "the serving processes to end")
        assert not (tmp_path / "server" / "server.json").exists()
        assert not list((tmp_path / "server").glob("metrics-*"))


def test_a_kernel_started_server_takes_its_processes_from_the_config(tmp_path):
    import dask

    with dask.config.set({"aiaas.server.workers": 2}):
        info = state.ensure_server(tmp_path, idle_timeout=0)
    try:
        assert len(_serving(info.pid)) == 2
    finally:
        assert state.stop_server(tmp_path)


@pytest.mark.parametrize("value", ["0", "-1", "600"])
def test_workers_out_of_range_is_one_line(tmp_path, value):
    out = subprocess.run([str(BIN / "aiaas"), "serve", "--home", str(tmp_path), "--workers", value],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"aiaas serve: --workers must be between 1 and 512, got {value}"]


def test_the_idle_timeout_ends_the_whole_server(tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_AIAAS__SERVER__WATCH_INTERVAL", "0.2")
    proc = subprocess.Popen([str(BIN / "aiaas"), "serve", "--home", str(tmp_path), "--workers", "2",
                             "--idle-timeout", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        info = _wait(lambda: state.read_server_info(tmp_path), 60, "server.json")
        children = _serving(proc.pid)
        for _ in range(4):  # requests keep it alive past its idle timeout
            time.sleep(0.8)
            assert _fresh(info, "GET", "/admin/deployments").status_code == 200
        assert proc.poll() is None
        assert proc.wait(15) == 0
        assert "no requests for 2 s (idle timeout)" in proc.stderr.read()
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
