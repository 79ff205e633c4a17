"""Content-addressed, crash-safe artifact storage: ``<root>/<sha256[:2]>/<sha256>``.

Blobs are immutable and named by their hash, so identical artifacts are stored once and a
reader can always verify what it got. A blob is made visible only by an atomic rename of a
fully written and fsynced temp file, so a crash never leaves a truncated blob under its
final name; the registry inserts a database row only after every blob it references is
durable.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


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
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)

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
