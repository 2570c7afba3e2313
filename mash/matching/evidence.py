"""Minimum evidence decided by evidence: is a subject worth searching for?

A subject is searched when two things hold. It could reach the index's match threshold:
the most it could score, every field it gives agreeing exactly with a record as rare as any
in the index holding that value, is at least the threshold. And its details are rare enough
together that chance would not supply a match: the records expected to agree with all of
them by coincidence (the index's size, at least SMALL_INDEX as for its thresholds, times the
product of each detail's chance agreement, a name's at its own frequency here) are no more
than the target false-known rate. The first rule alone would let a thin subject through
wherever rare values weigh a lot (a date of birth alone in a small index); calibration
meets strangers who give every field, so it cannot vouch for subjects that give almost
none. So a NOT_KNOWN always means that a record with these details would have come back,
and as a match, and a KNOWN from a thin subject is not a coincidence. A family name, a date
of birth and a postcode can be searched; a family name and a postcode alone cannot in a
large index. A subject that cannot is NOT_CHECKED (too few identifiers), and the answer
says which rule refused it and which further detail would make it searchable. An agency
may add its own stricter rule (`search.require_any_of` in agent.yaml).

In a blind lookup's first round the agent knows only which kinds of evidence the subject
has, not their values: `reach_of_kinds` bounds what any values of those kinds could score,
and how rare they could be, so it never refuses a subject that round two would search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mash.matching.blocking import first_given, subject_addresses
from mash.matching.calibration import SMALL_INDEX, TARGET_FALSE_KNOWN
from mash.matching.compare import Agree, Dob, Given, Place
from mash.matching.index import NONE, MatchIndex
from mash.matching.model import MatchModel
from mash.subject import SubjectQuery

# what an analyst could add, in the order suggested, with the evidence kind it supplies
ADDITIONS = (("date_of_birth", "a date of birth"), ("given_name", "a given name"),
             ("family_name", "a family name"), ("postcode", "a postcode"),
             ("address", "an address with its house number"),
             ("nhs_number", "an NHS number"))
_IDENTIFIER_KINDS = ("nhs_number", "upn", "pnc_id", "ni_number")


@dataclass(frozen=True)
class Reach:
    best: float  # the most the subject could score against any record of this index
    needed: float  # the match threshold
    additions: tuple[str, ...] = ()  # details that would each make it searchable
    chance: float = 0.0  # records expected to agree with every detail given by chance
    chance_limit: float = 1.0  # the most that may (the target false-known rate)

    @property
    def searchable(self) -> bool:
        return self.best >= self.needed and self.chance <= self.chance_limit

    def explain(self) -> str:
        """Why the subject was not searched, and what would make it searchable."""
        more = (f"add {' or '.join(self.additions)}" if self.additions else
                "add more of: a given name, a date of birth, a postcode or an identifier")
        if self.best < self.needed:
            why = (f"at most {self.best:.1f} of the {self.needed:.1f} bits of evidence the "
                   f"least answer needs")
        else:
            why = (f"about {self.chance:.2g} of them would agree with details this few by "
                   f"chance; at most {self.chance_limit:.2g} may")
        return (f"the details given could not tell one person from others in these records "
                f"({why}): {more}")


@dataclass
class _Bounds:
    """Per kind of evidence: the most bits one value of it can add, and how rare (-log2 of
    its chance agreement between two different people) it is."""

    bits: dict[str, float]
    rarity: dict[str, float]
    records: int
    limit: float

    def total(self, have: set[str]) -> float:
        return sum(self.bits[k] for k in _counted(have))

    def chance(self, have: set[str]) -> float:
        return float(self.records * 2.0 ** -sum(self.rarity[k] for k in _counted(have)))

    def enough(self, have: set[str], needed: float) -> bool:
        return self.total(have) >= needed and self.chance(have) <= self.limit


# kinds of evidence that stand for one another, the strongest first: only one of a group
# counts (a given name makes its initial redundant; a postcode and an address are one place)
_GROUPS = (("given_name", "given_initial"), ("family_name",), ("date_of_birth",),
           ("postcode_and_address", "postcode", "address", "street"), ("sex",))


def _counted(have: set[str]) -> list[str]:
    """The kinds that add evidence together: one of each group, and every identifier."""
    if {"postcode", "address"} <= have:
        have = have | {"postcode_and_address"}
    out = [next(k for k in group if k in have) for group in _GROUPS
           if any(k in have for k in group)]
    return out + ["identifier"] * sum(1 for k in have if k in _IDENTIFIER_KINDS)


def _name_count(index: MatchIndex, text: str) -> int:
    """How many name rows hold this string (as either name); 1 for one the index lacks."""
    sid = index.strings.get(text)
    return max(int(index.given_count[sid] + index.family_count[sid]) if sid != NONE else 1, 1)


def _name(bounds: _Bounds, model: MatchModel, field_name: str, count: int, names: int
          ) -> None:
    """Set a name kind's bits and rarity for a name ``count`` of ``names`` name rows hold."""
    kind = f"{field_name}_name"
    bounds.bits[kind] = model.exact_name(field_name, count, names)
    bounds.rarity[kind] = -float(np.log2(model.exact_u(field_name, count, names)[()]))


