"""Synthetic people with realistic UK identifiers, reproducible by seed."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import random
from dataclasses import dataclass, field

from mash.normalise import nhs_check_digit, pnc_check_letter, upn_check_letter
from mash.synth import names

_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters used in inward codes


@dataclass
class Person:
    """The truth about one synthetic person; agency records are (noisy) views of it."""

    person_id: str
    given: str
    middle: str
    family: str
    sex: str
    date_of_birth: dt.date
    postcode: str
    address: str
    previous_postcodes: list[str] = field(default_factory=list)
    nhs_number: str = ""
    upn: str = ""
    pnc_id: str = ""
    aliases: list[tuple[str, str]] = field(default_factory=list)
    household: str = ""  # people of one household share it (and an address)
    previous_addresses: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.given, self.middle, self.family) if p)


def _weighted(rng: random.Random, items: list[str], offset: int = 3) -> str:
    # Zipf-like: the i-th item has weight 1/(i+offset): common names are common. (The
    # cumulative weights are cached: the same draws as ``weights=`` without summing them
    # again for every name.)
    cum = _weights_cache.get((len(items), offset))
    if cum is None:
        cum = _weights_cache[(len(items), offset)] = list(
            itertools.accumulate(1 / (i + offset) for i in range(len(items))))
    return rng.choices(items, cum_weights=cum)[0]


_weights_cache: dict[tuple[int, int], list[float]] = {}


def surname(rng: random.Random) -> str:
    """Common surnames (Smith about 2%) and a long tail of rarer ones."""
    if rng.random() < 0.35:
        return rng.choice(names.RARE_SURNAMES)
    return _weighted(rng, names.SURNAMES, offset=10)


def title(word: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in word.split("-")) \
        .replace("Obrien", "O'Brien").replace("Oconnor", "O'Connor").replace("Mccarthy", "McCarthy")


def nhs_number(rng: random.Random) -> str:
    while True:
        first = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = nhs_check_digit(first)
        if check is not None:
            return first + str(check)


class UniqueNumbers:
    """Hands out NHS numbers that no two synthetic people share, as real ones are unique.

    They start with 99 (ten million numbers, none of them issued to patients), so that a
    population of millions fits; a bitmap of the numbers used costs 1.25 MB. About one in
    eleven has no valid check digit, so one prefix holds at most about 9,090,000 people (and
    drawing slows as it fills): generators working in parallel each take their own
    ``prefix`` (``90`` to ``98`` start with 9 too, none issued).
    """

    SPACE = 10**7

    def __init__(self, prefix: str = "99") -> None:
        assert len(prefix) == 2 and prefix.isdigit(), prefix
        self.prefix = prefix
        self.used = bytearray(self.SPACE // 8 + 1)

    def _take(self, k: int) -> bool:
        byte, bit = divmod(k, 8)
        if self.used[byte] >> bit & 1:
            return False
        self.used[byte] |= 1 << bit
        return True

    def nhs(self, rng: random.Random) -> str:
        while True:
            k = rng.randrange(self.SPACE)
            if not self._take(k):
                continue
            first = f"{self.prefix}{k:07d}"
            check = nhs_check_digit(first)
            if check is not None:
                return first + str(check)


def upn(rng: random.Random, la_code: str = "383") -> str:
    rest = la_code + "".join(str(rng.randrange(10)) for _ in range(9))
    return upn_check_letter(rest) + rest


def pnc_id(rng: random.Random, year: int) -> str:
    yy = f"{year % 100:02d}"
    serial = str(rng.randrange(1, 9_999_999))
    return f"{yy}/{serial.zfill(7)}{pnc_check_letter(yy, serial)}"


def postcode(rng: random.Random) -> str:
    district = rng.choice(names.DISTRICTS)
    unit = rng.choice(_UNIT_LETTERS) + rng.choice(_UNIT_LETTERS)
    return f"{district} {rng.randrange(1, 10)}{unit}"


def person(rng: random.Random, person_id: str, today: dt.date,
           min_age: int = 0, max_age: int = 90, numbers: UniqueNumbers | None = None) -> Person:
    sex = rng.choice("FM")
    pool = names.FEMALE if sex == "F" else names.MALE
    age_days = rng.randrange(min_age * 365 + 1, max_age * 365)
    dob = today - dt.timedelta(days=age_days)
    # 1 in 50 records of children born on 1 January is genuine; placeholders are added as noise.
    given = _weighted(rng, pool)
    middle = _weighted(rng, pool) if rng.random() < 0.45 else ""
    family = surname(rng)
    if rng.random() < 0.03:
        family = f"{family}-{surname(rng)}"
    pc, address = dwelling(rng)
    p = Person(
        person_id=person_id,
        given=title(given), middle=title(middle), family=title(family), sex=sex,
        date_of_birth=dob, postcode=pc, address=address,
        nhs_number=numbers.nhs(rng) if numbers is not None else nhs_number(rng),
    )
    if rng.random() < 0.3:
        previous, previous_address = dwelling(rng)
        p.previous_postcodes.append(previous)
        p.previous_addresses.append(previous_address)
    return _with_identifiers(p, rng, today, dob)


def _with_identifiers(p: Person, rng: random.Random, today: dt.date, dob: dt.date) -> Person:
    """A UPN for school ages, a PNC ID for some of those ten and over."""
    age = (today - dob).days // 365
    if 4 <= age <= 19:
        p.upn = upn(rng)
    if age >= 10 and rng.random() < 0.15:
        p.pnc_id = pnc_id(rng, today.year - rng.randrange(0, max(1, age - 9)))
    return p


def population(n: int, seed: int, today: dt.date | None = None, min_age: int = 0,
               max_age: int = 90, numbers: UniqueNumbers | None = None) -> list[Person]:
    """``n`` people with unique NHS numbers (pass one ``numbers`` to several populations
    that must not share any, e.g. the people held and the strangers asked about)."""
    rng = random.Random(seed)
    today = today or dt.date(2026, 11, 1)
    numbers = numbers or UniqueNumbers()
    return [person(rng, f"P{seed}-{i:07d}", today, min_age, max_age, numbers)
            for i in range(n)]


_TOWNS = {"LS": "Leeds", "BD": "Bradford", "WF": "Wakefield", "HX": "Halifax",
          "HD": "Huddersfield"}
_STREET_TYPES = ("Road", "Street", "Lane", "Avenue", "Grove", "Close", "Drive", "Crescent",
                 "Terrace", "Way", "Gardens", "Place")


@functools.cache
def streets_of(district: str) -> list[str]:
    """The streets of one postcode district (the same for every seed: places are fixed)."""
    rng = random.Random(f"streets:{district}")
    heads = names.SURNAME_HEADS
    out = {names.STREET_NAMES[rng.randrange(len(names.STREET_NAMES))] for _ in range(4)}
    while len(out) < 60:
        out.add(f"{title(rng.choice(heads) + rng.choice(names.SURNAME_TAILS))} "
                f"{rng.choice(_STREET_TYPES)}")
    return sorted(out)


def dwelling(rng: random.Random) -> tuple[str, str]:
    """(postcode, address): a house or a flat on a street of the postcode's district."""
    pc = postcode(rng)
    district = pc.split(" ")[0]
    street = rng.choice(streets_of(district))
    town = _TOWNS.get(district.rstrip("0123456789"), "Leeds")
    number = rng.randrange(1, 200)
    flat = f"Flat {rng.randrange(1, 12)}, " if rng.random() < 0.15 else ""
    return pc, f"{flat}{number} {street}, {town}"


