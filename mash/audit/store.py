"""Where audit entries live: one interface, SQLite (default) and PostgreSQL (production).

`open_store(url)` picks the backend from the URL:
- `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`
- `postgresql://user@host:5432/db?schema=audit` (`schema` is ours: created if missing;
  every other parameter goes to libpq).

All writes for one writer happen in a transaction that first locks that writer's head row
(SQLite: `BEGIN IMMEDIATE`, which takes the database write lock; PostgreSQL: `SELECT ... FOR
UPDATE` on `audit_heads`), so any number of threads, processes or brokers appending to the same
store keep each chain gap-free, and the entry, its search keys, its owner notification, any
checkpoint and the new head commit together or not at all. A method returns only after COMMIT
succeeded; any database failure raises `AuditError`.

Tables: audit_heads (one row per writer), audit_entries, audit_index (search keys -> entry),
audit_checkpoints, audit_notifications, audit_meta.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mash.audit import merkle
from mash.audit.chain import EntryRow, Head
from mash.audit.checkpoint import SignedCheckpoint
from mash.audit.errors import AuditError

SCHEMA_VERSION = "2"  # 2: audit_heads.frontier (the Merkle tree)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_heads (writer_id TEXT PRIMARY KEY, seq {int} NOT NULL, "
    "entry_hash TEXT NOT NULL, base_seq {int} NOT NULL, base_hash TEXT NOT NULL, "
    "frontier TEXT)",
    "CREATE TABLE IF NOT EXISTS audit_entries (writer_id TEXT NOT NULL, seq {int} NOT NULL, "
    "recorded_at TEXT NOT NULL, prev_hash TEXT NOT NULL, body_hash TEXT NOT NULL, "
    "entry_hash TEXT NOT NULL, agreements TEXT NOT NULL, body TEXT, "
    "PRIMARY KEY (writer_id, seq))",
    "CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (recorded_at)",
    "CREATE TABLE IF NOT EXISTS audit_index (search_key TEXT NOT NULL, writer_id TEXT NOT NULL, "
    "seq {int} NOT NULL, PRIMARY KEY (search_key, writer_id, seq))",
    "CREATE INDEX IF NOT EXISTS audit_index_entry ON audit_index (writer_id, seq)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (id {serial}, writer_id TEXT NOT NULL, "
    "seq {int} NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, signature TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_checkpoints_writer ON audit_checkpoints (writer_id, seq)",
    "CREATE TABLE IF NOT EXISTS audit_notifications (writer_id TEXT NOT NULL, "
    "seq {int} NOT NULL, recorded_at TEXT NOT NULL, seen_at TEXT, PRIMARY KEY (writer_id, seq))",
    "CREATE INDEX IF NOT EXISTS audit_notifications_time ON audit_notifications (recorded_at)",
)
ROW_COLUMNS = ("writer_id, seq, recorded_at, prev_hash, body_hash, entry_hash, agreements, body")
BATCH = 1000


@dataclass(frozen=True)
class NewEntry:
    """What `AuditLog` hands the store to write, built under the writer's lock."""

    row: EntryRow
    index_keys: tuple[str, ...]
    notify: bool
    checkpoint: SignedCheckpoint | None = None
    frontier: tuple[str, ...] | None = None  # the writer's tree after this entry


@dataclass(frozen=True)
class StoredCheckpoint:
    writer_id: str
    seq: int
    payload: str
    signature: str


@dataclass(frozen=True)
class PurgeResult:
    writer_id: str
    purged: int  # bodies removed
    deleted: int  # rows removed from the start of the chain
    base_seq: int
    checkpoint: SignedCheckpoint | None


@dataclass(frozen=True)
class Notification:
    row: EntryRow
    seen_at: str | None


@dataclass(frozen=True)
class Filter:
    """Which entries to read: any of `keys` (search keys, see AuditEntry.index_keys), in a
    time range [since, until), of one writer; empty fields do not filter."""

    keys: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    writer_id: str = ""


