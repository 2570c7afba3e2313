"""Keyed hashes of a subject's identifiers: what audit entries hold instead of the identifiers.

HMAC-SHA256 with a secret key (at least 32 bytes), truncated to 128 bits (32 hex). Without the
key nobody can test a guessed NHS number (only 10^9 of them) against the trail; with it, the
audit office can answer a subject access request. One hash per piece of evidence:

- each identifier, by kind: nhs_number, upn, pnc_id, ni_number, and local_id with its issuer;
- each name (primary and aliases) with the date of birth: first given name + family name + DOB.

The same `SubjectHasher.keys()` runs at write time (on the `SubjectQuery` the broker or agent
validated) and at search time (on a `SubjectQuery` built by `search_subject` from what the
auditor typed), so normalisation is identical. Searching ORs the hashes: an entry is found if
any piece of evidence matches. Every writer whose entries are searched together must share the
key; keep the key file readable by the service only (mode 0600).
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from pathlib import Path

from mash.errors import ConfigError, ValidationError
from mash.normalise import IDENTIFIER_LABELS, IDENTIFIER_NORMALISERS, name_tokens
from mash.subject import Name, SubjectQuery

MIN_KEY_BYTES = 32
DOMAIN = "mash-audit-v1"
_SEP = "\x1f"
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def parse_hash_key(data: bytes, where: str = "hash key") -> bytes:
    """The key as stored by `mash audit keygen` (hex text) or raw bytes; at least 32 bytes."""
    text = data.strip()
    if text and len(text) % 2 == 0 and _HEX.match(text.decode("latin-1")):
        key = bytes.fromhex(text.decode("ascii"))
    else:
        key = data
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where}: the key has {len(key)} bytes: at least {MIN_KEY_BYTES} "
                          "are needed (create one with `mash audit keygen`)")
    return key


class SubjectHasher:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"the audit hash key needs at least {MIN_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> SubjectHasher:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the audit hash key: {exc.strerror}") from None
        return cls(parse_hash_key(data, str(path)))

    def _hash(self, *parts: str) -> str:
        message = _SEP.join((DOMAIN, *parts)).encode()
        return hmac.digest(self._key, message, "sha256").hex()[:32]

    def keys(self, subject: SubjectQuery) -> dict[str, str]:
        """hash -> what it stands for (e.g. 'nhs_number', 'name+date_of_birth')."""
        out: dict[str, str] = {}
        for kind, value in sorted(subject.identifiers.items()):
            out[self._hash("id", kind, value)] = kind
        for issuer, value in subject.local_ids:
            out[self._hash("local_id", issuer.strip().lower(), value)] = "local_id"
        if subject.date_of_birth is not None:
            dob = subject.date_of_birth.isoformat()
            for name in subject.names:
                given = name.given.split(" ")[0] if name.given else ""
                if given and name.family:
                    out[self._hash("name_dob", given, name.family, dob)] = "name+date_of_birth"
        return out

    def hashes(self, subject: SubjectQuery) -> tuple[str, ...]:
        """What goes into `AuditEntry.subject`."""
        return tuple(sorted(self.keys(subject)))

    def record_ref(self, source: str, record_id: str) -> str:
        """A matched record, as the agent's owner notification names it."""
        return self._hash("record", source, record_id)


def _name_variants(full: str) -> list[Name]:
    """'Jane Mary Smith' -> given jane with family 'mary smith' or 'smith': either may be right."""
    tokens = name_tokens(full)
    if len(tokens) < 2:
        raise ValidationError(f"name {full!r}: give a given name and a family name")
    return [Name(tokens[0], "", " ".join(tokens[i:])) for i in range(1, len(tokens))]


def search_subject(
    identifiers: dict[str, str] | None = None,
    local_ids: list[tuple[str, str]] | None = None,
    names: list[str] | None = None,
    given: str = "",
    family: str = "",
    date_of_birth: dt.date | None = None,
) -> SubjectQuery:
    """A SubjectQuery from what an auditor typed, normalised as the broker and agents do."""
    normalised: dict[str, str] = {}
    for kind, raw in (identifiers or {}).items():
        value = IDENTIFIER_NORMALISERS[kind](raw)
        if value is None:
            raise ValidationError(f"{IDENTIFIER_LABELS[kind]} {raw!r} is not valid")
        normalised[kind] = value
    locals_: list[tuple[str, str]] = []
    for issuer, raw in local_ids or []:
        value = IDENTIFIER_NORMALISERS["local_id"](raw)
        if value is None or not issuer.strip():
            raise ValidationError(f"local identifier {issuer}:{raw} is not valid")
        locals_.append((issuer.strip(), value))
    variants: list[Name] = []
    for full in names or []:
        variants.extend(_name_variants(full))
    if given or family:
        g, f = " ".join(name_tokens(given)), " ".join(name_tokens(family, family=True))
        if not (g and f):
            raise ValidationError("give both --given and --family")
        variants.append(Name(g, "", f))
    if variants and date_of_birth is None:
        raise ValidationError("a name is searched together with the date of birth: add --dob")
    subject = SubjectQuery(names=tuple(variants), date_of_birth=date_of_birth,
                           identifiers=normalised, local_ids=tuple(locals_))
    return subject
