"""How two agencies' records of one person differ: a broad corruption model, and the
synthetic queries an index calibrates itself with.

The rates are a prior for real registers, deliberately broader than this project's own
generator: a value replaced by an unrelated one (a different given name, a date of birth
from another record, a family name changed by marriage), missing on one side, given and
family names swapped, typos, nicknames, an initial, a second forename, day and month
swapped, a 01/01 placeholder, a moved address, and several of these at once (each field is
corrupted independently). Replacement values are drawn from the agency's own records, so
that a replaced name is as common as names there are.

Used by mash.matching.calibration for m (a record against a corrupted copy of itself) and
for the synthetic strangers and household members that set the thresholds.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mash.matching import nicknames
from mash.matching.address import parse as parse_address
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery

_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class ErrorRates:
    """Per-field probabilities that two records of one person disagree in this way."""

    given_replaced: float = 0.06  # another given name altogether (known by another name)
    given_typo: float = 0.06
    given_two_typos: float = 0.01
    given_nickname: float = 0.05  # Bill for William, when the name has a nickname
    given_initial: float = 0.02  # J for John
    given_other_forename: float = 0.02  # the second forename used (when there is one)
    given_missing: float = 0.04
    family_replaced: float = 0.04  # married, or a step-parent's name
    family_typo: float = 0.06
    family_two_typos: float = 0.01
    family_part: float = 0.3  # one half of a double-barrelled name (when it is one)
    family_missing: float = 0.01
    names_swapped: float = 0.03
    dob_replaced: float = 0.03
    dob_swapped: float = 0.015  # day and month (when both are 12 or less)
    dob_off_by_one: float = 0.02  # the next day or month, a year off by one or ten
    dob_digit: float = 0.02  # one digit of day, month or year mistyped
    dob_placeholder: float = 0.01  # 01/01 of the right year
    dob_missing: float = 0.04
    moved: float = 0.2  # another address altogether (and its postcode)
    postcode_typo: float = 0.02
    postcode_missing: float = 0.1
    address_missing: float = 0.2
    address_typo: float = 0.05  # in the street name
    number_typo: float = 0.02
    flat_dropped: float = 0.3  # the flat number left out (when there is one)
    sex_wrong: float = 0.01
    sex_missing: float = 0.05
    identifier_missing: float = 0.5


RATES = ErrorRates()


def typo(word: str, rng: random.Random) -> str:
    """One substitution, deletion, insertion or transposition, not on the first letter."""
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word))
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + rng.choice(_KEYBOARD) + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + rng.choice(_KEYBOARD) + word[i:]
    j = min(i + 1, len(word) - 1)
    chars = list(word)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


@dataclass
class View:
    """One agency's (or one analyst's) version of a person, normalised."""

    given: str = ""  # may hold several words: the first is the given name
    middle: str = ""
    family: str = ""
    dob: dt.date | None = None
    sex: str = ""
    postcodes: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    identifiers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, record: PersonRecord) -> View:
        name = record.names[0] if record.names else Name("", "", "")
        return cls(name.given, name.middle, name.family, record.date_of_birth, record.sex,
                   record.postcodes, record.addresses, dict(record.identifiers))

    def subject(self) -> SubjectQuery:
        names = (Name(self.given, "", self.family),) if self.given or self.family else ()
        return SubjectQuery(names=names, date_of_birth=self.dob, sex=self.sex,
                            postcodes=self.postcodes, identifiers=dict(self.identifiers),
                            addresses=self.addresses)


@dataclass
class Pools:
    """Values drawn from the agency's own records, to replace a value with."""

    given: dict[str, list[str]]  # by sex ("" for any)
    family: list[str]
    dobs: list[dt.date]
    places: list[tuple[tuple[str, ...], tuple[str, ...]]]  # (postcodes, addresses)
    # per sampled record: (given name, sex, family name, date of birth), to draw a
    # stranger's fields from different records
    people: list[tuple[str, str, str, dt.date | None]] = field(default_factory=list)
    # the row (position in the records) each entry of people and of places came from
    people_rows: list[int] = field(default_factory=list)
    place_rows: list[int] = field(default_factory=list)

    def a_place_from(self, rng: random.Random
                     ) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], set[int]]:
        """A place put together from three different records: one's postcode, another's
        house number and a third's street and locality. A stranger lives somewhere like the
        agency's people, at a dwelling of theirs only as often as chance has it. Also the
        rows it came from."""
        if len(self.places) < 3:
            if not self.places:
                return ((), ()), set()
            i = rng.randrange(len(self.places))
            return self.places[i], set(self.place_rows[i:i + 1])
        i, j, k = rng.sample(range(len(self.places)), 3)
        (pcs, _), (_, numbered), (_, streets) = self.places[i], self.places[j], self.places[k]
        number = parse_address(numbered[0]).number if numbered else ""
        where = parse_address(streets[0]) if streets else None
        address = (render("", number, where.name if not number else "", where.street,
                          where.locality),) if where is not None and where else ()
        return (pcs[:1], address), set(self.place_rows[n] for n in (i, j, k)
                                       if n < len(self.place_rows))

    @classmethod
    def of(cls, records: Sequence[PersonRecord], rng: random.Random,
           limit: int = 50_000) -> Pools:
        order = (range(len(records)) if len(records) <= limit
                 else rng.sample(range(len(records)), limit))
        given: dict[str, list[str]] = {"": [], "F": [], "M": []}
        family, dobs, places, people = [], [], [], []
        people_rows: list[int] = []
        place_rows: list[int] = []
        for row in order:
            r = records[row]
            first = last = ""
            if r.names:
                first = r.names[0].given.split(" ", 1)[0] if r.names[0].given else ""
                last = r.names[0].family
                if first:
                    given[""].append(first)
                    if r.sex in ("F", "M"):
                        given[r.sex].append(first)
                if last:
                    family.append(last)
            if r.date_of_birth is not None:
                dobs.append(r.date_of_birth)
            if r.postcodes or r.addresses:
                places.append((r.postcodes, r.addresses))
                place_rows.append(row)
            people.append((first, r.sex, last, r.date_of_birth))
            people_rows.append(row)
        return cls(given, family, dobs, places, people, people_rows, place_rows)

    def a_given(self, rng: random.Random, sex: str = "") -> str:
        pool = self.given.get(sex) or self.given[""]
        return rng.choice(pool) if pool else ""


