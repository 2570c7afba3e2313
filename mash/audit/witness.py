"""Witness files: the other parties' signed audit heads, kept outside this party's audit store.

The broker witnesses every agent's head and each agent witnesses the broker's (see
mash.audit.exchange for the stream). A witness accepts a head only if it is signed by the key
it first saw for that writer, comes from the same party, and extends the head it already
holds (the same root at the same size, or an RFC 6962 consistency proof from the held size);
then it countersigns it and replaces its file atomically. A head that is older, forked or
rewritten is refused and the held head stays: it is the evidence that `mash audit verify
--witnesses DIR`, run on the writer's store, holds the store to.

    <witness_dir>/<origin writer id>.json            heads this party witnessed
    <witness_dir>/cosigned/<witness writer id>.json  other parties' countersignatures of ours

A file: {"format": "mash-witness/1", "origin", "peer", "public_key" (base64 raw Ed25519),
"head": {"payload", "signature"}, "witnessed_at", "cosignature": {"payload", "signature"}}.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mash.audit import merkle
from mash.audit.chain import format_time
from mash.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    Signer,
    Verifier,
    key_id,
    parse_payload,
)
from mash.audit.entry import canonical_json
from mash.audit.errors import AuditError
from mash.audit.log import check_writer_id
from mash.files import write_atomic

FORMAT = "mash-witness/1"
COSIGNATURE_FORMAT = "mash-cosignature/1"
ACCEPTED, CONFLICT, REFUSED = "accepted", "conflict", "refused"


def raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_from_raw(data: bytes) -> ed25519.Ed25519PublicKey:
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(data)
    except ValueError:
        raise AuditError("the public key is not a raw 32-byte Ed25519 key") from None


@dataclass(frozen=True)
class Verdict:
    status: str  # accepted | conflict | refused
    origin: str
    size: int
    known_size: int
    reason: str = ""
    cosignature_payload: str = ""
    cosignature: str = ""


@dataclass(frozen=True)
class Held:
    """A head held in a witness file."""

    origin: str
    peer: str
    public_key: bytes
    head: SignedCheckpoint
    witnessed_at: str

    @property
    def checkpoint(self) -> Checkpoint:
        return self.head.checkpoint


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(f"{path}: not a readable witness file ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise AuditError(f"{path}: not a {FORMAT} witness file")
    return doc


def _held(path: Path) -> Held:
    doc = _read(path)
    try:
        head = SignedCheckpoint(parse_payload(doc["head"]["payload"]), doc["head"]["payload"],
                                doc["head"]["signature"])
        return Held(str(doc["origin"]), str(doc["peer"]), base64.b64decode(doc["public_key"]),
                    head, str(doc.get("witnessed_at", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"{path}: a witness file with missing parts ({exc})") from None


def load_heads(directory: Path) -> list[SignedCheckpoint]:
    """Every head a witness directory holds (for `mash audit verify --witnesses`)."""
    if not directory.is_dir():
        raise AuditError(f"{directory}: no such witness directory")
    return [_held(path).head for path in sorted(directory.glob("*.json"))]


class WitnessFiles:
    """This party's witness directory: checks, countersigns and keeps the others' heads."""

    def __init__(self, directory: Path, signer: Signer, witness_id: str) -> None:
        self.directory = directory
        self.signer = signer
        self.witness_id = witness_id
        self._lock = threading.Lock()

    def _path(self, origin: str) -> Path:
        return self.directory / f"{check_writer_id(origin)}.json"

    def held(self, origin: str) -> Held | None:
        path = self._path(origin)
        return _held(path) if path.exists() else None

    def accept(self, *, peer: str, payload: str, signature: str, public_key: bytes,
               proof_from: int, proof: Sequence[bytes]) -> Verdict:
        """Check a head from `peer` (the identity its certificate gave) and keep it if it
        extends the held one. Never raises for a bad head: the verdict says why."""
        try:
            key = public_from_raw(public_key)
            checkpoint = Verifier([key]).check(payload, signature)
            check_writer_id(checkpoint.writer_id)
        except AuditError as exc:
            return Verdict(REFUSED, "", 0, 0, f"the head cannot be trusted: {exc}")
        origin, size = checkpoint.writer_id, checkpoint.seq
        with self._lock:
            try:
                held = self.held(origin)
            except AuditError as exc:
                return Verdict(REFUSED, origin, size, 0, f"the witness file is unreadable: {exc}")
            known = held.checkpoint.seq if held else 0
            reason = self._refusal(held, peer, key, checkpoint)
            if reason:
                return Verdict(REFUSED, origin, size, known, reason)
            if held is not None and size > known:
                if proof_from != known:
                    return Verdict(CONFLICT, origin, size, known,
                                   f"prove consistency from size {known}, the head held")
                if not merkle.verify_consistency(known, held.checkpoint.root, size,
                                                 checkpoint.root, list(proof)):
                    return Verdict(REFUSED, origin, size, known,
                                   f"the head does not extend the one held at size {known}: "
                                   "entries up to it were rewritten or removed")
            cosig_payload, cosig = self._cosign(checkpoint, payload)
            if held is None or size > known:
                self._keep(origin, peer, public_key, payload, signature, cosig_payload, cosig)
            return Verdict(ACCEPTED, origin, size, size, "", cosig_payload, cosig)

    @staticmethod
    def _refusal(held: Held | None, peer: str, key: ed25519.Ed25519PublicKey,
                 checkpoint: Checkpoint) -> str:
        if not checkpoint.root:
            return "the head carries no Merkle root (the writer's chain predates the tree)"
        if held is None:
            return ""
        if held.peer != peer:
            return (f"writer {checkpoint.writer_id} is witnessed as {held.peer}'s, not "
                    f"{peer}'s")
        if held.public_key != raw_public(key):
            return (f"the head is signed by key {checkpoint.key_id}, not by the key "
                    f"{held.checkpoint.key_id} first witnessed for {checkpoint.writer_id} "
                    "(if the key was replaced on purpose, remove the witness file)")
        old = held.checkpoint
        if checkpoint.seq < old.seq:
            return (f"the head is at seq {checkpoint.seq}, behind the head held at seq "
                    f"{old.seq}: the chain was truncated or rolled back")
        if checkpoint.seq == old.seq and (checkpoint.root, checkpoint.entry_hash) != (
                old.root, old.entry_hash):
            return (f"the head at seq {checkpoint.seq} differs from the one held at that size: "
                    "the chain was rewritten")
        return ""

    def _cosign(self, checkpoint: Checkpoint, payload: str) -> tuple[str, str]:
        body = canonical_json({
            "format": COSIGNATURE_FORMAT, "witness": self.witness_id,
            "key_id": self.signer.key_id, "origin": checkpoint.writer_id,
            "size": checkpoint.seq, "root": checkpoint.root,
            "checkpoint_sha256": hashlib.sha256(payload.encode()).hexdigest(),
            "signed_at": format_time(dt.datetime.now(dt.UTC))})
        return body.decode(), self.signer.sign_bytes(body)

    def _keep(self, origin: str, peer: str, public_key: bytes, payload: str, signature: str,
              cosig_payload: str, cosig: str) -> None:
        doc = {"format": FORMAT, "origin": origin, "peer": peer,
               "public_key": base64.b64encode(public_key).decode(),
               "head": {"payload": payload, "signature": signature},
               "witnessed_at": format_time(dt.datetime.now(dt.UTC)),
               "witness": self.witness_id,
               "cosignature": {"payload": cosig_payload, "signature": cosig}}
        write_atomic(self._path(origin), json.dumps(doc, indent=1, sort_keys=True).encode())

    def keep_cosignature(self, *, head: SignedCheckpoint, cosignature_payload: str,
                         cosignature: str, witness_public_key: bytes) -> str:
        """Keep another party's countersignature of our head, once verified; the witness's
        id. Raises AuditError when it does not verify or is not about `head`."""
        try:
            key = public_from_raw(witness_public_key)
            key.verify(base64.b64decode(cosignature, validate=True), cosignature_payload.encode())
            body = json.loads(cosignature_payload)
            witness = check_writer_id(str(body["witness"]))
        except (InvalidSignature, ValueError, KeyError, TypeError, AuditError):
            raise AuditError("the countersignature does not verify") from None
        if (body.get("format") != COSIGNATURE_FORMAT or body.get("key_id") != key_id(key)
                or body.get("checkpoint_sha256") != hashlib.sha256(
                    head.payload.encode()).hexdigest()):
            raise AuditError("the countersignature is not of the head sent")
        doc = {"format": FORMAT, "origin": head.checkpoint.writer_id, "peer": witness,
               "public_key": base64.b64encode(raw_public(self.signer.public_key)).decode(),
               "head": {"payload": head.payload, "signature": head.signature},
               "witnessed_at": body.get("signed_at", ""), "witness": witness,
               "witness_public_key": base64.b64encode(witness_public_key).decode(),
               "cosignature": {"payload": cosignature_payload, "signature": cosignature}}
        write_atomic(self.directory / "cosigned" / f"{witness}.json",
                     json.dumps(doc, indent=1, sort_keys=True).encode())
        return witness
