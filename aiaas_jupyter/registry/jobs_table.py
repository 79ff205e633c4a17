"""The ``jobs`` table: what was submitted, where it runs, how it ended.

Kept in the registry database so a job and the model version it produced share one
durable home, and so a restarted kernel can list (and try to re-attach to) past jobs.
These functions take an open connection; :class:`~.store.Registry` owns connections and
transactions.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from ..clock import now_iso
from ..errors import JobNotFoundError, RegistryError

#: every status a job can have: the one list the table, the job handles and the views share
STATUSES = ("pending", "running", "finished", "error", "cancelled", "lost")
#: the statuses a job can still leave; every other one is final
LIVE = ("pending", "running")
TERMINAL = tuple(s for s in STATUSES if s not in LIVE)


@dataclasses.dataclass
class JobRecord:
    id: str
    model: str | None = None            # target model name
    status: str = "pending"
    progress: float = 0.0               # 0..1
    worker: str | None = None
    gpus: int = 0
    scheduler: str | None = None        # scheduler address
    key: str | None = None              # Dask key
    submitted: str = dataclasses.field(default_factory=now_iso)
    started: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    gpu_seconds: float | None = None
    version: int | None = None          # registered model version
    error: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COLUMNS = tuple(f.name for f in dataclasses.fields(JobRecord))
UPDATABLE = frozenset(COLUMNS) - {"id"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, model TEXT, status TEXT NOT NULL, progress REAL NOT NULL,
    worker TEXT, gpus INTEGER NOT NULL, scheduler TEXT, key TEXT, submitted TEXT NOT NULL,
    started TEXT, finished TEXT, duration_s REAL, gpu_seconds REAL, version INTEGER,
    error TEXT, info TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_submitted ON jobs(submitted);
"""


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"invalid job status {status!r}; expected one of {', '.join(STATUSES)}")


def _encode_info(info: Any) -> str:
    if not isinstance(info, dict):
        raise RegistryError(f"job info must be a dict, not {type(info).__name__}")
    try:
        return json.dumps(info)
    except (TypeError, ValueError) as e:
        raise RegistryError(f"job info is not JSON-serialisable: {e}",
                            "store only str/int/float/bool/None, lists and dicts") from None


def _from_row(row: sqlite3.Row) -> JobRecord:
    values = dict(zip(COLUMNS, row))
    values["info"] = json.loads(values["info"])
    return JobRecord(**values)


def insert(conn: sqlite3.Connection, rec: JobRecord) -> None:
    validate_id(rec.id)
    _check_status(rec.status)
    values = dataclasses.asdict(rec)
    values["info"] = _encode_info(rec.info)
    try:
        conn.execute(f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                     [values[c] for c in COLUMNS])
    except sqlite3.IntegrityError:
        raise RegistryError(f"job {rec.id!r} is already recorded", "job ids must be unique") from None


def check_update(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate and encode a partial update before any transaction is opened."""
    unknown = sorted(set(fields) - UPDATABLE)
    if unknown:
        raise ValueError(f"unknown or read-only job field(s): {', '.join(unknown)}; "
                         f"updatable: {', '.join(sorted(UPDATABLE))}")
    if "status" in fields:
        _check_status(fields["status"])
    if "info" in fields:
        fields = {**fields, "info": _encode_info(fields["info"])}
    return fields


def update(conn: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> None:
    """Apply already-checked ``fields``; JobNotFoundError if no such job."""
    if fields:
        assignments = ", ".join(f"{c} = ?" for c in fields)
        cur = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*fields.values(), job_id])
        found = cur.rowcount > 0
    else:
        found = conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is not None
    if not found:
        raise _not_found(job_id)


def update_live(conn: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> bool:
    """Apply already-checked ``fields`` only while the job is still pending or running.

    One conditional statement, so a late progress update can never overwrite a final status
    written by another thread or process, whatever order they arrive in. Returns whether the
    row was updated (False: no such job, or it already ended).
    """
    if not fields:
        return False
    assignments = ", ".join(f"{c} = ?" for c in fields)
    cur = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ? AND status IN ({', '.join('?' * len(LIVE))})",
                       [*fields.values(), job_id, *LIVE])
    return cur.rowcount > 0


def get(conn: sqlite3.Connection, job_id: str) -> JobRecord:
    row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise _not_found(job_id)
    return _from_row(row)


def latest(conn: sqlite3.Connection, limit: int) -> list[JobRecord]:
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs ORDER BY submitted DESC, rowid DESC "
                        "LIMIT ?", (int(limit),)).fetchall()
    return [_from_row(r) for r in rows]


def validate_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"job id must be a non-empty string, not {job_id!r}")
    return job_id


def _not_found(job_id: str) -> JobNotFoundError:
    return JobNotFoundError(f"no job with id {job_id!r}", "see %aiaas jobs")
