"""What the kernel does about a job whose worker died: see the retry, cap it, clean up after it.

Dask runs a task again on another worker when the worker running it dies; nothing tells the
submitting client. Each run of ``remote.train_task`` names itself in its "start" event
(``run``), so a start under a new name is a retry (:class:`RunWatch`). A torch job resumes
from its last checkpoint there (``training/checkpoints.py``); a scikit-learn job starts again.
``aiaas.jobs.retries`` caps the retries; past it the dispatcher gives the job up with one line.

Checkpoints live under ``aiaas.checkpoints.url`` (a fsspec URL every worker reaches). With the
embedded cluster the default is ``HOME/checkpoints``; an external cluster without a URL gets
none (its workers may not see the kernel's disk), and its jobs restart from scratch.
"""

from __future__ import annotations

import logging

from . import settings as _settings

_log = logging.getLogger(__name__)


class RunWatch:
    """Which run of each job the kernel last heard from (event-loop thread only)."""

    def __init__(self):
        self._runs: dict[str, str] = {}

    def restarted(self, job_id: str, msg: dict) -> bool:
        """Whether *msg* is the start of a new run of a job already seen running."""
        if msg.get("stage") != "start" or not msg.get("run"):
            return False
        seen = self._runs.get(job_id)
        self._runs[job_id] = msg["run"]
        return seen is not None and seen != msg["run"]

    def forget(self, job_id: str) -> None:
        self._runs.pop(job_id, None)


def retries() -> int:
    return max(0, int(_settings.config("jobs.retries")))


def gave_up_reason(attempt: int) -> str:
    return (f"its worker died {attempt - 1} times, more than aiaas.jobs.retries = {retries()} allows "
            f"(a job that kills its worker, e.g. out of memory?)")


def checkpoint_target(home, embedded: bool) -> dict | None:
    """Where a torch job checkpoints (``url``, ``storage_options``, ``min_interval``), or None."""
    from dask.utils import parse_timedelta

    url = _settings.config("checkpoints.url")
    if not url:
        if not embedded:
            return None
        url = str(home / "checkpoints")
    return {"url": str(url), "storage_options": dict(_settings.config("checkpoints.storage-options") or {}),
            "min_interval": float(parse_timedelta(_settings.config("checkpoints.min-interval"), default="s"))}


def drop_checkpoints(url: str, job_id: str, dask_client=None) -> None:
    """Remove a job's checkpoints: from the kernel when it reaches *url*, else from a worker
    (every worker reaches it). Never raises: an ended job's outcome does not depend on it."""
    from .training.checkpoints import CheckpointStore

    options = dict(_settings.config("checkpoints.storage-options") or {})
    try:
        CheckpointStore(url, options).drop(job_id)
        return
    except (OSError, ImportError, ValueError) as e:  # not reachable from here: a worker does it
        _log.debug("aiaas: dropping checkpoints of %s from the kernel failed (%s); asking a worker", job_id, e)
    if dask_client is not None and dask_client.status == "running":
        from distributed import fire_and_forget

        from .remote import drop_checkpoints as on_worker

        fire_and_forget(dask_client.submit(on_worker, url, options, job_id, pure=False))


__all__ = ["RunWatch", "checkpoint_target", "drop_checkpoints", "gave_up_reason", "retries"]
