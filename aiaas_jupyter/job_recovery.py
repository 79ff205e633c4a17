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


_shared_checked: set = set()


def warn_unless_shared(dask_client, url: str, stacklevel: int = 4) -> None:
    """On an external cluster, checkpoints under a local path are only useful where every worker
    sees the same folder there (a shared mount): else a job resumes only on the worker that wrote
    them, and a retry elsewhere starts from scratch. Asked once per scheduler and path (two
    round trips: one worker writes a probe, every worker looks for it); a warning, not an error."""
    import warnings

    from .errors import AiaasStorageWarning
    from .worker_reach import is_url, workers_not_sharing

    key = (dask_client.scheduler.address, url)
    if is_url(url) or key in _shared_checked:
        return
    _shared_checked.add(key)
    path = url[len("file://"):] if url.startswith("file://") else url
    try:
        blind = workers_not_sharing(dask_client, path)
    except (OSError, TimeoutError, ValueError) as e:  # cannot tell: the job runs all the same
        _log.debug("aiaas: could not check the checkpoint location %s on the workers: %s", url, e)
        return
    if blind:
        warnings.warn(f"checkpoints at {url} are on each worker's own disk (worker(s) {', '.join(blind[:4])} do not "
                      "see what another writes there): a torch job resumes only on the worker that wrote them; "
                      "set aiaas.checkpoints.url to a location every worker reaches (a shared mount, s3://...)",
                      AiaasStorageWarning, stacklevel=stacklevel)


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


__all__ = ["RunWatch", "checkpoint_target", "drop_checkpoints", "gave_up_reason", "retries", "warn_unless_shared"]
