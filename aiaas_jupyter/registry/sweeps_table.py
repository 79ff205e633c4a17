"""The ``sweeps`` and ``trials`` tables: a hyper-parameter sweep and each of its trials.

Kept in the registry database, next to the jobs and the model versions, so a sweep, its
trials and the version its best trial became share one durable home: a restarted kernel, the
sidebar (another process) and ``%aiaas sweeps`` all read the same rows. These functions take
an open connection; :class:`~.store.Registry` owns connections and transactions.

JSON columns (``params``, ``metrics``, ``history``, ``counts``, ``info``) are written with
every non-finite float (NaN, +inf, -inf) replaced by ``null``, and the REAL columns
(``value``, ``best_value``, ``seconds``, ``duration_s``) store them as NULL too: a diverged
trial's NaN loss must not make the row unreadable to a strict JSON parser (the sidebar's
``JSON.parse`` rejects ``NaN``), and a missing value sorts last, where a diverged trial belongs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from typing import Any

from ..clock import now_iso
from ..errors import RegistryError, SweepNotFoundError
from ..sweep_options import DIRECTIONS

#: every status a sweep can have; the table, the sweep handle and the views share this list
SWEEP_STATUSES = ("pending", "running", "finished", "error", "cancelled", "lost")
SWEEP_LIVE = ("pending", "running")
SWEEP_TERMINAL = tuple(s for s in SWEEP_STATUSES if s not in SWEEP_LIVE)
#: every status a trial can have ("pruned": stopped early by the sweep's early-stop rule)
TRIAL_STATUSES = ("pending", "running", "finished", "pruned", "error", "cancelled", "lost")
TRIAL_LIVE = ("pending", "running")
TRIAL_TERMINAL = tuple(s for s in TRIAL_STATUSES if s not in TRIAL_LIVE)


@dataclasses.dataclass
class SweepRecord:
    id: str
    model: str                          # registry name of the model the best trial becomes
    status: str = "pending"
    metric: str = ""                    # e.g. "accuracy"
    direction: str = "max"              # "max" | "min"
    search: str = "grid"                # "grid" | "random" | "tpe"
    early_stop: str = "none"            # "none" | "asha" | "hyperband"
    n_trials: int = 0                   # planned number of trials
    max_concurrent: int = 1
    seed: int = 0
    scheduler: str | None = None
    submitted: str = dataclasses.field(default_factory=now_iso)
    finished: str | None = None
    duration_s: float | None = None
    best_trial: int | None = None
    best_value: float | None = None
    version: int | None = None          # registered version of ``model``
    error: str | None = None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)   # trial status -> trials in it
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrialRecord:
    sweep_id: str
    number: int                         # 0-based, the optuna trial number
    status: str = "pending"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    value: float | None = None          # the sweep metric's final (or last reported) value
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    history: list[dict] = dataclasses.field(default_factory=list)   # {"epoch", "metrics", "seconds"}
    worker: str | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    error: str | None = None            # one line
    key: str | None = None              # Dask key of the trial task

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SWEEP_COLUMNS = tuple(f.name for f in dataclasses.fields(SweepRecord))
TRIAL_COLUMNS = tuple(f.name for f in dataclasses.fields(TrialRecord))
SWEEP_UPDATABLE = frozenset(SWEEP_COLUMNS) - {"id"}
TRIAL_UPDATABLE = frozenset(TRIAL_COLUMNS) - {"sweep_id", "number"}
_JSON = {"params": dict, "metrics": dict, "history": list, "counts": dict, "info": dict}
_REAL = ("value", "best_value", "seconds", "duration_s")
_REQUIRED = frozenset({"model", "status", "metric", "direction", "search", "early_stop", "n_trials",
                       "max_concurrent", "seed", "submitted"})   # NOT NULL, besides the JSON columns

SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL, metric TEXT NOT NULL,
    direction TEXT NOT NULL, search TEXT NOT NULL, early_stop TEXT NOT NULL, n_trials INTEGER NOT NULL,
    max_concurrent INTEGER NOT NULL, seed INTEGER NOT NULL, scheduler TEXT, submitted TEXT NOT NULL,
    finished TEXT, duration_s REAL, best_trial INTEGER, best_value REAL, version INTEGER, error TEXT,
    counts TEXT NOT NULL, info TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sweeps_submitted ON sweeps(submitted);
CREATE TABLE IF NOT EXISTS trials (
    sweep_id TEXT NOT NULL, number INTEGER NOT NULL, status TEXT NOT NULL, params TEXT NOT NULL,
    value REAL, metrics TEXT NOT NULL, history TEXT NOT NULL, worker TEXT, started TEXT,
    finished TEXT, seconds REAL, error TEXT, key TEXT,
    PRIMARY KEY (sweep_id, number)
);
"""


