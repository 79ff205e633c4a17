"""A rank of a data-parallel job in its own process, watched by the Dask task that started it.

Why not in the task's own thread: ``torch.distributed`` waits in C++ (rendezvous, gloo or NCCL
collectives, a process group's teardown), and a wait that holds the GIL freezes the whole Dask
worker: its event loop stops, its heartbeats stop, and after minutes the scheduler restarts it
and loses every result it held (seen once in CI: a worker frozen 552 s). In a child process
such a wait can only freeze the child; the task keeps its worker alive and answers for it:

- while it trains, the child says it is alive every :data:`HEARTBEAT_S` from a thread of its
  own; a child silent for longer than the group's timeout is stuck (a thread that cannot even
  get the GIL) and is killed, and the job fails with one line naming the rank — it never hangs;
- one process per rank, which exits without tearing torch down; the next one waits warm, its
  imports done, as a spare (:class:`RankHost`);
- a cancel reaches the child as a "stop" message: it stops with its peers at the epoch's end;
- the child dies with its task (its stdin closes; ``PR_SET_PDEATHSIG`` on Linux), so a killed
  worker leaves no rank behind.

The wire: frames of an 8-byte length and a pickle, over the child's stdin and a private dup of
its stdout (its fd 1 goes to stderr, so a ``print`` in a model cannot corrupt the stream). Only
this task unpickles what its own child sends, and the child only what its parent sends.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time

from . import malloc_env
from .training.base import JOINED

#: how often a rank's process says it is alive
HEARTBEAT_S = 1.0
#: the least time a rank gets to join its group (its process may still be importing torch, a busy
#: machine's peers may start late), whatever a short aiaas.jobs.data-parallel-timeout says
JOIN_FLOOR_S = 60.0
_HEADER = struct.Struct(">Q")


def _write(stream, lock: threading.Lock, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        stream.write(_HEADER.pack(len(data)) + data)
        stream.flush()


def _read(stream):
    """The next frame's message, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - our own child / our own parent: see the module docstring


class RankFailed(Exception):
    """The rank's process ended without a result. *kind*: ``"collective"`` (the group failed
    it: a peer died, a collective timed out), ``"stalled"`` (killed: it fell silent) or
    ``"died"``."""

    def __init__(self, message: str, kind: str = "died"):
        super().__init__(message)
        self.kind = kind


