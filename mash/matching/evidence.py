"""Minimum evidence decided by evidence: is a subject worth searching for?

A subject is searched when it could reach the index's match threshold: the most it could
score, every field it gives agreeing exactly with a record as rare as any in the index
holding that value. So a NOT_KNOWN always means that a record with these details would have
come back, and as a match. (The possible threshold, a few bits lower, would let a subject
whose few fields all agree by chance come back as a possible: calibration meets strangers
who give every field, so it cannot vouch for subjects that give almost none.) A family
name, a date of birth and a postcode can; a family name and a postcode alone cannot in a
large index. A subject that cannot is NOT_CHECKED (too few identifiers), and the answer
says which further detail would make it searchable. An agency may add its own stricter
rule (`search.require_any_of` in agent.yaml).

In a blind lookup's first round the agent knows only which kinds of evidence the subject
has, not their values: `reach_of_kinds` bounds what any values of those kinds could score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mash.matching.blocking import first_given, subject_addresses
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

    @property
    def searchable(self) -> bool:
        return self.best >= self.needed

    def explain(self) -> str:
        """Why the subject was not searched, and what would make it searchable."""
        more = (f"add {' or '.join(self.additions)}" if self.additions else
                "add more of: a given name, a date of birth, a postcode or an identifier")
        return (f"the details given could not tell one person from others in these records "
                f"(at most {self.best:.1f} of the {self.needed:.1f} bits of evidence the least "
                f"answer needs): {more}")


def _name_bound(index: MatchIndex, model: MatchModel, field_name: str, text: str) -> float:
    sid = index.strings.get(text)
    count = int(index.given_count[sid] + index.family_count[sid]) if sid != NONE else 1
    return model.exact_name(field_name, max(count, 1), index.name_rows)


def _kind_bounds(model: MatchModel, records: int, names: int) -> dict[str, float]:
    """The most one value of each kind can add (as rare as a value can be)."""
    w = model.weights

    def place(level: int) -> float:
        return float(np.log2(
            model.m["place"][level] / model.tf_u("place", level, np.array([1]), records)[0]))

    return {
        "given_name": model.exact_name("given", 1, names),
        "given_initial": float(w["given"][Given.INITIAL]),
        "family_name": model.exact_name("family", 1, names),
        "date_of_birth": float(np.log2(model.m["dob"][Dob.EXACT]
                                       / model.exact_u("dob", 1, records))),
        "postcode": place(Place.POSTCODE),
        "address": place(Place.PREMISES),
        "postcode_and_address": place(Place.PREMISES_POSTCODE),
        "street": float(w["place"][Place.STREET]),
        "sex": float(w["sex"][Agree.AGREE]),
        "identifier": float(w["identifier"][Agree.AGREE]),
    }


def _total(bounds: dict[str, float], have: set[str]) -> float:
    total = 0.0
    if "given_name" in have:
        total += bounds["given_name"]
    elif "given_initial" in have:
        total += bounds["given_initial"]
    if "family_name" in have:
        total += bounds["family_name"]
    if "date_of_birth" in have:
        total += bounds["date_of_birth"]
    if "postcode" in have and "address" in have:
        total += bounds["postcode_and_address"]
    elif "postcode" in have:
        total += bounds["postcode"]
    elif "address" in have:
        total += bounds["address"]
    elif "street" in have:
        total += bounds["street"]
    if "sex" in have:
        total += bounds["sex"]
    total += bounds["identifier"] * sum(1 for k in have if k in _IDENTIFIER_KINDS)
    return total


def _additions(bounds: dict[str, float], have: set[str], needed: float) -> tuple[str, ...]:
    """Details that would make the subject searchable: each one that would on its own,
    then pairs of the others that would together (a date of birth and a postcode)."""
    open_kinds = [(k, w) for k, w in ADDITIONS
                  if k not in have and not (k == "address" and "street" in have)]
    singles = [(k, w) for k, w in open_kinds if _total(bounds, have | {k}) >= needed]
    rest = [(k, w) for k, w in open_kinds if (k, w) not in singles and k != "nhs_number"]
    pairs = [f"{a[1]} and {b[1]}" for i, a in enumerate(rest) for b in rest[i + 1:]
             if _total(bounds, have | {a[0], b[0]}) >= needed]
    return tuple([w for _, w in singles] + pairs[:3])


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
    bounds = _kind_bounds(model, len(index), index.name_rows)
    # the subject's own names: a common name cannot be rarer than it is here
    given = [first_given(n) for n in subject.names if first_given(n)]
    family = [n.family for n in subject.names if n.family]
    if any(len(g) > 1 for g in given):
        bounds["given_name"] = max(_name_bound(index, model, "given", g)
                                   for g in given if len(g) > 1)
    if family:
        bounds["family_name"] = max(_name_bound(index, model, "family", f) for f in family)
    have = kinds_of(subject, index)
    needed = model.thresholds.match
    total = _total(bounds, have)
    return Reach(round(total, 2), needed,
                 () if total >= needed else _additions(bounds, have, needed))


def reach_of_kinds(model: MatchModel, records: int, names: int, kinds: set[str]) -> Reach:
    """The same, knowing only the kinds of evidence (a blind lookup's first round): every
    value as rare as a value can be, so a subject is never refused here that round two
    would search."""
    bounds = _kind_bounds(model, records, names)
    have = set(kinds)
    if "name" in have:  # the blind round's evidence says "name" for a given + family name
        have |= {"given_name", "family_name"}
    needed = model.thresholds.match
    total = _total(bounds, have)
    return Reach(round(total, 2), needed,
                 () if total >= needed else _additions(bounds, have, needed))
