"""One serving process: the app, its deployments and metrics under uvicorn, on a socket it is given.

:func:`.run_server.serve` runs one of them on the socket it bound (``aiaas serve``), and the
supervisor of ``aiaas serve --workers N`` (:mod:`.supervisor`) runs N, each as a peer
(:mod:`.peers`). No access log and uvloop/httptools when installed: the hot path stays lean.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import threading
from pathlib import Path


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


def run(args: argparse.Namespace, home: Path, sock: socket.socket, url: str, token: str, *,
        listening=None, peers=None) -> None:
    """Serve on *sock* until told to stop: the app, its deployments and metrics, under uvicorn.

    Alone (*peers* None) the start-up deployments run beside serving and ``listening(server)``
    is called once uvicorn listens. As process ``peers.index`` of several (:mod:`.peers`), this
    one first serves what ``deployments.json`` says, then listens; process 0 makes the start-up
    deployments (and the others follow them), and every process follows the others' changes."""
    import uvicorn

    from . import lifetime
    from .app import create_app
    from .deployments import Deployments
    from .metrics import ServerMetrics
    from .runtime import EMBEDDING_REF, warm_imports

    log = logging.getLogger("aiaas_jupyter.serving")
    # the metrics read the live deployments when scraped; the deployments report to the metrics
    metrics = ServerMetrics(lambda: deployments.loaded(), multiprocess=peers is not None)
    deployments = Deployments(home, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                              metrics=metrics, peers=peers)

    async def initial_deploys():
        refs = list(args.deploy or [])
        if args.embeddings and EMBEDDING_REF not in {d.ref for d in deployments.live.values()}:
            refs.append(EMBEDDING_REF)
        for ref in refs:
            try:
                await deployments.deploy(None, ref)
            except Exception as e:
                log.error("could not deploy %s: %s", ref, e)

    async def startup():
        if peers is None:
            await deployments.restore()
            await initial_deploys()
        elif peers.index == 0 and not peers.started:
            await initial_deploys()
            peers.start_done()
        else:
            while not peers.started:
                await asyncio.sleep(0.05)

    app = create_app(deployments, token, max_body_bytes=args.max_body_bytes, timeout_s=args.timeout_s,
                     base_url=url, startup=startup, metrics=metrics)
    activity = lifetime.ActivityMiddleware(app)
    config = uvicorn.Config(activity, loop="auto", http=_http_protocol(), lifespan="on", access_log=False,
                            log_level="warning", timeout_graceful_shutdown=5,
                            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, backlog=2048)

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None):
            self.activity = activity
            if peers is not None:  # serve what the others serve before taking a connection
                generation = peers.generation
                await deployments.restore()
                peers.ready(generation)

                def publish():
                    peers.activity(activity.last, activity.in_flight)
                    metrics.publish(deployments.loaded())

                self.follower = asyncio.create_task(peers.follow(deployments.reconcile, publish))
            await super().startup(sockets=sockets)
            if self.should_exit:
                return
            if listening is not None:
                listening(self)
            # skops' first import walks all of scikit-learn (and imports torch through it): ~6 s that
            # the first deploy would otherwise wait for; done now, beside serving, it is ready by then
            threading.Thread(target=warm_imports, name="aiaas-warm-imports", daemon=True).start()

        async def shutdown(self, sockets=None):
            if peers is not None:
                peers.leaving()
            await super().shutdown(sockets=sockets)

    _Server(config).run(sockets=[sock])


def log_to_stderr(process: str = "") -> None:
    """Log lines to stderr (``server.log`` when a kernel started the server); *process* names
    the serving process of several that wrote the line."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s{process}: %(message)s")


