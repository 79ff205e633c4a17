"""How the embedded cluster's worker processes meet signals and their end.

* **Interrupts are for the cell, not the cluster.** Worker processes share the kernel's process
  group, and Jupyter interrupts a kernel (the ■ button, and just before every shutdown) by
  sending SIGINT to that whole group: each worker died with a KeyboardInterrupt traceback and
  the cluster was left with no workers, so the next job waited forever. Our workers ignore
  SIGINT; Ctrl-C in a terminal still stops the script, whose exit then closes the cluster.
* **A closed worker's process ends at once.** A worker process that ran a job has torch,
  pandas, pyarrow and scikit-learn loaded. After the worker itself has closed (a few ms: data
  dropped, scheduler told, scratch space released), the process still tears the interpreter
  down module by module — measured 1.2–1.5 s on an idle 2-core machine and over 4 s on a busy
  one, when the nanny gives up, SIGKILLs it and prints "Worker process still alive after 4.0
  seconds, killing" into the notebook. Nothing in that teardown matters for a disposable
  process, so once the worker has closed its exit skips it: flush the logs and standard
  streams, then ``os._exit(0)`` (what the process would have exited with).

Registered only on clusters this package starts (never on someone else's scheduler).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading

from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

_worker_closed = False


def _exit_now() -> None:
    if not _worker_closed:  # the process ends for another reason: let Python finish normally
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


class EmbeddedWorker(WorkerPlugin):
    idempotent = True

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():  # where signal handlers are set
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        atexit.register(_exit_now)  # registered after distributed's own handlers: runs before them

    def teardown(self, worker) -> None:
        global _worker_closed
        # teardown also runs when the plugin is merely unregistered; only a closing worker counts
        if worker.status in (Status.closing, Status.closing_gracefully, Status.closed):
            _worker_closed = True
