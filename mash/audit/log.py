"""AuditLog: append accountable entries to one writer's chain, durably, before answering.

    log = AuditKeys.read(cfg).open_log()     # cfg: an AuditConfig
    appended = log.append(entry)             # or: await log.append_async(entry)
    appended = log.append_many(entries)      # several, in one transaction
    ... only now let the answer leave ...

`append` returns only after the entry, its search keys, its owner notification (for agents'
matched queries) and any due checkpoint are committed; it raises `AuditError` otherwise and
the caller must not answer (fail closed). It is thread-safe; several processes or brokers may
append to the same store, even under the same writer id (their appends serialise on the
writer's head). `append_async` hands the entry to the log's own writer thread, which commits
everything handed to it meanwhile in one transaction (one fsync for many concurrent lookups,
and one wake-up of the event loop per commit, not per entry); if the awaiting task is
cancelled, the write still completes (an entry without an answer is the safe direction).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mash.audit import merkle
from mash.audit.chain import Head, format_time, make_row
from mash.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer
from mash.audit.entry import AuditEntry
from mash.audit.errors import AuditError
from mash.audit.store import AuditStore, NewEntry
from mash.futures import settle_from_thread
from mash.logs import get_logger

log = get_logger(__name__)
WRITER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
Clock = Callable[[], dt.datetime]


def check_writer_id(writer_id: str) -> str:
    if not WRITER_ID.match(writer_id):
        raise AuditError(f"writer id {writer_id!r}: use lower-case letters, digits, . _ - "
                         "(e.g. broker-1, police-agent)")
    return writer_id


Prepare = Callable[[Head], NewEntry]


@dataclass
class _Pending:
    """One caller's entries waiting for a group commit (committed together, all or none)."""

    prepares: list[Prepare]
    done: threading.Event = field(default_factory=threading.Event)
    promoted: bool = False  # woken to lead the next commit, not because it is written
    results: list[NewEntry] | None = None
    error: AuditError | None = None

    def outcome(self) -> list[NewEntry]:
        if self.error is not None:
            raise self.error
        assert self.results is not None
        return self.results


@dataclass
class _AsyncAppend:
    """An `append_async` call waiting for the writer thread."""

    prepare: Prepare
    future: asyncio.Future[Appended]


