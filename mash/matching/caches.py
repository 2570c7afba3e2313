"""The matching's memo caches (comparisons, parsed addresses, Soundex codes, nickname
groups), all bounded, and a way to empty them together.

An agent empties them after a first build, before it reads its saved index back: what a
load cached was allocated among the load's own objects, and while any of it lives, Python
cannot give back the heap those objects used (its arenas are freed only when empty). They
fill again, as a restart's would, from the lookups it answers.
"""

from __future__ import annotations

from mash.matching import address, blocking, compare, nicknames

CACHED = (compare.compare_given, compare.compare_family, compare.streets_alike,
          address.parse, blocking.soundex, nicknames.groups, nicknames.sharing_group,
          nicknames.slip_mates, nicknames.slip_sources)


def clear() -> None:
    """Empty every cache in CACHED."""
    for cached in CACHED:
        cached.cache_clear()
