"""One glibc malloc arena for the embedded cluster's workers, and only for them.

A Dask task runs in one of its worker's threads, and glibc gives each new thread its own malloc
arena, whose heaps handle the large, short-lived buffers of a training step worse than the main
arena does: the W1 loop ran 11% slower in a worker's task thread than on the same worker's main
thread (24% in a plain process); with ``MALLOC_ARENA_MAX=1`` the two ran alike. So
:func:`limit_for_workers` puts it in the workers' environment, unless the user set it.

Dask's nanny also writes the workers' environment into the kernel's own ``os.environ`` (it
updates it before spawning), so every process the kernel starts afterwards would inherit the
limit. Where one arena hurts — a data-parallel rank, which trains on its process's main thread
beside gloo's threads (W6 fell from ~64k to ~56k samples/s), and the model server's threads —
:func:`without_worker_limit` takes it out again, but only when it is ours (:data:`MARK`).
"""

from __future__ import annotations

import os
from typing import Mapping

VAR = "MALLOC_ARENA_MAX"
#: set beside our VAR, so that one the user set is never taken away
MARK = "AIAAS_WORKER_ARENA_MAX"


def limit_for_workers(env: dict[str, str], environ: Mapping[str, str] = os.environ) -> None:
    """Add the one-arena setting to a worker environment *env*, unless *environ* has one."""
    if VAR not in environ:
        env.setdefault(VAR, "1")
        env[MARK] = "1"


def without_worker_limit(env: Mapping[str, str]) -> dict[str, str]:
    """*env* for a process that is not a worker: without our one-arena setting (the user's stays)."""
    out = dict(env)
    if out.pop(MARK, None):
        out.pop(VAR, None)
    return out
