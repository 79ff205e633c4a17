"""What ``connect`` accepts: timeouts, worker counts, scheduler addresses and scheduler files.

Why a module of its own: every one of these used to reach Dask unchecked and fail there, late
and in Dask's words — ``--timeout inf`` as a KeyError from ``parse_timedelta``, ``1e300`` as a
hang, a scheduler file that is not JSON as an AssertionError, ``ucx://`` as an ImportError, a
port of 99999 as an OverflowError in the socket layer. Checking them here, before anything
connects or starts, gives one :class:`~aiaas_jupyter.errors.ClusterError` line with a hint, the
same for ``%aiaas connect`` and ``aiaas_jupyter.connect()`` (and so for the widgets).

Nothing here imports dask or distributed at module level: ``%load_ext`` stays light.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

from .errors import ClusterError

#: the longest connect timeout accepted: one day (a larger one is a typo, or a hang)
MAX_TIMEOUT_S = 24 * 3600
MAX_WORKERS = 1024
MAX_GPUS = 256
#: schemes of a scheduler address we can reach from here; tls/wss need TLS settings (see below)
SCHEMES = ("tcp", "tls", "ws", "wss")
_ADDRESS_HINT = "use tcp://HOST:PORT (the address `dask scheduler` prints), or no address for the embedded cluster"


def check_timeout(timeout) -> float:
    """Seconds, finite, in (0, one day]: a number, or a Dask duration string such as ``"10s"``."""
    from dask.utils import parse_timedelta

    if isinstance(timeout, bool) or not isinstance(timeout, (numbers.Real, str)):
        raise ClusterError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    try:
        seconds = float(parse_timedelta(timeout, default="s"))
    except (KeyError, ValueError, TypeError, OverflowError):
        raise ClusterError(f"timeout {str(timeout)[:40]!r} is not a duration", hint="give seconds, e.g. 10") from None
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise ClusterError(f"timeout must be > 0 and at most {MAX_TIMEOUT_S} s (one day), got {str(timeout)[:40]}")
    return seconds


def check_count(what: str, value, lo: int, hi: int) -> None:
    """``None`` (the default) or a whole number in ``lo..hi``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ClusterError(f"{what} must be a whole number from {lo} to {hi}, got {str(value)[:40]}")


def check_layout(n_workers, threads_per_worker, gpus) -> None:
    """The embedded cluster's layout options (``gpus`` may also be ``"auto"``)."""
    check_count("n_workers", n_workers, 1, MAX_WORKERS)
    check_count("threads_per_worker", threads_per_worker, 1, MAX_WORKERS)
    if gpus != "auto":
        check_count("gpus", gpus, 0, MAX_GPUS)


def check_address(address, origin: str = "") -> str:
    """A scheduler address we can try: a known scheme, a host, a port in 1..65535."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    where = f" (from {origin})" if origin else ""
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address.strip()):
        raise ClusterError(f"scheduler address must be one word such as tcp://HOST:PORT{where}, "
                           f"got {str(address)[:40]!r}", hint=_ADDRESS_HINT)
    address = address.strip()
    shown = address if len(address) <= 80 else address[:80] + "…"
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location, 8786)
    except (ValueError, TypeError):
        raise ClusterError(f"bad scheduler address {shown!r}{where}", hint=_ADDRESS_HINT) from None
    if scheme not in SCHEMES:
        raise ClusterError(f"scheduler address {shown!r}{where}: the {scheme}:// protocol is not supported here",
                           hint=f"use one of {', '.join(s + '://' for s in SCHEMES)}")
    if not host or not 1 <= port <= 65535:
        raise ClusterError(f"bad scheduler address {shown!r}{where}: it needs a host and a port from 1 to 65535",
                           hint=_ADDRESS_HINT)
    if scheme in ("tls", "wss") and not _tls_configured():
        raise ClusterError(f"{scheme}:// needs TLS settings, and none are configured",
                           hint="set distributed.comm.tls.ca-file and .client.cert/.key in the Dask config")
    return address


def _tls_configured() -> bool:
    from distributed.security import Security

    return Security().get_connection_args("client").get("ssl_context") is not None


def read_scheduler_file(path) -> str:
    """The scheduler address in a file written by ``dask scheduler --scheduler-file``."""
    name = str(path)
    hint = "point at the JSON file `dask scheduler --scheduler-file FILE` writes, or pass the address"
    file = Path(name).expanduser()
    if not file.exists():
        raise ClusterError(f"scheduler file {name} does not exist",
                           hint="start the scheduler with --scheduler-file, or pass its address")
    if not file.is_file():
        raise ClusterError(f"scheduler file {name} is not a file", hint=hint)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterError(f"cannot read scheduler file {name}: {type(exc).__name__}", hint=hint) from None
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):
        raise ClusterError(f"scheduler file {name} is not JSON", hint=hint) from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ClusterError(f"scheduler file {name} has no scheduler \"address\"", hint=hint)
    return check_address(info["address"], origin=f"scheduler file {name}")


def probe_scheduler(address: str, timeout_s: float, shown: str = "") -> float:
    """Ask *address* who it is, within *timeout_s*; return the seconds that took. Errors name
    the scheduler as *shown* (e.g. with the scheduler file it came from), else by its address.

    Why: ``distributed.Client`` waits forever on a peer that accepts the connection and then
    says nothing (any TCP service on that port), and raises whatever its decoder hits on one
    that talks something else (an HTTP server's bytes read as a 3 EiB frame: MemoryError).
    Dask's own ``identity`` call, on a loop of its own under one deadline, tells a scheduler
    from everything else before the Client is made.
    """
    import threading
    import time

    import distributed.comm.tcp  # noqa: F401 - imported here, not on the clock of the probe thread
    import distributed.protocol  # noqa: F401

    start = time.monotonic()
    outcome: list = []
    thread = threading.Thread(target=_identity, args=(address, timeout_s, outcome), daemon=True,
                              name="aiaas-scheduler-probe")
    thread.start()
    thread.join(timeout_s + 1.0)  # the probe's own deadline ends it first; this is a backstop
    hint = "is the scheduler running and the address right? `%aiaas connect` with no address " \
           "starts an embedded cluster"
    shown = shown or address
    if not outcome or isinstance(outcome[0], (OSError, TimeoutError)):
        why = type(outcome[0]).__name__ if outcome else "TimeoutError"
        raise ClusterError(f"could not reach the Dask scheduler at {shown} within {timeout_s:g} s ({why})",
                           hint=hint)
    reply = outcome[0]
    if isinstance(reply, BaseException) or not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        what = type(reply).__name__ if isinstance(reply, BaseException) else "another kind of answer"
        raise ClusterError(f"{shown} answered, but not as a Dask scheduler ({what})", hint=hint)
    return time.monotonic() - start


def _identity(address: str, timeout_s: float, outcome: list) -> None:
    """On this thread's own event loop: connect, ask ``identity``, put the reply in *outcome*."""
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def ask():
        comm = await connect(address, timeout=timeout_s, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    loop = asyncio.new_event_loop()
    try:
        outcome.append(loop.run_until_complete(asyncio.wait_for(ask(), timeout_s)))
    except (OSError, asyncio.TimeoutError) as exc:
        outcome.append(exc if isinstance(exc, OSError) else TimeoutError())
    except Exception as exc:  # noqa: BLE001 - bytes of an unknown peer can break the decoder any way;
        outcome.append(exc)   # each of those means "not a scheduler", reported with its type name
    finally:
        loop.close()  # not asyncio.run: that would wait for a DNS lookup still running in its executor
