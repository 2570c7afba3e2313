"""The hash chain: how a stored entry is hashed and linked to the one before it.

Each writer (a broker instance, an agent) has its own chain: sequence numbers 1, 2, 3... with no
gaps. A stored row holds a header and a body:

    body_hash  = SHA-256(body)                         body = AuditEntry.canonical()
    entry_hash = SHA-256(canonical JSON of {v, writer, seq, prev, at, agreements, body})

`prev` is the previous entry's `entry_hash` (GENESIS for seq 1, or the base hash a purge left).
Keeping `body_hash` in the header lets retention delete a body (personal data, even hashed)
while the header, and so the chain, stays verifiable. `agreements` stay in the header so the
verifier can tell a legitimate purge from a deleted body.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from mash.audit.checkpoint import GENESIS
from mash.audit.entry import canonical_json

VERSION = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order

__all__ = ["GENESIS", "EntryRow", "Head", "body_hash", "entry_hash", "format_time", "row_fault"]


@dataclass(frozen=True)
class Head:
    """A writer's chain head, and where the chain starts after purges."""

    writer_id: str
    seq: int = 0
    entry_hash: str = GENESIS
    base_seq: int = 0
    base_hash: str = GENESIS
    # The Merkle frontier of the chain's tree at `seq` (mash.audit.merkle); None when unknown
    # (a store purged before the tree existed): its checkpoints then carry no root.
    frontier: tuple[str, ...] | None = ()


@dataclass(frozen=True)
class EntryRow:
    """An entry as stored."""

    writer_id: str
    seq: int
    recorded_at: str
    prev_hash: str
    body_hash: str
    entry_hash: str
    agreements: tuple[str, ...]
    body: str | None  # canonical JSON of the AuditEntry; None once retention purged it

    def agreements_json(self) -> str:
        return json.dumps(list(self.agreements))


def format_time(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime(TIME_FORMAT)


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def entry_hash(writer_id: str, seq: int, prev_hash: str, recorded_at: str,
               agreements: tuple[str, ...], body_digest: str) -> str:
    header = {"v": VERSION, "writer": writer_id, "seq": seq, "prev": prev_hash,
              "at": recorded_at, "agreements": list(agreements), "body": body_digest}
    return hashlib.sha256(canonical_json(header)).hexdigest()


def make_row(writer_id: str, seq: int, prev_hash: str, recorded_at: str,
             agreements: tuple[str, ...], body: bytes) -> EntryRow:
    digest = body_hash(body)
    return EntryRow(writer_id, seq, recorded_at, prev_hash, digest,
                    entry_hash(writer_id, seq, prev_hash, recorded_at, agreements, digest),
                    agreements, body.decode())


def rehash(row: EntryRow, seq: int | None = None) -> str:
    """The hash the row's header should have (at `seq` if given, to test a reordering)."""
    return entry_hash(row.writer_id, row.seq if seq is None else seq, row.prev_hash,
                      row.recorded_at, row.agreements, row.body_hash)


def row_fault(row: EntryRow) -> str | None:
    """Why the row is not what was written, judged on the row alone; None when intact."""
    if row.body is not None and body_hash(row.body.encode()) != row.body_hash:
        return "its content was changed after it was written"
    if rehash(row) != row.entry_hash:
        return "its header (sequence, time, agreements or link) was changed"
    return None
