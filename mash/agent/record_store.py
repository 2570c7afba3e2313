"""The agency's records on disk, keyed by index row: what an answer releases is read here.

The agent keeps only its match index in memory. Every record the index was built from is
written, when the index is built, to an SQLite file keyed by its index row (``row INTEGER
PRIMARY KEY``: an indexed key lookup), holding the record as mapped (its releasable values
and the few fields the consistency checks compare). An answer reads only the records it
matched, at answer time, from the store of the snapshot it searched: the values released
are exactly the load the as-at time describes.

The file lives and dies like the saved index (mash.matching.persist): its name carries the
content key of the load it holds (``persist.index_fingerprint``), it is written under a
temporary name and renamed into place only once complete, and a store whose header does not
name that key and that record count is never used (it is written again). So a refused or
half-written load never replaces the store the agent answers from. Beside a saved index at
``index.path`` it is ``<path>.records-<key>.sqlite``; with no index.path, in a temporary
directory of the process's own.

A store that cannot be read at answer time (removed, locked, damaged, short of a matched
row) raises `StoreUnavailable`; the agent then answers NOT_CHECKED with the reason, never
NOT_KNOWN and never a part of a record. Its messages name the problem, never a value.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import orjson

from mash.logs import get_logger
from mash.records import PersonRecord
from mash.subject import Name

log = get_logger(__name__)
FORMAT = 2  # 2: each record's source and id beside it, indexed (an incremental refresh)
BUSY_SECONDS = 1.0  # how long a read waits for a lock before the answer says NOT_CHECKED
BATCH = 5000
_SUFFIX = ".sqlite"
_temp_dir: Path | None = None
_temp_lock = threading.Lock()


class StoreUnavailable(Exception):
    """The matched records cannot be read; the message says why (never a value)."""


def _private_dir() -> Path:
    """The process's own directory for stores when no index.path is configured."""
    global _temp_dir
    with _temp_lock:
        if _temp_dir is None:
            _temp_dir = Path(tempfile.mkdtemp(prefix="mash-records-"))
            atexit.register(shutil.rmtree, _temp_dir, True)
        return _temp_dir


def store_path(index_path: Path | None, key: str) -> Path:
    """Where the store of the load with content key `key` lives."""
    if index_path is None:  # a name of its own: several agents may share one process
        return _private_dir() / f"records-{uuid.uuid4().hex}-{key[:16]}{_SUFFIX}"
    return index_path.with_name(f"{index_path.name}.records-{key[:32]}{_SUFFIX}")


def encode(record: PersonRecord) -> str:
    """A record as the store holds it (JSON, compact, UTF-8: orjson, a tenth of json's time
    in a load of millions)."""
    return orjson.dumps([
        record.record_id, record.source,
        [[n.given, n.middle, n.family] for n in record.names],
        record.date_of_birth.isoformat() if record.date_of_birth else None,
        record.sex, list(record.postcodes), record.identifiers, record.values,
        list(record.addresses)]).decode()


def _decode(text: str) -> PersonRecord:
    rid, source, names, dob, sex, postcodes, identifiers, values, addresses = orjson.loads(text)
    return PersonRecord(
        record_id=rid, source=source, names=tuple(Name(*n) for n in names),
        date_of_birth=dt.date.fromisoformat(dob) if dob else None, sex=sex,
        postcodes=tuple(postcodes), identifiers=identifiers, values=values,
        addresses=tuple(addresses))


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               timeout=BUSY_SECONDS, check_same_thread=False)
    else:
        # a writer is used by one thread at a time, but its `finish` may run on another
        # (the store's index built while the match index is calibrated)
        conn = sqlite3.connect(path, timeout=BUSY_SECONDS, check_same_thread=False)
    return conn