class RankHost:
    """One child process that runs one rank for this worker, then exits without any teardown.

    Started ahead as a *spare* (see :func:`_host`): a process pays 5-10 s of imports (torch,
    pandas, the optimizer's compiler hooks) before its first batch, which the spare pays while
    the worker does other things. Never reused for a second rank: a process that had torn a
    process group down and trained again once deadlocked on the GIL (a native thread of torch's
    took it and never gave it back), in a worker thread as in a kept process alike."""

    def __init__(self, threads: int):
        # a rank trains on its process's main thread: not the worker's one malloc arena (see malloc_env)
        env = {**malloc_env.without_worker_limit(os.environ), "OMP_NUM_THREADS": str(threads),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # what the worker imports, the child can
        self.proc = subprocess.Popen([sys.executable, "-m", "aiaas_jupyter.rank_process"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        self.threads = threads
        self.inbox: queue.Queue = queue.Queue()
        self.last_sign = time.monotonic()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._pump, name="aiaas-rank-reader", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        try:
            while (message := _read(self.proc.stdout)) is not None:
                self.last_sign = time.monotonic()
                if message[0] != "alive":
                    self.inbox.put(message)
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
        self.inbox.put(None)

    def dump_stacks(self) -> None:
        """Every thread's Python stack of the child, into the worker's log (its stderr): where a
        stuck rank was stuck. ``faulthandler`` writes them even while the GIL is held."""
        try:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
        except (OSError, AttributeError):  # gone, or no SIGUSR1 (Windows)
            pass

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message) -> None:
        _write(self.proc.stdin, self._lock, message)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._reader.join(5)


_hosts_lock = threading.Lock()
_IDLE: list[RankHost] = []
#: the thread that starts rank processes: it lives as long as the worker, so a child that asks
#: to die with the thread that started it (PR_SET_PDEATHSIG) dies with the worker, not earlier
_SPAWNER = None


def _host(threads: int) -> RankHost:
    """The worker's warm spare if there is one (else a new process), and a new spare started
    behind it for the next rank."""
    global _SPAWNER
    with _hosts_lock:
        if _SPAWNER is None:
            from concurrent.futures import ThreadPoolExecutor

            _SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="aiaas-rank-spawner")
        host = None
        while _IDLE and host is None:
            spare = _IDLE.pop()
            if spare.alive() and spare.threads == threads:
                host = spare
            else:
                spare.close()
    if host is None:
        host = _SPAWNER.submit(RankHost, threads).result()
    _SPAWNER.submit(_add_spare, threads)
    return host


def _add_spare(threads: int) -> None:
    spare = RankHost(threads)
    spare.send(("warm",))
    with _hosts_lock:
        _IDLE.append(spare)
        stale, _IDLE[:] = _IDLE[:-1], _IDLE[-1:]  # one spare is enough
    for host in stale:
        host.close()


def run(payload: bytes, *, threads: int, emit, stop_requested, stall_s: float):
    """Run one rank (*payload*: cloudpickled ``fit_rank`` arguments, see :func:`_run_rank`) in a
    rank process of this worker; relay its events to *emit*; ask it to stop once
    *stop_requested()*. Returns its facts. Raises :class:`RankFailed`, or the exception the
    rank raised."""
    host = _host(threads)
    try:
        host.last_sign = time.monotonic()
        host.send(("run", payload))
        return _watch(host, emit, stop_requested, stall_s)
    except OSError as e:  # its pipe broke: the process died
        raise RankFailed(f"its process died ({e.strerror or e})") from None
    finally:
        host.close()  # it exits by itself after its rank; this reaps it (or kills it, failed)


def _watch(host: RankHost, emit, stop_requested, stall_s: float):
    """Relay the rank's events until its result; kill it when it goes silent for *stall_s*, or
    has not joined its group within *stall_s* (at least JOIN_FLOOR_S: its peers' collective timeout does not cover
    connecting to them: a rank once waited there 10 minutes after its job had failed)."""
    stop_sent, joined, started = False, False, time.monotonic()
    while True:
        try:
            message = host.inbox.get(timeout=HEARTBEAT_S / 2)
        except queue.Empty:
            message = ()
        if message is None:  # the child's stream ended without a result
            code = host.proc.wait()
            raise RankFailed(f"its process ended without a result (exit code {code})")
        if message:
            kind = message[0]
            if kind == "event" and message[1].get("stage") == JOINED:
                joined = True
            elif kind == "event":
                emit(message[1])
            elif kind == "result":
                return message[1]
            elif kind == "error":
                _, exc, collective, line = message
                if exc is not None:
                    raise exc
                raise RankFailed(line, "collective" if collective else "died")
        if not stop_sent and stop_requested():
            stop_sent = True
            try:
                host.send(("stop",))
            except OSError:  # it ended meanwhile: the stream's end says how
                pass
        waited = time.monotonic() - started
        if not joined and waited > max(stall_s, JOIN_FLOOR_S):
            host.dump_stacks()
            host.proc.kill()
            raise RankFailed(f"it did not join its group within {waited:.0f} s (a peer gone or unreachable?)",
                             "collective")
        silent = time.monotonic() - host.last_sign
        if silent > stall_s:
            host.dump_stacks()
            host.proc.kill()
            raise RankFailed(f"its process gave no sign of life for {silent:.0f} s and was killed", "stalled")


# -- the child --------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the thread that started it ends."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed stdin still ends it
        pass


def _child_main() -> None:
    import cloudpickle

    _die_with_parent()
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # see RankHost.dump_stacks
    wire_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a print() anywhere in a rank goes to stderr, never into the frames
    sys.stdout = sys.stderr
    wire_in = sys.stdin.buffer
    lock = threading.Lock()
    jobs: queue.Queue = queue.Queue()

    def listen() -> None:  # ranks and "stop" from the parent; its end (the worker died) ends us
        stop = threading.Event()
        while (message := _read(wire_in)) is not None:
            if message[0] == "warm":  # a spare: import what a rank needs while nobody waits
                jobs.put((None, stop))
            elif message[0] == "run":
                jobs.put((message[1], stop))
            elif message[0] == "stop":
                stop.set()
        os._exit(3)

    def beat() -> None:  # a stuck process (the GIL held in C++) falls silent
        while True:
            time.sleep(HEARTBEAT_S)
            try:
                _write(wire_out, lock, ("alive",))
            except OSError:
                os._exit(4)

    threading.Thread(target=listen, daemon=True).start()
    threading.Thread(target=beat, daemon=True).start()
    payload, stop = jobs.get()
    if payload is None:
        _warm_up()
        payload, stop = jobs.get()
    try:
        facts = _run_rank(cloudpickle.loads(payload), lambda event: _write(wire_out, lock, ("event", event)),
                          stop.is_set)
    except BaseException as exc:  # noqa: BLE001 - the parent decides; this process ends either way
        _write(wire_out, lock, ("error",) + _describe(exc))
        os._exit(1)
    _write(wire_out, lock, ("result", facts))
    os._exit(0)  # no teardown at all: see RankHost


#: the rank's process group objects, kept alive until the process exits (see fit_rank's *keep*)
_KEPT: list = []


def _warm_up() -> None:
    """What a rank's first batch would import otherwise (torch ~3 s, pandas ~1 s, and the
    compiler hooks the optimizers' first step pulls in, ~3-5 s on a small CPU)."""
    import torch
    import torch._dynamo  # noqa: F401 - imported by the first optimizer step otherwise
    import torch.distributed  # noqa: F401
    import torch.nn.parallel  # noqa: F401

    from .training import package  # noqa: F401
    from .training.torch_ddp import fit_rank  # noqa: F401
    from .training.torch_ddp_stream import fit_rank_stream  # noqa: F401

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))


