"""The records changed since a saved index was built, searched beside it (an incremental
refresh: mash.agent.state).

The saved index is immutable (memory-mapped from its file). The changed records are built
into a small index of their own (`delta_index`) that scores with the base's calibration and
the base's term frequencies (its own counts added: a changed record's old version is still
counted, a small overcount while the delta stays small), and `LayeredMatcher` searches
both: the base rows that a changed record replaces are masked out (never scored, never
returned), the delta's rows follow the base's (delta row i is row len(base) + i), so that a
search returns each record once, in its newest version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mash.matching.blocking import query_keys
from mash.matching.engine import Matcher, Ranked, RecordLookup, ranked_of
from mash.matching.index import MatchIndex, _row_unique, build, locality_words, pair_key
from mash.matching.score import score
from mash.records import PersonRecord
from mash.subject import SubjectQuery


@dataclass
class DeltaIndex(MatchIndex):
    """A small index whose term frequencies count its base's records and its own."""

    base_records: int = 0
    base_name_rows: int = 0

    @property
    def name_rows(self) -> int:
        return self.base_name_rows + len(self.name_family)

    @property
    def population(self) -> int:
        return self.base_records + len(self)


def delta_index(records: Iterable[PersonRecord], base: MatchIndex,
                masked: np.ndarray | None = None) -> DeltaIndex:
    """`records` indexed beside `base`, whose rows `masked` they replace (`on_base`)."""
    return on_base(build(records), base, masked)


def _tally(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """How often each of some values occurs in `values` (NONE not counted)."""
    kept = values if values.dtype.kind == "u" else values[values >= 0]
    distinct, counts = np.unique(kept, return_counts=True)

    def count(wanted: np.ndarray) -> np.ndarray:
        if not len(distinct):
            return np.zeros(len(wanted), dtype=np.int64)
        at = np.minimum(np.searchsorted(distinct, wanted), len(distinct) - 1)
        return np.where(distinct[at] == wanted, counts[at], 0).astype(np.int64)
    return count


def on_base(own: MatchIndex, base: MatchIndex, masked: np.ndarray | None = None) -> DeltaIndex:
    """`own` (an index of the changed records) with each value's frequency counted over the
    records answered from: the base's, less those of its rows `masked` (replaced), and its
    own; and the population to match."""
    rows = np.asarray(masked if masked is not None else [], dtype=np.int64)
    ids = np.fromiter((base.strings.get(s) for s in own.strings.strings), dtype=np.int64,
                      count=len(own.strings.strings))
    known = ids >= 0
    starts, ends = base.name_start[rows], base.name_start[rows + 1]
    name_rows = (np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(),
                                                                 ends.tolist(), strict=True)])
                 if len(rows) else np.empty(0, dtype=np.int64)).astype(np.int64)

    def merged(mine: np.ndarray, theirs: np.ndarray, gone: np.ndarray) -> np.ndarray:
        out = mine.astype(np.int64)
        out[known] += np.asarray(theirs)[ids[known]] - _tally(gone)(ids[known])
        return np.maximum(out, 0).astype(np.int32)

    def base_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`own`'s premises keys in the base's string ids (and which the base can hold)."""
        addr = ids[(keys >> np.uint64(32)).astype(np.int64)] if len(keys) else keys
        postcode = ids[(keys & np.uint64(0xFFFFFFFF)).astype(np.int64)] if len(keys) else keys
        held = (addr >= 0) & (postcode >= 0)
        return pair_key(addr[held], postcode[held]) if held.any() else np.empty(
            0, np.uint64), held

    gone_pairs = _row_pairs(base.addr_key[rows], base.postcode[rows])
    premises = own.premises_counts.astype(np.int64)
    pairs, held = base_pairs(own.premises_keys)
    if held.any():
        premises[held] += base.premises_frequency(pairs) - _tally(gone_pairs)(pairs)
    dob_gone = _tally(np.asarray(base.dob[rows]))
    columns = {f.name: getattr(own, f.name) for f in dataclasses.fields(MatchIndex)}
    columns.update(
        family_count=merged(own.family_count, base.family_count,
                            np.asarray(base.name_family[name_rows])),
        given_count=merged(own.given_count, base.given_count,
                           np.asarray(base.name_given[name_rows])),
        postcode_count=merged(own.postcode_count, base.postcode_count,
                              _row_unique(np.asarray(base.postcode[rows])).ravel()),
        address_count=merged(own.address_count, base.address_count,
                             _row_unique(np.asarray(base.addr_key[rows])).ravel()),
        locality_count=merged(own.locality_count, base.locality_count,
                              locality_words(base.addr_locality[rows])),
        dob_counts=np.maximum(own.dob_counts.astype(np.int64) + base.dob_frequency(
            own.dob_values) - dob_gone(own.dob_values), 0).astype(np.int32),
        premises_counts=np.maximum(premises, 0).astype(np.int32))
    return DeltaIndex(**columns, base_records=len(base) - len(rows),
                      base_name_rows=base.name_rows - len(name_rows))


def _row_pairs(addr_key: np.ndarray, postcode: np.ndarray) -> np.ndarray:
    """Each row's distinct pair_key(address key, postcode) (as `build` counts premises)."""
    out: list[int] = []
    for keys, pcs in zip(np.asarray(addr_key).tolist(), np.asarray(postcode).tolist(),
                         strict=True):
        out.extend({(a << 32) | (p & 0xFFFFFFFF) for a in keys for p in pcs
                    if a >= 0 and p >= 0})
    return np.array(out, dtype=np.uint64)