def _header(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


class RecordStore:
    """One load's records by index row, read-only (see the module doc)."""

    def __init__(self, path: Path, key: str, count: int) -> None:
        self.path = path
        self.key = key
        self.count = count
        self._inode = path.stat().st_ino
        self._local = threading.local()

    def __len__(self) -> int:
        return self.count

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def open_or_build(cls, *, path: Path, key: str,
                      records: Sequence[PersonRecord]) -> tuple[RecordStore, bool]:
        """The store at `path` when it holds exactly this load (key and count), else one
        written afresh from `records` and renamed into place. (store, reused)."""
        existing = cls.open(path=path, key=key, count=len(records))
        if existing is not None:
            return existing, True
        return cls.build(path=path, key=key, records=records), False

    @classmethod
    def open(cls, *, path: Path, key: str, count: int) -> RecordStore | None:
        """The store at `path` if it is complete and holds this load; None otherwise."""
        if not path.exists():
            return None
        try:
            conn = _connect(path, read_only=True)
            try:
                meta = _header(conn)
                rows = conn.execute("SELECT count(*) FROM records").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("record_store_rejected", reason=f"unreadable ({type(exc).__name__})")
            return None
        if (meta.get("format") != str(FORMAT) or meta.get("key") != key
                or meta.get("records") != str(count) or rows != count):
            log.warning("record_store_rejected", reason="it does not hold this load")
            return None
        return cls(path, key, count)

    @classmethod
    def build(cls, *, path: Path, key: str, records: Iterable[PersonRecord]) -> RecordStore:
        """Write every record under a temporary name; rename it into place when complete."""
        writer = StoreWriter(path.parent)
        try:
            for record in records:
                writer.add(record)
        except BaseException:
            writer.abort()
            raise
        return writer.finish(path=path, key=key)

    # -- reading ----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise StoreUnavailable("its record store file is missing") from None
        except OSError as exc:
            raise StoreUnavailable(
                f"its record store cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
        if stat.st_ino != self._inode:
            self._adopt(stat.st_ino)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = _connect(self.path, read_only=True)
            except sqlite3.Error as exc:
                raise StoreUnavailable(_describe(exc)) from None
            self._local.conn = conn
        return conn

    def _adopt(self, inode: int) -> None:
        """The file was replaced (another process wrote the same load's store at once):
        read on from the new one only if it holds this same load."""
        if RecordStore.open(path=self.path, key=self.key, count=self.count) is None:
            raise StoreUnavailable("its record store file was replaced by another load's")
        self._inode = inode
        self._local = threading.local()  # every thread reconnects, to the new file

    def fetch(self, rows: Sequence[int]) -> list[PersonRecord]:
        """The records at these index rows, in order: all of them, or StoreUnavailable."""
        if not rows:
            return []
        conn = self._conn()
        wanted = sorted(set(rows))
        found: dict[int, str] = {}
        try:
            for start in range(0, len(wanted), 500):
                part = wanted[start:start + 500]
                marks = ",".join("?" * len(part))
                found.update(conn.execute(
                    f"SELECT row, record FROM records WHERE row IN ({marks})",  # placeholders only
                    part).fetchall())
        except sqlite3.Error as exc:
            self._drop()
            raise StoreUnavailable(_describe(exc)) from None
        if len(found) != len(wanted):
            raise StoreUnavailable(f"its record store holds {len(found)} of the "
                                   f"{len(wanted)} records matched")
        try:
            return [_decode(found[row]) for row in rows]
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(
                f"its record store holds a damaged record ({type(exc).__name__})") from None

    def rows_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
        """The rows holding each (source, record id) asked for (an indexed lookup; a key it
        does not hold is left out), or StoreUnavailable."""
        conn = self._conn()
        out: dict[tuple[str, str], list[int]] = {}
        wanted = sorted(set(keys))
        try:
            for start in range(0, len(wanted), 400):
                part = wanted[start:start + 400]
                marks = ",".join("(?, ?)" for _ in part)
                for row, source, rid in conn.execute(  # placeholders only
                        f"SELECT row, source, record_id FROM records "
                        f"WHERE (source, record_id) IN (VALUES {marks})",
                        [v for key in part for v in key]).fetchall():
                    out.setdefault((source, rid), []).append(int(row))
        except sqlite3.Error as exc:
            self._drop()
            raise StoreUnavailable(_describe(exc)) from None
        return out

    def records(self) -> Iterator[PersonRecord]:
        """Every record, in row order (tools, tests and the blind token index)."""
        conn = _connect(self.path, read_only=True)
        try:
            for (text,) in conn.execute("SELECT record FROM records ORDER BY row"):
                yield _decode(text)
        finally:
            conn.close()

    def _drop(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


class StoreWriter:
    """A store written as the records are read (row i is the i-th `add`), under a temporary
    name in `directory`: `finish` names its load and renames it into place, `abort` deletes
    it. Nothing reads it before `finish`."""

    def __init__(self, directory: Path) -> None:
        self._started = time.monotonic()
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".records-", suffix=".tmp", dir=directory)
        os.close(fd)
        self.tmp = Path(tmp_name)
        self.count = 0
        self._batch: list[tuple[int, str, str, str]] = []
        try:
            os.chmod(self.tmp, 0o600)  # the agency's records: the agent's user alone
            self._conn = _connect(self.tmp, read_only=False)
            self._conn.execute("PRAGMA journal_mode=OFF")
            self._conn.execute("PRAGMA synchronous=OFF")
            self._conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._conn.execute("CREATE TABLE records (row INTEGER PRIMARY KEY, "
                               "record TEXT NOT NULL, source TEXT NOT NULL, "
                               "record_id TEXT NOT NULL)")
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def add(self, record: PersonRecord) -> None:
        self.add_encoded([(encode(record), record.source, record.record_id)])

    def add_encoded(self, records: list[tuple[str, str, str]]) -> None:
        """Records already `encode`d (in a worker process): (encoded, source, record id)."""
        for text, source, record_id in records:
            self._batch.append((self.count, text, source, record_id))
            self.count += 1
        if len(self._batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        self._conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", self._batch)
        self._batch.clear()

    def finish(self, *, path: Path, key: str) -> RecordStore:
        """Name the load it holds, flush it to disk and rename it to `path`."""
        try:
            self._flush()
            self._conn.execute("CREATE INDEX records_by_id ON records (source, record_id)")
            self._conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("format", str(FORMAT)), ("key", key), ("records", str(self.count))])
            self._conn.commit()
            self._conn.close()
            with self.tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, path)
        except BaseException:
            self.abort()
            raise
        log.info("record_store_built", records=self.count,
                 seconds=round(time.monotonic() - self._started, 3))
        return RecordStore(path, key, self.count)

    def finish_or_reuse(self, *, path: Path, key: str) -> tuple[RecordStore, bool]:
        """The store at `path` if it holds exactly this load already (this writer's work
        then deleted), else this one finished there. (store, reused)."""
        existing = RecordStore.open(path=path, key=key, count=self.count)
        if existing is not None:
            self.abort()
            return existing, True
        return self.finish(path=path, key=key), False

    def abort(self) -> None:
        """Delete what was written (a load refused, failed or already stored)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self.tmp.unlink(missing_ok=True)


def store_dir(index_path: Path | None) -> Path:
    """Where the stores of an agent with this index.path are written (see `store_path`)."""
    return index_path.parent if index_path is not None else _private_dir()


def _describe(exc: sqlite3.Error) -> str:
    """An SQLite error by its code name (the message can quote nothing, but say no more)."""
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return f"its record store cannot be read ({name})"


def remove_others(index_path: Path | None, keep: Iterable[Path],
                  retired: Path | None = None) -> None:
    """Delete `retired`, and the stores beside the saved index at `index_path` (not another
    agent's beside it) that are not in `keep`: no snapshot answers from them any more."""
    kept = {p.resolve() for p in keep}
    if retired is not None and retired.resolve() not in kept:
        retired.unlink(missing_ok=True)
    if index_path is None:
        return
    for path in kept:
        prefix = path.name[:path.name.index("records-")]
        for other in path.parent.glob(f"{prefix}records-*{_SUFFIX}"):
            if other.resolve() not in kept:
                other.unlink(missing_ok=True)
                log.info("record_store_removed", store=other.name)
