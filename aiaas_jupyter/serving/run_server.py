"""The model server process: :func:`serve` runs it in the foreground.

``aiaas serve`` (:mod:`aiaas_jupyter.cli`) calls it, and so does ``python -m aiaas_jupyter.serving
serve``, which :func:`.state.ensure_server` starts detached. The
socket is bound *before* the app is built, so ``--port 0`` becomes a real port that goes into
the app (deployment URLs) and, once uvicorn listens, into ``server.json``. With one process
(``--workers 1``, what a kernel starts by default) this process serves (:mod:`.serve_process`);
once it listens, :mod:`.lifetime` watches its home and its idleness and shuts it down cleanly when
either says so. With ``--workers N`` it supervises N serving processes (:mod:`.supervisor`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int, tls: bool) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def serve(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM. ``args`` are the ``serve`` options (:mod:`.serve_options`).
    With ``--workers N`` (N > 1) this process supervises N serving processes (:mod:`.supervisor`)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedding model must never be downloaded
    from ..registry import default_home
    from . import lifetime, state
    from .serve_process import log_to_stderr, run

    log_to_stderr()

    home = Path(args.home).expanduser() if args.home else default_home()
    tls = bool(args.tls_cert)
    try:
        idle_timeout = lifetime.parse_duration(args.idle_timeout if args.idle_timeout is not None
                                               else _config("server.idle-timeout"))
        watch_interval = lifetime.parse_duration(_config("server.watch-interval")) or 5.0
    except ValueError as e:
        print(f"aiaas serve: {e}", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("aiaas serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    running = state.read_server_info(home)
    if running is not None and running.pid != os.getpid() and state.pid_alive(running.pid) \
            and state._probe(running, "/v2/health/live") == 200:
        print(f"aiaas serve: a server already runs for {home} at {running.url} (pid {running.pid})",
              file=sys.stderr)
        return 1
    try:
        sock = _bind(args.host, args.port)
    except OSError as e:
        print(f"aiaas serve: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    url = _url(args.host, sock.getsockname()[1], tls)
    token = state.write_token(home)
    if args.workers > 1:
        from .supervisor import supervise

        return supervise(args, home, sock, url, token, idle_timeout, watch_interval)

    def listening(server) -> None:
        state.write_server_info(home, url, tls, args.tls_cert)
        print(f"aiaas model server for {home} listening at {url} "
              f"(pid {os.getpid()}; bearer token in {state.server_dir(home) / 'token'}; "
              f"idle timeout {f'{idle_timeout:g} s' if idle_timeout else 'off'})", flush=True)
        server.watchdog = asyncio.create_task(lifetime.watch(server, home, token, os.getpid(), server.activity,
                                                             idle_timeout, watch_interval))

    # uvicorn re-raises the SIGTERM it caught once it has shut down; turn that into SystemExit
    # so the finally below still removes server.json.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        run(args, home, sock, url, token, listening=listening)
    finally:
        state.clear_server_info(home, os.getpid())
    return 0


def _config(key: str):
    from ..settings import config

    return config(key)

