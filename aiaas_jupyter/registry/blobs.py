"""Content-addressed, crash-safe artifact storage: ``<root>/<sha256[:2]>/<sha256>``.

Blobs are immutable and named by their hash, so identical artifacts are stored once and a
reader can always verify what it got. A blob is made visible only by an atomic rename of a
fully written and fsynced temp file, so a crash never leaves a truncated blob under its
final name; the registry inserts a database row only after every blob it references is
durable.

A writer killed mid-write (SIGKILL, OOM) leaves its ``.tmp-*`` file behind. The writer holds
an exclusive ``flock`` on its temp file until the rename is done, and the kernel drops that
lock when the process dies; so :meth:`BlobStore.sweep_orphans` (run when a registry is
opened) removes exactly the temp files whose writer is gone, never one that another live
process is still writing into the same home.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; leftovers are not swept there
    fcntl = None

#: the prefix of a blob being written (see the module docstring)
TMP_PREFIX = ".tmp-"
#: a temp file younger than this is left alone: its writer may not have taken its lock yet
MIN_ORPHAN_AGE_S = 1.0


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """The blob directory. Stateless apart from its root, so safe across threads/processes."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def put(self, sha: str, data: bytes) -> None:
        """Durably store ``data`` under ``sha`` unless an intact-looking copy exists.

        The size check makes a truncated leftover (e.g. from a foreign tool) get rewritten;
        a full hash check is left to readers, which must verify anyway.
        """
        final = self.path(sha)
        if _has_size(final, len(data)):
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                if fcntl is not None:  # held until closed, after the rename: "a live writer's"
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)

    def sweep_orphans(self) -> tuple[int, int]:
        """Remove the temp files of writers that died mid-write; ``(files, bytes)`` removed.
        A temp file whose lock can be taken has no live writer (see the module docstring)."""
        if fcntl is None or not self.root.is_dir():
            return 0, 0
        files = size = 0
        for tmp in self.root.glob(f"*/{TMP_PREFIX}*"):
            try:
                fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:  # gone meanwhile (its writer renamed it), or not ours to open
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live writer holds it
                os.close(fd)
                continue
            try:
                st = os.fstat(fd)
                if time.time() - st.st_mtime < MIN_ORPHAN_AGE_S:
                    continue
                tmp.unlink()
                files, size = files + 1, size + st.st_size
            except OSError:  # gone meanwhile, or a read-only home: left for a writer to sweep
                pass
            finally:
                os.close(fd)
        return files, size

    def read(self, sha: str) -> bytes:
        """The blob's bytes; FileNotFoundError if absent (callers turn it into IntegrityError)."""
        return self.path(sha).read_bytes()

    def remove(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable. Windows cannot open directories; NTFS journals renames."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
