"""Keyed match tokens: the only trace of the subject in a blind lookup's first round.

A token is a keyed BLAKE2b MAC, under the federation's linkage key for one epoch, of one of the
matcher's blocking keys (mash.matching.blocking). The analyst's side derives tokens from the
subject; each agent derives them from every record it holds. The broker, which never holds a
linkage key, sees opaque bytes and cannot test a guess against them.

Tokens are the matcher's blocking keys plus two confirming keys (see `_confirming_keys`); an
agent treats a record as a candidate on one strong key or on two kinds of weak key, so that a
stranger who merely shares a birthday does not receive the subject. bench/blind.py measures
what that rule costs in recall against the generator's ground truth.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

import numpy as np

from mash.blind.answers import TOKEN_BYTES
from mash.matching import blocking, nicknames
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery

PERSONAL = b"mash-token-v1"  # BLAKE2b personalisation: these MACs are match tokens, nothing else


def token(linkage_key: bytes, blocking_key: str) -> bytes:
    return hashlib.blake2b(blocking_key.encode(), key=linkage_key, digest_size=TOKEN_BYTES,
                           person=PERSONAL).digest()


def _confirming_keys(names: Iterable[Name], dob: dt.date | None) -> set[str]:
    """Keys the matcher does not block on but the token round needs: a lone weak hit (a
    surname sound and year, a postcode sector) is common among strangers, so a candidate needs
    a second kind, and these supply it when the date of birth or the address is what differs:
    the name alone (nickname group + surname sound) and the given-name sound + date of birth.
    """
    keys: set[str] = set()
    for name in names:
        given, family = blocking.first_given(name), blocking.family_joined(name)
        if given and family:
            for group in nicknames.groups(given):
                keys.add(f"gf:{group}:{blocking.soundex(family)}")
        if given and dob is not None and not blocking.is_placeholder_date(dob):
            keys.add(f"gd:{blocking.soundex(given)}:{dob.isoformat()}")
    return keys


def record_token_keys(record: PersonRecord) -> set[str]:
    return blocking.record_keys(record) | _confirming_keys(record.names, record.date_of_birth)


def subject_token_keys(subject: SubjectQuery) -> set[str]:
    keys = blocking.query_keys(subject)
    names = blocking.query_name_variants(subject)
    for dob in blocking.query_dates(subject):
        keys |= _confirming_keys(names, dob)
    return keys


def subject_tokens(linkage_key: bytes, subject: SubjectQuery) -> list[bytes]:
    """The subject's tokens, sorted so that their order says nothing about the subject."""
    return sorted({token(linkage_key, k) for k in subject_token_keys(subject)})


def _prefix(tok: bytes) -> int:
    return int.from_bytes(tok[:8], "little")


# Blocking key kinds (the text before the first ':' of a key, mash.matching.blocking). A hit
# on a strong kind names one person; weak kinds (a date of birth, a phonetic surname and a
# year...) are shared by strangers, so one alone does not make a candidate.
STRONG_KINDS = ("nhs", "upn", "pnc", "ni", "nd", "ng")
WEAK_KINDS = ("sy", "gy", "db", "md", "ps", "nm", "gf", "gd", "pc", "na", "pa", "an", "nw",
              "fw", "nh")
_KIND_CODE = {kind: i for i, kind in enumerate(STRONG_KINDS + WEAK_KINDS)}
_STRONG_CODES = frozenset(range(len(STRONG_KINDS)))
_DATE_ONLY_CODES = frozenset({_KIND_CODE["db"], _KIND_CODE["md"]})
WEAK_KINDS_NEEDED = 2


def is_thin(evidence: Iterable[str]) -> bool:
    """A subject without a date of birth or without a postcode cannot make two kinds of weak
    key agree as often, so for it one weak hit (other than a bare date) makes a candidate: the
    token round falls back towards sending the subject rather than lose the person."""
    have = set(evidence)
    return "date_of_birth" not in have or "postcode" not in have


class TokenIndex:
    """Every record's tokens for one epoch: sorted 64-bit token prefixes, each with the
    record it came from and the kind of blocking key behind it.

    A record is a candidate when the lookup's tokens hit one of its strong keys, or keys of
    at least two weak kinds: the agent never learns which key a token came from on the
    analyst's side, only which of its own keys it matches. A 64-bit prefix collision can only
    make a false candidate, which the second round's full matching then turns into NOT_KNOWN.
    """

    def __init__(self, linkage_key: bytes, records: Iterable[PersonRecord]) -> None:
        prefixes: list[int] = []
        owners: list[int] = []
        kinds: list[int] = []
        for i, record in enumerate(records):
            for key in record_token_keys(record):
                code = _KIND_CODE.get(key.split(":", 1)[0])
                if code is None:
                    continue
                prefixes.append(_prefix(token(linkage_key, key)))
                owners.append(i)
                kinds.append(code)
        order = np.argsort(np.asarray(prefixes, dtype=np.uint64), kind="stable")
        self._prefixes = np.asarray(prefixes, dtype=np.uint64)[order]
        self._owners = np.asarray(owners, dtype=np.uint32)[order]
        self._kinds = np.asarray(kinds, dtype=np.uint8)[order]

    def __len__(self) -> int:
        return int(self._prefixes.size)

    def candidates(self, tokens: Iterable[bytes], thin: bool = False) -> int:
        """How many records the tokens make candidates of (`thin`: see `is_thin`)."""
        wanted = np.unique(np.asarray([_prefix(t) for t in tokens if len(t) == TOKEN_BYTES],
                                      dtype=np.uint64))
        if not wanted.size or not self._prefixes.size:
            return 0
        lo = np.searchsorted(self._prefixes, wanted, side="left")
        hi = np.searchsorted(self._prefixes, wanted, side="right")
        kinds_by_record: dict[int, set[int]] = {}
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            for owner, kind in zip(self._owners[a:b].tolist(), self._kinds[a:b].tolist(),
                                   strict=True):
                kinds_by_record.setdefault(owner, set()).add(kind)
        return sum(1 for kinds in kinds_by_record.values()
                   if kinds & _STRONG_CODES or len(kinds) >= WEAK_KINDS_NEEDED
                   or (thin and kinds - _DATE_ONLY_CODES))
