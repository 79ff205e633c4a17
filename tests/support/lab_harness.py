"""A real ``jupyter lab`` and a real Chromium for the end-to-end tests of the sidebar.

Why a subprocess and not pytest-jupyter's in-process server: the browser needs the whole
JupyterLab front end (static assets, the prebuilt labextension, kernels, settings), exactly
as ``jupyter lab`` serves it to a user, and kernels must be real processes of this venv.

Everything a lab could pick up from the machine is pointed at a throwaway directory: user
settings (Jupyter news and update checks off, so no popup covers the screenshots),
workspaces (no layout restored from an earlier run), the runtime directory, the user's
Jupyter config and data directories (a ``python3`` kernelspec of another Python there would
shadow this venv's) and ``AIAAS_HOME``. ``--LabApp.expose_app_in_browser`` gives the tests ``window.jupyterapp``
for what has no UI of its own (does a command exist).

Chromium is the Debian build at ``/usr/bin/chromium`` (``scripts/browser_env.sh``), driven
by playwright's sync API through ``executable_path``: never ``playwright install``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: user settings every test lab starts with: no news, no update check (they pop up toasts)
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Lab:
    url: str            # http://127.0.0.1:PORT/
    token: str
    root: Path          # ServerApp.root_dir: notebooks go here
    home: Path          # the AIAAS_HOME the server and its kernels see
    proc: subprocess.Popen
    log: Path

    def page_url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}{path}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 10):
        req = urllib.request.Request(f"{self.url}{path}", data=body, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def write_settings(settings_dir: Path) -> None:
    for rel, value in LAB_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells, bound to this venv's ``python3`` kernelspec."""
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                      "language": "python"},
                       "language_info": {"name": "python"}},
          "cells": [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": src} for i, src in enumerate(cells)]}
    path.write_text(json.dumps(nb, indent=1))
    return path


@contextlib.contextmanager
def running_lab(base: Path, home: Path, timeout: float = 120) -> Iterator[Lab]:
    """``python -m jupyterlab`` on a free loopback port; stopped (with its kernels) on exit."""
    dirs = {d: base / d for d in ("root", "settings", "workspaces", "runtime", "config", "data")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    root, settings, workspaces = dirs["root"], dirs["settings"], dirs["workspaces"]
    write_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "AIAAS_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
           "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
           "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = base / "jupyter-lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    lab = Lab(url=f"http://127.0.0.1:{port}/", token=token, root=root, home=home, proc=proc, log=log)
    try:
        _wait_until_up(lab, timeout)
        yield lab
    finally:
        stop_lab(lab)


def _wait_until_up(lab: Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {lab.proc.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("api/status", timeout=2)
            return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.25)
    raise TimeoutError(f"jupyter lab did not answer /api/status within {timeout} s:\n{lab.log_tail()}")


def stop_lab(lab: Lab, grace: float = 30) -> None:
    """Shut the server down through its API (kernels shut down cleanly, so their Dask
    clusters close too), then make sure nothing it started is left: its process group and
    every descendant (kernels run in sessions of their own)."""
    import psutil

    try:
        descendants = psutil.Process(lab.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
        lab.api("api/shutdown", method="POST", body=b"", timeout=10)
    try:
        lab.proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.proc.pid, signal.SIGTERM)
        try:
            lab.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(lab.proc.pid, signal.SIGKILL)
            lab.proc.wait(10)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(alive, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    # the model server a deploy started outlives kernels and the lab by design
    from aiaas_jupyter.serving import state

    state.stop_server(lab.home)


@contextlib.contextmanager
def chromium_context(user_data_dir: Path, viewport=(1400, 900)):
    """A fresh Chromium profile driven by playwright (sync API)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"no browser at {CHROMIUM}: run `bash scripts/browser_env.sh` first")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            yield context
        finally:
            context.close()


__all__ = ["Lab", "running_lab", "stop_lab", "write_notebook", "chromium_context", "free_port",
           "CHROMIUM", "CHROMIUM_FLAGS"]


# ---- driving a notebook in the page (shared by the browser tests) ----------------------------

def wait_kernel_idle(page, timeout: float = 60_000) -> None:
    """The notebook's kernel is connected and idle (the toolbar's indicator also reads "idle"
    before any kernel exists, so ask the session itself)."""
    page.wait_for_function("""() => {
        const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
        return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
    }""", timeout=timeout, polling=100)


def cells(page):
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")


def cell_text(page, index: int) -> str:
    return cells(page).nth(index).locator(".cm-content").inner_text()


def run_cell(page, index: int, timeout: float = 120_000) -> float:
    """Select the cell, press Shift+Enter, wait for its execution count; returns when it ended
    (``time.monotonic()``), and fails on an error output."""
    cell = cells(page).nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the selected cell
    page.keyboard.press("Shift+Enter")
    handle = cell.element_handle()
    page.wait_for_function(
        "cell => /^\\[\\d+\\]:$/.test(cell.querySelector('.jp-InputPrompt').textContent.trim())",
        arg=handle, timeout=timeout, polling=50)
    ended = time.monotonic()
    errors = page.evaluate("""i => window.jupyterapp.shell.currentWidget.content.model.cells.get(i)
        .outputs.toJSON().filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`)""", index)
    assert errors == [], errors
    return ended


def cell_output(page, index: int) -> str:
    return cells(page).nth(index).locator(".jp-OutputArea").inner_text()


# ---- shared by the browser test modules -------------------------------------------------------

#: where screenshots go (the README test command points it at test-output/)
OUT = Path(os.environ.get("AIAAS_TEST_OUT", Path(__file__).resolve().parents[2] / "test-output"))


# pytest-jupyter's plugin, loaded for the whole run by test_server_extension.py, adds two
# autouse fixtures to every test: one closes the thread's event loop afterwards, the other
# cleans up an in-process ServerApp on it. In a browser test that loop is the one playwright's
# sync API runs on (closing it breaks the next step), and there is no in-process server: a
# module opts out by importing these two no-op overrides.
@pytest.fixture
def jp_asyncio_loop():
    yield None


@pytest.fixture
def jp_server_cleanup():
    yield
