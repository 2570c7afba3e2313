"""Detached Ed25519 signatures over whole files: policy bundles and the federation's key
directory.

The signature file sits beside the signed file (`bundle.json.sig`) and covers its exact bytes.
A file without a signature from a trusted signer is never loaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mash.errors import ConfigError, SignatureError


def signature_path(bundle_path: Path) -> Path:
    return bundle_path.with_name(bundle_path.name + ".sig")


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
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable public key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"{path}: signing keys are Ed25519")
    return key


def sign(bundle_bytes: bytes, key: ed25519.Ed25519PrivateKey, signer: str) -> bytes:
    return json.dumps({
        "algorithm": "Ed25519",
        "signer": signer,
        "key_id": key_id(key.public_key()),
        "bundle_sha256": hashlib.sha256(bundle_bytes).hexdigest(),
        "signature": base64.b64encode(key.sign(bundle_bytes)).decode(),
    }, indent=1).encode()


@dataclass(frozen=True)
class Verified:
    signer: str
    key_id: str


def verify(bundle_bytes: bytes, signature: bytes | None,
           trusted: list[ed25519.Ed25519PublicKey], what: str = "the policy bundle") -> Verified:
    """Who signed these exact bytes, or SignatureError saying why they are refused."""
    if signature is None:
        raise SignatureError(f"{what} is not signed: refusing it")
    try:
        doc = json.loads(signature)
        raw = base64.b64decode(doc["signature"], validate=True)
        kid, signer = str(doc["key_id"]), str(doc.get("signer", ""))
    except (ValueError, KeyError, TypeError):
        raise SignatureError(f"the signature file of {what} is malformed") from None
    for public in trusted:
        if key_id(public) != kid:
            continue
        try:
            public.verify(raw, bundle_bytes)
        except InvalidSignature:
            raise SignatureError(f"{what} does not match its signature: it was altered "
                                 "after signing") from None
        return Verified(signer, kid)
    raise SignatureError(f"{what} is signed by a key this service does not trust")
