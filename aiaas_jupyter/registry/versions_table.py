"""Model versions, aliases and version counters: the SQL behind :class:`~.store.Registry`.

Functions here take an open connection and run inside the caller's transaction; they
never commit. Values are validated and JSON-encoded *before* a transaction starts
(:func:`encode_row`), so a bad value can never leave a half-written version behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sqlite3
from typing import Any, Mapping

from ..errors import ModelNotFoundError, RegistryError
from .names import validate_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_names (name TEXT PRIMARY KEY, next_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, framework TEXT NOT NULL, params TEXT NOT NULL,
    metrics TEXT NOT NULL, library_versions TEXT NOT NULL, data_fingerprint TEXT NOT NULL,
    source TEXT NOT NULL, job_id TEXT, artifacts TEXT NOT NULL, created TEXT NOT NULL,
    extra TEXT NOT NULL, PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, alias)
);
-- one row per (blob, version), so "is this blob still used?" is an index lookup
CREATE TABLE IF NOT EXISTS blob_refs (
    sha256 TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (sha256, name, version)
);
CREATE INDEX IF NOT EXISTS blob_refs_by_version ON blob_refs (name, version);
"""

COLUMNS = ("name", "version", "framework", "params", "metrics", "library_versions",
           "data_fingerprint", "source", "job_id", "artifacts", "created", "extra")
JSON_FIELDS = ("params", "metrics", "library_versions", "artifacts", "extra")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM versions"
_MODELS_HINT = "see %aiaas models"


@dataclasses.dataclass(frozen=True, repr=False)
class ModelVersion:
    name: str
    version: int
    framework: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    library_versions: dict[str, str]
    data_fingerprint: str
    source: str
    job_id: str | None
    artifacts: dict[str, str]           # file name -> sha256
    created: str                        # ISO-8601 UTC
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def __repr__(self) -> str:
        """Short and stable (no times or ids): it is what a notebook cell shows."""
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in list(self.metrics.items())[:3])
        aliases = f" @{',@'.join(self.aliases)}" if self.aliases else ""
        return f"<ModelVersion {self.ref}{aliases} {self.framework} {metrics}>"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["aliases"] = list(self.aliases)
        d["ref"] = self.ref
        return d


# ---- validation (before any transaction) -----------------------------------------------

def check_artifacts(artifacts: Mapping[str, bytes]) -> dict[str, bytes]:
    """Safe file names mapped to bytes; anything else raises before touching the disk."""
    if not isinstance(artifacts, Mapping):
        raise RegistryError(f"artifacts must be a dict of file name -> bytes, not {type(artifacts).__name__}")
    for filename, data in artifacts.items():
        validate_name(filename, "artifact file")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise RegistryError(f"artifact {filename!r} must be bytes, not {type(data).__name__}",
                                "serialise the model (skops/safetensors/ONNX) before registering")
    return {fn: bytes(data) for fn, data in artifacts.items()}


def encode_row(values: dict[str, Any]) -> dict[str, Any]:
    """Check types and JSON-encode the dict fields of a version row (all but name/version)."""
    row = dict(values)
    for key in ("framework", "data_fingerprint", "source", "created"):
        _check_str(key, row[key])
    if row["job_id"] is not None:
        _check_str("job_id", row["job_id"])
    for key in JSON_FIELDS:
        row[key] = _encode_json(key, row[key])
    return row


def _check_str(label: str, value: object) -> None:
    if not isinstance(value, str):
        raise RegistryError(f"{label} must be a string, not {type(value).__name__}")


def _encode_json(label: str, value: object) -> str:
    if not isinstance(value, dict):
        raise RegistryError(f"{label} must be a dict, not {type(value).__name__}",
                            f"pass {label}={{...}} with string keys")
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as e:
        raise RegistryError(f"{label} is not JSON-serialisable: {e}",
                            "use plain str/int/float/bool/None, lists and dicts (e.g. float(np_value))") from None


# ---- writes --------------------------------------------------------------------------

def insert(conn: sqlite3.Connection, name: str, row: dict[str, Any]) -> ModelVersion:
    """Insert ``row`` (from :func:`encode_row`) as the next version of ``name``."""
    version = _next_version(conn, name)
    values = {**row, "name": name, "version": version}
    conn.execute(f"INSERT INTO versions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                 [values[c] for c in COLUMNS])
    shas = sorted(set(json.loads(row["artifacts"]).values()))
    conn.executemany("INSERT INTO blob_refs (sha256, name, version) VALUES (?, ?, ?)",
                     [(sha, name, version) for sha in shas])
    return _to_version(tuple(values[c] for c in COLUMNS), ())


def _next_version(conn: sqlite3.Connection, name: str) -> int:
    """Allocate from the per-name counter, so numbers are never reused after deletes."""
    row = conn.execute("SELECT next_version FROM model_names WHERE name = ?", (name,)).fetchone()
    highest = conn.execute("SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?", (name,)).fetchone()[0]
    version = max(row[0] if row else 1, highest + 1)
    conn.execute("INSERT OR REPLACE INTO model_names (name, next_version) VALUES (?, ?)", (name, version + 1))
    return version


def set_alias(conn: sqlite3.Connection, name: str, version: int, alias: str) -> ModelVersion:
    if fetch(conn, name, version) is None:
        raise not_found(conn, name, version=version)
    conn.execute("INSERT OR REPLACE INTO aliases (name, alias, version) VALUES (?, ?, ?)", (name, alias, version))
    return fetch(conn, name, version)


def remove_alias(conn: sqlite3.Connection, name: str, alias: str) -> None:
    if conn.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias)).rowcount == 0:
        raise not_found(conn, name, alias=alias)


