"""Sealing a message to one recipient's X25519 key (HPKE-style base mode).

An ephemeral X25519 key agrees a secret with the recipient's static key; HKDF-SHA256 derives
an AES-256-GCM key and nonce from it, bound to both public keys and a context label; the
associated data (request hash, agency, purpose of the box) is authenticated too, so a box
cannot be moved to another request, agency or role without failing to open.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SUITE = b"mash-seal-v1 X25519 HKDF-SHA256 AES-256-GCM"


class SealError(Exception):
    """A box could not be opened: wrong key, altered, or moved to another context."""


def raw_public(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_and_nonce(shared: bytes, enc: bytes, recipient: bytes, label: bytes) -> tuple[bytes,
                                                                                      bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=SUITE,
               info=b"\x00".join((label, enc, recipient))).derive(shared)
    return okm[:32], okm[32:]


@dataclass(frozen=True)
class Box:
    key_id: str  # which of the recipient's keys it is sealed to
    encapsulated_key: bytes  # the ephemeral public key
    ciphertext: bytes


def seal(recipient: x25519.X25519PublicKey, key_id: str, plaintext: bytes, aad: bytes,
         label: bytes) -> Box:
    ephemeral = x25519.X25519PrivateKey.generate()
    enc, recipient_raw = raw_public(ephemeral.public_key()), raw_public(recipient)
    key, nonce = _key_and_nonce(ephemeral.exchange(recipient), enc, recipient_raw, label)
    return Box(key_id, enc, AESGCM(key).encrypt(nonce, plaintext, aad))


def open_box(private: x25519.X25519PrivateKey, box: Box, aad: bytes, label: bytes) -> bytes:
    try:
        enc = x25519.X25519PublicKey.from_public_bytes(box.encapsulated_key)
        shared = private.exchange(enc)
    except ValueError:
        raise SealError("the sealed box carries no valid ephemeral key") from None
    key, nonce = _key_and_nonce(shared, box.encapsulated_key, raw_public(private.public_key()),
                                label)
    try:
        return AESGCM(key).decrypt(nonce, box.ciphertext, aad)
    except InvalidTag:
        raise SealError("the sealed box does not open: altered, or meant for another "
                        "request, agency or key") from None


PAD_BLOCK = 4096


def pad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    """Length-prefix `data` and fill it to a multiple of `block`, so that a box's size says
    little about what it holds (a KNOWN answer and a NOT_KNOWN one look alike)."""
    framed = len(data).to_bytes(4, "big") + data
    return framed + bytes(-len(framed) % block)


def unpad(data: bytes) -> bytes:
    size = int.from_bytes(data[:4], "big")
    if len(data) < 4 or size > len(data) - 4:
        raise SealError("the sealed box's padding is malformed")
    return data[4:4 + size]
