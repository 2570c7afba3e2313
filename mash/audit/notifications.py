"""Owner notification: an agency sees who asked about the people it holds records on.

Like CP-IS telling a local authority that a child it flagged was seen elsewhere, every query an
agent answered KNOWN or WITHHELD (it matched the agency's records) is written, in the same
transaction as its audit entry, to `audit_notifications`. `list_notices` reads them back (new
ones first by default with `unseen_only`), `mark_seen` records that the owner has looked.
Matched records are named by keyed hash (`SubjectHasher.record_ref(source, record_id)`): pass
`record_refs` to ask "who asked about this record of ours?".
"""

from __future__ import annotations

from dataclasses import dataclass

from mash.audit.chain import format_time, row_fault
from mash.audit.entry import AuditEntry
from mash.audit.errors import AuditError
from mash.audit.store import AuditStore, Filter


@dataclass(frozen=True)
class Notice:
    writer_id: str
    seq: int
    recorded_at: str
    seen_at: str | None
    intact: bool
    entry: AuditEntry

    @property
    def state(self) -> str:
        return ",".join(sorted({o.state for o in self.entry.outcomes if o.matched}))

    @property
    def record_refs(self) -> tuple[str, ...]:
        return tuple(r for o in self.entry.outcomes for r in o.record_refs)


def list_notices(store: AuditStore, since: str = "", until: str = "", writer_id: str = "",
                 unseen_only: bool = False, record_refs: tuple[str, ...] = ()) -> list[Notice]:
    where = Filter(tuple(f"m:{r}" for r in record_refs), since, until, writer_id)
    out = []
    for item in store.notifications(where, unseen_only=unseen_only):
        row = item.row
        if row.body is None:
            continue
        try:
            entry = AuditEntry.from_json(row.body)
        except (ValueError, TypeError, AuditError):
            continue
        out.append(Notice(row.writer_id, row.seq, row.recorded_at, item.seen_at,
                          row_fault(row) is None, entry))
    return out


def mark_seen(store: AuditStore, notices: list[Notice], at: str | None = None) -> int:
    return store.mark_seen([(n.writer_id, n.seq) for n in notices], at or format_time())