def _given(v: View, pools: Pools, rng: random.Random, r: ErrorRates) -> None:
    words = v.given.split()
    if not words:
        return
    first, rest = words[0], words[1:]
    x = rng.random()
    options = nicknames.variants(first)
    if x < r.given_replaced:
        first = pools.a_given(rng, v.sex) or first
    elif (x := x - r.given_replaced) < r.given_nickname and options:
        first = rng.choice(options)
    elif (x := x - r.given_nickname) < r.given_initial:
        first = first[0]
    elif (x := x - r.given_initial) < r.given_other_forename and (rest or v.middle):
        first = (rest or v.middle.split())[0]
        rest = []
    elif (x := x - r.given_other_forename) < r.given_typo:
        first = typo(first, rng)
    elif (x := x - r.given_typo) < r.given_two_typos:
        first = typo(typo(first, rng), rng)
    elif x - r.given_two_typos < r.given_missing:
        first, rest = "", []
    v.given = " ".join([first, *rest]) if first else ""


def _family(v: View, pools: Pools, rng: random.Random, r: ErrorRates) -> None:
    if not v.family:
        return
    parts = v.family.split()
    if len(parts) > 1 and rng.random() < r.family_part:
        v.family = rng.choice(parts)
    x = rng.random()
    if x < r.family_replaced and pools.family:
        v.family = rng.choice(pools.family)
    elif (x := x - r.family_replaced) < r.family_typo:
        v.family = typo(v.family, rng)
    elif (x := x - r.family_typo) < r.family_two_typos:
        v.family = typo(typo(v.family, rng), rng)
    elif x - r.family_two_typos < r.family_missing:
        v.family = ""


