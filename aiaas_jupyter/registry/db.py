"""SQLite plumbing shared by the registry: connections, schema, transactions.

Several kernels (processes) and threads may use one registry at once, so every operation
opens its own short-lived connection (no connection is ever shared between threads) and
every write is a ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock up front, so
two writers never both read-then-write stale state, and the 30 s busy timeout makes a
writer wait for the lock instead of failing. WAL mode lets readers run during a write.

Why one idle connection is held open (:meth:`Database._hold_open`): when the *last*
connection to a WAL database closes, SQLite checkpoints the WAL into the main file, syncs it
and deletes the WAL — 2-10 ms per transaction here, which made every job's registry writes
the biggest share of dispatch overhead (W0). A connection that stays open (and idle: no
transaction, so it never blocks a checkpoint) keeps that from happening on every close;
SQLite's auto-checkpoint (every ~1000 WAL pages) still folds the WAL back regularly.
Durability is chosen per transaction: ``write(durable=True)`` (the version row) commits with
``synchronous = FULL``, i.e. the WAL is fsynced before ``COMMIT`` returns, so a registered
version survives a power loss; other writes (job progress, statuses) use ``NORMAL``: atomic
and crash-safe, only the last ones may be lost on a power loss.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

from ..errors import ConfigError, IntegrityError
from . import endpoints_table, jobs_table, sweeps_table, versions_table
from .private_files import FILE_MODE, create_private_file, make_private_dir, tighten

BUSY_TIMEOUT_MS = 30_000
#: 2 added the ``endpoints`` table, 3 the ``sweeps`` and ``trials`` tables. Every statement in
#: SCHEMA is ``IF NOT EXISTS``, so a database of an older version is upgraded by running it again
#: (see :meth:`Database._ensure_schema`).
SCHEMA_VERSION = 3
SCHEMA = versions_table.SCHEMA + jobs_table.SCHEMA + endpoints_table.SCHEMA + sweeps_table.SCHEMA
_WRITABLE_HINT = "set AIAAS_HOME to a writable directory"


class Database:
    """The registry database file. Creates nothing until the first :meth:`write`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._keeper: sqlite3.Connection | None = None  # see the module docstring

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read. Before the database exists, an empty in-memory one
        stands in, so that merely looking never creates files."""
        with self._damaged_as_error():
            if not self._schema_ready and not self.path.exists():
                conn = sqlite3.connect(":memory:")
                conn.executescript(SCHEMA)
            else:
                conn = self._connect()
            with contextlib.closing(conn):
                yield conn

    @contextlib.contextmanager
    def write(self, durable: bool = False, parent_ready: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error.
        *durable*: the commit is on disk (WAL fsynced) when this returns, not only atomic.
        *parent_ready*: the caller has just run :meth:`make_parent` (spares its syscalls)."""
        if not parent_ready:
            self.make_parent()
        with self._damaged_as_error(), contextlib.closing(self._connect()) as conn:
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _damaged_as_error(self) -> Iterator[None]:
        """A file that is not (or no longer) an SQLite database: one clear domain error, not
        sqlite3's bare ``DatabaseError`` (its subclasses — locked, constraint — pass through)."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if type(e) is not sqlite3.DatabaseError:
                raise
            raise IntegrityError(f"the registry database {self.path} is damaged: {e}",
                                 "restore it from a backup, or set AIAAS_HOME to another directory") from None

    def make_parent(self) -> None:
        """The home (0700) and an empty database file (0600) before SQLite opens it: SQLite
        would create the file with the umask's mode (0644 usually), and gives its -wal and -shm
        files the database file's mode. Existing looser files of ours are tightened. A few
        syscalls per write (the home may be removed and re-created between writes)."""
        try:
            make_private_dir(self.path.parent)
            if create_private_file(self.path):  # a new file: a held connection is to a removed one
                self._release_keeper()
            else:
                for suffix in ("", "-wal", "-shm"):
                    tighten(f"{self.path}{suffix}", FILE_MODE)
        except OSError as e:
            raise ConfigError(f"cannot create the registry directory {self.path.parent}: {e.strerror}",
                              _WRITABLE_HINT) from None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.OperationalError as e:
            raise ConfigError(f"cannot open the registry database {self.path}: {e}", _WRITABLE_HINT) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # WAL + NORMAL: commits stay atomic and the file uncorrupted on any crash; only the
            # last commits before a power loss may be lost (artifacts are fsynced separately).
            conn.execute("PRAGMA synchronous = NORMAL")
            if not self._schema_ready:
                self._ensure_schema(conn)
            if self._keeper is None:
                self._hold_open()
        except BaseException:
            conn.close()
            raise
        return conn

    def _hold_open(self) -> None:
        """Open the idle connection that keeps closes cheap (see the module docstring). It runs
        one read, to map the WAL index, and then no transaction ever. Not on Windows, where an
        open file would keep the home from being removed."""
        if os.name == "nt":
            return
        with self._schema_lock:
            if self._keeper is not None:
                return
            keeper = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                     check_same_thread=False)  # closed by whichever thread drops it
            try:
                keeper.execute("PRAGMA user_version").fetchall()
            except BaseException:
                keeper.close()
                raise
            self._keeper = keeper

    def _release_keeper(self) -> None:
        with self._schema_lock:
            keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create tables once per database; ``user_version`` records that it was done, so
        later connections (from any process) skip straight past with one cheap read. A
        database of an older schema version gets the missing tables the same way."""
        with self._schema_lock:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                _enable_wal(conn)
                conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            self._schema_ready = True


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode (persistent, so once per database).

    The switch needs an exclusive lock, and when several processes create the database at
    once SQLite can report "database is locked" here without waiting on the busy timeout;
    so retry, with jitter, for as long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))
