"""Detached Ed25519 signatures over whole files: policy bundles and the federation's key
directory.

The signature file sits beside the signed file (`bundle.json.sig`). Format `mash-signature/2`:

    {"format": "mash-signature/2", "algorithm": "Ed25519", "key_id": ...,
     "signed": "<canonical JSON: format, signer, key_id, file_sha256, signed_at>",
     "signature": "<base64 Ed25519 over the bytes of 'signed'>"}

Everything shown about a signature (the signer's name and role, the key, the time) is inside
the signed text, and the signed text names the file's SHA-256, so neither the file nor what is
said about who signed it can be changed without the key. The first format
(`mash-signature/1`, which signed the file's bytes but left the signer's name outside the
signature) is refused: re-sign with `mash policy sign`. A file without a signature from a
trusted signer is never loaded.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mash.errors import ConfigError, SignatureError
from mash.files import write_atomic
from mash.keyfiles import read_public_key


def signature_path(bundle_path: Path) -> Path:
    return bundle_path.with_name(bundle_path.name + ".sig")


def write_signed(path: Path, data: bytes, signature: bytes) -> None:
    """Replace a signed file and its signature, each atomically, the signature first: a reader
    polling in between sees the old file fail against the new signature once and keeps its
    last good copy; it never sees a new file without its signature."""
    write_atomic(signature_path(path), signature)
    write_atomic(path, data)


def key_id(public: ed25519.Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key() -> tuple[bytes, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    return (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        key.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def load_private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path}: signing keys are Ed25519 (mash policy keygen)")
    return key


def load_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    return read_public_key(path, accept=(ed25519.Ed25519PublicKey,),
                           wrong_kind="signing keys are Ed25519")


FORMAT = "mash-signature/2"
MAX_SIGNER = 200


def sign(bundle_bytes: bytes, key: ed25519.Ed25519PrivateKey, signer: str,
         now: dt.datetime | None = None) -> bytes:
    """The signature file for `bundle_bytes`, in the mash-signature/2 format."""
    signer = signer.strip()
    if not signer or len(signer) > MAX_SIGNER or any(ord(c) < 32 for c in signer):
        raise ConfigError(f"the signer's name must be 1 to {MAX_SIGNER} printable characters")
    kid = key_id(key.public_key())
    signed = json.dumps({
        "format": FORMAT, "signer": signer, "key_id": kid,
        "file_sha256": hashlib.sha256(bundle_bytes).hexdigest(),
        "signed_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return json.dumps({
        "format": FORMAT, "algorithm": "Ed25519", "key_id": kid, "signed": signed,
        "signature": base64.b64encode(key.sign(signed.encode())).decode(),
    }, indent=1, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Verified:
    signer: str
    key_id: str
    signed_at: str = ""


def verify(bundle_bytes: bytes, signature: bytes | None,
           trusted: list[ed25519.Ed25519PublicKey], what: str = "the policy bundle") -> Verified:
    """Who signed these exact bytes, or SignatureError saying why they are refused."""
    if signature is None:
        raise SignatureError(f"{what} is not signed: refusing it")
    try:
        doc = json.loads(signature)
        if not isinstance(doc, dict):
            raise TypeError
        version = doc.get("format", "mash-signature/1")
    except (ValueError, TypeError):
        raise SignatureError(f"the signature file of {what} is malformed") from None
    if version != FORMAT:
        raise SignatureError(f"the signature file of {what} is in the format {version}, whose "
                             "signer's name is not covered by the signature: refusing it; "
                             "re-sign it with `mash policy sign`")
    try:
        raw = base64.b64decode(doc["signature"], validate=True)
        signed = str(doc["signed"])
        claims = json.loads(signed)
        kid, signer = str(claims["key_id"]), str(claims["signer"])
        digest, signed_at = str(claims["file_sha256"]), str(claims.get("signed_at", ""))
        if claims.get("format") != FORMAT:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise SignatureError(f"the signature file of {what} is malformed") from None
    for public in trusted:
        if key_id(public) != kid:
            continue
        try:
            public.verify(raw, signed.encode())
        except InvalidSignature:
            raise SignatureError(f"the signature file of {what} was altered after signing "
                                 "(the signer's name, key or time, or the signature itself)"
                                 ) from None
        if not hmac.compare_digest(digest, hashlib.sha256(bundle_bytes).hexdigest()):
            raise SignatureError(f"{what} does not match its signature: it was altered "
                                 "after signing")
        return Verified(signer, kid, signed_at)
    raise SignatureError(f"{what} is signed by a key this service does not trust")
