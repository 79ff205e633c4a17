"""A registry writer killed mid-save leaves nothing behind after the next registry open (issue 14).

Before, 20 SIGKILLs during artifact saves left 19 ``.tmp-*`` files (824 MB) in ``artifacts/`` that
nothing removed. A writer now holds an exclusive flock on its temp file until the rename; the
kernel drops it when the process dies, so opening a registry removes exactly the dead writers'
leftovers and never a live writer's (several kernels and the model server share one home).
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time

from aiaas_jupyter.registry import Registry

WRITER = """
import os, sys
from aiaas_jupyter.registry import Registry
Registry(sys.argv[1]).register("big", framework="sklearn", artifacts={"model.skops": os.urandom(400 * 2**20)},
                               params={}, metrics={}, library_versions={}, data_fingerprint="0" * 64,
                               source="", job_id=None)
"""


def _temps(home) -> list:
    return sorted((home / "artifacts").glob("*/.tmp-*"))


def test_a_writer_killed_mid_save_leaves_nothing_after_the_next_open(tmp_path):
    home = tmp_path / "home"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home)])
    try:
        deadline = time.time() + 60
        while not (_temps(home) and _temps(home)[0].stat().st_size > 0) and time.time() < deadline:
            assert writer.poll() is None, "the writer ended before it was killed"
            time.sleep(0.002)
        os.kill(writer.pid, signal.SIGKILL)  # mid-save: its temp file is there, not yet renamed
    finally:
        writer.wait(30)
    left = _temps(home)
    assert len(left) == 1 and left[0].stat().st_size > 0
    size = left[0].stat().st_size
    time.sleep(1.1)  # older than MIN_ORPHAN_AGE_S: its writer had long taken its lock
    reg = Registry(home)
    assert reg.orphans_removed == (1, size) and _temps(home) == []
    assert reg.list_models() == []  # nothing was registered, and the registry still works:
    mv = reg.register("small", framework="sklearn", artifacts={"model.skops": b"x" * 10}, params={}, metrics={},
                      library_versions={}, data_fingerprint="0" * 64, source="", job_id=None)
    assert mv.ref == "small:1" and reg.blobs.read(mv.artifacts["model.skops"]) == b"x" * 10


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    home = tmp_path / "home"
    Registry(home).register("m", framework="sklearn", artifacts={"model.skops": b"abc"}, params={}, metrics={},
                            library_versions={}, data_fingerprint="0" * 64, source="", job_id=None)
    live = home / "artifacts" / "ab" / ".tmp-live"
    live.parent.mkdir(exist_ok=True)
    live.write_bytes(b"half written")
    old = time.time() - 3600
    os.utime(live, (old, old))  # old enough: only its lock keeps it
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as BlobStore.put holds it while writing
        assert Registry(home).orphans_removed == (0, 0) and live.exists()
    assert Registry(home).orphans_removed == (1, 12) and not live.exists()  # its writer is gone


def test_a_young_unlocked_temp_file_is_left_alone(tmp_path):
    """Between mkstemp and flock a writer's file is unlocked for an instant: too young to sweep."""
    (tmp_path / "artifacts" / "cd").mkdir(parents=True)
    young = tmp_path / "artifacts" / "cd" / ".tmp-young"
    young.write_bytes(b"")
    assert Registry(tmp_path).orphans_removed == (0, 0) and young.exists()


def test_blob_writes_still_land_whole(tmp_path):
    reg = Registry(tmp_path)
    data = os.urandom(3 * 2**20)
    mv = reg.register("w", framework="sklearn", artifacts={"model.skops": data}, params={}, metrics={},
                      library_versions={}, data_fingerprint="0" * 64, source="", job_id=None)
    assert reg.blobs.read(mv.artifacts["model.skops"]) == data and _temps(tmp_path) == []
