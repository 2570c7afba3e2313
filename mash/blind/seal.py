"""Sealing a message to one recipient's X25519 key.

Two formats, told apart by the box's `version`:

- version 2 (what this build seals): RFC 9180 HPKE in base mode, suite
  DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, from `cryptography`'s
  `hazmat.primitives.hpke`. The single-shot API takes no associated data, so the label and
  the associated data go into HPKE's `info`, length-framed (RFC 9180 section 8.1).
- version 1 (0 on the wire: boxes from builds that had no version field): the earlier
  HPKE-style construction (an ephemeral X25519 agreement, HKDF-SHA256 bound to both public
  keys and the label, AES-256-GCM with the associated data). Still opened, never sealed, so
  that a federation moves over without a flag day: every member first runs a build that opens
  both, and boxes in flight from older senders still open.

Either way the associated data (request hash, agency, purpose of the box) is authenticated,
so a box cannot be moved to another request, agency or role without failing to open.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mash.v1 import blind_pb2

VERSION_LEGACY = 1  # the HPKE-style construction; 0 on the wire means the same
VERSION_HPKE = 2  # RFC 9180 HPKE
VERSIONS = (VERSION_LEGACY, VERSION_HPKE)  # what open_box opens

SUITE = b"mash-seal-v1 X25519 HKDF-SHA256 AES-256-GCM"  # version 1's HKDF salt
HPKE_INFO = b"mash-seal-v2"  # the first part of version 2's HPKE info
_HPKE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_ENC_LENGTH = KEM.X25519.enc_length()


class SealError(Exception):
    """A box could not be opened: wrong key, altered, moved to another context, or sealed in a
    format this build does not know."""


def raw_public(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Box:
    key_id: str  # which of the recipient's keys it is sealed to
    encapsulated_key: bytes  # the sender's one-time X25519 public key (HPKE's enc)
    ciphertext: bytes  # AEAD ciphertext and tag
    version: int = VERSION_HPKE

    def message(self) -> blind_pb2.SealedBox:
        return blind_pb2.SealedBox(key_id=self.key_id, encapsulated_key=self.encapsulated_key,
                                   ciphertext=self.ciphertext, version=self.version)

    @classmethod
    def from_message(cls, sealed: blind_pb2.SealedBox) -> Box:
        """A box as received: version 0 (unset, from a build before versions) is version 1."""
        return cls(sealed.key_id, sealed.encapsulated_key, sealed.ciphertext,
                   sealed.version or VERSION_LEGACY)


def _hpke_info(label: bytes, aad: bytes) -> bytes:
    return b"".join((HPKE_INFO, len(label).to_bytes(4, "big"), label,
                     len(aad).to_bytes(4, "big"), aad))


def seal(recipient: x25519.X25519PublicKey, key_id: str, plaintext: bytes, aad: bytes,
         label: bytes) -> Box:
    """Seal `plaintext` to `recipient` in the current format (version 2, RFC 9180 HPKE)."""
    sealed = _HPKE.encrypt(plaintext, recipient, info=_hpke_info(label, aad))
    return Box(key_id, sealed[:_ENC_LENGTH], sealed[_ENC_LENGTH:], VERSION_HPKE)


def open_box(private: x25519.X25519PrivateKey, box: Box, aad: bytes, label: bytes) -> bytes:
    """The plaintext of a version 1 or version 2 box; SealError for anything else."""
    if box.version == VERSION_HPKE:
        return _open_hpke(private, box, aad, label)
    if box.version == VERSION_LEGACY:
        return _open_legacy(private, box, aad, label)
    raise SealError(f"the sealed box is in format version {box.version}, which this build "
                    f"does not know (it opens versions "
                    f"{', '.join(str(v) for v in VERSIONS)}): upgrade the receiver")


def _not_open() -> SealError:
    return SealError("the sealed box does not open: altered, or meant for another request, "
                     "agency or key")


def _open_hpke(private: x25519.X25519PrivateKey, box: Box, aad: bytes, label: bytes) -> bytes:
    if len(box.encapsulated_key) != _ENC_LENGTH:
        raise SealError("the sealed box carries no valid ephemeral key")
    try:
        return _HPKE.decrypt(box.encapsulated_key + box.ciphertext, private,
                             info=_hpke_info(label, aad))
    except (InvalidTag, ValueError):
        raise _not_open() from None


# -- version 1, opened for the move-over, never sealed by this build ----------------------


def _key_and_nonce(shared: bytes, enc: bytes, recipient: bytes, label: bytes) -> tuple[bytes,
                                                                                      bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=SUITE,
               info=b"\x00".join((label, enc, recipient))).derive(shared)
    return okm[:32], okm[32:]


def seal_legacy(recipient: x25519.X25519PublicKey, key_id: str, plaintext: bytes, aad: bytes,
                label: bytes) -> Box:
    """A version 1 box, as builds before HPKE sealed it: for tests of the move-over only."""
    ephemeral = x25519.X25519PrivateKey.generate()
    enc, recipient_raw = raw_public(ephemeral.public_key()), raw_public(recipient)
    key, nonce = _key_and_nonce(ephemeral.exchange(recipient), enc, recipient_raw, label)
    return Box(key_id, enc, AESGCM(key).encrypt(nonce, plaintext, aad), VERSION_LEGACY)


def _open_legacy(private: x25519.X25519PrivateKey, box: Box, aad: bytes, label: bytes) -> bytes:
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
        raise _not_open() from None


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
