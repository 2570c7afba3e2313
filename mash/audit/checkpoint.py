"""Ed25519-signed checkpoints: a writer's chain head, sealed at a point in time.

A hash chain shows that entries were not changed *relative to each other*; someone who can
write to the store could still rewrite a whole tail and recompute every hash. A signed
checkpoint over (writer id, sequence, head hash, time) pins the chain: verification fails if the
entry at that sequence no longer has that hash, or if the chain ends before it (truncation).

Kinds: "periodic" (written in the same transaction as every N-th entry), "manual"
(`mash audit checkpoint`, e.g. from cron, printable for an external witness), "exchange" (the
head sent to the other parties over the federation's streams, see mash.audit.exchange) and
"purge" (retention: carries the new base of the chain and the cut-offs it applied, so deleted
entries are accounted for). Each carries the Merkle root of the chain at its sequence. The
signed bytes are the canonical JSON payload; the stored columns are only for lookup,
verification reads the payload.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mash.audit.entry import canonical_json
from mash.audit.errors import AuditError
from mash.errors import ConfigError
from mash.keyfiles import read_public_key

GENESIS = "0" * 64  # the "previous hash" of a chain's first entry
KINDS = ("periodic", "manual", "purge", "exchange")


@dataclass(frozen=True)
class Checkpoint:
    kind: str
    writer_id: str
    seq: int
    entry_hash: str
    signed_at: str
    key_id: str
    # purge checkpoints only: the chain now starts after base_seq (whose hash is base_hash),
    # and bodies older than the cut-offs (agreement id -> time, "*" for the default) were purged.
    base_seq: int = 0
    base_hash: str = GENESIS
    cutoffs: dict[str, str] = field(default_factory=dict)
    purged: int = 0
    # The Merkle root of the chain's first `seq` entries (mash.audit.merkle): with `seq` as the
    # tree size, (writer_id, seq, root) is the checkpoint in the C2SP tlog-checkpoint sense.
    # "" in checkpoints written before the tree existed, or for a chain whose tree is unknown.
    root: str = ""
    # purge checkpoints only: the tree's frontier at base_seq (the purged rows' stand-in).
    base_frontier: list[str] | None = None

    def payload(self) -> bytes:
        data = asdict(self)
        for name, empty in (("root", ""), ("base_frontier", None)):
            if data[name] == empty:  # older checkpoints' payloads stay as they were
                del data[name]
        return canonical_json(data)

    def cutoff_for(self, agreements: Iterable[str]) -> str | None:
        """Entries recorded before this time were due for purge; None: kept for ever."""
        ids = list(agreements) or ["*"]
        cutoffs = [self.cutoffs.get(a, self.cutoffs.get("*")) for a in ids]
        if any(c is None for c in cutoffs):
            return None
        return min(c for c in cutoffs if c is not None)


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    payload: str  # the exact signed text
    signature: str  # base64

    def to_json(self) -> str:
        """One line for an external witness file (`mash audit checkpoint --out`)."""
        return json.dumps({"payload": self.payload, "signature": self.signature},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> SignedCheckpoint:
        data = json.loads(line)
        return cls(parse_payload(data["payload"]), data["payload"], data["signature"])


def parse_payload(text: str) -> Checkpoint:
    data: dict[str, Any] = json.loads(text)
    return Checkpoint(**data)


def key_id(public: ed25519.Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_signing_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


class Signer:
    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read the audit signing key: {exc.strerror}") from None
        except (ValueError, TypeError):
            raise ConfigError(f"{path}: not an unencrypted PEM private key "
                              "(create one with `mash audit keygen`)") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"{path}: the audit signing key must be Ed25519")
        return cls(key)

    def sign_bytes(self, data: bytes) -> str:
        """A base64 Ed25519 signature over `data` (witness countersignatures)."""
        return base64.b64encode(self._key.sign(data)).decode()

    def sign(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        if checkpoint.key_id != self.key_id:
            raise AuditError("checkpoint names another key than the one signing it")
        payload = checkpoint.payload()
        signature = base64.b64encode(self._key.sign(payload)).decode()
        return SignedCheckpoint(checkpoint, payload.decode(), signature)


def load_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    """An audit key (a private key file also gives its public key)."""
    return read_public_key(path, accept=(ed25519.Ed25519PublicKey,),
                           wrong_kind="the audit key must be Ed25519", from_private=True)


class Verifier:
    """The public keys whose checkpoints are trusted."""

    def __init__(self, keys: Iterable[ed25519.Ed25519PublicKey] = ()) -> None:
        self._keys = {key_id(k): k for k in keys}

    def add(self, key: ed25519.Ed25519PublicKey) -> None:
        self._keys[key_id(key)] = key

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def check(self, payload: str, signature: str) -> Checkpoint:
        """The checkpoint, or AuditError saying why it cannot be trusted."""
        try:
            checkpoint = parse_payload(payload)
        except (ValueError, TypeError) as exc:
            raise AuditError(f"unreadable checkpoint payload ({exc})") from None
        key = self._keys.get(checkpoint.key_id)
        if key is None:
            raise AuditError(f"signed by untrusted key {checkpoint.key_id} "
                             "(add it with --public-key)")
        try:
            key.verify(base64.b64decode(signature, validate=True), payload.encode())
        except (InvalidSignature, ValueError):
            raise AuditError("bad signature: the checkpoint was forged or edited") from None
        return checkpoint
