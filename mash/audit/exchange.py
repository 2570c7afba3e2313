"""Audit heads over the federation's streams: each party witnesses the others' chains.

On the agent stream (AgentService.Connect) both ends run a `StreamWitnessing`: every
`audit.exchange_seconds`, and when the stream closes, each signs an "exchange" checkpoint of
its chain head (only when the head moved) and sends it as an `AuditHead`, with an RFC 6962
consistency proof from the size the other end last said it holds. The other end checks it
(mash.audit.witness), countersigns it, keeps it in its witness directory, outside its own
audit store, and answers with an `AuditWitness`: accepted (with the countersignature, which
the sender keeps too), conflict (prove from another size: sent again at once) or refused (the
head was older than, or not an extension of, the one held: logged as an error at both ends;
the witness keeps the old head as evidence).

The proofs need the chain's leaves: `HeadExchange` reads the entry hashes once and keeps them
in memory (32 bytes an entry), reading only new ones at each exchange.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mash.audit import merkle
from mash.audit.checkpoint import SignedCheckpoint
from mash.audit.errors import AuditError
from mash.audit.log import AuditLog
from mash.audit.proof import writer_tree
from mash.audit.witness import ACCEPTED, CONFLICT, REFUSED, WitnessFiles, raw_public
from mash.logs import get_logger
from mash.v1 import audit_pb2

log = get_logger(__name__)
STATUS = {ACCEPTED: audit_pb2.WITNESS_STATUS_ACCEPTED, CONFLICT: audit_pb2.WITNESS_STATUS_CONFLICT,
          REFUSED: audit_pb2.WITNESS_STATUS_REFUSED}
MAX_PROOF = 128  # hashes: a consistency proof has at most 2 log2(n)


class HeadExchange:
    """One party's side of the exchange: its own signed heads out, the others' heads in."""

    def __init__(self, audit: AuditLog, witness: WitnessFiles, interval: float) -> None:
        self.audit = audit
        self.witness = witness
        self.interval = interval
        self._lock = threading.Lock()
        self._last: SignedCheckpoint | None = None
        self._tree: merkle.Tree | None = None
        self._public = raw_public(audit.signer.public_key)

    @property
    def writer_id(self) -> str:
        return self.audit.writer_id

    def current_head(self) -> SignedCheckpoint | None:
        """A signed checkpoint of the chain's head now (a new one only if the head moved);
        None while the chain is empty or has no tree."""
        with self._lock:
            head = self.audit.store.head(self.writer_id)
            if head is None or head.seq == 0 or head.frontier is None:
                return None
            if self._last is not None and self._last.checkpoint.seq == head.seq:
                return self._last
            self._last = self.audit.checkpoint(kind="exchange")
            return self._last

    def _leaves(self, size: int) -> merkle.Tree:
        tree = self._tree
        if tree is None:
            tree = self._tree = writer_tree(self.audit.store, self.writer_id, size)
        if tree.size < size:
            hashes = self.audit.store.entry_hashes(self.writer_id, tree.size, size)
            if len(hashes) != size - tree.size:
                raise AuditError(f"entries {tree.size + 1}..{size} are not all in the store")
            assert isinstance(tree.leaves, list)
            tree.leaves.extend(merkle.leaf_hash(h) for h in hashes)
        return tree

    def head_message(self, known_size: int) -> tuple[audit_pb2.AuditHead, SignedCheckpoint] | None:
        """The head to send to a party that holds our head at `known_size` (0: none)."""
        head = self.current_head()
        if head is None:
            return None
        size = head.checkpoint.seq
        message = audit_pb2.AuditHead(payload=head.payload, signature=head.signature,
                                      public_key=self._public)
        if 0 < known_size < size:
            try:
                with self._lock:
                    proof = self._leaves(size).consistency(known_size, size)
                message.proof_from_size = known_size
                message.consistency_proof.extend(proof)
            except AuditError as exc:
                log.warning("audit_proof_unavailable", writer=self.writer_id, size=size,
                            known_size=known_size, error=str(exc))
        return message, head

    def receive_head(self, peer: str, message: audit_pb2.AuditHead) -> audit_pb2.AuditWitness:
        """Witness another party's head (`peer`: who its certificate says it is)."""
        if len(message.consistency_proof) > MAX_PROOF or any(
                len(h) != 32 for h in message.consistency_proof):
            verdict_reason = "the consistency proof is malformed"
            log.warning("audit_head_refused", peer=peer, reason=verdict_reason)
            return audit_pb2.AuditWitness(status=audit_pb2.WITNESS_STATUS_REFUSED,
                                          reason=verdict_reason)
        verdict = self.witness.accept(peer=peer, payload=message.payload,
                                      signature=message.signature,
                                      public_key=message.public_key,
                                      proof_from=message.proof_from_size,
                                      proof=list(message.consistency_proof))
        if verdict.status == REFUSED:
            log.error("audit_head_refused", peer=peer, origin=verdict.origin, size=verdict.size,
                      held=verdict.known_size, reason=verdict.reason)
        elif verdict.status == ACCEPTED:
            log.debug("audit_head_witnessed", peer=peer, origin=verdict.origin,
                      size=verdict.size)
        return audit_pb2.AuditWitness(
            status=STATUS[verdict.status], origin=verdict.origin, size=verdict.size,
            known_size=verdict.known_size, reason=verdict.reason,
            cosignature_payload=verdict.cosignature_payload, cosignature=verdict.cosignature,
            witness_public_key=self._public if verdict.cosignature else b"")

    def receive_witness(self, peer: str, message: audit_pb2.AuditWitness,
                        sent: SignedCheckpoint | None) -> None:
        """Another party's reply to our head: keep its countersignature, or log its refusal."""
        if message.status == audit_pb2.WITNESS_STATUS_REFUSED:
            log.error("audit_head_refused_by_witness", peer=peer, size=message.size,
                      held=message.known_size, reason=message.reason[:300])
        elif message.status == audit_pb2.WITNESS_STATUS_ACCEPTED and sent is not None:
            try:
                self.witness.keep_cosignature(
                    head=sent, cosignature_payload=message.cosignature_payload,
                    cosignature=message.cosignature,
                    witness_public_key=message.witness_public_key)
            except (AuditError, OSError) as exc:
                log.warning("audit_cosignature_rejected", peer=peer, error=str(exc))