def _bounds(model: MatchModel, records: int, names: int) -> _Bounds:
    """Every value as rare as a value can be."""
    w, u = model.weights, model.u

    def place(level: int) -> float:
        return float(np.log2(
            model.m["place"][level] / model.tf_u("place", level, np.array([1]), records)[0]))

    def rare(field_name: str, level: int) -> float:
        return -float(np.log2(u[field_name][level]))

    bits = {
        "given_initial": float(w["given"][Given.INITIAL]),
        "date_of_birth": float(np.log2(model.m["dob"][Dob.EXACT]
                                       / model.exact_u("dob", 1, records)[()])),
        "postcode": place(Place.POSTCODE),
        "address": place(Place.PREMISES),
        "postcode_and_address": place(Place.PREMISES_POSTCODE),
        "street": float(w["place"][Place.STREET]),
        "sex": float(w["sex"][Agree.AGREE]),
        "identifier": float(w["identifier"][Agree.AGREE]),
    }
    rarity = {
        "given_initial": rare("given", Given.INITIAL),
        "date_of_birth": rare("dob", Dob.EXACT),
        "postcode": rare("place", Place.POSTCODE),
        "address": rare("place", Place.PREMISES),
        "postcode_and_address": rare("place", Place.PREMISES_POSTCODE),
        "street": rare("place", Place.STREET),
        "sex": rare("sex", Agree.AGREE),
        "identifier": rare("identifier", Agree.AGREE),
    }
    limit = float(model.provenance.get("target_false_known", TARGET_FALSE_KNOWN))
    # a small index is counted at SMALL_INDEX records, as its thresholds are: its few
    # records cannot show how often a value recurs among the people it may be asked about
    bounds = _Bounds(bits, rarity, max(records, SMALL_INDEX), limit)
    for field_name in ("given", "family"):
        _name(bounds, model, field_name, 1, names)
    return bounds


def _additions(bounds: _Bounds, have: set[str], needed: float) -> tuple[str, ...]:
    """Details that would make the subject searchable: each one that would on its own,
    then pairs of the others that would together (a date of birth and a postcode)."""
    open_kinds = [(k, w) for k, w in ADDITIONS
                  if k not in have and not (k == "address" and "street" in have)]
    singles = [(k, w) for k, w in open_kinds if bounds.enough(have | {k}, needed)]
    rest = [(k, w) for k, w in open_kinds if (k, w) not in singles and k != "nhs_number"]
    pairs = [f"{a[1]} and {b[1]}" for i, a in enumerate(rest) for b in rest[i + 1:]
             if bounds.enough(have | {a[0], b[0]}, needed)]
    return tuple([w for _, w in singles] + pairs[:3])


def _answer(bounds: _Bounds, have: set[str], needed: float) -> Reach:
    total, chance = bounds.total(have), bounds.chance(have)
    enough = total >= needed and chance <= bounds.limit
    return Reach(round(total, 2), needed, () if enough else _additions(bounds, have, needed),
                 chance=chance, chance_limit=bounds.limit)


def kinds_of(subject: SubjectQuery, index: MatchIndex | None = None) -> set[str]:
    """The kinds of evidence a subject gives (identifiers only where the index holds any)."""
    have: set[str] = set()
    if any(first_given(n) and len(first_given(n)) > 1 for n in subject.names):
        have.add("given_name")
    elif any(first_given(n) for n in subject.names):
        have.add("given_initial")
    if any(n.family for n in subject.names):
        have.add("family_name")
    if subject.date_of_birth is not None:
        have.add("date_of_birth")
    if subject.postcodes:
        have.add("postcode")
    addresses = subject_addresses(subject)
    if any(a.number or a.name for a in addresses):
        have.add("address")
    elif any(a.street for a in addresses):
        have.add("street")
    if subject.sex:
        have.add("sex")
    held = index.held_identifiers if index is not None else frozenset(_IDENTIFIER_KINDS)
    have |= {k for k in subject.identifiers if k in held}
    return have


def reach(index: MatchIndex, model: MatchModel, subject: SubjectQuery) -> Reach:
    """How much evidence this subject could give against this index."""
    bounds = _bounds(model, len(index), index.name_rows)
    # the subject's own names: a common name cannot be rarer, nor weigh more, than it is here
    given = [g for g in (first_given(n) for n in subject.names) if g and len(g) > 1]
    family = [n.family for n in subject.names if n.family]
    for field_name, values in (("given", given), ("family", family)):
        if values:
            least = min(_name_count(index, v) for v in values)
            _name(bounds, model, field_name, least, index.name_rows)
    return _answer(bounds, kinds_of(subject, index), model.thresholds.match)


def reach_of_kinds(model: MatchModel, records: int, names: int, kinds: set[str]) -> Reach:
    """The same, knowing only the kinds of evidence (a blind lookup's first round): every
    value as rare as a value can be, so a subject is never refused here that round two
    would search."""
    have = set(kinds)
    if "name" in have:  # the blind round's evidence says "name" for a given + family name
        have |= {"given_name", "family_name"}
    return _answer(_bounds(model, records, names), have, model.thresholds.match)
