"""How the embedded cluster ends: on ``disconnect``, at the end of a script and when its kernel
shuts down, quietly and in about a second; by itself after ``aiaas.cluster.idle-timeout``.

* **Order**: the Dask client closes first, so the scheduler releases its keys before workers go
  (closing the cluster under a live client made the scheduler warn "Removing worker ... caused
  the cluster to lose already computed task(s)" for every persisted frame); and worker
  processes skip interpreter teardown once closed (:mod:`.worker_process`).
* **Quiet**: while we close on purpose, Dask's loggers in this process are silenced — what they
  would say (workers leaving, comms closing, a client that cannot reconnect) is the close
  itself, and in a kernel it lands in whatever cell runs.
* **At exit**: a script that never disconnects closes its embedded cluster from an ``atexit``
  handler registered after distributed's own, so it runs first and in the right order; a kernel
  asked to shut down closes it as soon as its shell's ``exit_now`` is set (see below).
* **Idle**: Dask's own scheduler ``idle_timeout`` (no task running or queued) closes the
  scheduler; a scheduler plugin first closes the workers while the scheduler still answers
  (:func:`close_workers_first`), then closes our client and cluster on a thread, so nothing
  keeps retrying a dead scheduler in the background, and the façade says what happened on the
  next call. The timeout is armed once the cluster is up: counted from the scheduler's start, a
  short one would close a cluster whose workers are still starting.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading
import time
import weakref

_owners: "weakref.WeakSet" = weakref.WeakSet()  # sessions with an embedded cluster, for atexit
_atexit_registered = False


_silenced = 0                # nesting depth of silence_distributed (threads may overlap)
_saved_levels: list = []
_silence_lock = threading.Lock()


def silence_distributed():
    """Silence ``distributed`` and its child loggers (some have levels of their own); returns
    the function that ends this silence. Nests across threads: the last end restores."""
    global _silenced, _saved_levels
    with _silence_lock:
        if _silenced == 0:
            names = ["distributed", *(n for n in list(logging.root.manager.loggerDict)
                                      if n.startswith("distributed."))]
            _saved_levels = [(logger, logger.level) for logger in map(logging.getLogger, names)]
            for logger, _ in _saved_levels:
                logger.setLevel(logging.CRITICAL + 1)
        _silenced += 1
    ended = False

    def restore() -> None:
        global _silenced
        nonlocal ended
        with _silence_lock:
            if ended:
                return
            ended, _silenced = True, _silenced - 1
            if _silenced == 0:
                for logger, level in _saved_levels:
                    logger.setLevel(level)

    return restore


@contextlib.contextmanager
def quiet_distributed():
    restore = silence_distributed()
    try:
        yield
    finally:
        restore()


def close(dask_client, cluster=None, timeout: float = 30) -> None:
    """Close *dask_client*, then the embedded *cluster* (when given), quietly."""
    from distributed.core import Status

    with quiet_distributed():
        if dask_client is not None:
            dask_client.close(timeout=timeout)
        if cluster is not None:
            scheduler = getattr(cluster, "scheduler", None)
            if scheduler is not None and scheduler.status in (Status.closing, Status.closed):
                cluster.shutdown_scheduler = False  # it closed itself: nobody left to tell
            cluster.close(timeout=timeout)


def close_at_exit(owner) -> None:
    """Disconnect *owner* (a :class:`~.cluster_session.ClusterSession`) at interpreter exit if it
    still has its cluster, and in an IPython kernel as soon as the kernel is asked to shut down."""
    global _atexit_registered
    _owners.add(owner)
    if not _atexit_registered:
        atexit.register(_close_all)
        _atexit_registered = True
    _close_when_the_kernel_shuts_down()


_observed_shells: "weakref.WeakSet" = weakref.WeakSet()


def _close_when_the_kernel_shuts_down() -> None:
    """A kernel asked to shut down sets its shell's ``exit_now``; observe that trait.

    Waiting for atexit is too late there: ipykernel first SIGTERMs the kernel's child processes
    and waits for them, multiprocessing's resource tracker (which every embedded cluster starts)
    ignores SIGTERM, so Jupyter SIGTERMs the kernel itself after half its
    ``shutdown_wait_time`` — no atexit handler runs, and the scheduler's scratch directory and
    the nannies' worker restarts are left to chance. Closing on ``exit_now`` happens first.
    """
    ipython_module = sys.modules.get("IPython")  # never import IPython for this
    shell = ipython_module.get_ipython() if ipython_module is not None else None
    if shell is None or shell in _observed_shells:
        return
    _observed_shells.add(shell)

    def on_exit_now(change) -> None:
        if change["new"]:
            _close_all()

    shell.observe(on_exit_now, names="exit_now")


def _close_all() -> None:
    for owner in list(_owners):
        if owner.cluster is not None:
            with contextlib.suppress(Exception):  # exiting anyway: never mask the real exit
                owner.disconnect()


def arm_idle_timeout(cluster, seconds: float, on_closed) -> None:
    """Close the embedded *cluster*'s scheduler after *seconds* without work, counted from now;
    ``on_closed()`` then runs on a thread of its own."""
    from distributed.diagnostics.plugin import SchedulerPlugin
    from distributed.metrics import time as dask_time

    scheduler = cluster.scheduler

    def idle_closing() -> bool:  # closing for idleness, not because we close it
        since, limit = scheduler.idle_since, scheduler.idle_timeout
        return bool(limit and since and dask_time() >= since + limit)

    def close_quietly(restore) -> None:
        try:
            on_closed()
        finally:
            restore()

    class IdleNotice(SchedulerPlugin):
        name = "aiaas-idle-notice"

        async def before_close(self) -> None:
            if idle_closing():  # quiet from the scheduler's first goodbye to our last close
                restore = silence_distributed()
                await close_workers_first(scheduler)
                threading.Thread(target=close_quietly, args=(restore,), name="aiaas-idle-close",
                                 daemon=True).start()

    async def arm() -> None:
        scheduler.add_plugin(IdleNotice(), name=IdleNotice.name)
        scheduler.idle_since = None
        scheduler.idle_timeout = seconds

    cluster.sync(arm)


async def close_workers_first(scheduler, timeout: float = 10.0) -> None:
    """Ask every worker to close (its nanny with it, no restart) and wait until the scheduler
    has seen them go, before the scheduler closes its comms and server.

    Why: left to itself, a closing scheduler tells the workers to close and shuts its server
    in the same breath; a worker whose heartbeat was in flight then logs "Failed to
    communicate with scheduler during heartbeat" with a ``CommClosedError`` traceback on its
    own stderr (the notebook's, or the script's), which no silencing here can reach. Workers
    that close while the scheduler still answers have nothing to complain about. Bounded by
    *timeout*: a worker that does not go is left to the scheduler's own close."""
    import asyncio

    for address in list(scheduler.workers):
        scheduler.close_worker(address)
    deadline = time.monotonic() + timeout
    while scheduler.workers and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def wait_closed(cluster, timeout: float = 10.0) -> None:
    """Until the embedded cluster's scheduler has finished closing (bounded)."""
    from distributed.core import Status

    deadline = time.monotonic() + timeout
    while cluster.scheduler.status != Status.closed and time.monotonic() < deadline:
        time.sleep(0.05)
