"""What the sidebar's Cluster section shows: a snapshot the kernel writes, the server only reads.

Why a file and not a Dask connection from the Jupyter server: Dask's comms unpickle what the
peer sends, so connecting to a scheduler address read from the registry let whoever could put
an address there (or answer on it) run code in the Jupyter server. The kernel already has a
client to the cluster it chose; it writes what :func:`aiaas_jupyter.cluster.summarize` returned
(workers, threads, memory, GPUs, dashboard) plus when and by which process, to
``HOME/cluster.json`` (0600, atomic, never through a link). The server reads that JSON, checks
every field's type (the file is data, never code) and says how old it is.

Written on ``connect`` / ``status`` (both summarise anyway: no extra scheduler round trip) and
marked disconnected on ``disconnect``. Writing never fails the caller: the snapshot is for
display, so an unwritable home only costs the sidebar its view. Standard library only.
"""

from __future__ import annotations

import datetime as _dt  # the type of view()'s `now` only
import json
import logging
import os
from pathlib import Path
from typing import Any

from . import clock
from .registry.private_files import make_private_dir, read_private, write_private

FILENAME = "cluster.json"
#: a snapshot older than this (seconds) is shown as stale: the cluster may have changed since
STALE_AFTER_S = 600.0
_LIMIT = 1 << 20  # 1 MiB: a few thousand workers' rows; anything bigger is not ours
_MAX_WORKERS = 4096
log = logging.getLogger(__name__)


def path(home: str | os.PathLike) -> Path:
    return Path(home) / FILENAME


def record(home: str | os.PathLike, summary: dict) -> None:
    """Write the kernel's current view of its cluster (``summary`` from ``cluster.summarize``)."""
    _write(home, {**summary, "connected": True})


def record_disconnected(home: str | os.PathLike) -> None:
    """Mark this kernel's snapshot disconnected (another kernel's newer snapshot is left alone)."""
    current = read_raw(home)
    if current is None or current.get("pid") != os.getpid() or not current.get("connected"):
        return
    _write(home, {**current, "connected": False})


def _write(home: str | os.PathLike, data: dict) -> None:
    data = {**data, "recorded_at": clock.now_iso(), "pid": os.getpid()}
    try:
        make_private_dir(home)
        write_private(path(home), json.dumps(data, default=str).encode())
    except (OSError, TypeError, ValueError) as e:  # display only: never fail connect/status for it
        log.debug("could not write the cluster snapshot under %s: %s", home, e)


def read_raw(home: str | os.PathLike) -> dict | None:
    """The snapshot as written, or None when absent, unreadable, a link, or not a JSON object."""
    try:
        data = json.loads(read_private(path(home), _LIMIT + 1))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _num(value: Any, default: float = 0) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e15
    return value if ok and value == value else default  # NaN != NaN


def _text(value: Any, limit: int = 512) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _link(value: Any) -> str | None:
    """Only an http(s) dashboard link, or a path on the Jupyter server itself (``/proxy/...``,
    not ``//host``): the sidebar puts it in an ``href``."""
    text = _text(value, 2048)
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        return None
    same_server = text.startswith("/") and not text.startswith("//") and "\\" not in text
    return text if text.startswith(("http://", "https://")) or same_server else None


def view(home: str | os.PathLike, now: _dt.datetime | None = None) -> dict[str, Any]:
    """The ``GET cluster`` answer: ``{"scheduler": None}`` without a snapshot, else the
    snapshot's fields (type-checked), ``recorded_at``, ``age_s``, ``stale`` and ``reachable``
    (its kernel said connected and still runs; nothing is asked of the cluster itself)."""
    from .serving.state import MAX_PID, pid_alive

    raw = read_raw(home)
    scheduler = _text(raw.get("scheduler")) if raw else None
    if raw is None or not scheduler:
        return {"scheduler": None}
    try:
        recorded = clock.parse_iso(raw.get("recorded_at"))
        age = max(0.0, ((now or clock.now()) - recorded).total_seconds())
    except (TypeError, ValueError, OverflowError):
        recorded, age = None, None
    pid = raw.get("pid")
    kernel_alive = (isinstance(pid, int) and not isinstance(pid, bool) and 1 <= pid <= MAX_PID
                    and pid_alive(pid))
    workers = raw.get("workers") if isinstance(raw.get("workers"), list) else []
    workers = [{"address": _text(w.get("address")) or "", "name": _text(w.get("name")) or "",
                "threads": _num(w.get("threads")), "memory_gb": _num(w.get("memory_gb")),
                "gpus": _num(w.get("gpus"))}
               for w in workers[:_MAX_WORKERS] if isinstance(w, dict)]
    return {
        "scheduler": scheduler,
        "reachable": raw.get("connected") is True and kernel_alive,
        "dashboard": _link(raw.get("dashboard")),
        "workers": workers,
        "n_workers": _num(raw.get("n_workers"), len(workers)),
        "threads": _num(raw.get("threads")),
        "memory_gb": _num(raw.get("memory_gb")),
        "gpus": _num(raw.get("gpus")),
        "recorded_at": recorded.isoformat() if recorded else None,
        "age_s": None if age is None else round(age, 1),
        "stale": age is None or age > STALE_AFTER_S or not kernel_alive,
    }


__all__ = ["record", "record_disconnected", "view", "read_raw", "path", "STALE_AFTER_S"]
