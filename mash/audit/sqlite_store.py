"""The SQLite audit store: the default, one file per agent or single broker.

Durability: WAL journal with `synchronous=FULL`, so a COMMIT that returned survives a killed
process and a power cut. Writers take the database write lock with `BEGIN IMMEDIATE`, which
serialises threads (one connection behind a lock) and processes (SQLite's file lock, waiting up
to `busy_timeout` seconds). The file is created with mode 0600.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from mash.audit.chain import Head
from mash.audit.errors import AuditError
from mash.audit.store import SqlStore
from mash.dberrors import describe


def sqlite_path(url: str, base_dir: Path | None = None) -> Path:
    """sqlite:///relative.db (to base_dir, else the working directory) or sqlite:////abs.db."""
    if not url.lower().startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise AuditError(f"audit store {url!r}: write sqlite:///relative/path.db or "
                         "sqlite:////absolute/path.db")
    path = Path(url[len("sqlite:///"):])
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


class SqliteStore(SqlStore):
    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            level = self._conn.execute("PRAGMA synchronous").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"{self.description}: cannot open the audit store: {exc}") from None
        if level < 2:
            raise AuditError(f"{self.description}: SQLite refused synchronous=FULL: commits "
                             "would not be durable")
        with self._tx(write=True) as cur:
            self._create_schema(cur)

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            if self._conn is None:
                raise AuditError(f"{self.description}: the audit store is closed")
            conn = self._conn
            try:
                cur = conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise AuditError(f"{self.description}: cannot start a transaction: "
                                 f"{describe(exc)}") from exc
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise AuditError(f"{self.description}: {describe(exc)}") from exc
                raise
            finally:
                cur.close()

    def _lock_head(self, cur: sqlite3.Cursor, writer_id: str) -> Head:
        # BEGIN IMMEDIATE already holds the database's write lock.
        head = self._select_head(cur, writer_id)
        if head is None:
            self._insert_head(cur, writer_id)
            head = Head(writer_id)
        return head

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
