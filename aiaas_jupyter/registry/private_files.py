"""Files only the user may read: the registry home (0700), its database, the model server's
token and the kernel's cluster snapshot (0600).

Why not ``mkdir``/``open`` plus the umask: a umask of 022 (the usual) leaves a directory
readable by every local user, and the home holds the server's bearer token and the
registry (which model runs where, which variable holds which key). So modes are set
explicitly, after creation, whatever the umask. Why ``O_NOFOLLOW | O_EXCL`` on a fresh random
name, then ``os.replace``: a link planted at the final path (``token -> ~/.bashrc``) must
never make us write through it; ``os.replace`` swaps the link itself for our file, and the
link's target stays untouched. Standard library only (loaded with the Jupyter extension).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; Windows has no symlink-following open to fear


def make_private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and its parents) and make ``path`` itself 0700; an existing directory of
    ours that is open to the group or others is tightened to 0700 too (the issue's rule: the
    registry home is private to the user). Raises OSError like ``mkdir``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, DIR_MODE)
    tighten(path, DIR_MODE)
    return path


def tighten(path: str | os.PathLike, mode: int) -> None:
    """``chmod`` to ``mode`` when ``path`` is ours and has bits beyond it (others' files, and
    links, are left alone: we may not own them, and chmod would follow the link)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return
    if stat.S_IMODE(st.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode)


def create_private_file(path: str | os.PathLike) -> bool:
    """Create an empty 0600 file at ``path`` unless something (even a dangling link) is there
    already; returns whether it created one. Never follows a link."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have removed bits; never added any
    finally:
        os.close(fd)
    return True


def write_private(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, never writing through a link.

    The data goes to a fresh, randomly named temp file in the same directory (``O_EXCL |
    O_NOFOLLOW``: nothing pre-planted can be opened), is fsynced, then renamed over ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_private(path: str | os.PathLike, limit: int = 1 << 20) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), refusing a symlink
    (``OSError`` ELOOP) or anything that is not a regular file (``OSError``)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not hang us
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        return f.read(limit)
