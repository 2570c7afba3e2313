"""What an answer may say about how a record compared: only what the agreement releases.

A match's `matched_on` levels and its score describe the record's values against the
subject: "postcode_sector" says the record's postcode shares the subject's sector. Sent where
the agreement releases no postcode, that is the postcode itself, a few lookups at a time.
So a level is sent only when every field it describes is released at this stage by a
transform that shows at least as much as the level says (a postcode released as its district
may say `postcode_district`, never `postcode`: a full agreement is then said as the district's);
any level not named here is never sent.

The score is a sum over every comparison the subject allowed, so it is sent only when every
field those comparisons read is released unmodified (`keep`); otherwise it is 0 and the
analyst has the band (match / possible) alone. Which fields count depends on the subject and
the agreement only, never on what the record holds (that would say whether it holds a
value). When the score is withheld, matches are ordered by band and then as the records lie
in the agency's index, so their order does not rank them either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mash.subject import SubjectQuery

KEEP = frozenset({"keep"})
NAMES = frozenset({"given_name", "middle_names", "family_name", "aliases"})
POSTCODES = frozenset({"postcode", "previous_postcodes"})
ADDRESSES = frozenset({"address", "previous_addresses"}) | POSTCODES
IDENTIFIERS = ("nhs_number", "upn", "pnc_id", "ni_number")


@dataclass(frozen=True)
class Reveals:
    """The record fields a level describes, and the transforms that show that much."""

    fields: frozenset[str]
    enough: frozenset[str] = KEEP


LEVELS: dict[str, Reveals] = {
    "given_name": Reveals(frozenset({"given_name", "aliases"})),
    "given_name:nickname": Reveals(frozenset({"given_name", "aliases"})),
    "given_name:similar": Reveals(frozenset({"given_name", "aliases"})),
    "given_name:sounds_alike": Reveals(frozenset({"given_name", "aliases"})),
    "given_name:initial": Reveals(frozenset({"given_name", "aliases"})),
    "given_name:other_forename": Reveals(frozenset({"given_name", "middle_names", "aliases"})),
    "family_name": Reveals(frozenset({"family_name", "aliases"})),
    "family_name:part": Reveals(frozenset({"family_name", "aliases"})),
    "family_name:similar": Reveals(frozenset({"family_name", "aliases"})),
    "family_name:sounds_alike": Reveals(frozenset({"family_name", "aliases"})),
    "names_swapped": Reveals(frozenset({"given_name", "family_name", "aliases"})),
    "date_of_birth": Reveals(frozenset({"date_of_birth"})),
    "date_of_birth:day_month_swapped": Reveals(frozenset({"date_of_birth"})),
    "date_of_birth:one_part_differs": Reveals(frozenset({"date_of_birth"})),
    "date_of_birth:year": Reveals(frozenset({"date_of_birth"})),
    "postcode": Reveals(POSTCODES),
    "postcode_sector": Reveals(POSTCODES, frozenset({"keep", "sector"})),
    "postcode_district": Reveals(POSTCODES, frozenset({"keep", "sector", "district"})),
    # addresses are compared with the postcode as one place
    "address": Reveals(ADDRESSES),
    "address:street": Reveals(ADDRESSES),
    "address:locality": Reveals(ADDRESSES),
    "sex": Reveals(frozenset({"sex"})),
    **{kind: Reveals(frozenset({kind})) for kind in IDENTIFIERS},
}
# A level not shown is said as the finest coarser level that is: a full postcode agrees in
# its sector and district too. Saying nothing instead would be an oracle of its own (with the
# district released, "no postcode level" would mean "sector or full").
COARSER: dict[str, tuple[str, ...]] = {
    "postcode": ("postcode_sector", "postcode_district"),
    "postcode_sector": ("postcode_district",),
}


@dataclass(frozen=True)
class Describer:
    """One query's rule: the stage's released fields (field -> transform) among the fields
    this agent maps. Fields the agent does not map cannot have compared, so they do not
    count against a level."""

    released: Mapping[str, str]
    mapped: frozenset[str]

    def shown(self, reveals: Reveals) -> bool:
        return all(self.released.get(f) in reveals.enough for f in reveals.fields & self.mapped)

    def matched_on(self, levels: Iterable[str]) -> list[str]:
        """The levels the agreement lets this answer state, in the matcher's order."""
        out: list[str] = []
        for level in levels:
            for said in (level, *COARSER.get(level, ())):
                reveals = LEVELS.get(said)
                if reveals is not None and self.shown(reveals):
                    if said not in out:
                        out.append(said)
                    break
        return out

    def score_shown(self, subject: SubjectQuery) -> bool:
        """Whether every field the subject's comparisons read is released with `keep`."""
        read: set[str] = set()
        if subject.names:
            read |= NAMES
        if subject.date_of_birth is not None:
            read.add("date_of_birth")
        if subject.sex:
            read.add("sex")
        if subject.postcodes:
            read |= POSTCODES
        if subject.addresses:
            read |= ADDRESSES
        read |= set(subject.identifiers) & set(IDENTIFIERS)
        if set(subject.identifiers) - set(IDENTIFIERS) or subject.local_ids:
            return False  # a kind this table does not describe: fail closed
        return self.shown(Reveals(frozenset(read)))

    def score(self, subject: SubjectQuery, score: float) -> float:
        return score if self.score_shown(subject) else 0.0


def describer(release: Mapping[str, tuple[str, object]], mapped: Iterable[str]) -> Describer:
    """From a stage's release rules (field -> (transform, params))."""
    return Describer({f: t for f, (t, _) in release.items()}, frozenset(mapped))
