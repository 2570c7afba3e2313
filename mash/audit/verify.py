"""Verify every writer's chain in a store, and name where and how it breaks.

Per writer, in sequence order, it checks that each entry is intact (body and header hashes),
follows the one before (sequence without gaps, `prev` = previous hash), that its search keys and
owner notification are all there, that every signed checkpoint matches the entry at its sequence
and that the chain does not end before its head row or its newest checkpoint. Problem kinds:

- edited:     an entry's content or header changed, or history was rewritten under a checkpoint
- missing:    entries deleted from the middle or the start (no signed purge covers them)
- reordered:  an entry sits at another position than the one it was written at
- truncated:  entries deleted from the end (the head or a signed checkpoint goes further)
- checkpoint: a checkpoint with a bad signature, an untrusted key or moved to another writer,
              or one missing at the cadence (`checkpoint_every`: a periodic checkpoint is
              written with every N-th entry, so a longer stretch without one means it was
              deleted)
- index:      search keys or an owner notification removed or added (search would mislead)

Each checkpoint's Merkle root (mash.audit.merkle) must be the root of the entries up to it.
Checkpoints held by other parties (witness files: the heads the broker and agents exchange
and countersign, mash.audit.witness) are checked like the store's own, so a store whose
checkpoints were deleted or re-signed is still held to what another party witnessed: an
edited, truncated or vanished chain shows as edited, truncated or missing.

Limits: entries written after the newest checkpoint another party holds can be rewritten, or
cut off together with the head row and the store's own checkpoints, by someone with write
access and the signing key. Heads are exchanged every `exchange_seconds`, and at shutdown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mash.audit import merkle
from mash.audit.chain import GENESIS, EntryRow, body_hash, rehash, row_fault
from mash.audit.checkpoint import Checkpoint, SignedCheckpoint, Verifier
from mash.audit.entry import AuditEntry
from mash.audit.errors import AuditError
from mash.audit.store import AuditStore

REORDER_WINDOW = 1000  # how far from its position a moved entry is looked for


@dataclass(frozen=True)
class Problem:
    writer_id: str
    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.writer_id} seq {self.seq}: {self.kind}: {self.message}"


@dataclass
class ChainReport:
    writer_id: str
    entries: int = 0
    first_seq: int = 0
    last_seq: int = 0
    base_seq: int = 0
    purged_bodies: int = 0
    checkpoints: int = 0
    last_signed_seq: int = 0
    witnessed_seq: int = 0  # the furthest head another party holds (witness files)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def summary(self) -> str:
        span = f"seq {self.first_seq}..{self.last_seq}" if self.entries else "no entries"
        text = (f"{self.writer_id}: {self.entries} entries ({span}), {self.checkpoints} valid "
                f"checkpoints, signed up to seq {self.last_signed_seq}")
        if self.witnessed_seq:
            text += f", witnessed up to seq {self.witnessed_seq}"
        if self.base_seq:
            text += f", purged up to seq {self.base_seq}"
        if self.purged_bodies:
            text += f", {self.purged_bodies} bodies purged"
        first = self.first_problem
        if first is None:
            return f"OK {text}"
        return f"BROKEN {text}; first break at seq {first.seq}: {first.kind}: {first.message}"


class _Checker:
    def __init__(self, store: AuditStore, writer_id: str, verifier: Verifier,
                 witnesses: Iterable[SignedCheckpoint], checkpoint_every: int | None) -> None:
        self.store = store
        self.writer = writer_id
        self.verifier = verifier
        self.every = checkpoint_every
        self.report = ChainReport(writer_id)
        self.valid: list[Checkpoint] = []
        self.witnessed: set[str] = set()  # payloads held by another party
        self._load_checkpoints(witnesses)
        purges = [c for c in self.valid if c.kind == "purge"]
        anchor = max(purges, key=lambda c: c.base_seq, default=None)
        self.base_seq = anchor.base_seq if anchor else 0
        self.base_hash = anchor.base_hash if anchor else GENESIS
        self.frontier: tuple[str, ...] | None = ()
        if anchor is not None and anchor.base_seq:
            self.frontier = (tuple(anchor.base_frontier)
                             if anchor.base_frontier is not None else None)
        self.report.base_seq = self.base_seq
        self.purges = purges
        self.by_seq: dict[int, list[Checkpoint]] = {}
        for cp in self.valid:
            if cp.seq > self.base_seq:
                self.by_seq.setdefault(cp.seq, []).append(cp)
        self.expected = self.base_seq + 1
        self.prev: str | None = self.base_hash
        self.signed_ok = self.base_seq  # the last sequence a checkpoint confirmed

    def problem(self, seq: int, kind: str, message: str) -> None:
        self.report.problems.append(Problem(self.writer, seq, kind, message))

    def _load_checkpoints(self, witnesses: Iterable[SignedCheckpoint]) -> None:
        stored = [(c.writer_id, c.seq, c.payload, c.signature, False)
                  for c in self.store.checkpoints(self.writer)]
        stored += [(w.checkpoint.writer_id, w.checkpoint.seq, w.payload, w.signature, True)
                   for w in witnesses if w.checkpoint.writer_id == self.writer]
        self.witnessed = {payload for *_, payload, _sig, witnessed in stored if witnessed}
        seen: set[str] = set()
        for writer, seq, payload, signature, _witnessed in stored:
            if payload in seen:
                continue
            seen.add(payload)
            try:
                cp = self.verifier.check(payload, signature)
            except AuditError as exc:
                self.problem(seq, "checkpoint", f"checkpoint at seq {seq}: {exc}")
                continue
            if cp.writer_id != writer or cp.seq != seq:
                self.problem(seq, "checkpoint", f"a checkpoint of {cp.writer_id} seq {cp.seq} "
                                                "was moved here")
                continue
            self.valid.append(cp)
            if payload in self.witnessed:
                self.report.witnessed_seq = max(self.report.witnessed_seq, cp.seq)
        self.report.checkpoints = len(self.valid)
        self.report.last_signed_seq = max((c.seq for c in self.valid), default=0)

    def check_rows(self, rows: list[EntryRow]) -> None:
        if not rows:
            return
        keys = self.store.index_keys(self.writer, rows[0].seq, rows[-1].seq)
        notified = self.store.notified(self.writer, rows[0].seq, rows[-1].seq)
        for row in rows:
            self.check_row(row, keys.get(row.seq, set()), row.seq in notified)

    def check_row(self, row: EntryRow, keys: set[str], notified: bool) -> None:
        report = self.report
        if row.seq < self.expected:
            report.warnings.append(f"entry {row.seq} precedes the purge base "
                                   f"{self.base_seq}: ignored")
            return
        report.entries += 1
        report.first_seq = report.first_seq or row.seq
        report.last_seq = row.seq
        linked = True
        if row.seq > self.expected:
            span = (f"{self.expected}" if row.seq == self.expected + 1
                    else f"{self.expected}..{row.seq - 1}")
            self.problem(self.expected, "missing", f"entries {span} were deleted")
            linked = False
            self.frontier = None  # the tree cannot be rebuilt across the gap
        if self.frontier is not None:
            self.frontier = merkle.extend(self.frontier, row.seq - 1, row.entry_hash)
        fault = row_fault(row)
        if fault is not None:
            self._explain(row, fault)
            self.prev, self.expected = row.entry_hash, row.seq + 1
            return
        if linked and self.prev is not None and row.prev_hash != self.prev:
            elsewhere = self.store.seq_of_hash(self.writer, row.prev_hash)
            if elsewhere is not None:
                self.problem(row.seq, "reordered", f"the entry here follows seq {elsewhere}, "
                                                   f"not seq {row.seq - 1}")
            else:
                self.problem(row.seq - 1, "edited", f"the chain breaks between seq {row.seq - 1} "
                                                    f"and {row.seq}: one of them was rewritten")
        self._check_body(row, keys, notified)
        root = None if self.frontier is None else merkle.frontier_root(self.frontier)
        for cp in self.by_seq.get(row.seq, []):
            if cp.root and root is not None and cp.root != root \
                    and cp.entry_hash == row.entry_hash:
                self.problem(row.seq, "edited", f"the Merkle root of entries up to seq {row.seq} "
                                                f"is not the one the {cp.kind} checkpoint signed "
                                                f"at {cp.signed_at} gives")
            elif cp.entry_hash == row.entry_hash:
                self.signed_ok = row.seq
            else:
                self.problem(row.seq, "edited", f"entries after seq {self.signed_ok} up to seq "
                                                f"{row.seq} were rewritten: they no longer match "
                                                f"the {cp.kind} checkpoint signed at "
                                                f"{cp.signed_at}")
        self.prev = row.entry_hash
        self.expected = row.seq + 1

    def _explain(self, row: EntryRow, fault: str) -> None:
        """An entry whose header hashes at another sequence was moved there: reordered."""
        guesses: list[int] = []
        written_after = self.store.seq_of_hash(self.writer, row.prev_hash)
        if written_after is not None:
            guesses.append(written_after + 1)
        guesses += [row.seq + d * s for d in range(1, REORDER_WINDOW) for s in (1, -1)]
        if row.body is None or body_hash(row.body.encode()) == row.body_hash:
            for seq in guesses:
                if seq > 0 and seq != row.seq and rehash(row, seq) == row.entry_hash:
                    self.problem(row.seq, "reordered", f"the entry here was written as seq {seq}")
                    return
        self.problem(row.seq, "edited", fault)

    def _check_cadence(self, last: int) -> None:
        """A periodic checkpoint is written with every N-th entry: a longer stretch without
        any checkpoint means one was deleted (or the writer ran without checkpoints)."""
        every = self.every
        if not every:
            return
        previous = self.base_seq
        for seq in sorted({c.seq for c in self.valid if self.base_seq < c.seq <= last}):
            if seq - previous > every:
                self.problem(previous + 1, "checkpoint",
                             f"no checkpoint between seq {previous + 1} and {seq - 1}: one is "
                             f"written every {every} entries, so one was deleted")
            previous = seq
        if last - previous >= every:
            self.problem(previous + 1, "checkpoint",
                         f"no checkpoint after seq {previous} up to the chain's end at seq "
                         f"{last}: one is written every {every} entries, so one was deleted")

    def _check_body(self, row: EntryRow, keys: set[str], notified: bool) -> None:
        if row.body is None:
            self.report.purged_bodies += 1
            if not any(cp.seq >= row.seq and (cut := cp.cutoff_for(row.agreements))
                       and row.recorded_at < cut for cp in self.purges):
                self.problem(row.seq, "edited", "its content was removed but no signed purge "
                                                "allowed it")
            if keys or notified:
                self.problem(row.seq, "index", "a purged entry still has search keys")
            return
        try:
            entry = AuditEntry.from_json(row.body)
        except (ValueError, TypeError, AuditError):
            return  # row_fault already names it when the body was changed
        if set(entry.index_keys()) != keys:
            self.problem(row.seq, "index", "its search keys were changed: search would miss or "
                                           "misattribute it")
        if entry.notifies_owner != notified:
            self.problem(row.seq, "index", "its owner notification was removed or forged")

    def finish(self) -> ChainReport:
        report = self.report
        last = self.expected - 1
        head = self.store.head(self.writer)
        extra = self.store.entries(self.writer, last)
        while extra:  # appended while we verified
            self.check_rows(extra)
            last = self.expected - 1
            extra = self.store.entries(self.writer, last)
        if head is None and report.entries:
            self.problem(last, "edited", "the writer's head row was deleted")
        elif head is not None and head.seq > last:
            self.problem(last + 1, "truncated", f"the writer's head is at seq {head.seq} but the "
                                                f"chain ends at seq {last}")
        elif head is not None and head.seq == last and last > self.base_seq \
                and head.entry_hash != self.prev:
            self.problem(last, "edited", "the writer's head does not match its last entry")
        self._check_cadence(last)
        beyond = [cp for cp in self.valid if cp.seq > last]
        if beyond:
            cp = max(beyond, key=lambda c: c.seq)
            held = " held by another party" if cp.seq <= report.witnessed_seq else ""
            self.problem(last + 1, "truncated", f"a {cp.kind} checkpoint signed at "
                                                f"{cp.signed_at}{held} covers seq {cp.seq} but "
                                                f"the chain ends at seq {last}")
        if report.entries and report.last_signed_seq < report.last_seq:
            report.warnings.append(f"entries after seq {max(report.last_signed_seq, 0)} are not "
                                   "yet covered by a signed checkpoint")
        report.problems.sort(key=lambda p: p.seq)
        return report


def verify_writer(store: AuditStore, writer_id: str, verifier: Verifier,
                  witnesses: Iterable[SignedCheckpoint] = (),
                  checkpoint_every: int | None = None) -> ChainReport:
    checker = _Checker(store, writer_id, verifier, list(witnesses), checkpoint_every)
    batch: list[EntryRow] = []
    for row in store.iter_entries(writer_id):
        batch.append(row)
        if len(batch) >= 500:
            checker.check_rows(batch)
            batch = []
    checker.check_rows(batch)
    return checker.finish()


def verify_store(store: AuditStore, verifier: Verifier,
                 witnesses: Iterable[SignedCheckpoint] = (),
                 writers: Iterable[str] | None = None,
                 checkpoint_every: int | None = None) -> list[ChainReport]:
    """One report per writer: every writer in the store, and every writer a witness file holds
    a head of whose key is trusted here (a writer whose rows all vanished is still checked).
    `checkpoint_every`: the cadence the writers checkpoint at (None: not checked)."""
    witnessed = list(witnesses)
    trusted = set(verifier.key_ids)
    names = set(writers) if writers is not None else (
        set(store.writers()) | {w.checkpoint.writer_id for w in witnessed
                                if w.checkpoint.key_id in trusted})
    return [verify_writer(store, w, verifier, witnessed, checkpoint_every)
            for w in sorted(names)]
