"""A compact match index: the fields matching needs, in numpy columns.

One row per record, in the order the records were given (row i is the i-th record). Names
and postcode sectors/districts are interned (a few thousand distinct strings); full
postcodes and identifiers sit in fixed-width byte arrays; blocking keys are 64-bit hashes in
one sorted array with the row each belongs to. A million records take a few hundred MB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mash.matching.blocking import record_keys
from mash.normalise import postcode_district, postcode_sector
from mash.records import PersonRecord

MAX_POSTCODES = 3  # the current postcode and the two most recent previous ones
NONE = -1
SEX_CODES = {"": 0, "F": 1, "M": 2, "X": 3}
# identifier kind -> fixed width in the byte column
IDENTIFIER_WIDTHS = {"nhs_number": 10, "upn": 13, "pnc_id": 11, "ni_number": 9}


def key_hash(key: str) -> int:
    """A blocking key as 64 bits (stable across processes: no Python hash())."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def hash_keys(keys: Iterable[str]) -> np.ndarray:
    return np.fromiter((key_hash(k) for k in keys), dtype=np.uint64)


def dob_int(value: dt.date | None) -> int:
    """2014-05-17 -> 20140517; 0 for no date."""
    return value.year * 10000 + value.month * 100 + value.day if value else 0


class Interner:
    def __init__(self, strings: Iterable[str] = ()) -> None:
        self.strings: list[str] = list(strings)
        self.ids: dict[str, int] = {s: i for i, s in enumerate(self.strings)}

    def id(self, text: str) -> int:
        if not text:
            return NONE
        found = self.ids.get(text)
        if found is None:
            found = self.ids[text] = len(self.strings)
            self.strings.append(text)
        return found

    def get(self, text: str) -> int:
        return self.ids.get(text, NONE) if text else NONE


@dataclass
class MatchIndex:
    strings: Interner
    name_start: np.ndarray  # int64 (n+1): names of row i are name rows name_start[i]:[i+1]
    name_given: np.ndarray  # int32 string id of the first given name (or NONE)
    name_other: np.ndarray  # int32 string id of the second forename (given or middle)
    name_family: np.ndarray  # int32 string id of the family name (words joined by spaces)
    dob: np.ndarray  # int32 yyyymmdd, 0 when unknown
    sex: np.ndarray  # uint8, SEX_CODES
    postcode: np.ndarray  # S8 (n, MAX_POSTCODES), b"" when absent
    sector: np.ndarray  # int32 (n, MAX_POSTCODES) string ids, NONE when absent
    district: np.ndarray  # int32 (n, MAX_POSTCODES)
    identifiers: dict[str, np.ndarray]  # kind -> S<width> (n,), b"" when absent
    key_hashes: np.ndarray  # uint64, sorted
    key_rows: np.ndarray  # int32, the row of each key hash
    family_count: np.ndarray  # int32 by string id: name rows with that family name
    given_count: np.ndarray  # int32 by string id: name rows with that first given name

    def __len__(self) -> int:
        return len(self.dob)

    @property
    def name_rows(self) -> int:
        return len(self.name_family)

    def candidates(self, keys: Iterable[str]) -> np.ndarray:
        """Rows that share at least one blocking key, sorted and unique."""
        hashes = hash_keys(set(keys))  # duplicates would only repeat rows, made unique below
        lo = np.searchsorted(self.key_hashes, hashes, side="left")
        hi = np.searchsorted(self.key_hashes, hashes, side="right")
        parts = [self.key_rows[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)
                 if b > a]
        if not parts:
            return np.empty(0, dtype=np.int32)
        return np.unique(np.concatenate(parts))

    def nbytes(self) -> int:
        arrays = [self.name_start, self.name_given, self.name_other, self.name_family,
                  self.dob, self.sex, self.postcode, self.sector, self.district,
                  self.key_hashes, self.key_rows, self.family_count, self.given_count,
                  *self.identifiers.values()]
        return sum(a.nbytes for a in arrays)


def _tokens(text: str) -> list[str]:
    return text.split() if text else []


def build(records: Iterable[PersonRecord],
          progress: Callable[[int], None] | None = None) -> MatchIndex:
    """Index records in one pass; ``progress(rows)`` is called every 10,000 rows."""
    strings = Interner()
    name_start, name_given, name_other, name_family = array("q", [0]), array("i"), array(
        "i"), array("i")
    dobs, sexes = array("i"), array("B")
    sectors, districts = array("i"), array("i")
    postcodes: list[bytes] = []
    idents: dict[str, list[bytes]] = {k: [] for k in IDENTIFIER_WIDTHS}
    hashes, rows = array("Q"), array("i")
    n = 0
    for n, record in enumerate(records, start=1):
        row = n - 1
        for name in record.names:
            given = _tokens(name.given)
            others = given[1:] + _tokens(name.middle)
            name_given.append(strings.id(given[0] if given else ""))
            name_other.append(strings.id(others[0] if others else ""))
            name_family.append(strings.id(name.family))
        name_start.append(len(name_family))
        dobs.append(dob_int(record.date_of_birth))
        sexes.append(SEX_CODES.get(record.sex, 0))
        pcs = list(record.postcodes[:MAX_POSTCODES])
        pcs += [""] * (MAX_POSTCODES - len(pcs))
        for pc in pcs:
            postcodes.append(pc.encode())
            sectors.append(strings.id(postcode_sector(pc)) if pc else NONE)
            districts.append(strings.id(postcode_district(pc)) if pc else NONE)
        for kind, column in idents.items():
            column.append(record.identifiers.get(kind, "").encode())
        for key in record_keys(record):
            hashes.append(key_hash(key))
            rows.append(row)
        if progress is not None and n % 10_000 == 0:
            progress(n)
    if progress is not None:
        progress(n)
    key_hashes = np.frombuffer(hashes, dtype=np.uint64)
    key_rows = np.frombuffer(rows, dtype=np.int32)
    order = np.argsort(key_hashes, kind="stable")
    family = np.frombuffer(name_family, dtype=np.int32)
    given = np.frombuffer(name_given, dtype=np.int32)
    size = len(strings.strings)
    return MatchIndex(
        strings=strings,
        name_start=np.frombuffer(name_start, dtype=np.int64).copy(),
        name_given=given.copy(),
        name_other=np.frombuffer(name_other, dtype=np.int32).copy(),
        name_family=family.copy(),
        dob=np.frombuffer(dobs, dtype=np.int32).copy(),
        sex=np.frombuffer(sexes, dtype=np.uint8).copy(),
        postcode=np.array(postcodes, dtype="S8").reshape(n, MAX_POSTCODES),
        sector=np.frombuffer(sectors, dtype=np.int32).reshape(n, MAX_POSTCODES).copy(),
        district=np.frombuffer(districts, dtype=np.int32).reshape(n, MAX_POSTCODES).copy(),
        identifiers={k: np.array(v, dtype=f"S{IDENTIFIER_WIDTHS[k]}")
                     for k, v in idents.items()},
        key_hashes=key_hashes[order],
        key_rows=key_rows[order],
        family_count=np.bincount(family[family >= 0], minlength=size).astype(np.int32),
        given_count=np.bincount(given[given >= 0], minlength=size).astype(np.int32),
    )
