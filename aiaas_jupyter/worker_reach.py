"""Do the workers see this path? — asked before work that reads or writes files on the workers.

On a real cluster the workers run on other hosts and do not share the kernel's disk. A path glob
the kernel expands, or a ``save=`` directory the kernel creates, then names files the workers do
not have (a FileNotFoundError from a worker, half-way), or, worse for ``save``, each worker writes
its part on its own disk and the dataset the kernel reads back is missing most of it. One round
trip (``client.run`` on every worker: a stat, or the stat of a probe file the kernel just wrote)
turns that into one line before anything runs. URLs (``s3://``, ``gs://``, ``http://``, ...) go to
fsspec on every node and are not checked here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from .errors import DataError

_SHARED_HINT = ("the workers do not share this machine's disk: use a location every worker reaches "
                "(a shared mount, or a URL such as s3://BUCKET/... with fsspec)")


def is_url(text) -> bool:
    return isinstance(text, str) and "://" in text and not text.startswith("file://")


def _first_missing(paths: list[str]) -> str | None:
    """On a worker: the first of *paths* it cannot see."""
    for p in paths:
        if not os.path.exists(p):
            return p
    return None


def _blind_workers(client, paths: list[str]) -> dict[str, str]:
    """``{worker name: a path it cannot see}``."""
    answers = client.run(_first_missing, list(paths))
    names = {addr: str(w.get("name", addr)) for addr, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    return {names.get(addr, addr): missing for addr, missing in sorted(answers.items()) if missing}


def check_workers_read(client, files: list[str], source) -> None:
    """Every worker sees every one of *files* (found by the kernel for *source*), or one line."""
    if client is None or not files:
        return
    blind = _blind_workers(client, files)
    if blind:
        who = ", ".join(sorted(blind)[:4]) + (f" and {len(blind) - 4} more" if len(blind) > 4 else "")
        path = next(iter(blind.values()))
        raise DataError(f"worker(s) {who} cannot read {path} (of {str(source)[:120]!r}): it is on the kernel's disk only",
                        hint=_SHARED_HINT + "; or read it here and pass the frame (--input VAR)")


def check_workers_write(client, directory: str) -> None:
    """The kernel and every worker see the same *directory* (it must exist): a probe file the kernel
    writes there is visible to all of them, or one line (and the probe is gone again)."""
    if client is None:
        return
    probe = Path(directory) / f".aiaas-probe-{uuid.uuid4().hex[:12]}"
    try:
        probe.write_bytes(b"")
    except OSError as e:
        raise DataError(f"cannot write to {directory}: {e.strerror or e}") from None
    try:
        blind = _blind_workers(client, [str(probe)])
    finally:
        probe.unlink(missing_ok=True)
    if blind:
        who = ", ".join(sorted(blind)[:4]) + (f" and {len(blind) - 4} more" if len(blind) > 4 else "")
        raise DataError(f"cannot save to {directory}: worker(s) {who} do not see this machine's {directory}, "
                        "so each would write its part on its own disk; nothing was saved", hint=_SHARED_HINT)


def _write_probe(directory: str) -> str:
    """On one worker: create *directory* and a probe file in it; its path."""
    os.makedirs(directory, exist_ok=True)
    probe = os.path.join(directory, f".aiaas-probe-{uuid.uuid4().hex[:12]}")
    with open(probe, "wb"):
        pass
    return probe


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def workers_not_sharing(client, directory: str) -> list[str]:
    """The workers that do not see a file another worker writes in *directory* (a local path: the
    kernel need not see it at all): ``[]`` when they share it, as an NFS mount would."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if len(workers) < 2:
        return []
    writer = sorted(workers)[0]
    probe = client.submit(_write_probe, directory, workers=[writer], pure=False, allow_other_workers=False).result()
    try:
        blind = _blind_workers(client, [probe])
    finally:
        client.run(_remove, probe, workers=[writer])
    return sorted(blind)


__all__ = ["is_url", "check_workers_read", "check_workers_write", "workers_not_sharing"]
