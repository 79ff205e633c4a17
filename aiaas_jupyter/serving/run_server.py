"""The model server process: :func:`serve` runs it in the foreground.

``aiaas serve`` (:mod:`aiaas_jupyter.cli`) calls it, and so does ``python -m aiaas_jupyter.serving
serve``, which :func:`.state.ensure_server` starts detached. The
socket is bound *before* the app is built, so ``--port 0`` becomes a real port that goes into
the app (deployment URLs) and, once uvicorn listens, into ``server.json``. One process, one
event loop (uvloop/httptools when installed), no access log: the hot path stays lean. Once it
listens, :mod:`.lifetime` watches its home and its idleness and shuts it down cleanly when
either says so.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import threading
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


class _CoalescingTransport:
    """Holds a response's status line + headers until its body is written, so both leave in
    one send: the client then wakes once per response instead of twice (uvicorn writes them
    separately). A response whose body is not written in the same loop turn (streaming,
    HEAD, 100-continue) has its headers flushed on the next turn."""

    __slots__ = ("_t", "_head")

    def __init__(self, transport):
        self._t, self._head = transport, None

    def write(self, data) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n":
            self._head = data
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._t.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._t.write(head)

    def close(self) -> None:
        self._flush()
        self._t.close()

    def __getattr__(self, name):
        return getattr(self._t, name)


def _http_protocol():
    """uvicorn's httptools protocol with coalesced writes ("auto" when httptools is missing)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class Protocol(HttpToolsProtocol):
        def connection_made(self, transport):
            super().connection_made(_CoalescingTransport(transport))

    return Protocol


def serve(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM. ``args`` are the ``serve`` options (:mod:`.serve_options`)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedding model must never be downloaded
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("aiaas_jupyter.serving")

    import uvicorn

    from ..registry import default_home
    from . import lifetime, state
    from .app import create_app
    from .deployments import Deployments
    from .metrics import ServerMetrics
    from .runtime import EMBEDDING_REF, warm_imports

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
    # the metrics read the live deployments when scraped; the deployments report to the metrics
    metrics = ServerMetrics(lambda: deployments.loaded())
    deployments = Deployments(home, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                              metrics=metrics)

    async def startup():
        await deployments.restore()
        refs = list(args.deploy or [])
        if args.embeddings and EMBEDDING_REF not in {d.ref for d in deployments.live.values()}:
            refs.append(EMBEDDING_REF)
        for ref in refs:
            try:
                await deployments.deploy(None, ref)
            except Exception as e:
                log.error("could not deploy %s: %s", ref, e)

    app = create_app(deployments, token, max_body_bytes=args.max_body_bytes, timeout_s=args.timeout_s,
                     base_url=url, startup=startup, metrics=metrics)
    activity = lifetime.ActivityMiddleware(app)
    config = uvicorn.Config(activity, loop="auto", http=_http_protocol(), lifespan="on", access_log=False,
                            log_level="warning", timeout_graceful_shutdown=5,
                            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, backlog=2048)

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.should_exit:
                return
            state.write_server_info(home, url, tls, args.tls_cert)
            print(f"aiaas model server for {home} listening at {url} "
                  f"(pid {os.getpid()}; bearer token in {state.server_dir(home) / 'token'}; "
                  f"idle timeout {f'{idle_timeout:g} s' if idle_timeout else 'off'})", flush=True)
            # skops' first import walks all of scikit-learn (and imports torch through it): ~6 s that
            # the first deploy would otherwise wait for; done now, beside serving, it is ready by then
            threading.Thread(target=warm_imports, name="aiaas-warm-imports", daemon=True).start()
            self.watchdog = asyncio.create_task(lifetime.watch(self, home, token, os.getpid(), activity,
                                                               idle_timeout, watch_interval))

    # uvicorn re-raises the SIGTERM it caught once it has shut down; turn that into SystemExit
    # so the finally below still removes server.json.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        _Server(config).run(sockets=[sock])
    finally:
        state.clear_server_info(home, os.getpid())
    return 0


def _config(key: str):
    from ..settings import config

    return config(key)