class LayeredMatcher(Matcher):
    """A base matcher with the rows in `masked` (sorted, unique) replaced by the records of
    `delta` (read from `delta_lookup`), scored with the base's model."""

    def __init__(self, *, base: Matcher, delta: DeltaIndex, masked: np.ndarray,
                 delta_lookup: RecordLookup) -> None:
        if base.lookup is None:
            raise ValueError("a layered matcher reads its records from the base's lookup")
        super().__init__(index=base.index, model=base.model, lookup=base.lookup)
        self.base_lookup: RecordLookup = base.lookup
        self.delta = delta
        self.masked = np.asarray(masked, dtype=np.int64)
        self.delta_lookup = delta_lookup

    def __len__(self) -> int:
        return len(self.index) - len(self.masked) + len(self.delta)

    def rank(self, subject: SubjectQuery) -> tuple[list[Ranked], int]:
        keys = list(query_keys(subject))
        rows = self.index.candidates(keys)
        if len(self.masked) and len(rows):
            rows = rows[~np.isin(rows, self.masked)]
        floor = self.model.thresholds.possible
        ranked = ranked_of(score(self.index, subject, rows, self.model, floor=floor),
                           self.model)
        delta_rows = self.delta.candidates(keys)
        ranked += ranked_of(score(self.delta, subject, delta_rows, self.model, floor=floor),
                            self.model, offset=len(self.index))
        ranked.sort(key=lambda r: -r.score)  # stable: the base's first on a tie
        return ranked, len(rows) + len(delta_rows)

    def scored(self, subject: SubjectQuery,  # type: ignore[override]
               floor: float | None = None) -> None:
        raise NotImplementedError("a layered matcher scores two indexes: use rank")

    def fetch(self, rows: Sequence[int]) -> list[PersonRecord]:
        """The records at these rows, from the base's store or the delta's (all, or the
        lookup's exception)."""
        if not rows:
            return []
        n = len(self.index)
        base = [r for r in rows if r < n]
        delta = [r - n for r in rows if r >= n]
        found = dict(zip(base, self.base_lookup.fetch(base) if base else [], strict=True))
        found.update(zip((r + n for r in delta),
                         self.delta_lookup.fetch(delta) if delta else [], strict=True))
        return [found[r] for r in rows]