Prepare = Callable[[Head], NewEntry]
Seal = Callable[[Head, int, str, int, "tuple[str, ...] | None"], SignedCheckpoint]
# head, base seq, base hash, purged, the tree frontier at the base
Due = Callable[[str, tuple[str, ...]], bool]  # recorded_at, agreements -> purge the body?


class AuditStore(ABC):
    """The storage interface `AuditLog`, verification, search and retention rely on."""

    description: str  # where the store is, without secrets

    @abstractmethod
    def append(self, writer_id: str, prepare: Prepare) -> NewEntry: ...

    def append_many(self, writer_id: str, prepares: list[Prepare]) -> list[NewEntry]:
        """Several entries at once; SQL stores commit them in one transaction."""
        return [self.append(writer_id, p) for p in prepares]

    @abstractmethod
    def add_checkpoint(self, writer_id: str,
                       prepare: Callable[[Head], SignedCheckpoint]) -> SignedCheckpoint: ...

    @abstractmethod
    def purge(self, writer_id: str, latest_cutoff: str, due: Due, seal: Seal) -> PurgeResult: ...

    @abstractmethod
    def writers(self) -> list[str]: ...

    @abstractmethod
    def head(self, writer_id: str) -> Head | None: ...

    @abstractmethod
    def entries(self, writer_id: str, after_seq: int = 0, limit: int = BATCH) -> list[EntryRow]:
        ...

    def iter_entries(self, writer_id: str, after_seq: int = 0) -> Iterator[EntryRow]:
        """Every entry after `after_seq`, in batches (no transaction held between them)."""
        while True:
            batch = self.entries(writer_id, after_seq)
            yield from batch
            if len(batch) < BATCH:
                return
            after_seq = batch[-1].seq

    @abstractmethod
    def seq_of_hash(self, writer_id: str, entry_hash: str) -> int | None: ...

    @abstractmethod
    def entry_hashes(self, writer_id: str, after_seq: int, upto_seq: int) -> list[str]:
        """The entry hashes (Merkle leaves) of seq after_seq + 1 .. upto_seq, in order."""

    @abstractmethod
    def checkpoints(self, writer_id: str) -> list[StoredCheckpoint]: ...

    @abstractmethod
    def index_keys(self, writer_id: str, first: int, last: int) -> dict[int, set[str]]: ...

    @abstractmethod
    def notified(self, writer_id: str, first: int, last: int) -> set[int]: ...

    @abstractmethod
    def find(self, where: Filter, limit: int | None = None) -> list[EntryRow]: ...

    @abstractmethod
    def notifications(self, where: Filter, unseen_only: bool = False) -> list[Notification]: ...

    @abstractmethod
    def mark_seen(self, items: list[tuple[str, int]], at: str) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row(values: tuple[Any, ...]) -> EntryRow:
    w, seq, at, prev, bh, eh, agreements, body = values
    return EntryRow(w, int(seq), at, prev, bh, eh, tuple(json.loads(agreements)), body)


