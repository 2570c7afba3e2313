"""Key material for blind lookups.

Per agency: an X25519 key that subjects are sealed to, and an Ed25519 key that signs its
answers. Per federation epoch: a linkage key (32 random bytes) shared by the agents and the
analysts' side, never by the broker, from which match tokens are derived.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from mash.errors import ConfigError
from mash.files import write_atomic

SEALING_KEY = "{agency}-sealing.key"
ANSWER_KEY = "{agency}-answer.key"
LINKAGE_KEY = re.compile(r"^linkage-(\d{1,6})\.key$")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _pem(key: x25519.X25519PrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def raw(key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class AgencyKeyFiles:
    sealing: Path
    answer: Path


def generate_agency_keys(directory: Path, agency: str, force: bool = False) -> AgencyKeyFiles:
    files = AgencyKeyFiles(directory / SEALING_KEY.format(agency=agency),
                           directory / ANSWER_KEY.format(agency=agency))
    for path in (files.sealing, files.answer):
        if path.exists() and not force:
            raise ConfigError(f"{path} already exists: pass --force to replace it (answers "
                              "sealed to the old key can then no longer be opened)")
    write_atomic(files.sealing, _pem(x25519.X25519PrivateKey.generate()), private=True)
    write_atomic(files.answer, _pem(ed25519.Ed25519PrivateKey.generate()), private=True)
    return files


def load_sealing_key(path: Path) -> x25519.X25519PrivateKey:
    key = _load_private(path)
    if not isinstance(key, x25519.X25519PrivateKey):
        raise ConfigError(f"{path}: expected an X25519 private key (mash blind keygen)")
    return key


def load_answer_key(path: Path) -> ed25519.Ed25519PrivateKey:
    key = _load_private(path)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path}: expected an Ed25519 private key (mash blind keygen)")
    return key


def _load_private(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable private key ({exc})") from None


def generate_linkage_key(directory: Path, epoch: int, force: bool = False) -> Path:
    path = directory / f"linkage-{epoch}.key"
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists")
    write_atomic(path, (secrets.token_hex(32) + "\n").encode(), private=True)
    return path


def load_linkage_keys(directory: Path) -> dict[int, bytes]:
    """Every epoch's linkage key found in `directory`."""
    keys: dict[int, bytes] = {}
    if not directory.is_dir():
        raise ConfigError(f"{directory}: linkage key folder not found")
    for path in sorted(directory.iterdir()):
        match = LINKAGE_KEY.match(path.name)
        if not match:
            continue
        try:
            key = bytes.fromhex(path.read_text().strip())
        except ValueError:
            raise ConfigError(f"{path}: a linkage key is 64 hexadecimal characters") from None
        if len(key) != 32:
            raise ConfigError(f"{path}: a linkage key is 32 bytes")
        keys[int(match[1])] = key
    if not keys:
        raise ConfigError(f"{directory}: no linkage-<epoch>.key files")
    return keys


def public_keys(files: AgencyKeyFiles) -> tuple[x25519.X25519PublicKey, ed25519.Ed25519PublicKey]:
    return (load_sealing_key(files.sealing).public_key(),
            load_answer_key(files.answer).public_key())