# ---- validation and encoding (before any transaction is opened) -----------------------------

def validate_id(sweep_id: object) -> str:
    if not isinstance(sweep_id, str) or not sweep_id:
        raise ValueError(f"sweep id must be a non-empty string, not {sweep_id!r}")
    return sweep_id


def validate_number(number: object) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ValueError(f"trial number must be a whole number >= 0, not {number!r}")
    return number


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (recursively), numpy scalars
    turned into Python ones: what the JSON and REAL columns store (see the module docstring)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _encode(fields: dict[str, Any], kind: str) -> dict[str, Any]:
    out = dict(fields)
    for col in _REAL:
        if col in out and out[col] is not None:
            try:
                out[col] = finite(float(out[col]))
            except (TypeError, ValueError):
                raise RegistryError(f"{kind} {col} must be a number, not {out[col]!r:.40}") from None
    for col, typ in _JSON.items():
        if col not in out:
            continue
        if not isinstance(out[col], typ):
            raise RegistryError(f"{kind} {col} must be a {typ.__name__}, not {type(out[col]).__name__}")
        try:
            out[col] = json.dumps(finite(out[col]), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise RegistryError(f"{kind} {col} is not JSON-serialisable: {e}",
                                "store only str/int/float/bool/None, lists and dicts") from None
    return out


def _check_fields(fields: dict[str, Any], updatable: frozenset, statuses: tuple, kind: str) -> dict[str, Any]:
    unknown = sorted(set(fields) - updatable)
    if unknown:
        raise ValueError(f"unknown or read-only {kind} field(s): {', '.join(unknown)}; "
                         f"updatable: {', '.join(sorted(updatable))}")
    required = sorted(c for c in _REQUIRED & set(fields) if fields[c] is None)
    if required:
        raise ValueError(f"{kind} field(s) {', '.join(required)} cannot be None")
    if "status" in fields and fields["status"] not in statuses:
        raise ValueError(f"invalid {kind} status {fields['status']!r}; expected one of {', '.join(statuses)}")
    if "direction" in fields and fields["direction"] not in DIRECTIONS:
        raise ValueError(f"invalid sweep direction {fields['direction']!r}; expected max or min")
    return _encode(fields, kind)


def check_sweep_update(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate and encode a partial sweep update (ValueError: unknown field or bad status)."""
    return _check_fields(fields, SWEEP_UPDATABLE, SWEEP_STATUSES, "sweep")


def check_trial_update(fields: dict[str, Any]) -> dict[str, Any]:
    return _check_fields(fields, TRIAL_UPDATABLE, TRIAL_STATUSES, "trial")


def check_sweep(rec: SweepRecord) -> dict[str, Any]:
    """The full row of a new sweep, validated and encoded."""
    validate_id(rec.id)
    values = dataclasses.asdict(rec)
    return {"id": rec.id, **check_sweep_update({k: v for k, v in values.items() if k != "id"})}


def check_trial(rec: TrialRecord) -> dict[str, Any]:
    validate_id(rec.sweep_id)
    validate_number(rec.number)
    values = dataclasses.asdict(rec)
    fields = {k: v for k, v in values.items() if k not in ("sweep_id", "number")}
    return {"sweep_id": rec.sweep_id, "number": rec.number, **check_trial_update(fields)}


# ---- SQL ---------------------------------------------------------------------------------

def _decode(values: dict[str, Any]) -> dict[str, Any]:
    for col in _JSON:
        if col in values:
            values[col] = json.loads(values[col])
    return values


def insert_sweep(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    try:
        conn.execute(f"INSERT INTO sweeps ({', '.join(SWEEP_COLUMNS)}) VALUES ({', '.join('?' * len(SWEEP_COLUMNS))})",
                     [row[c] for c in SWEEP_COLUMNS])
    except sqlite3.IntegrityError:
        raise RegistryError(f"sweep {row['id']!r} is already recorded", "sweep ids must be unique") from None


def update_sweep(conn: sqlite3.Connection, sweep_id: str, fields: dict[str, Any]) -> None:
    """Apply already-checked ``fields``; SweepNotFoundError if no such sweep."""
    if fields:
        cur = conn.execute(f"UPDATE sweeps SET {', '.join(f'{c} = ?' for c in fields)} WHERE id = ?",
                           [*fields.values(), sweep_id])
        if cur.rowcount > 0:
            return
    get_sweep(conn, sweep_id)  # raises if missing


def get_sweep(conn: sqlite3.Connection, sweep_id: str) -> SweepRecord:
    row = conn.execute(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
    if row is None:
        raise SweepNotFoundError(f"no sweep with id {sweep_id!r}", "%aiaas sweeps")
    return SweepRecord(**_decode(dict(zip(SWEEP_COLUMNS, row))))


def latest_sweeps(conn: sqlite3.Connection, limit: int) -> list[SweepRecord]:
    rows = conn.execute(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps ORDER BY submitted DESC, rowid DESC "
                        "LIMIT ?", (int(limit),)).fetchall()
    return [SweepRecord(**_decode(dict(zip(SWEEP_COLUMNS, r)))) for r in rows]


def upsert_trial(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """Insert or replace the trial ``(sweep_id, number)``; its sweep must exist."""
    get_sweep(conn, row["sweep_id"])
    conn.execute(f"INSERT OR REPLACE INTO trials ({', '.join(TRIAL_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(TRIAL_COLUMNS))})", [row[c] for c in TRIAL_COLUMNS])


def update_trial(conn: sqlite3.Connection, sweep_id: str, number: int, fields: dict[str, Any]) -> None:
    if fields:
        cur = conn.execute(f"UPDATE trials SET {', '.join(f'{c} = ?' for c in fields)} "
                           "WHERE sweep_id = ? AND number = ?", [*fields.values(), sweep_id, number])
        if cur.rowcount > 0:
            return
    get_trial(conn, sweep_id, number)  # raises if missing


def get_trial(conn: sqlite3.Connection, sweep_id: str, number: int) -> TrialRecord:
    row = conn.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials WHERE sweep_id = ? AND number = ?",
                       (sweep_id, number)).fetchone()
    if row is None:
        get_sweep(conn, sweep_id)
        raise SweepNotFoundError(f"sweep {sweep_id!r} has no trial {number}", "%aiaas sweeps")
    return TrialRecord(**_decode(dict(zip(TRIAL_COLUMNS, row))))


def trials(conn: sqlite3.Connection, sweep_id: str) -> list[TrialRecord]:
    """Every trial of the sweep, by number (SweepNotFoundError if the sweep is unknown)."""
    get_sweep(conn, sweep_id)
    rows = conn.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials WHERE sweep_id = ? ORDER BY number",
                        (sweep_id,)).fetchall()
    return [TrialRecord(**_decode(dict(zip(TRIAL_COLUMNS, r)))) for r in rows]
