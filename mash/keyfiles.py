"""Trusted public keys read from PEM files: one home for the reading, the errors and the
check of the key's kind (token issuers, audit checkpoints and signed agreements alike)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mash.errors import ConfigError

K = TypeVar("K")


def read_public_key(path: Path, *, accept: tuple[type[K], ...], wrong_kind: str,
                    from_private: bool = False) -> K:
    """The PEM public key in `path` if it is one of `accept` (ConfigError `wrong_kind`
    otherwise). With `from_private`, a private key file gives its public key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the public key: {exc.strerror}") from None
    key: PublicKeyTypes
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        if not from_private:
            raise ConfigError(f"{path}: not a PEM public key") from None
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            raise ConfigError(f"{path}: not a PEM public or private key") from None
    if not isinstance(key, accept):
        raise ConfigError(f"{path}: {wrong_kind}")
    return key