def _shift(value: dt.date, rng: random.Random) -> dt.date:
    for _ in range(10):
        part = rng.randrange(3)
        try:
            if part == 0:
                return value.replace(day=value.day + rng.choice((-1, 1)))
            if part == 1:
                return value.replace(month=value.month + rng.choice((-1, 1)))
            return value.replace(year=value.year + rng.choice((-1, 1, -10, 10)))
        except ValueError:
            continue
    return value


def _digit(value: dt.date, rng: random.Random) -> dt.date:
    for _ in range(10):
        text = list(value.strftime("%Y%m%d"))
        i = rng.choice((2, 3, 4, 5, 6, 7))  # not the century
        text[i] = str(rng.randrange(10))
        try:
            return dt.datetime.strptime("".join(text), "%Y%m%d").date()
        except ValueError:
            continue
    return value


def _dob(v: View, pools: Pools, rng: random.Random, r: ErrorRates, today: dt.date) -> None:
    if v.dob is None:
        return
    x = rng.random()
    given: dt.date = v.dob
    dob: dt.date | None = given
    if x < r.dob_replaced and pools.dobs:
        dob = rng.choice(pools.dobs)
    elif (x := x - r.dob_replaced) < r.dob_swapped:
        if given.day <= 12:
            dob = given.replace(month=given.day, day=given.month)
    elif (x := x - r.dob_swapped) < r.dob_off_by_one:
        dob = _shift(given, rng)
    elif (x := x - r.dob_off_by_one) < r.dob_digit:
        dob = _digit(given, rng)
    elif (x := x - r.dob_digit) < r.dob_placeholder:
        dob = given.replace(month=1, day=1)
    elif x - r.dob_placeholder < r.dob_missing:
        dob = None
    v.dob = dob if dob is None or dob <= today else v.dob


def _postcode_typo(pc: str, rng: random.Random) -> str:
    outward, inward = pc.split(" ")
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    if rng.random() < 0.5:
        return f"{outward} {inward[0]}{rng.choice(letters)}{inward[2]}"
    return f"{outward} {(int(inward[0]) + rng.choice((1, -1))) % 10}{inward[1:]}"


def render(flat: str, number: str, name: str, street: str, locality: Sequence[str]) -> str:
    """An address's parts as one line that `parse` reads back into the same parts."""
    first = " ".join(p for p in (number, street) if p)
    lines = [f"flat {flat}" if flat else "", name, first, " ".join(locality)]
    return ", ".join(line for line in lines if line)


def _address(text: str, rng: random.Random, r: ErrorRates) -> str:
    a = parse_address(text)
    flat, number, street = a.flat, a.number, a.street
    if flat and rng.random() < r.flat_dropped:
        flat = ""
    if street and rng.random() < r.address_typo:
        words = street.split()
        words[0] = typo(words[0], rng)
        street = " ".join(words)
    if number and number.isdigit() and rng.random() < r.number_typo:
        number = str(max(1, int(number) + rng.choice((-2, -1, 1, 2, 10))))
    return render(flat, number, a.name, street, a.locality)


def _place(v: View, pools: Pools, rng: random.Random, r: ErrorRates) -> None:
    if rng.random() < r.moved and pools.places:
        v.postcodes, v.addresses = rng.choice(pools.places)
    pcs = tuple(_postcode_typo(p, rng) if rng.random() < r.postcode_typo else p
                for p in v.postcodes[:1])
    addresses = tuple(_address(a, rng, r) for a in v.addresses[:1])
    v.postcodes = () if rng.random() < r.postcode_missing else pcs
    v.addresses = () if rng.random() < r.address_missing else addresses


def corrupt(v: View, pools: Pools, rng: random.Random, rates: ErrorRates = RATES,
            today: dt.date | None = None) -> View:
    """Another agency's (or an analyst's) version of ``v``: every field corrupted on its
    own, so that several errors come together as often as chance has it. A query carries
    the current address only, and no middle name."""
    today = today or dt.date.today()
    out = replace(v, identifiers=dict(v.identifiers))
    _given(out, pools, rng, rates)
    _family(out, pools, rng, rates)
    if rng.random() < rates.names_swapped and out.given and out.family:
        out.given, out.family = out.family, out.given.split()[0]
    _dob(out, pools, rng, rates, today)
    _place(out, pools, rng, rates)
    if out.sex and rng.random() < rates.sex_wrong:
        out.sex = "M" if out.sex == "F" else "F"
    elif rng.random() < rates.sex_missing:
        out.sex = ""
    if rng.random() < rates.identifier_missing:
        out.identifiers = {}
    out.middle = ""
    return out


