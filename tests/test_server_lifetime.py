"""The model server's life cycle beyond start/stop: no zombie in the kernel that started it,
whoever stops it; it exits by itself once its home is gone; it shuts down cleanly after its
idle timeout, which requests reset and health probes don't.

Every server here is started by this process (the "kernel") with ``state.ensure_server``, or
in the foreground by ``aiaas serve``; each test stops what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import httpx
import pytest

from aiaas_jupyter.serving import state

BIN = Path(sys.executable).parent


def _gone(pid: int) -> bool:
    """No such process at all: exited *and* reaped (a zombie still has /proc/PID)."""
    return not Path(f"/proc/{pid}").exists()


def _wait(predicate, timeout: float) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.fixture
def fast_watch(monkeypatch):
    """The server checks its home every 0.2 s instead of every 5 s (inherited environment)."""
    monkeypatch.setenv("DASK_AIAAS__SERVER__WATCH_INTERVAL", "0.2")


@pytest.mark.parametrize("how", ["aiaas stop", "stop_server"])
def test_no_zombie_whoever_stops_the_server(tmp_path, how):
    info = state.ensure_server(tmp_path, idle_timeout=0)
    try:
        assert Path(f"/proc/{info.pid}/stat").read_text().split(") ")[1][0] != "Z"
        if how == "aiaas stop":  # another process stops it: this one never calls stop_server
            out = subprocess.run([str(BIN / "aiaas"), "stop", "--home", str(tmp_path)], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0 and out.stdout.strip() == "stopped", out.stderr
        else:
            assert state.stop_server(tmp_path) is True
        _wait(lambda: _gone(info.pid), 10)  # reaped by the thread that waits on our child
        assert state.find_server(tmp_path) is None and not state.pid_alive(info.pid)
        assert not (tmp_path / "server" / "server.json").exists()
    finally:
        state.stop_server(tmp_path)


@pytest.mark.parametrize("removed", ["home", "server dir", "token"])
def test_server_exits_when_its_home_disappears(tmp_path, fast_watch, removed):
    home = tmp_path / "home"
    info = state.ensure_server(home, idle_timeout=0)
    try:
        assert httpx.get(info.url + "/v2", headers=info.headers()).status_code == 200
        {"home": lambda: shutil.rmtree(home), "server dir": lambda: shutil.rmtree(home / "server"),
         "token": lambda: (home / "server" / "token").unlink()}[removed]()
        took = _wait(lambda: _gone(info.pid), 15)
        assert took < 10
        with pytest.raises(httpx.ConnectError):
            httpx.get(info.url + "/v2/health/live", timeout=2)
    finally:
        if not _gone(info.pid):
            os.kill(info.pid, signal.SIGKILL)


def test_idle_server_shuts_down_cleanly(tmp_path, fast_watch):
    """``aiaas.server.idle-timeout`` of the kernel reaches the server it starts; requests keep it
    up past the timeout, health probes don't; it then exits by itself and clears server.json."""
    with dask.config.set({"aiaas.server.idle-timeout": "3s"}):
        info = state.ensure_server(tmp_path)
    try:
        h = info.headers()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:  # in use for longer than the idle timeout
            assert httpx.get(info.url + "/v2", headers=h).status_code == 200
            time.sleep(0.5)
        assert not _gone(info.pid) and state.find_server(tmp_path) is not None
        last_use = time.monotonic()
        while not _gone(info.pid) and time.monotonic() - last_use < 20:  # only probes from now on
            with contextlib.suppress(httpx.TransportError):  # refused once it is shutting down
                assert httpx.get(info.url + "/v2/health/ready", timeout=2).status_code == 200
            time.sleep(0.3)
        idle_for = time.monotonic() - last_use
        assert _gone(info.pid), "the idle server is still running"
        assert 2.5 < idle_for < 10, idle_for
        assert not (tmp_path / "server" / "server.json").exists()  # a clean shutdown, not a kill
        log = (tmp_path / "server" / "server.log").read_text()
        assert "idle timeout 3 s" in log and "model server exiting: no requests for 3 s (idle timeout)" in log
    finally:
        state.stop_server(tmp_path)


def test_cli_idle_timeout_option(tmp_path):
    bad = subprocess.run([str(BIN / "aiaas"), "serve", "--home", str(tmp_path), "--idle-timeout", "soon"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a duration: 'soon'" in bad.stderr
    assert not (tmp_path / "server" / "token").exists()  # refused before touching the home

    env = {**os.environ, "DASK_AIAAS__SERVER__WATCH_INTERVAL": "0.2"}
    proc = subprocess.Popen([str(BIN / "aiaas"), "serve", "--home", str(tmp_path), "--idle-timeout", "1s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert "listening at" in first and "idle timeout 1 s" in first
        assert proc.wait(30) == 0  # it ended by itself, as after SIGTERM
        assert not (tmp_path / "server" / "server.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
