"""The server's life cycle through its state files: start, find from a new process, restart
with the same deployments, stop; the ``aiaas serve`` command in the foreground; TLS.

Every server started here is stopped in a ``finally``/fixture teardown.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import serving_models as sm
from aiaas_jupyter.errors import ServerNotRunningError
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state

BIN = Path(sys.executable).parent


def _iris_body():
    return {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}]}


def test_no_server(tmp_path):
    assert state.find_server(tmp_path) is None
    assert state.stop_server(tmp_path) is False
    with pytest.raises(ServerNotRunningError, match="no model server token"):
        state.read_token(tmp_path)


def test_start_find_restart_stop(tmp_path):
    home = tmp_path / "home"
    reg = Registry(home)
    sm.register(reg, "iris", sm.train_iris())
    sm.register(reg, "iris", sm.train_iris(seed=1, n_estimators=5))
    reg.set_alias("iris", 1, "prod")
    info = state.ensure_server(home)
    try:
        sdir = home / "server"
        assert stat.S_IMODE((sdir / "token").stat().st_mode) == 0o600
        saved = json.loads((sdir / "server.json").read_text())
        assert set(saved) >= {"url", "pid", "started", "tls", "version"} and saved["tls"] is False
        assert saved["url"] == info.url and saved["pid"] == info.pid and info.url.startswith("http://127.0.0.1:")
        assert state.ensure_server(home).pid == info.pid  # found, not started twice
        token = state.read_token(home)
        assert token not in repr(info)
        h = {"Authorization": f"Bearer {token}"}
        # the first deploy imports scikit-learn and skops in the server: over httpx's 5 s default on a busy runner
        r = httpx.post(info.url + "/admin/deployments", json={"name": "iris", "ref": "iris@prod"}, headers=h,
                       timeout=60)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert json.loads((sdir / "deployments.json").read_text()) == {"iris": {"ref": "iris@prod", "version": 1}}

        # a "new kernel": a fresh interpreter knows nothing but the home
        code = ("import sys, json; from aiaas_jupyter.serving import state; i = state.find_server(sys.argv[1]); "
                "print(json.dumps([i.url, i.pid]))")
        found = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=60)
        assert json.loads(found.stdout) == [info.url, info.pid], found.stderr

        # the alias moves while the server is down: a restart still serves the deployed version 1
        assert state.stop_server(home) is True
        assert state.find_server(home) is None and not (sdir / "server.json").exists()
        with pytest.raises(ProcessLookupError):
            os.kill(info.pid, 0)
        reg.set_alias("iris", 2, "prod")
        info2 = state.ensure_server(home)
        assert info2.pid != info.pid
        token2 = state.read_token(home)
        assert token2 != token
        h2 = {"Authorization": f"Bearer {token2}"}
        listed = httpx.get(info2.url + "/admin/deployments", headers=h2).json()["deployments"]
        assert [(d["name"], d["ref"], d["version"]) for d in listed] == [("iris", "iris@prod", 1)]
        r = httpx.post(info2.url + "/v2/models/iris/infer", json=_iris_body(), headers=h2)
        assert r.status_code == 200 and r.json()["model_version"] == "1"
        assert httpx.get(info2.url + "/v2", headers=h).status_code == 403  # the old token is gone
    finally:
        state.stop_server(home)
    assert state.find_server(home) is None


def test_a_stale_server_file_is_replaced(tmp_path):
    sdir = tmp_path / "server"
    sdir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (sdir / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": dead.pid, "started": "",
                                                  "tls": False, "version": "0"}))
    assert state.find_server(tmp_path) is None
    info = state.ensure_server(tmp_path)
    try:
        assert info.pid != dead.pid and state.find_server(tmp_path).pid == info.pid
    finally:
        state.stop_server(tmp_path)


def test_cli_serve_in_the_foreground(tmp_path):
    proc = subprocess.Popen([str(BIN / "aiaas"), "serve", "--home", str(tmp_path), "--port", "0",
                             "--max-batch-size", "8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        token = state.read_token(tmp_path)
        info = state.read_server_info(tmp_path)
        assert info.url in line and str(tmp_path / "server" / "token") in line and token not in line
        assert "idle timeout 7200 s" in line  # the packaged default: aiaas.server.idle-timeout 2h
        assert info.pid == proc.pid and httpx.get(info.url + "/v2/health/ready").status_code == 200
        status = subprocess.run([str(BIN / "aiaas"), "status", "--home", str(tmp_path)], capture_output=True,
                                text=True, timeout=30)
        assert status.returncode == 0 and info.url in status.stdout and token not in status.stdout
        second = subprocess.run([str(BIN / "aiaas"), "serve", "--home", str(tmp_path)], capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 1 and "already runs" in second.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        assert not (tmp_path / "server" / "server.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _self_signed(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls(tmp_path):
    cert, key = _self_signed(tmp_path)
    home = tmp_path / "home"
    info = state.ensure_server(home, tls_cert=str(cert), tls_key=str(key))
    try:
        saved = json.loads((home / "server" / "server.json").read_text())
        assert saved["tls"] is True and saved["url"].startswith("https://127.0.0.1:")
        assert info.tls and info.verify == str(cert.resolve())
        r = httpx.get(info.url + "/v2", headers=info.headers(), verify=str(cert))
        assert r.status_code == 200 and r.json()["name"] == "aiaas-jupyter"
        with pytest.raises(httpx.ConnectError):  # not trusted without the certificate
            httpx.get(info.url + "/v2/health/live")
        assert state.find_server(home).url == info.url
    finally:
        state.stop_server(home)
