"""Inclusion proofs: show an inspector one audit entry, and that it is in the signed log,
without handing over any other entry.

`prove` takes a signed checkpoint of the writer at or after the entry (its Merkle root over
the chain's first `seq` entries) and the RFC 6962 audit path from the entry's leaf to that
root. The proof file carries the entry as stored (header and body), the path, and the signed
checkpoint; `check` recomputes the entry's hash from the header and body, the root from the
path, and verifies the checkpoint's signature with the writer's public key. Anyone holding the
public key can check it offline; nothing else of the trail is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mash.audit import merkle
from mash.audit.chain import body_hash, entry_hash
from mash.audit.checkpoint import Checkpoint, Verifier, parse_payload
from mash.audit.errors import AuditError
from mash.audit.store import AuditStore

FORMAT = "mash-inclusion-proof/1"


def writer_tree(store: AuditStore, writer_id: str, size: int) -> merkle.Tree:
    """The writer's tree of its first `size` entries, from the store (a purge's frontier
    stands in for the rows it removed)."""
    head = store.head(writer_id)
    offset = head.base_seq if head is not None else 0
    known: dict[tuple[int, int], bytes] = {}
    if offset:
        frontier = next((cp.base_frontier for cp in (parse_payload(c.payload) for c in
                                                     store.checkpoints(writer_id))
                         if cp.kind == "purge" and cp.base_seq == offset
                         and cp.base_frontier is not None), None)
        if frontier is None:
            raise AuditError("the chain was purged before its tree existed")
        known = merkle.frontier_nodes(frontier, offset)
    hashes = store.entry_hashes(writer_id, offset, size)
    if len(hashes) != size - offset:
        raise AuditError(f"entries {offset + 1}..{size} of {writer_id} are not all in the store")
    return merkle.Tree.of_entries(hashes, offset, known)


def prove(store: AuditStore, verifier: Verifier, writer_id: str, seq: int) -> dict[str, Any]:
    """An inclusion proof of entry `seq`, against the newest trusted checkpoint covering it."""
    row = next(iter(store.entries(writer_id, seq - 1, 1)), None)
    if row is None or row.seq != seq:
        raise AuditError(f"{writer_id} has no entry at seq {seq}")
    best: tuple[Checkpoint, str, str] | None = None
    for stored in store.checkpoints(writer_id):
        try:
            cp = verifier.check(stored.payload, stored.signature)
        except AuditError:
            continue
        if cp.writer_id == writer_id and cp.seq >= seq and cp.root and (
                best is None or cp.seq > best[0].seq):
            best = (cp, stored.payload, stored.signature)
    if best is None:
        raise AuditError(f"no signed checkpoint with a Merkle root covers seq {seq} yet: "
                         "sign one with `mash audit checkpoint`")
    cp, payload, signature = best
    tree = writer_tree(store, writer_id, cp.seq)
    if tree.root(cp.seq) != cp.root:
        raise AuditError(f"the store's entries no longer give the root signed at seq {cp.seq}: "
                         "run mash audit verify")
    path = tree.inclusion(seq - 1, cp.seq)
    return {"format": FORMAT, "writer_id": writer_id, "seq": seq,
            "entry": {"recorded_at": row.recorded_at, "prev_hash": row.prev_hash,
                      "agreements": list(row.agreements), "body_hash": row.body_hash,
                      "body": row.body},
            "entry_hash": row.entry_hash, "tree_size": cp.seq, "root": cp.root,
            "path": [h.hex() for h in path],
            "checkpoint": {"payload": payload, "signature": signature}}


@dataclass(frozen=True)
class Checked:
    writer_id: str
    seq: int
    recorded_at: str
    event: str
    checkpoint: Checkpoint


def check(proof: dict[str, Any], verifier: Verifier) -> Checked:
    """Verify a proof file's content; AuditError says what does not hold."""
    try:
        if proof.get("format") != FORMAT:
            raise AuditError(f"not a {FORMAT} file")
        writer, seq = str(proof["writer_id"]), int(proof["seq"])
        e = proof["entry"]
        agreements = tuple(str(a) for a in e["agreements"])
        body = e["body"]
        digest = str(e["body_hash"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        cp_doc = proof["checkpoint"]
        payload, signature = str(cp_doc["payload"]), str(cp_doc["signature"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AuditError("the proof file is missing parts or malformed") from None
    if body is not None and body_hash(str(body).encode()) != digest:
        raise AuditError("the entry's content does not match its hash: it was changed")
    computed = entry_hash(writer, seq, str(e["prev_hash"]), str(e["recorded_at"]), agreements,
                          digest)
    cp = verifier.check(payload, signature)
    if cp.writer_id != writer or not cp.root or cp.seq < seq:
        raise AuditError("the checkpoint is not one of this writer's covering the entry")
    if not merkle.verify_inclusion(computed, seq - 1, cp.seq, path, cp.root):
        raise AuditError(f"the entry is not in {writer}'s log as signed at seq {cp.seq}: the "
                         "entry or its proof was altered")
    event = ""
    if body is not None:
        try:
            event = str(json.loads(body).get("event", ""))
        except (ValueError, AttributeError):
            event = ""
    return Checked(writer, seq, str(e["recorded_at"]), event, cp)