@dataclass
class StreamWitnessing:
    """The exchange on one stream, for one end: sends heads, answers the other end's."""

    exchange: HeadExchange
    peer: str  # the other end, as its certificate (or the broker's welcome) names it
    send: Callable[[audit_pb2.AuditHead], None]
    reply: Callable[[audit_pb2.AuditWitness], None]
    known_size: int = 0
    sent: SignedCheckpoint | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    _retried: bool = False

    async def send_head(self, retry: bool = False) -> bool:
        """Send the head now; False when there is none to send (an empty chain)."""
        try:
            out = await asyncio.to_thread(self.exchange.head_message, self.known_size)
        except AuditError as exc:
            log.error("audit_head_not_sent", peer=self.peer, error=str(exc))
            return False
        if out is None:
            return False
        message, self.sent = out
        self._retried = retry
        self.answered.clear()
        self.send(message)
        return True

    async def run(self) -> None:
        """Send the head every `exchange_seconds` until cancelled."""
        while True:
            await self.send_head()
            await asyncio.sleep(self.exchange.interval)

    async def final(self, timeout: float = 2.0) -> None:
        """At shutdown: send the head and wait (a little) for the countersignature."""
        if await self.send_head():
            try:
                await asyncio.wait_for(self.answered.wait(), timeout)
            except TimeoutError:
                log.warning("audit_head_unanswered", peer=self.peer)

    async def on_head(self, message: audit_pb2.AuditHead) -> None:
        self.reply(await asyncio.to_thread(self.exchange.receive_head, self.peer, message))

    async def on_witness(self, message: audit_pb2.AuditWitness) -> None:
        self.known_size = int(message.known_size)
        await asyncio.to_thread(self.exchange.receive_witness, self.peer, message, self.sent)
        if message.status == audit_pb2.WITNESS_STATUS_CONFLICT and not self._retried:
            await self.send_head(retry=True)
            return
        self.answered.set()
