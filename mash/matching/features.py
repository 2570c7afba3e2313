"""What the name and street comparisons need of each interned string, worked out once.

A search of a large index compares a query name with hundreds of distinct record names.
Doing that one pair at a time in Python (`compare_given`, `compare_family`,
`streets_alike`) cost most of a search, so the many-at-once forms in compare.py work on
string ids: exact agreement, initials, nicknames and Soundex become numpy comparisons of
these per-string features, and the two string distances run in rapidfuzz's C loops.

Features are filled in lazily, the first time a string is a candidate, so an index opens
without a pass over all of its strings; each string is worked out at most once. Threads may
fill the same entries at once: they write the same values.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

import numpy as np
from numpy.typing import NDArray

from mash.matching.blocking import soundex
from mash.matching.index import NONE, Interner


def _pick(texts: list[str], slots: np.ndarray) -> list[str]:
    if len(slots) == 1:
        return [texts[int(slots[0])]]
    return list(itemgetter(*slots.tolist())(texts)) if len(slots) else []


class StringFeatures:
    """Per string id: its length and first letter, whether it is one plain word (no
    whitespace: then it is its own joined form and its only part), and of its joined form
    (spaces taken out: 'smith jones' -> 'smithjones') the length, the text and the Soundex
    code. Id ``NONE`` is the empty string."""

    # the feature arrays, one entry per string id plus one for NONE (set by `_allocate`)
    known: NDArray[np.bool_]
    length: NDArray[np.int32]
    first: NDArray[np.int32]
    sound: NDArray[np.int32]
    plain: NDArray[np.bool_]
    joined_length: NDArray[np.int32]
    _count: int

    def __init__(self, strings: Interner) -> None:
        self._strings = strings
        self._codes: dict[str, int] = {"": 0}
        self._allocate()

    def id_of(self, text: str) -> int:
        return self._strings.get(text)

    def ids_of(self, texts: Iterable[str]) -> list[int]:
        """The ids of those of ``texts`` the index holds."""
        get = self._strings.get
        return [i for i in (get(t) for t in texts) if i != NONE]

    def texts(self, slots: np.ndarray) -> list[str]:
        """The strings at these slots (from `slots`)."""
        return _pick(self._text, slots)

    def joined(self, slots: np.ndarray) -> list[str]:
        """Their joined forms (filled in by `slots`)."""
        return _pick(self._joined, slots)

    def _allocate(self) -> None:
        """Arrays for every string the interner holds now (it grows only while an index is
        built), keeping what was worked out before."""
        strings = self._strings.strings
        count, before = len(strings), getattr(self, "_count", 0)
        arrays = {"known": np.zeros(count + 1, dtype=bool),
                  "length": np.zeros(count + 1, dtype=np.int32),
                  "first": np.zeros(count + 1, dtype=np.int32),
                  "sound": np.zeros(count + 1, dtype=np.int32),
                  "plain": np.zeros(count + 1, dtype=bool),
                  "joined_length": np.zeros(count + 1, dtype=np.int32)}
        for name, array in arrays.items():
            if before:
                array[:before] = getattr(self, name)[:before]
            setattr(self, name, array)
        self.known[count] = True  # NONE's slot: the empty string, length 0, no code
        self._text: list[str] = [*strings, ""]
        # the joined form starts as the string itself, and is set when it is not plain
        joined = self._joined[:before] if before else []
        self._joined: list[str] = [*joined, *strings[before:], ""]
        self._count = count

    def code(self, text: str) -> int:
        """The Soundex code of a string, as a small int (0 for none)."""
        key = soundex(text)
        found = self._codes.get(key)
        if found is None:
            found = self._codes.setdefault(key, len(self._codes))
        return found

    def slots(self, ids: np.ndarray) -> np.ndarray:
        """String ids as rows of the feature arrays (``NONE`` is the last), filled in."""
        if len(self._strings.strings) != self._count:
            self._allocate()
        slots = np.where(ids == NONE, self._count, ids)
        unknown = ~self.known[slots]
        if unknown.any():
            todo = np.unique(slots[unknown])
            for s in todo.tolist():
                text = self._text[s]
                plain = bool(text) and text.split() == [text]
                joined = text if plain else text.replace(" ", "")
                self._joined[s] = joined
                self.length[s] = len(text)
                self.first[s] = ord(text[0]) if text else 0
                self.plain[s] = plain
                self.joined_length[s] = len(joined)
                self.sound[s] = self.code(joined) if joined else 0
            self.known[todo] = True
        return slots
