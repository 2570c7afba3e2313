"""One call that lays out a development federation's blind-lookup keys (demo and tests).

Production federations do the same in steps, each party holding only its own private keys:
`mash blind keygen` at each agency, `mash blind linkage-key` at the key custodian, and
`mash blind directory` at the key authority, which signs the published public keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mash import signing
from mash.blind import directory, keys
from mash.files import write_atomic


@dataclass(frozen=True)
class BlindKeys:
    root: Path
    directory: Path
    authority_public: Path
    linkage: Path
    agencies: dict[str, keys.AgencyKeyFiles]


def create(root: Path, agencies: list[str], epoch: int = 1, valid_days: int = 365,
           today: dt.date | None = None) -> BlindKeys:
    today = today or dt.date.today()
    start, end = today - dt.timedelta(days=1), today + dt.timedelta(days=valid_days)
    files = {a: keys.generate_agency_keys(root / a, a, force=True) for a in agencies}
    linkage = root / "linkage"
    keys.generate_linkage_key(linkage, epoch, force=True)
    private, public = signing.generate_key()
    authority = root / "authority.key"
    write_atomic(authority, private, private=True)
    authority_public = root / "authority.pub"
    write_atomic(authority_public, public)
    published = {a: ([sealing], [answer]) for a, (sealing, answer) in
                 ((a, keys.public_keys(f)) for a, f in files.items())}
    doc = directory.build(published, [(epoch, start, end)], start, end)
    path = root / "federation-keys.json"
    signing.write_signed(path, doc, signing.sign(doc, signing.load_private_key(authority),
                                                 "Demo key authority"))
    return BlindKeys(root, path, authority_public, linkage, files)


def agent_section(blind: BlindKeys, agency: str) -> dict[str, object]:
    own = blind.agencies[agency]
    return {"sealing_keys": [str(own.sealing)], "answer_key": str(own.answer),
            "linkage_keys": str(blind.linkage), "directory": str(blind.directory),
            "directory_signers": [str(blind.authority_public)]}


def client_section(blind: BlindKeys) -> dict[str, object]:
    return {"linkage_keys": str(blind.linkage), "directory": str(blind.directory),
            "directory_signers": [str(blind.authority_public)]}
