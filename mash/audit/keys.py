"""`mash audit keygen`: the keyed-hash key and the checkpoint signing key of a writer.

Losing the hash key makes the trail unsearchable by subject; losing the signing key only stops
new checkpoints (keep the public key to verify old ones). Replacing either is refused unless
forced. Secrets are written with mode 0600.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from mash.audit.checkpoint import Signer, generate_signing_key
from mash.audit.errors import AuditError
from mash.files import write_atomic

HASH_KEY = "audit-hash.key"
SIGNING_KEY = "audit-signing.key"
PUBLIC_KEY = "audit-signing.pub"


@dataclass(frozen=True)
class KeyFiles:
    hash_key: Path
    signing_key: Path
    public_key: Path
    key_id: str


def write_keys(directory: Path, force: bool = False) -> KeyFiles:
    directory.mkdir(parents=True, exist_ok=True)
    paths = KeyFiles(directory / HASH_KEY, directory / SIGNING_KEY, directory / PUBLIC_KEY, "")
    existing = [p for p in (paths.hash_key, paths.signing_key) if p.exists()]
    if existing and not force:
        raise AuditError(f"{existing[0]} already exists: replacing it makes old entries "
                         "unsearchable or unverifiable; pass --force if that is intended")
    private, public = generate_signing_key()
    write_atomic(paths.hash_key, (secrets.token_hex(32) + "\n").encode(), private=True)
    write_atomic(paths.signing_key, private, private=True)
    write_atomic(paths.public_key, public, private=False)
    key_id = Signer.from_file(paths.signing_key).key_id
    return KeyFiles(paths.hash_key, paths.signing_key, paths.public_key, key_id)
