"""A compact match index: the fields matching needs, in numpy columns.

One row per record, in the order the records were given (row i is the i-th record). Names,
postcodes (whole, sector, district) and the parts of addresses are interned (strings become
ids); identifiers sit in fixed-width byte arrays; blocking keys are 64-bit hashes in one
sorted array with the row each belongs to. Beside the columns the index counts how often
each value occurs among the agency's own records (names, dates of birth, postcodes,
addresses, an address at its postcode): the term frequencies that make a common value
weaker evidence than a rare one. A million records take a few hundred MB.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mash.matching.address import Address, parse
from mash.matching.blocking import record_keys
from mash.normalise import postcode_district, postcode_sector
from mash.records import PersonRecord

if TYPE_CHECKING:
    from mash.matching.features import StringFeatures

MAX_POSTCODES = 3  # the current postcode and the two most recent previous ones
MAX_ADDRESSES = 3  # the current address and the two most recent previous ones
# locality words kept per address (district, town, county; a building or estate name, a
# suburb, a state and a postcode where the addresses are written that way)
LOCALITY_WORDS = 5
NONE = -1
SEX_CODES = {"": 0, "F": 1, "M": 2, "X": 3}
# identifier kind -> fixed width in the byte column
IDENTIFIER_WIDTHS = {"nhs_number": 10, "upn": 13, "pnc_id": 11, "ni_number": 9}


def key_hash(key: str) -> int:
    """A blocking key as 64 bits (stable across processes: no Python hash())."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def hash_keys(keys: Iterable[str]) -> np.ndarray:
    return np.fromiter((key_hash(k) for k in keys), dtype=np.uint64)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of a concatenation of sorted runs (a block's rows are in row order), many
    times faster: a stable sort of such runs is a merge (timsort)."""
    if not len(values):
        return values
    values = np.sort(values, kind="stable")
    first = np.empty(len(values), dtype=bool)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]


def dob_int(value: dt.date | None) -> int:
    """2014-05-17 -> 20140517; 0 for no date."""
    return value.year * 10000 + value.month * 100 + value.day if value else 0


def pair_key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two int32 ids as one uint64 (an address at a postcode, a family name at an address)."""
    return (a.astype(np.int64).astype(np.uint64) << np.uint64(32)) | (
        b.astype(np.int64) & 0xFFFFFFFF).astype(np.uint64)


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
    postcode: np.ndarray  # int32 (n, MAX_POSTCODES) string ids of whole postcodes, NONE
    sector: np.ndarray  # int32 (n, MAX_POSTCODES) string ids, NONE when absent
    district: np.ndarray  # int32 (n, MAX_POSTCODES)
    addr_number: np.ndarray  # int32 (n, MAX_ADDRESSES) house number or name
    addr_flat: np.ndarray  # int32 (n, MAX_ADDRESSES)
    addr_street: np.ndarray  # int32 (n, MAX_ADDRESSES)
    addr_locality: np.ndarray  # int32 (n, MAX_ADDRESSES, LOCALITY_WORDS)
    addr_key: np.ndarray  # int32 (n, MAX_ADDRESSES) Address.key: the dwelling on its street
    identifiers: dict[str, np.ndarray]  # kind -> S<width> (n,), b"" when absent
    key_hashes: np.ndarray  # uint64, sorted
    key_rows: np.ndarray  # int32, the row of each key hash
    family_count: np.ndarray  # int32 by string id: name rows with that family name
    given_count: np.ndarray  # int32 by string id: name rows with that first given name
    postcode_count: np.ndarray  # int32 by string id: records with that postcode
    address_count: np.ndarray  # int32 by string id: records with that address key
    locality_count: np.ndarray  # int32 by string id: records with that word in a locality
    dob_values: np.ndarray  # int32 sorted distinct dates of birth (0 excluded)
    dob_counts: np.ndarray  # int32 records with each of them
    premises_keys: np.ndarray  # uint64 sorted pair_key(address key, postcode)
    premises_counts: np.ndarray  # int32 records with each

    def __len__(self) -> int:
        return len(self.dob)

    @functools.cached_property
    def features(self) -> StringFeatures:
        """What the many-at-once name and street comparisons need of each string."""
        from mash.matching.features import StringFeatures

        return StringFeatures(self.strings)

    @property
    def name_rows(self) -> int:
        """Name rows the name frequencies count (this index's own; a delta's, its base's)."""
        return len(self.name_family)

    @property
    def population(self) -> int:
        """Records the term frequencies count (this index's own; a delta's, its base's)."""
        return len(self)

    def candidates(self, keys: Iterable[str]) -> np.ndarray:
        """Rows that share at least one blocking key, sorted and unique."""
        hashes = hash_keys(set(keys))  # duplicates would only repeat rows, made unique below
        lo = np.searchsorted(self.key_hashes, hashes, side="left")
        hi = np.searchsorted(self.key_hashes, hashes, side="right")
        parts = [self.key_rows[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)
                 if b > a]
        if not parts:
            return np.empty(0, dtype=np.int32)
        return sorted_unique(np.concatenate(parts))

    def dob_frequency(self, dobs: np.ndarray) -> np.ndarray:
        """How many records have each of these dates of birth (0 for an unknown date)."""
        at = np.searchsorted(self.dob_values, dobs)
        at = np.minimum(at, max(len(self.dob_values) - 1, 0))
        if not len(self.dob_values):
            return np.zeros(len(dobs), dtype=np.int64)
        return np.where(self.dob_values[at] == dobs, self.dob_counts[at], 0).astype(np.int64)

    def premises_frequency(self, keys: np.ndarray) -> np.ndarray:
        """How many records have each pair_key(address key, postcode)."""
        if not len(self.premises_keys):
            return np.zeros(len(keys), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.premises_keys, keys), len(self.premises_keys) - 1)
        return np.where(self.premises_keys[at] == keys, self.premises_counts[at], 0
                        ).astype(np.int64)

    @functools.cached_property
    def spaced_families(self) -> dict[str, int]:
        """Family names of several words ('smith jones'), by their joined form ('smithjones'):
        the fewest name rows any of them has as a name (they agree exactly with a query
        name written without the spaces, at their own frequency: `score.names_ceiling`).
        Worked out once, the first time it is asked for."""
        out: dict[str, int] = {}
        strings = self.strings.strings
        counts = self.given_count.astype(np.int64) + self.family_count
        for sid in np.nonzero(self.family_count[:len(strings)] > 0)[0].tolist():
            text = strings[sid]
            if " " in text:
                joined = text.replace(" ", "")
                out[joined] = min(out.get(joined, int(counts[sid])), int(counts[sid]))
        return out

    @functools.cached_property
    def held_identifiers(self) -> frozenset[str]:
        """The identifier kinds some record holds (only those can ever agree)."""
        return frozenset(k for k, column in self.identifiers.items() if (column != b"").any())

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column by name (what persist saves)."""
        return {name: getattr(self, name) for name in ARRAYS}

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values()) + sum(
            a.nbytes for a in self.identifiers.values())


ARRAYS = ("name_start", "name_given", "name_other", "name_family", "dob", "sex", "postcode",
          "sector", "district", "addr_number", "addr_flat", "addr_street", "addr_locality",
          "addr_key", "key_hashes", "key_rows", "family_count", "given_count",
          "postcode_count", "address_count", "locality_count", "dob_values", "dob_counts",
          "premises_keys", "premises_counts")


def _tokens(text: str) -> list[str]:
    return text.split() if text else []


def addresses_of(record: PersonRecord) -> list[Address]:
    """A record's parsed addresses that say anything, at most MAX_ADDRESSES."""
    return [a for a in (parse(t) for t in record.addresses[:MAX_ADDRESSES]) if a]


