"""``aiaas serve --workers N``: one supervising process, N serving processes on one socket.

Python runs one request handler at a time per process, so one server process uses one core
however many the box has. The supervisor binds the socket (so ``--port 0`` is one real port for
all), starts N processes that each run the whole server (:func:`.run_server.run`: app, models,
batching — a batch stays within one process) on that socket, and the kernel hands each new
connection to whichever process accepts it first. The processes agree on what they serve through
:mod:`.peers`; their Prometheus counters are summed by ``prometheus_client``'s multiprocess mode
(:mod:`.metrics`).

The supervisor is what ``server.json`` names: ``aiaas stop`` and ``%aiaas server stop`` signal it and
it stops the rest. It writes ``server.json`` once every process serves, restarts a process that
dies (it reloads what ``deployments.json`` says before it takes a connection), and ends the whole
server when its home is gone or no process has had a request for the idle timeout
(:mod:`.lifetime`). A serving process dies with the supervisor even on SIGKILL (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("aiaas_jupyter.serving")

#: a process that dies this soon after it started, this many times in a row, ends the server
CRASH_WINDOW_S, CRASH_LIMIT = 30.0, 3
START_TIMEOUT_S = 300.0


def supervise(args, home: Path, sock, url: str, token: str, idle_timeout: float, watch_interval: float) -> int:
    from . import lifetime, state
    from .peers import Peers, block_size

    n = args.workers
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter each: nothing of ours forked
    block, lock = ctx.RawArray("d", block_size(n)), ctx.Lock()
    peers = Peers(block, lock, -1, n)
    # beside the server's other files: it goes with the home, whatever ends this process
    metrics_dir = state.server_dir(home) / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # the children read it when they start
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: stopping.append(s))

    def start(index: int):
        proc = ctx.Process(target=_serve_one, name=f"aiaas-serve-{index}",
                           args=(args, home, sock, url, token, block, lock, index, n, os.getpid()))
        proc.start()
        return proc, time.monotonic()

    procs = [start(i) for i in range(n)]
    crashes = [0] * n
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(peers.is_ready(i) for i in range(n)):
            if stopping:
                return 0
            dead = [i for i, (p, _) in enumerate(procs) if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                print(f"aiaas serve: server process {dead[0] if dead else '?'} "
                      f"{'exited while starting' if dead else 'did not start in time'}", file=sys.stderr)
                return 1
            time.sleep(0.02)
        state.write_server_info(home, url, bool(args.tls_cert), args.tls_cert)
        print(f"aiaas model server for {home} listening at {url} (pid {os.getpid()}, {n} serving processes; "
              f"bearer token in {state.server_dir(home) / 'token'}; "
              f"idle timeout {f'{idle_timeout:g} s' if idle_timeout else 'off'})", flush=True)
        next_watch = time.monotonic() + watch_interval
        while True:
            time.sleep(0.1)
            if stopping:  # Ctrl-C reaches the serving processes too: they end, none is restarted
                return 0
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive():
                    continue
                _forget(metrics_dir, proc.pid)
                crashes[i] = crashes[i] + 1 if time.monotonic() - started < CRASH_WINDOW_S else 1
                if crashes[i] >= CRASH_LIMIT:
                    log.error("model server exiting: server process %d died %d times in a row", i, crashes[i])
                    return 1
                log.warning("server process %d (pid %s) ended with exit code %s; starting it again",
                            i, proc.pid, proc.exitcode)
                procs[i] = start(i)
            if time.monotonic() >= next_watch:
                next_watch = time.monotonic() + watch_interval
                reason = lifetime.orphaned(home, token, os.getpid())
                if reason is None and idle_timeout and peers.idle_seconds() >= idle_timeout:
                    reason = f"no requests for {idle_timeout:g} s (idle timeout)"
                if reason is not None:
                    log.warning("model server exiting: %s", reason)
                    return 0
    finally:
        _stop_all([p for p, _ in procs])
        state.clear_server_info(home, os.getpid())
        shutil.rmtree(metrics_dir, ignore_errors=True)
        sock.close()


def _stop_all(procs, grace_s: float = 10.0) -> None:
    """SIGTERM each (uvicorn finishes the requests it holds), then SIGKILL what is left."""
    for proc in procs:
        if proc.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def _forget(metrics_dir: Path, pid: int | None) -> None:
    """A dead process' live gauges (requests in flight, queue depths) no longer count."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, str(metrics_dir))


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when the supervisor dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


def _serve_one(args, home, sock, url, token, block, lock, index, n, parent) -> None:
    """A serving process (spawned): the whole server on the inherited socket, as peer *index*."""
    _die_with_parent(parent)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .peers import Peers
    from .serve_process import log_to_stderr, run

    log_to_stderr(f"[{index}]")
    # uvicorn re-raises the SIGTERM or SIGINT (Ctrl-C reaches the whole process group) it caught
    # once it has shut down: a clean exit, no KeyboardInterrupt traceback
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))
    with contextlib.suppress(SystemExit):
        run(args, home, sock, url, token, peers=Peers(block, lock, index, n))