def stranger_from(pools: Pools, rng: random.Random) -> tuple[View, set[int]]:
    """A person the agency does not hold: each field from a different record (a given name
    of the right sex for a sex drawn too), no identifiers; and the rows of the records
    its fields came from. The pools are shuffled samples of different records, so two
    fields come from one record no more often than two records share values (drawing both
    from one record would make a coincidence of family name and date of birth once in N
    strangers, far more often than real ones).

    A real stranger's values come from the population, not from the agency's records: a
    name held by one record is as likely to belong to nobody the agency holds. So the
    stranger is searched against the records without the ones it was drawn from (leave
    one out): it meets a value of theirs only as often as the other records share it."""
    (postcodes, addresses), donors = pools.a_place_from(rng)
    people = pools.people
    if len(people) < 3:
        sex = rng.choice(("F", "M"))
        return View(given=pools.a_given(rng, sex), sex=sex, postcodes=postcodes,
                    addresses=addresses), donors
    i, j, k = rng.sample(range(len(people)), 3)
    a, b, c = people[i], people[j], people[k]
    sex = a[1] or rng.choice(("F", "M"))
    if a[0]:
        donors.add(pools.people_rows[i])
    donors.update((pools.people_rows[j], pools.people_rows[k]))
    return View(given=a[0] or pools.a_given(rng, sex), family=b[2], dob=c[3], sex=sex,
                postcodes=postcodes, addresses=addresses), donors


# How a household member the agency does not hold relates to one it does, when the
# records cannot say: a twin shares the date of birth (about one child in thirty is a
# twin), a sibling is a few years apart, a parent or child a generation.
TWIN_SHARE = 0.03
SIBLING_SHARE = 0.55


RELATIONS = ("twin", "sibling", "generation")


def relation_shares(twin_share: float) -> dict[str, float]:
    """How household members asked about relate to the one held."""
    return {"twin": twin_share, "sibling": SIBLING_SHARE,
            "generation": max(0.0, 1.0 - twin_share - SIBLING_SHARE)}


def household_member(of: PersonRecord, pools: Pools, rng: random.Random,
                     today: dt.date, twin_share: float = TWIN_SHARE,
                     avoid: set[str] | frozenset[str] = frozenset(),
                     kind: str | None = None) -> View:
    """Someone living with the person of ``of``: the same family name and address, another
    given name (none of ``avoid``, the names already in the household), a date of birth as
    their relation (``kind``, else drawn with a twin at ``twin_share``) has it."""
    base = View.of(of)
    sex = rng.choice(("F", "M"))
    given = base.given.split(" ", 1)[0] if base.given else ""
    used = {given, *avoid} - {""}
    other = given
    for _ in range(20):  # parents do not give two children one name
        other = pools.a_given(rng, sex)
        if other and not any(other == u or nicknames.same_group(other, u) for u in used):
            break
    if kind is None:
        x = rng.random()
        kind = "twin" if x < twin_share else "sibling" if x < twin_share + SIBLING_SHARE else (
            "generation")
    dob = base.dob
    if dob is not None and kind != "twin":
        years = rng.randint(1, 8) if kind == "sibling" else rng.randint(18, 40)
        years *= rng.choice((-1, 1))
        try:
            dob = dt.date(min(max(dob.year + years, 1900), today.year),
                          rng.randint(1, 12), rng.randint(1, 28))
        except ValueError:
            dob = base.dob
        if dob is not None and dob > today and base.dob is not None:
            # the other way: older, on the 28th where the person was born on 29 February
            dob = dt.date(base.dob.year - abs(years), base.dob.month, min(base.dob.day, 28))
    return View(given=other, family=base.family, dob=dob, sex=sex,
                postcodes=base.postcodes[:1], addresses=base.addresses[:1])