class SqlStore(AuditStore):
    """The SQL both backends share; subclasses supply the connection, transactions and lock."""

    placeholder = "?"
    int_type = "INTEGER"
    serial_type = "INTEGER PRIMARY KEY AUTOINCREMENT"

    @abstractmethod
    def _tx(self, write: bool) -> AbstractContextManager[Any]:
        """A transaction yielding a cursor; commits on exit, raises AuditError on failure."""

    @abstractmethod
    def _lock_head(self, cur: Any, writer_id: str) -> Head:
        """The writer's head, created if missing, locked until the transaction ends."""

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _ex(self, cur: Any, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        cur.execute(self._q(sql), params)
        return cur

    def _schema(self) -> list[str]:
        return [s.format(int=self.int_type, serial=self.serial_type) for s in SCHEMA]

    def _create_schema(self, cur: Any) -> None:
        for statement in self._schema():
            cur.execute(statement)
        self._ex(cur, "INSERT INTO audit_meta (name, value) VALUES (?, ?) "
                      "ON CONFLICT (name) DO NOTHING", ("schema_version", SCHEMA_VERSION))
        version = self._ex(cur, "SELECT value FROM audit_meta WHERE name = ?",
                           ("schema_version",)).fetchone()[0]
        if version == "1":
            self._migrate_1_to_2(cur)
            version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise AuditError(f"{self.description}: audit schema version {version} is not "
                             f"supported (this version reads {SCHEMA_VERSION})")

    def _migrate_1_to_2(self, cur: Any) -> None:
        """Version 2 adds each writer's Merkle frontier, computed from its entries. A chain
        whose first rows were purged under version 1 cannot be rebuilt: its frontier stays
        unknown (NULL) and its checkpoints carry no root."""
        cur.execute("ALTER TABLE audit_heads ADD COLUMN frontier TEXT")
        heads = self._ex(cur, "SELECT writer_id, seq, base_seq FROM audit_heads").fetchall()
        for writer_id, seq, base_seq in heads:
            if int(base_seq) != 0:
                continue
            hashes = [r[0] for r in self._ex(
                cur, "SELECT entry_hash FROM audit_entries WHERE writer_id = ? AND seq <= ? "
                     "ORDER BY seq", (writer_id, int(seq))).fetchall()]
            if len(hashes) != int(seq):
                continue  # rows missing: tampered, or purged; verify will say which
            nodes = merkle.frontier_of(merkle.leaf_hash(h) for h in hashes)
            self._ex(cur, "UPDATE audit_heads SET frontier = ? WHERE writer_id = ?",
                     (json.dumps([n.hex() for n in nodes]), writer_id))
        self._ex(cur, "UPDATE audit_meta SET value = ? WHERE name = ?",
                 (SCHEMA_VERSION, "schema_version"))

    def _select_head(self, cur: Any, writer_id: str, lock: str = "") -> Head | None:
        found = self._ex(cur, "SELECT seq, entry_hash, base_seq, base_hash, frontier FROM "
                              f"audit_heads WHERE writer_id = ?{lock}", (writer_id,)).fetchone()
        if found is None:
            return None
        frontier = None if found[4] is None else tuple(json.loads(found[4]))
        return Head(writer_id, int(found[0]), found[1], int(found[2]), found[3], frontier)

    def _insert_head(self, cur: Any, writer_id: str) -> None:
        head = Head(writer_id)
        self._ex(cur, "INSERT INTO audit_heads (writer_id, seq, entry_hash, base_seq, base_hash, "
                      "frontier) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (writer_id) DO NOTHING",
                 (writer_id, head.seq, head.entry_hash, head.base_seq, head.base_hash, "[]"))

    def _insert_checkpoint(self, cur: Any, signed: SignedCheckpoint) -> None:
        cp = signed.checkpoint
        self._ex(cur, "INSERT INTO audit_checkpoints (writer_id, seq, kind, payload, signature) "
                      "VALUES (?, ?, ?, ?, ?)",
                 (cp.writer_id, cp.seq, cp.kind, signed.payload, signed.signature))

    # writing

    def append(self, writer_id: str, prepare: Prepare) -> NewEntry:
        return self.append_many(writer_id, [prepare])[0]

    def append_many(self, writer_id: str, prepares: list[Prepare]) -> list[NewEntry]:
        """Append several entries in one transaction (group commit): all or none."""
        out = []
        with self._tx(write=True) as cur:
            head = self._lock_head(cur, writer_id)
            for prepare in prepares:
                new = prepare(head)
                self._insert(cur, writer_id, head, new)
                out.append(new)
                head = replace(head, seq=new.row.seq, entry_hash=new.row.entry_hash,
                               frontier=new.frontier)
            frontier = None if head.frontier is None else json.dumps(list(head.frontier))
            self._ex(cur, "UPDATE audit_heads SET seq = ?, entry_hash = ?, frontier = ? "
                          "WHERE writer_id = ?", (head.seq, head.entry_hash, frontier, writer_id))
        return out

    def _insert(self, cur: Any, writer_id: str, head: Head, new: NewEntry) -> None:
        row = new.row
        if (row.writer_id, row.seq, row.prev_hash) != (writer_id, head.seq + 1,
                                                       head.entry_hash):
            raise AuditError("audit entry does not continue its writer's chain")
        self._ex(cur, f"INSERT INTO audit_entries ({ROW_COLUMNS}) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (writer_id, row.seq, row.recorded_at, row.prev_hash, row.body_hash,
                  row.entry_hash, row.agreements_json(), row.body))
        if new.index_keys:
            cur.executemany(self._q("INSERT INTO audit_index (search_key, writer_id, seq) "
                                    "VALUES (?, ?, ?)"),
                            [(k, writer_id, row.seq) for k in new.index_keys])
        if new.notify:
            self._ex(cur, "INSERT INTO audit_notifications (writer_id, seq, recorded_at) "
                          "VALUES (?, ?, ?)", (writer_id, row.seq, row.recorded_at))
        if new.checkpoint is not None:
            self._insert_checkpoint(cur, new.checkpoint)

    def add_checkpoint(self, writer_id: str,
                       prepare: Callable[[Head], SignedCheckpoint]) -> SignedCheckpoint:
        with self._tx(write=True) as cur:
            signed = prepare(self._lock_head(cur, writer_id))
            self._insert_checkpoint(cur, signed)
        return signed

    def purge(self, writer_id: str, latest_cutoff: str, due: Due, seal: Seal) -> PurgeResult:
        with self._tx(write=True) as cur:
            head = self._lock_head(cur, writer_id)
            candidates = self._ex(
                cur, "SELECT seq, recorded_at, agreements FROM audit_entries WHERE "
                     "writer_id = ? AND body IS NOT NULL AND recorded_at < ? ORDER BY seq",
                (writer_id, latest_cutoff)).fetchall()
            expired = [int(seq) for seq, at, agreements in candidates
                       if due(at, tuple(json.loads(agreements)))]
            if not expired:
                return PurgeResult(writer_id, 0, 0, head.base_seq, None)
            pairs = [(writer_id, seq) for seq in expired]
            cur.executemany(self._q("UPDATE audit_entries SET body = NULL "
                                    "WHERE writer_id = ? AND seq = ?"), pairs)
            for table in ("audit_index", "audit_notifications"):
                cur.executemany(self._q(f"DELETE FROM {table} WHERE writer_id = ? AND seq = ?"),
                                pairs)
            first_live = self._ex(cur, "SELECT min(seq) FROM audit_entries WHERE writer_id = ? "
                                       "AND body IS NOT NULL", (writer_id,)).fetchone()[0]
            base_seq, base_hash = head.base_seq, head.base_hash
            if first_live is None:
                base_seq, base_hash = head.seq, head.entry_hash
            elif int(first_live) - 1 > head.base_seq:
                found = self._ex(cur, "SELECT entry_hash FROM audit_entries WHERE writer_id = ? "
                                      "AND seq = ?", (writer_id, int(first_live) - 1)).fetchone()
                if found is not None:  # a gap (tampering) keeps the old base: evidence stays
                    base_seq, base_hash = int(first_live) - 1, found[0]
            base_frontier = self._frontier_at(cur, writer_id, head, base_seq)
            deleted = 0
            if base_seq > head.base_seq:
                deleted = self._ex(cur, "DELETE FROM audit_entries WHERE writer_id = ? "
                                        "AND seq <= ?", (writer_id, base_seq)).rowcount
                self._ex(cur, "UPDATE audit_heads SET base_seq = ?, base_hash = ? "
                              "WHERE writer_id = ?", (base_seq, base_hash, writer_id))
            signed = seal(head, base_seq, base_hash, len(expired), base_frontier)
            self._insert_checkpoint(cur, signed)
        return PurgeResult(writer_id, len(expired), deleted, base_seq, signed)

    def _frontier_at(self, cur: Any, writer_id: str, head: Head,
                     size: int) -> tuple[str, ...] | None:
        """The writer's tree frontier at `size`, from the rows still there (and the last
        purge's frontier for those before its base); None when it cannot be known."""
        if size == head.seq:
            return head.frontier
        known: dict[tuple[int, int], bytes] = {}
        if head.base_seq:
            if (prior := self._base_frontier(cur, writer_id, head.base_seq)) is None:
                return None
            known = merkle.frontier_nodes(prior, head.base_seq)
        hashes = [r[0] for r in self._ex(
            cur, "SELECT entry_hash FROM audit_entries WHERE writer_id = ? AND seq > ? AND "
                 "seq <= ? ORDER BY seq", (writer_id, head.base_seq, size)).fetchall()]
        if len(hashes) != size - head.base_seq:
            return None
        tree = merkle.Tree.of_entries(hashes, head.base_seq, known)
        try:
            nodes = frontier_nodes_of(tree, size)
        except AuditError:
            return None
        return tuple(n.hex() for n in nodes)

    def _base_frontier(self, cur: Any, writer_id: str, base_seq: int) -> tuple[str, ...] | None:
        rows = self._ex(cur, "SELECT payload FROM audit_checkpoints WHERE writer_id = ? AND "
                             "kind = ? ORDER BY id DESC", (writer_id, "purge")).fetchall()
        for (payload,) in rows:
            data = json.loads(payload)
            if data.get("base_seq") == base_seq and data.get("base_frontier") is not None:
                return tuple(data["base_frontier"])
        return None

    def mark_seen(self, items: list[tuple[str, int]], at: str) -> int:
        with self._tx(write=True) as cur:
            cur.executemany(self._q("UPDATE audit_notifications SET seen_at = ? "
                                    "WHERE writer_id = ? AND seq = ? AND seen_at IS NULL"),
                            [(at, w, s) for w, s in items])
            updated: int = cur.rowcount
            return max(updated, 0)

    # reading

    def writers(self) -> list[str]:
        with self._tx(write=False) as cur:
            rows = self._ex(cur, "SELECT writer_id FROM audit_heads UNION "
                                 "SELECT writer_id FROM audit_entries UNION "
                                 "SELECT writer_id FROM audit_checkpoints").fetchall()
        return sorted(r[0] for r in rows)

    def head(self, writer_id: str) -> Head | None:
        with self._tx(write=False) as cur:
            return self._select_head(cur, writer_id)

    def entries(self, writer_id: str, after_seq: int = 0, limit: int = BATCH) -> list[EntryRow]:
        with self._tx(write=False) as cur:
            rows = self._ex(cur, f"SELECT {ROW_COLUMNS} FROM audit_entries WHERE writer_id = ? "
                                 "AND seq > ? ORDER BY seq LIMIT ?",
                            (writer_id, after_seq, limit)).fetchall()
        return [_row(r) for r in rows]

    def entry_hashes(self, writer_id: str, after_seq: int, upto_seq: int) -> list[str]:
        with self._tx(write=False) as cur:
            rows = self._ex(cur, "SELECT entry_hash FROM audit_entries WHERE writer_id = ? "
                                 "AND seq > ? AND seq <= ? ORDER BY seq",
                            (writer_id, after_seq, upto_seq)).fetchall()
        return [r[0] for r in rows]

    def seq_of_hash(self, writer_id: str, entry_hash: str) -> int | None:
        with self._tx(write=False) as cur:
            found = self._ex(cur, "SELECT seq FROM audit_entries WHERE writer_id = ? AND "
                                  "entry_hash = ? ORDER BY seq LIMIT 1",
                             (writer_id, entry_hash)).fetchone()
        return None if found is None else int(found[0])

    def checkpoints(self, writer_id: str) -> list[StoredCheckpoint]:
        with self._tx(write=False) as cur:
            rows = self._ex(cur, "SELECT writer_id, seq, payload, signature FROM "
                                 "audit_checkpoints WHERE writer_id = ? ORDER BY seq, id",
                            (writer_id,)).fetchall()
        return [StoredCheckpoint(w, int(s), p, sig) for w, s, p, sig in rows]

    def index_keys(self, writer_id: str, first: int, last: int) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        with self._tx(write=False) as cur:
            rows = self._ex(cur, "SELECT seq, search_key FROM audit_index WHERE writer_id = ? "
                                 "AND seq BETWEEN ? AND ?", (writer_id, first, last)).fetchall()
        for seq, key in rows:
            out.setdefault(int(seq), set()).add(key)
        return out

    def notified(self, writer_id: str, first: int, last: int) -> set[int]:
        with self._tx(write=False) as cur:
            rows = self._ex(cur, "SELECT seq FROM audit_notifications WHERE writer_id = ? "
                                 "AND seq BETWEEN ? AND ?", (writer_id, first, last)).fetchall()
        return {int(r[0]) for r in rows}

    def _where(self, where: Filter, alias: str) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if where.keys:
            marks = ", ".join("?" for _ in where.keys)
            clauses.append(f"EXISTS (SELECT 1 FROM audit_index i WHERE i.search_key IN ({marks}) "
                           f"AND i.writer_id = {alias}.writer_id AND i.seq = {alias}.seq)")
            params.extend(where.keys)
        if where.since:
            clauses.append(f"{alias}.recorded_at >= ?")
            params.append(where.since)
        if where.until:
            clauses.append(f"{alias}.recorded_at < ?")
            params.append(where.until)
        if where.writer_id:
            clauses.append(f"{alias}.writer_id = ?")
            params.append(where.writer_id)
        return " AND ".join(clauses), params

    def find(self, where: Filter, limit: int | None = None) -> list[EntryRow]:
        sql, params = self._where(where, "e")
        columns = ", ".join(f"e.{c.strip()}" for c in ROW_COLUMNS.split(","))
        query = (f"SELECT {columns} FROM audit_entries e WHERE {sql} "
                 "ORDER BY e.recorded_at, e.writer_id, e.seq")
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._tx(write=False) as cur:
            rows = self._ex(cur, query, params).fetchall()
        return [_row(r) for r in rows]

    def notifications(self, where: Filter, unseen_only: bool = False) -> list[Notification]:
        sql, params = self._where(where, "e")
        columns = ", ".join(f"e.{c.strip()}" for c in ROW_COLUMNS.split(","))
        if unseen_only:
            sql += " AND n.seen_at IS NULL"
        query = (f"SELECT {columns}, n.seen_at FROM audit_notifications n JOIN audit_entries e "
                 f"ON e.writer_id = n.writer_id AND e.seq = n.seq WHERE {sql} "
                 "ORDER BY e.recorded_at, e.writer_id, e.seq")
        with self._tx(write=False) as cur:
            rows = self._ex(cur, query, params).fetchall()
        return [Notification(_row(r[:-1]), r[-1]) for r in rows]


def frontier_nodes_of(tree: merkle.Tree, size: int) -> list[bytes]:
    """The frontier of the first `size` leaves of `tree`: its complete subtrees."""
    nodes, start = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            nodes.append(tree.hash(start, start + (1 << bit)))
            start += 1 << bit
    return nodes


def open_store(url: str, base_dir: Path | None = None,
               write_timeout: float = 30.0) -> AuditStore:
    """The store a URL names (see the module docstring). A write waits at most
    `write_timeout` seconds for another writer's lock before failing (closed)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from mash.audit.sqlite_store import SqliteStore, sqlite_path

        return SqliteStore(sqlite_path(url, base_dir), busy_timeout=write_timeout)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from mash.audit.postgres_store import PostgresStore

        return PostgresStore(url, write_timeout=write_timeout)
    raise AuditError(f"audit store {scheme!r} is not supported: use sqlite:///path.db or "
                     "postgresql://user@host/db")