@dataclass(frozen=True)
class Appended:
    """Where an entry landed: quote `seq` and `entry_hash` to prove it later."""

    writer_id: str
    seq: int
    entry_hash: str
    recorded_at: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AuditLog:
    def __init__(self, store: AuditStore, writer_id: str, signer: Signer,
                 checkpoint_every: int = 100, clock: Clock = _now) -> None:
        self.store = store
        self.writer_id = check_writer_id(writer_id)
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self._clock = clock
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._leading = False
        self._inbox: queue.SimpleQueue[_AsyncAppend | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False

    def sign(self, kind: str, writer_id: str, head: Head, **extra: object) -> SignedCheckpoint:
        root = "" if head.frontier is None else merkle.frontier_root(head.frontier)
        checkpoint = Checkpoint(kind=kind, writer_id=writer_id, seq=head.seq,
                                entry_hash=head.entry_hash, signed_at=format_time(self._clock()),
                                key_id=self.signer.key_id, root=root,
                                **extra)  # type: ignore[arg-type]
        return self.signer.sign(checkpoint)

    def append(self, entry: AuditEntry) -> Appended:
        """Write `entry` durably at the end of this writer's chain, or raise AuditError."""
        return self.append_many([entry])[0]

    def append_many(self, entries: list[AuditEntry]) -> list[Appended]:
        """Write `entries` durably, in order and in one transaction: all of them or (raising
        AuditError) none."""
        return self.append_prepared([self.prepare(entry) for entry in entries])

    def prepare(self, entry: AuditEntry) -> Prepare:
        """Check and serialise `entry` now, for `append_prepared` (raises AuditError if it
        cannot be): a caller appending several can tell which one is at fault."""
        try:
            return self._prepare(entry)
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(f"audit entry could not be serialised: {type(exc).__name__}") from exc

    def append_prepared(self, prepares: list[Prepare]) -> list[Appended]:
        """Write prepared entries durably, in order and in one transaction: all of them or
        (raising AuditError) none."""
        return [self._appended(new) for new in self._commit(_Pending(prepares))]

    def _prepare(self, entry: AuditEntry) -> Prepare:
        """Check and serialise the entry now (in the caller); chain it when its turn comes."""
        if not isinstance(entry, AuditEntry):
            raise AuditError("AuditLog.append needs an AuditEntry")
        if self._closed:
            raise AuditError(f"the audit log of {self.writer_id} is closed")
        body = entry.canonical()
        agreements = entry.all_agreements()
        keys = entry.index_keys()
        notify = entry.notifies_owner

        def prepare(head: Head) -> NewEntry:
            seq = head.seq + 1
            row = make_row(self.writer_id, seq, head.entry_hash, format_time(self._clock()),
                           agreements, body)
            frontier = (None if head.frontier is None
                        else merkle.extend(head.frontier, head.seq, row.entry_hash))
            checkpoint = None
            if self.checkpoint_every and seq % self.checkpoint_every == 0:
                checkpoint = self.sign("periodic", self.writer_id,
                                       Head(self.writer_id, seq, row.entry_hash,
                                            frontier=frontier))
            return NewEntry(row, keys, notify, checkpoint, frontier)

        return prepare

    def _commit(self, mine: _Pending) -> list[NewEntry]:
        """Group commit: whoever finds no commit in progress leads, and writes every entry
        waiting at that moment in one transaction; the others wait for it. One durable commit
        (one fsync) then serves many concurrent queries, and each caller still returns only
        once its own entries are committed. A leader hands over to the next waiter, so no
        caller commits more than one batch."""
        with self._queue_lock:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.done.wait()
            if not mine.promoted:
                return mine.outcome()
        with self._queue_lock:
            batch, self._queue = self._queue, []
        try:
            results = self.store.append_many(self.writer_id,
                                             [p for pending in batch for p in pending.prepares])
            for pending in batch:
                pending.results, results = (results[:len(pending.prepares)],
                                            results[len(pending.prepares):])
        except AuditError as exc:
            log.error("audit_write_failed", writer=self.writer_id, error=str(exc))
            for pending in batch:
                pending.error = exc
        except Exception as exc:
            log.error("audit_write_failed", writer=self.writer_id, error=type(exc).__name__)
            failed = AuditError(f"audit write failed: {type(exc).__name__}: {exc}")
            for pending in batch:
                pending.error = failed
        finally:
            with self._queue_lock:
                if self._queue:
                    self._queue[0].promoted = True
                    self._queue[0].done.set()
                else:
                    self._leading = False
            for pending in batch:
                if pending is not mine:
                    pending.done.set()
        return mine.outcome()

    async def append_async(self, entry: AuditEntry) -> Appended:
        """`append` for the event loop: the writer thread commits it (see the module doc)."""
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._hand_over(_AsyncAppend(self._prepare(entry), future))
        return await future

    def _hand_over(self, call: _AsyncAppend) -> None:
        # Under the lock that `close` takes: nothing is handed over after the writer's last
        # call, so no caller can wait for ever.
        with self._writer_lock:
            if self._closed:
                raise AuditError(f"the audit log of {self.writer_id} is closed")
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_queued, daemon=True,
                                                name=f"audit-{self.writer_id}")
                self._writer.start()
            self._inbox.put(call)

    def _write_queued(self) -> None:
        """The writer thread: commit whatever has queued up, together, until closed."""
        while True:
            first = self._inbox.get()
            if first is None:
                return
            calls = [first]
            stop = False
            while True:
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                calls.append(more)
            settle_from_thread([(call.future, outcome) for call, outcome in zip(
                calls, self._outcomes(calls), strict=True)])
            if stop:
                return

    def _outcomes(self, calls: list[_AsyncAppend]) -> list[object]:
        """Commit the calls together: each one's Appended, or the AuditError for them all. The
        writer thread must outlive any failure, or later callers would wait for ever."""
        pending = _Pending([c.prepare for c in calls])
        try:
            written = self._commit(pending)
        except AuditError as exc:
            return [exc] * len(calls)
        except Exception as exc:
            log.error("audit_write_failed", writer=self.writer_id, error=type(exc).__name__)
            return [AuditError(f"audit write failed: {type(exc).__name__}: {exc}")] * len(calls)
        return [self._appended(new) for new in written]

    def _appended(self, new: NewEntry) -> Appended:
        row = new.row
        return Appended(self.writer_id, row.seq, row.entry_hash, row.recorded_at)

    def checkpoint(self, writer_id: str | None = None, kind: str = "manual") -> SignedCheckpoint:
        """Sign a writer's current head now (this log's writer unless another is named)."""
        writer = check_writer_id(writer_id or self.writer_id)
        try:
            return self.store.add_checkpoint(writer, lambda head: self.sign(kind, writer, head))
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(f"checkpoint failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Finish the appends already handed over, then close the store."""
        with self._writer_lock:
            self._closed = True
            writer, self._writer = self._writer, None
        if writer is not None:
            self._inbox.put(None)
            writer.join()
        self.store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
