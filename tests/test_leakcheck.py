"""The session-end leak check (tests/support/leakcheck.py) fails a run that leaves a process or a
temporary file behind, stops what was left, and passes a clean run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

TESTS = Path(__file__).resolve().parent

LEAKY = '''
import subprocess, sys, tempfile, time

def test_leaks_a_detached_process_and_a_temp_home():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    open("leaked.pid", "w").write(str(proc.pid))
    tempfile.mkdtemp(prefix="aiaas-home-")

def test_leaves_a_zombie():
    import os
    os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], os.environ)  # never waited for
    time.sleep(1)
'''

CLEAN = '''
import subprocess, sys, tempfile, shutil

def test_clean(tmp_path):
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    shutil.rmtree(tempfile.mkdtemp(prefix="aiaas-home-"))
    (tmp_path / "x").write_text("pytest's own temporary directories are fine")
'''


def _pytest(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    d = tmp_path / "suite"
    d.mkdir()
    (d / "conftest.py").write_text("from support.leakcheck import pytest_configure, pytest_sessionfinish  # noqa\n")
    (d / "test_inner.py").write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if k != "AIAAS_TEST_SESSION"}  # a run of its own
    env.update(PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]), TMPDIR=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(d)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=d)


def test_a_leaky_run_fails_and_is_cleaned_up(tmp_path):
    out = _pytest(tmp_path, LEAKY)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text  # the tests themselves passed
    assert "2 passed" in text and "leaks: processes and temporary files this run left behind" in text
    leaked = int((tmp_path / "suite" / "leaked.pid").read_text())
    assert f"process still running: pid {leaked} " in text
    assert "child never waited for (zombie)" in text
    assert "temporary file left behind:" in text and "aiaas-home-" in text
    assert not psutil.pid_exists(leaked) or psutil.Process(leaked).status() == psutil.STATUS_ZOMBIE
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("aiaas-test-")]
    assert len(kept) == 1 and f"kept for inspection: {kept[0]}" in text


def test_a_clean_run_passes_and_removes_its_temporary_directory(tmp_path):
    out = _pytest(tmp_path, CLEAN)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "leaks:" not in out.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("aiaas-test-")]
