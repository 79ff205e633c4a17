"""The model registry: immutable, numbered model versions with aliases, plus the jobs,
sweeps (with their trials) and endpoints tables.

Layout under ``home``::

    registry.sqlite3            metadata (WAL mode): versions, aliases, counters, jobs, sweeps, trials, endpoints
    artifacts/ab/ab12...        content-addressed blobs (see :mod:`.blobs`)

Blobs are written durably *before* the row that references them, so a crash can at worst
leave an unreferenced blob, never a version with missing artifacts. Concurrency rules are
in :mod:`.db`; the SQL is in :mod:`.versions_table`, :mod:`.jobs_table`, :mod:`.sweeps_table`
and :mod:`.endpoints_table`.

Only the standard library is imported here (``jupyter_core`` lazily): this module loads
with the Jupyter extension and must stay cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..clock import now_iso
from ..errors import IntegrityError, RegistryError
from . import endpoints_table, jobs_table, sweeps_table, versions_table
from .blobs import BlobStore, sha256_hex
from .db import Database
from .endpoints_table import Endpoint
from .jobs_table import JobRecord
from .names import parse_ref, validate_name, validate_version
from .sweeps_table import SweepRecord, TrialRecord
from .versions_table import ModelVersion


def default_home() -> Path:
    """``$AIAAS_HOME`` if set, else ``<jupyter data dir>/aiaas``."""
    env = os.environ.get("AIAAS_HOME")
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir  # lazy: ~20 ms, only needed here

    return Path(jupyter_data_dir()) / "aiaas"


class Registry:
    """A registry rooted at ``home`` (default :func:`default_home`).

    Cheap to construct: nothing touches the disk until the first write, and reads before
    that see an empty registry. Safe to share between threads, and several processes may
    use the same home at once.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None):
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.db = Database(self.home / "registry.sqlite3")
        self.blobs = BlobStore(self.home / "artifacts")
        # what a writer killed mid-save left behind (issue 14): gone at the next open
        self.orphans_removed = self.blobs.sweep_orphans()

    def __repr__(self) -> str:
        return f"Registry({str(self.home)!r})"

    # ---- models ----------------------------------------------------------------------

    def register(self, name: str, *, framework: str, artifacts: Mapping[str, bytes],
                 params: dict, metrics: dict, library_versions: dict, data_fingerprint: str,
                 source: str, job_id: str | None, extra: dict | None = None,
                 job_fields: dict[str, Any] | None = None) -> ModelVersion:
        """Store ``artifacts`` and record them as the next version of ``name``.

        Everything is validated first, then blobs are written, then one durable transaction
        allocates the version number and inserts the row. *job_fields* (with *job_id*): the
        job's final fields (status, finished, ...), written to its row in that same
        transaction together with ``version`` — a job never reads "finished" without its
        version, and the end of a job costs one transaction, not two.
        """
        name = validate_name(name)
        if job_fields is not None:
            if job_id is None:
                raise ValueError("job_fields need the job_id of the row they update")
            jobs_table.validate_id(job_id)
            job_fields = jobs_table.check_update(job_fields)
        files = versions_table.check_artifacts(artifacts)
        shas = {filename: sha256_hex(data) for filename, data in files.items()}
        row = versions_table.encode_row({
            "framework": framework, "params": params, "metrics": metrics,
            "library_versions": library_versions, "data_fingerprint": data_fingerprint,
            "source": source, "job_id": job_id, "artifacts": shas, "created": now_iso(),
            "extra": {} if extra is None else extra})
        self.db.make_parent()  # once: the home and database file, for the blobs and the write
        self._put_blobs(files, shas)  # the slow part, outside the write lock
        with self.db.write(durable=True, parent_ready=True) as conn:
            # A concurrent delete may have collected a blob we found already present;
            # this re-check is a stat() per file unless that rare race happened.
            self._put_blobs(files, shas)
            mv = versions_table.insert(conn, name, row)
            if job_fields is not None:
                jobs_table.update(conn, job_id, {**job_fields, "version": mv.version})
            return mv

    def get(self, ref: str) -> ModelVersion:
        """``NAME`` (latest version), ``NAME:VERSION`` or ``NAME@ALIAS``."""
        name, version, alias = parse_ref(ref)
        with self.db.read() as conn:
            if alias is not None:
                version = versions_table.alias_target(conn, name, alias)
            mv = versions_table.fetch(conn, name, version)
            if mv is None:
                raise versions_table.not_found(conn, name, version=version)
            return mv

    def versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, oldest first."""
        validate_name(name)
        with self.db.read() as conn:
            return versions_table.fetch_all(conn, name)

    def list_models(self) -> list[dict[str, Any]]:
        """One summary per model, sorted by name: ``name``, ``latest`` (version),
        ``n_versions``, ``aliases`` ({alias: version}), ``framework``, ``metrics`` and
        ``created`` (of the latest version)."""
        with self.db.read() as conn:
            return versions_table.summaries(conn)

    def version_numbers(self) -> dict[str, list[int]]:
        """Every model's version numbers, ascending (``{name: [1, 2, ...]}``), in one read."""
        with self.db.read() as conn:
            return versions_table.numbers(conn)

    def set_alias(self, name: str, version: int, alias: str) -> ModelVersion:
        """Point ``name@alias`` at ``version`` (re-pointing is allowed); returns that version."""
        validate_name(name)
        validate_name(alias, "alias")
        validate_version(version)
        with self.db.write() as conn:
            return versions_table.set_alias(conn, name, version, alias)

    def remove_alias(self, name: str, alias: str) -> None:
        validate_name(name)
        validate_name(alias, "alias")
        with self.db.write() as conn:
            versions_table.remove_alias(conn, name, alias)

    def delete(self, name: str, version: int | None = None) -> list[int]:
        """Delete one version (with its aliases) or, if ``version`` is None, the whole model
        including its version counter. Returns the deleted version numbers. Blobs nothing
        references any more are removed once the deletion has committed."""
        validate_name(name)
        if version is not None:
            validate_version(version)
        with self.db.write() as conn:
            deleted, shas = versions_table.delete(conn, name, version)
        self._collect_blobs(shas)
        return deleted

    def read_artifacts(self, mv_or_ref: ModelVersion | str) -> dict[str, bytes]:
        """The version's artifacts ``{filename: bytes}``, each verified against its sha256."""
        mv = mv_or_ref if isinstance(mv_or_ref, ModelVersion) else self.get(mv_or_ref)
        hint = f"the artifact store under {self.home} was changed outside aiaas; re-train or re-register {mv.name}"
        out = {}
        for filename, sha in mv.artifacts.items():
            try:
                data = self.blobs.read(sha)
            except FileNotFoundError:
                raise IntegrityError(f"artifact {filename!r} of {mv.ref} is missing ({self.blobs.path(sha)})",
                                     hint) from None
            if sha256_hex(data) != sha:
                raise IntegrityError(f"artifact {filename!r} of {mv.ref} is corrupted (sha256 mismatch)", hint)
            out[filename] = data
        return out

    # ---- jobs ------------------------------------------------------------------------

    def record_job(self, rec: JobRecord) -> None:
        """Insert a new job (RegistryError if its id is already recorded)."""
        with self.db.write() as conn:
            jobs_table.insert(conn, rec)

    def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        """Partial update; returns the updated record. Unknown field → ValueError, unknown
        id → JobNotFoundError."""
        jobs_table.validate_id(job_id)
        fields = jobs_table.check_update(fields)
        with self.db.write() as conn:
            jobs_table.update(conn, job_id, fields)
            return jobs_table.get(conn, job_id)

    def update_live_job(self, job_id: str, **fields: Any) -> bool:
        """Partial update of a job that is still pending or running (live progress); a job
        that already ended is left as it is. Returns whether it was updated."""
        jobs_table.validate_id(job_id)
        fields = jobs_table.check_update(fields)
        with self.db.write() as conn:
            return jobs_table.update_live(conn, job_id, fields)

    def get_job(self, job_id: str) -> JobRecord:
        with self.db.read() as conn:
            return jobs_table.get(conn, job_id)

    def list_jobs(self, limit: int = 50) -> list[JobRecord]:
        """The ``limit`` most recently submitted jobs, newest first (1 ≤ limit ≤ 10**6)."""
        _check_limit(limit, "jobs")
        with self.db.read() as conn:
            return jobs_table.latest(conn, limit)

    # ---- sweeps (SQL, validation and the NaN rule in :mod:`.sweeps_table`) -------------

    def record_sweep(self, rec: SweepRecord) -> None:
        """Insert a new sweep (RegistryError if its id is already recorded)."""
        row = sweeps_table.check_sweep(rec)
        with self.db.write() as conn:
            sweeps_table.insert_sweep(conn, row)

    def update_sweep(self, sweep_id: str, **fields: Any) -> SweepRecord:
        """Partial update; returns the updated record (ValueError: unknown field or status)."""
        sweeps_table.validate_id(sweep_id)
        fields = sweeps_table.check_sweep_update(fields)
        with self.db.write() as conn:
            sweeps_table.update_sweep(conn, sweep_id, fields)
            return sweeps_table.get_sweep(conn, sweep_id)

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        with self.db.read() as conn:
            return sweeps_table.get_sweep(conn, sweep_id)

    def list_sweeps(self, limit: int = 50) -> list[SweepRecord]:
        """The ``limit`` most recently submitted sweeps, newest first."""
        _check_limit(limit, "sweeps")
        with self.db.read() as conn:
            return sweeps_table.latest_sweeps(conn, limit)

    def record_trial(self, rec: TrialRecord, sweep_fields: dict[str, Any] | None = None) -> None:
        """Insert or replace trial ``(rec.sweep_id, rec.number)`` and apply ``sweep_fields`` to its
        sweep in the same transaction, so a reader never sees a trial and counts that disagree."""
        row = sweeps_table.check_trial(rec)
        sweep = sweeps_table.check_sweep_update(sweep_fields or {})
        with self.db.write() as conn:
            sweeps_table.upsert_trial(conn, row)
            sweeps_table.update_sweep(conn, rec.sweep_id, sweep)

    def update_trial(self, sweep_id: str, number: int, sweep_fields: dict[str, Any] | None = None,
                     **fields: Any) -> TrialRecord:
        """Partial update of one trial (+ ``sweep_fields`` in the same transaction); returns it."""
        sweeps_table.validate_id(sweep_id)
        sweeps_table.validate_number(number)
        fields = sweeps_table.check_trial_update(fields)
        sweep = sweeps_table.check_sweep_update(sweep_fields or {})
        with self.db.write() as conn:
            sweeps_table.update_trial(conn, sweep_id, number, fields)
            sweeps_table.update_sweep(conn, sweep_id, sweep)
            return sweeps_table.get_trial(conn, sweep_id, number)

    def list_trials(self, sweep_id: str) -> list[TrialRecord]:
        """Every trial of the sweep, by number (SweepNotFoundError if there is no such sweep)."""
        with self.db.read() as conn:
            return sweeps_table.trials(conn, sweep_id)

    # ---- endpoints -------------------------------------------------------------------

    def add_endpoint(self, name: str, url: str, protocol: str, api_key_env: str | None = None,
                     model: str | None = None) -> Endpoint:
        """Record (or update) a remote endpoint. Only the *name* of the API key's environment
        variable is stored, never a key."""
        ep = endpoints_table.check(name, url, protocol, api_key_env, model)
        with self.db.write() as conn:
            endpoints_table.upsert(conn, ep)
        return ep

    def remove_endpoint(self, name: str) -> None:
        validate_name(name, "endpoint")
        with self.db.write() as conn:
            endpoints_table.delete(conn, name)

    def get_endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name`` (EndpointNotFoundError, with close names, if none)."""
        validate_name(name, "endpoint")
        with self.db.read() as conn:
            ep = endpoints_table.get(conn, name)
            if ep is None:
                raise endpoints_table.not_found(conn, name)
            return ep

    def find_endpoint(self, name: str) -> Endpoint | None:
        with self.db.read() as conn:
            return endpoints_table.get(conn, name)

    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint, sorted by name."""
        with self.db.read() as conn:
            return endpoints_table.all_endpoints(conn)

    # ---- blobs -----------------------------------------------------------------------

    def _put_blobs(self, files: dict[str, bytes], shas: dict[str, str]) -> None:
        """Write the blobs not stored yet (the caller has made the home: ``db.make_parent``)."""
        for filename, data in files.items():
            try:
                self.blobs.put(shas[filename], data)
            except OSError as e:
                raise RegistryError(f"cannot write artifact {filename!r} under {self.blobs.root}: {e.strerror}",
                                    "check free disk space and permissions") from None

    def _collect_blobs(self, shas: list[str]) -> None:
        """Remove blobs no version references. Done under the write lock, where register
        re-checks its blobs, so a blob is never removed between that check and its commit."""
        if not shas:
            return
        with self.db.write() as conn:
            for sha in shas:
                if not versions_table.is_referenced(conn, sha):
                    self.blobs.remove(sha)


def _check_limit(limit: object, what: str) -> None:
    """1 <= limit <= 10**6: a bigger int would reach SQLite as an OverflowError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10**6:
        raise RegistryError(f"limit must be a whole number from 1 to 1000000, got {str(limit)[:40]}",
                            hint=f"e.g. {what}(limit=50)")