_SIZES = ((1, 28), (2, 32), (3, 16), (4, 14), (5, 7), (6, 3))


def _member(rng: random.Random, pid: str, household: str, sex: str, given: str, family: str,
            dob: dt.date, home: tuple[str, str], moved: tuple[str, str] | None,
            today: dt.date, numbers: UniqueNumbers, middle_pool: bool = True) -> Person:
    pool = names.FEMALE if sex == "F" else names.MALE
    middle = _weighted(rng, pool) if middle_pool and rng.random() < 0.45 else ""
    p = Person(person_id=pid, given=title(given), middle=title(middle), family=title(family),
               sex=sex, date_of_birth=dob, postcode=home[0], address=home[1],
               nhs_number=numbers.nhs(rng), household=household)
    if moved is not None:
        p.previous_postcodes.append(moved[0])
        p.previous_addresses.append(moved[1])
    return _with_identifiers(p, rng, today, dob)


def _birthday(rng: random.Random, born: int, today: dt.date) -> dt.date:
    for _ in range(10):
        try:
            value = dt.date(born, rng.randint(1, 12), rng.randint(1, 31))
        except ValueError:
            continue
        if value <= today:
            return value
    return dt.date(min(born, today.year - 1), 6, 15)


def households(n: int, seed: int, today: dt.date | None = None,
               numbers: UniqueNumbers | None = None, prefix: str = "P") -> list[Person]:
    """At least ``n`` people living in households, as a MASH's area holds them: people
    alone, couples (one surname or two), parents with children who share a surname,
    siblings a few years apart, twins (about one birth in 35), a flat in a block, a
    household that moved (its previous address kept). ``household`` groups them."""
    rng = random.Random(f"households:{seed}")
    today = today or dt.date(2026, 11, 1)
    numbers = numbers or UniqueNumbers()
    people: list[Person] = []
    h = 0
    while len(people) < n:
        h += 1
        hid = f"{prefix}{seed}-H{h:07d}"
        home = dwelling(rng)
        moved = dwelling(rng) if rng.random() < 0.3 else None
        size = rng.choices([k for k, _ in _SIZES], [w for _, w in _SIZES])[0]
        family = surname(rng)
        if rng.random() < 0.03:
            family = f"{family}-{surname(rng)}"
        children = 0 if size == 1 else rng.choices((0, size - 1, size - 2), (25, 25, 50))[0]
        adults = size - children
        first_sex = rng.choice("FM")
        parent_age = rng.randint(24, 50) if children else rng.randint(18, 90)
        members: list[tuple[str, str, dt.date]] = []  # (sex, family, dob)
        for a in range(adults):
            sex = first_sex if a == 0 else ("M" if first_sex == "F" else "F")
            own = family if a == 0 or rng.random() < 0.75 else surname(rng)
            age = parent_age if a == 0 else max(18, parent_age + rng.randint(-6, 6))
            members.append((sex, own, _birthday(rng, today.year - age, today)))
        # the youngest child's age, then older siblings a few years apart each (a twin
        # shares the date of birth of the one before)
        age = rng.randint(0, 12)
        previous: dt.date | None = None
        for _ in range(children):
            if previous is not None and rng.random() < 0.03:
                dob = previous  # a twin
            else:
                dob = _birthday(rng, today.year - min(age, parent_age - 17), today)
                age += rng.randint(1, 4)
            members.append((rng.choice("FM"), family, dob))
            previous = dob
        used: set[str] = set()
        for i, (sex, own, dob) in enumerate(members):
            pool = names.FEMALE if sex == "F" else names.MALE
            given = _weighted(rng, pool)
            for _ in range(10):  # no two in a household share a first name
                if given not in used:
                    break
                given = _weighted(rng, pool)
            used.add(given)
            people.append(_member(rng, f"{hid}-{i}", hid, sex, given, own, dob, home, moved,
                                  today, numbers))
    return people