def delete(conn: sqlite3.Connection, name: str, version: int | None) -> tuple[list[int], list[str]]:
    """Delete one version or (``version=None``) the whole model including its counter.

    Returns the deleted version numbers and the blobs they referenced (candidates for removal).
    """
    where, args = ("name = ?", (name,)) if version is None else ("name = ? AND version = ?", (name, version))
    deleted = [r[0] for r in conn.execute(f"SELECT version FROM versions WHERE {where} ORDER BY version", args)]
    if not deleted:
        raise not_found(conn, name, version=version)
    shas = [r[0] for r in conn.execute(f"SELECT DISTINCT sha256 FROM blob_refs WHERE {where}", args)]
    for table in ("versions", "aliases", "blob_refs"):
        conn.execute(f"DELETE FROM {table} WHERE {where}", args)
    if version is None:
        conn.execute("DELETE FROM model_names WHERE name = ?", (name,))
    return deleted, shas


def is_referenced(conn: sqlite3.Connection, sha: str) -> bool:
    return conn.execute("SELECT 1 FROM blob_refs WHERE sha256 = ? LIMIT 1", (sha,)).fetchone() is not None


# ---- reads ---------------------------------------------------------------------------

def fetch(conn: sqlite3.Connection, name: str, version: int | None) -> ModelVersion | None:
    """``name:version`` (the latest if None) with its aliases, or None."""
    if version is None:
        row = conn.execute(f"{_SELECT} WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
    else:
        row = conn.execute(f"{_SELECT} WHERE name = ? AND version = ?", (name, version)).fetchone()
    if row is None:
        return None
    aliases = [r[0] for r in conn.execute("SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias",
                                          (name, row[1]))]
    return _to_version(row, aliases)


def fetch_all(conn: sqlite3.Connection, name: str) -> list[ModelVersion]:
    """All versions of ``name``, oldest first (ModelNotFoundError if none)."""
    rows = conn.execute(f"{_SELECT} WHERE name = ? ORDER BY version", (name,)).fetchall()
    if not rows:
        raise not_found(conn, name)
    aliases: dict[int, list[str]] = {}
    for alias, v in conn.execute("SELECT alias, version FROM aliases WHERE name = ? ORDER BY alias", (name,)):
        aliases.setdefault(v, []).append(alias)
    return [_to_version(r, aliases.get(r[1], ())) for r in rows]


def alias_target(conn: sqlite3.Connection, name: str, alias: str) -> int:
    row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
    if row is None:
        raise not_found(conn, name, alias=alias)
    return row[0]


def numbers(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Every model's version numbers, ascending: one query whatever the number of models."""
    out: dict[str, list[int]] = {}
    for name, version in conn.execute("SELECT name, version FROM versions ORDER BY name, version"):
        out.setdefault(name, []).append(version)
    return out


def summaries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One summary per model, sorted by name: two queries whatever the number of models."""
    rows = conn.execute(
        "SELECT v.name, v.version, c.n, v.framework, v.metrics, v.created FROM versions v "
        "JOIN (SELECT name, MAX(version) AS latest, COUNT(*) AS n FROM versions GROUP BY name) c "
        "ON v.name = c.name AND v.version = c.latest ORDER BY v.name").fetchall()
    aliases: dict[str, dict[str, int]] = {}
    for name, alias, version in conn.execute("SELECT name, alias, version FROM aliases ORDER BY alias"):
        aliases.setdefault(name, {})[alias] = version
    return [{"name": name, "latest": latest, "n_versions": n, "aliases": aliases.get(name, {}),
             "framework": framework, "metrics": json.loads(metrics), "created": created}
            for name, latest, n, framework, metrics, created in rows]


def _to_version(row: tuple, aliases: Any) -> ModelVersion:
    values = dict(zip(COLUMNS, row))
    for key in JSON_FIELDS:
        values[key] = json.loads(values[key])
    return ModelVersion(**values, aliases=tuple(aliases))


# ---- errors --------------------------------------------------------------------------

def not_found(conn: sqlite3.Connection, name: str, version: int | None = None,
              alias: str | None = None) -> ModelNotFoundError:
    """An error naming what is missing, with a hint listing what does exist."""
    known = [r[0] for r in conn.execute("SELECT version FROM versions WHERE name = ? ORDER BY version", (name,))]
    if not known:
        names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM versions")]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? {_MODELS_HINT}" if close else _MODELS_HINT
        return ModelNotFoundError(f"no model named {name!r}", hint)
    if alias is not None:
        pairs = conn.execute("SELECT alias, version FROM aliases WHERE name = ? ORDER BY alias", (name,)).fetchall()
        existing = ", ".join(f"@{a} -> {v}" for a, v in pairs) or "none"
        return ModelNotFoundError(f"model {name!r} has no alias {alias!r}", f"its aliases: {existing}; {_MODELS_HINT}")
    return ModelNotFoundError(f"model {name!r} has no version {version}",
                              f"its versions: {_summarise(known)}; {_MODELS_HINT}")


def _summarise(versions: list[int]) -> str:
    if len(versions) <= 8:
        return ", ".join(map(str, versions))
    head, tail = ", ".join(map(str, versions[:3])), ", ".join(map(str, versions[-3:]))
    return f"{head}, ..., {tail} ({len(versions)} in all)"