def _counts(ids: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(ids[ids >= 0], minlength=size).astype(np.int32)


def locality_words(locality: np.ndarray) -> np.ndarray:
    """The locality word ids of a (rows, addresses, words) column, each once a row (a
    record counts once for a word, however many of its addresses name it)."""
    words = np.asarray(locality)
    return _row_unique(words.reshape(len(words), int(np.prod(words.shape[1:])))).ravel()


def _row_unique(ids: np.ndarray) -> np.ndarray:
    """The ids of a (rows, k) column with repeats within a row replaced by NONE (a record
    counts once for each value it has)."""
    out = ids.copy()
    for k in range(1, ids.shape[1]):
        out[:, k][(ids[:, :k] == ids[:, k:k + 1]).any(axis=1)] = NONE
    return out


SHARD_ROWS = 10_000  # records indexed at a time by `build` (and a worker, in parallel)


@dataclass
class Shard:
    """The index columns of a run of records, their string ids local to the shard (ids into
    ``strings``): what `shard` makes, in this process or a worker's, and `IndexBuilder`
    joins, in order. Plain arrays and strings, cheap to send between processes."""

    strings: list[str]
    rows: int
    name_counts: array[int]  # names per record
    name_given: array[int]
    name_other: array[int]
    name_family: array[int]
    dob: array[int]
    sex: array[int]
    postcode: array[int]  # rows x MAX_POSTCODES
    sector: array[int]
    district: array[int]
    number: array[int]  # rows x MAX_ADDRESSES
    flat: array[int]
    street: array[int]
    key: array[int]
    locality: array[int]  # rows x MAX_ADDRESSES x LOCALITY_WORDS
    identifiers: dict[str, list[bytes]]
    hashes: array[int]  # blocking key hashes
    hash_rows: array[int]  # the shard row of each


def shard(records: Iterable[PersonRecord]) -> Shard:
    """Index columns for these records (see `Shard`): the per-record work of `build`."""
    strings = Interner()
    sid = strings.id
    out = Shard(strings.strings, 0, array("i"), array("i"), array("i"), array("i"),
                array("i"), array("B"), array("i"), array("i"), array("i"), array("i"),
                array("i"), array("i"), array("i"), array("i"),
                {k: [] for k in IDENTIFIER_WIDTHS}, array("Q"), array("i"))
    blank_address = [NONE] * LOCALITY_WORDS
    row = -1
    for row, record in enumerate(records):
        for name in record.names:
            given = _tokens(name.given)
            others = given[1:] + _tokens(name.middle)
            out.name_given.append(sid(given[0] if given else ""))
            out.name_other.append(sid(others[0] if others else ""))
            out.name_family.append(sid(name.family))
        out.name_counts.append(len(record.names))
        out.dob.append(dob_int(record.date_of_birth))
        out.sex.append(SEX_CODES.get(record.sex, 0))
        pcs = list(record.postcodes[:MAX_POSTCODES])
        pcs += [""] * (MAX_POSTCODES - len(pcs))
        for pc in pcs:
            out.postcode.append(sid(pc))
            out.sector.append(sid(postcode_sector(pc)) if pc else NONE)
            out.district.append(sid(postcode_district(pc)) if pc else NONE)
        addrs = addresses_of(record)
        for k in range(MAX_ADDRESSES):
            if k < len(addrs):
                a = addrs[k]
                out.number.append(sid(a.number or a.name))
                out.flat.append(sid(a.flat))
                out.street.append(sid(a.street))
                out.key.append(sid(a.key))
                words = [sid(w) for w in a.locality[:LOCALITY_WORDS]]
                out.locality.extend(words + blank_address[len(words):])
            else:
                out.number.append(NONE)
                out.flat.append(NONE)
                out.street.append(NONE)
                out.key.append(NONE)
                out.locality.extend(blank_address)
        for kind, column in out.identifiers.items():
            column.append(record.identifiers.get(kind, "").encode())
        for key in record_keys(record):
            out.hashes.append(key_hash(key))
            out.hash_rows.append(row)
    out.rows = row + 1
    return out


_ID_COLUMNS = ("name_given", "name_other", "name_family", "postcode", "sector", "district",
               "number", "flat", "street", "key", "locality")


class IndexBuilder:
    """Shards joined in order into one `MatchIndex`: each shard's strings interned into
    the index's (so ids are those a single pass over the same records would give), its
    rows numbered after the shards before it."""

    def __init__(self) -> None:
        self.strings = Interner()
        self.rows = 0
        self._parts: dict[str, list[np.ndarray]] = {
            name: [] for name in (*_ID_COLUMNS, "name_counts", "dob", "sex", "hashes",
                                  "hash_rows")}
        self._identifiers: dict[str, list[bytes]] = {k: [] for k in IDENTIFIER_WIDTHS}

    def add(self, part: Shard) -> None:
        sid = self.strings.id
        remap = np.array([sid(s) for s in part.strings] + [NONE], dtype=np.int32)
        for name in _ID_COLUMNS:  # a local NONE (-1) indexes the NONE at remap's end
            self._parts[name].append(remap[np.frombuffer(getattr(part, name),
                                                         dtype=np.int32)])
        for name, dtype in (("name_counts", np.int32), ("dob", np.int32), ("sex", np.uint8),
                            ("hashes", np.uint64)):
            self._parts[name].append(np.frombuffer(getattr(part, name), dtype=dtype).copy())
        self._parts["hash_rows"].append(
            np.frombuffer(part.hash_rows, dtype=np.int32) + np.int32(self.rows))
        for kind, column in self._identifiers.items():
            column.extend(part.identifiers[kind])
        self.rows += part.rows

    def _joined(self, name: str, dtype: type) -> np.ndarray:
        parts = self._parts.pop(name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def finish(self) -> MatchIndex:
        """The index of every shard added: their columns joined, and what is counted over
        all of them. Everything is handed over: the parts are let go as they are joined, and
        the builder is left empty (holding nothing of the index it made, which may then be
        freed on its own)."""
        n, strings, j = self.rows, self.strings, self._joined
        identifiers, self._identifiers = self._identifiers, {k: [] for k in IDENTIFIER_WIDTHS}
        self.strings, self.rows = Interner(), 0
        name_counts = j("name_counts", np.int32)
        name_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(name_counts, out=name_start[1:])
        key_hashes, key_rows = j("hashes", np.uint64), j("hash_rows", np.int32)
        key_order = np.argsort(key_hashes, kind="stable")
        family, given_ids = j("name_family", np.int32), j("name_given", np.int32)
        size = len(strings.strings)

        def grid(name: str, *shape: int) -> np.ndarray:
            return j(name, np.int32).reshape(n, *shape)

        postcode = grid("postcode", MAX_POSTCODES)
        addr_key = grid("key", MAX_ADDRESSES)
        locality = grid("locality", MAX_ADDRESSES, LOCALITY_WORDS)
        dob = j("dob", np.int32)
        dob_values, dob_counts = np.unique(dob[dob != 0], return_counts=True)
        # an address at its postcode: each address with each of the record's postcodes
        pairs = pair_key(np.repeat(addr_key, MAX_POSTCODES, axis=1),
                         np.tile(postcode, (1, MAX_ADDRESSES)))
        valid = (np.repeat(addr_key, MAX_POSTCODES, axis=1) >= 0) & (
            np.tile(postcode, (1, MAX_ADDRESSES)) >= 0)
        owners = np.repeat(np.arange(n), pairs.shape[1]).reshape(pairs.shape)[valid]
        pairs = pairs[valid]
        order = np.lexsort((owners, pairs))  # a record counts once for each pair it has
        pairs, owners = pairs[order], owners[order]
        first = np.r_[True, (pairs[1:] != pairs[:-1]) | (owners[1:] != owners[:-1])] if len(
            pairs) else np.zeros(0, dtype=bool)
        premises_keys, premises_counts = np.unique(pairs[first], return_counts=True)
        return MatchIndex(
            strings=strings,
            name_start=name_start,
            name_given=given_ids,
            name_other=j("name_other", np.int32),
            name_family=family,
            dob=dob,
            sex=j("sex", np.uint8),
            postcode=postcode,
            sector=grid("sector", MAX_POSTCODES),
            district=grid("district", MAX_POSTCODES),
            addr_number=grid("number", MAX_ADDRESSES),
            addr_flat=grid("flat", MAX_ADDRESSES),
            addr_street=grid("street", MAX_ADDRESSES),
            addr_locality=locality,
            addr_key=addr_key,
            identifiers={k: np.array(v, dtype=f"S{IDENTIFIER_WIDTHS[k]}")
                         for k, v in identifiers.items()},
            key_hashes=key_hashes[key_order],
            key_rows=key_rows[key_order],
            family_count=_counts(family, size),
            given_count=_counts(given_ids, size),
            postcode_count=_counts(_row_unique(postcode).ravel(), size),
            address_count=_counts(_row_unique(addr_key).ravel(), size),
            locality_count=_counts(locality_words(locality), size),
            dob_values=dob_values.astype(np.int32),
            dob_counts=dob_counts.astype(np.int32),
            premises_keys=premises_keys.astype(np.uint64),
            premises_counts=premises_counts.astype(np.int32),
        )


def build(records: Iterable[PersonRecord],
          progress: Callable[[int], None] | None = None) -> MatchIndex:
    """Index records in one pass; ``progress(rows)`` is called every 10,000 rows."""
    builder = IndexBuilder()
    it = iter(records)
    while True:
        part = shard(itertools.islice(it, SHARD_ROWS))
        if part.rows:
            builder.add(part)
            if progress is not None and part.rows == SHARD_ROWS:
                progress(builder.rows)
        if part.rows < SHARD_ROWS:
            break
    if progress is not None:
        progress(builder.rows)
    return builder.finish()