def _run_rank(args: dict, emit, should_stop) -> dict:
    import torch

    from .training.partitions import PartitionStream

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    shard = args["shard"]
    if isinstance(shard, PartitionStream):  # the recipes of its partitions: read one at a time
        from .training.torch_ddp_stream import fit_rank_stream as fit_rank
    else:
        from .training.torch_ddp import fit_rank
    fitted, facts = fit_rank(args["spec"], shard, emit, rank=args["rank"], world=args["world"],
                             init_method=args["init_method"], classes=args["classes"],
                             timeout_s=args["timeout_s"], should_stop=should_stop, keep=_KEPT)
    if fitted is not None and not fitted.stopped:
        from .training import package

        if isinstance(shard, (tuple, list)):  # (train rows, test rows): the fingerprint is of both
            import pandas as pd

            shard = pd.concat(shard)
        facts["result"] = package(fitted, shard)
    return facts


def _describe(exc: BaseException) -> tuple:
    """``(the exception if it pickles, whether the group failed it, its first line)``."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    collective = isinstance(exc, RuntimeError) and _collective_failure(exc)
    if not collective:
        try:
            pickle.loads(pickle.dumps(exc))
            return exc, False, line
        except Exception:  # noqa: BLE001 - any pickling failure: send the line
            pass
    return None, collective, line if collective else f"{type(exc).__name__}: {line}"


def _collective_failure(exc: RuntimeError) -> bool:
    """Whether *exc* came from torch.distributed (a peer gone, a timeout), not from the model."""
    import torch.distributed as dist

    backend_error = getattr(dist, "DistBackendError", None)
    if backend_error is not None and isinstance(exc, backend_error):
        return True
    text = str(exc).lower()
    return any(word in text for word in ("gloo", "nccl", "connection reset", "connection closed", "timed out",
                                         "rendezvous", "store"))


if __name__ == "__main__":
    _child_main()
