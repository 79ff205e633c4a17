"""When the model server ends by itself: its home is gone, or nobody has called it for a while.

The server is detached from the kernel that started it (it must outlive it), so nothing else
would ever stop a forgotten one: a server whose registry home was deleted (a test's temporary
home, a removed project) could not be found or stopped by anyone and would serve stale models
forever, and one nobody uses holds its models' memory for nothing. :func:`watch` runs inside
the server's event loop and asks uvicorn to shut down — the same clean path as SIGTERM, which
removes ``server.json`` — when

* ``HOME/server/`` or the token file is gone, or the token is no longer this server's (no
  client can reach it any more), or ``server.json`` names another process; or
* no request has arrived for ``idle_timeout`` seconds (``aiaas.server.idle-timeout``, default
  2 h; ``aiaas serve --idle-timeout``). Health probes don't count: a liveness checker polling
  the server must not keep it alive, and neither does a request still running count as idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

log = logging.getLogger("aiaas_jupyter.serving")

#: requests that are not use: probes of whether the server is up
PROBE_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})


class ActivityMiddleware:
    """Pure-ASGI wrapper that notes when the last request ended and how many are running."""

    def __init__(self, app):
        self.app = app
        self.in_flight = 0
        self.last = time.monotonic()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            return await self.app(scope, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.last = time.monotonic()

    def idle_seconds(self) -> float:
        return 0.0 if self.in_flight else time.monotonic() - self.last


def parse_duration(value) -> float:
    """Seconds from ``7200``, ``"2h"``, ``"90s"``; ``None``, ``0``, ``"off"`` mean never (0)."""
    from dask.utils import parse_timedelta

    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "0", "off", "never", "none")):
        return 0.0
    try:
        seconds = parse_timedelta(value, default="s")
    except (KeyError, ValueError, TypeError):
        seconds = None
    if seconds is None or seconds < 0:
        raise ValueError(f"not a duration: {value!r} (use e.g. 7200, 90s, 30m, 2h; 0 for never)")
    return float(seconds)


def orphaned(home: Path, token: str, pid: int) -> str | None:
    """Why no client can reach this server any more, or None while its home still points at it."""
    from .state import read_server_info, server_dir

    sdir = server_dir(home)
    if not sdir.is_dir():
        return f"its home {sdir} was removed"
    try:
        if (sdir / "token").read_text().strip() != token:
            return "its token file was replaced"
    except FileNotFoundError:
        return "its token file was removed"
    except OSError as e:  # unreadable for a moment (being replaced): look again next time
        log.debug("token check: %s", e)
        return None
    info = read_server_info(home)
    if info is None:
        return "its server.json was removed"
    if info.pid != pid:
        return f"server.json now names another process ({info.pid})"
    return None


async def watch(server, home: Path, token: str, pid: int, activity: ActivityMiddleware,
                idle_timeout: float, interval: float) -> None:
    """Check every ``interval`` s; on a reason to go, log it and set ``server.should_exit``."""
    while not server.should_exit:
        await asyncio.sleep(interval)
        reason = orphaned(home, token, pid)
        if reason is None and idle_timeout and activity.idle_seconds() >= idle_timeout:
            reason = f"no requests for {idle_timeout:g} s (idle timeout)"
        if reason is not None:
            log.warning("model server exiting: %s", reason)
            server.should_exit = True
            return
