"""Session-end check: the test run leaves no process of ours alive and no temporary home behind.

Everything the run starts — model servers (detached on purpose: they outlive kernels), Dask
schedulers and workers, Jupyter servers and kernels, nbval kernels, Chromium — inherits
``AIAAS_TEST_SESSION=<id>`` from this process's environment, which is how they are told apart
from other runs on the same machine (another checkout's tests, a user's own JupyterLab). At the
end of the session every live process carrying this run's id, and every unreaped child, is
listed, stopped (SIGTERM, then SIGKILL) and FAILS the run: a leak must be found and fixed, not
hidden by a clean-up that nobody sees.

Temporary files: ``TMPDIR`` points at one directory per run (``aiaas-test-*``) for this process
and everything it starts, pytest's ``tmp_path`` included. Whatever is left there besides
pytest's own directory — a ``mkdtemp`` nobody removed, a subprocess's scratch space — is
reported as a leak too, and the directory is removed (kept, with its path printed, when tests
failed, for the post-mortem). Libraries' own caches there (Dask's scratch root, torch's and
jest's, onnxruntime's) are expected.

Wired into ``tests/conftest.py`` by importing its two hooks.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest

MARK = "AIAAS_TEST_SESSION"
_state: dict = {}


def pytest_configure(config) -> None:
    if MARK in os.environ or hasattr(config, "workerinput"):  # nested pytest, or an xdist worker
        return
    session_id = uuid.uuid4().hex[:12]
    os.environ[MARK] = session_id
    root = Path(tempfile.mkdtemp(prefix="aiaas-test-"))
    _state.update(id=session_id, tmp=root, outer_tmp=os.environ.get("TMPDIR"))
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = None  # recomputed from TMPDIR on next use (pytest's tmp_path included)


def _ours(session_id: str) -> tuple[list, list]:
    """(live processes carrying our id, zombie children of this process)."""
    import psutil

    me = os.getpid()
    live, zombies = [], []
    for proc in psutil.process_iter(["pid", "ppid", "status", "name", "cmdline"]):
        if proc.pid == me:
            continue
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            if proc.info["ppid"] == me:
                zombies.append(proc)
            continue
        try:
            env = proc.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
        if env.get(MARK) != session_id:
            continue
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["ppid"] == me and "multiprocessing.resource_tracker" in cmd:
            continue  # the spawn start method's helper: it exits with us
        live.append(proc)
    return live, zombies


def _stop(procs) -> None:
    import psutil

    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def _describe(proc) -> str:
    cmd = " ".join(proc.info.get("cmdline") or []) or proc.info.get("name") or "?"
    return f"pid {proc.pid} (parent {proc.info.get('ppid')}): {cmd[:200]}"


def _expected(path: Path) -> bool:
    """Libraries' own caches in TMPDIR, which they keep on purpose (removed with the run's dir)."""
    name = path.name
    if name.startswith("pytest-of-"):
        return True  # pytest's tmp_path directories
    if name == "dask-scratch-space":  # Dask's scratch root: only its locks once every worker closed
        return all(p.name.endswith(".lock") for p in path.iterdir())
    if name.startswith(("torchinductor_", "jest_")):
        return True  # torch's compile cache, jest's transform cache
    return name == ".ses" and path.is_file()  # onnxruntime's session id file


def _leftover_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not _expected(p))


def _stop_notebooks_server(session_id: str) -> None:
    """The notebooks run in ``$AIAAS_HOME`` (scripts/dev.sh makes a throwaway one): a model server
    they deployed outlives their kernels by design, like a user's; the run that started it —
    and only that run — stops it, as ``lab_harness.stop_lab`` does for its homes."""
    import psutil

    from aiaas_jupyter.serving import state

    home = os.environ.get("AIAAS_HOME")
    info = state.read_server_info(home) if home else None
    if info is None:
        return
    try:
        ours = psutil.Process(info.pid).environ().get(MARK) == session_id
    except (psutil.Error, OSError):
        return
    if ours:
        state.stop_server(home)


@pytest.hookimpl(trylast=True)  # after session fixtures and nbval's kernels are torn down
def pytest_sessionfinish(session, exitstatus) -> None:
    if "id" not in _state:
        return
    problems: list[str] = []
    _stop_notebooks_server(_state["id"])
    live, zombies = _ours(_state["id"])
    if live:
        time.sleep(2)  # something still shutting down (a kernel, a server's clean exit) gets a moment
        live, zombies = _ours(_state["id"])
    for p in live:
        problems.append("process still running: " + _describe(p))
    for p in zombies:
        problems.append("child never waited for (zombie): " + _describe(p))
    _stop(live)
    for p in zombies:
        try:
            os.waitpid(p.pid, os.WNOHANG)
        except ChildProcessError:
            pass

    root: Path = _state["tmp"]
    for path in _leftover_files(root) if root.exists() else []:
        problems.append(f"temporary file left behind: {path}")

    if _state["outer_tmp"] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = _state["outer_tmp"]
    tempfile.tempdir = None
    failed = session.exitstatus not in (0, pytest.ExitCode.NO_TESTS_COLLECTED) or problems
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else print
    if problems:
        if reporter:
            reporter.write_line("")
            reporter.section("leaks: processes and temporary files this run left behind", sep="=", red=True)
        for line in problems:
            write(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if failed:
        write(f"temporary files of this run kept for inspection: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
