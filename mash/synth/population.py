"""Synthetic people with realistic UK identifiers, reproducible by seed."""

from __future__ import annotations

import datetime as dt
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

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.given, self.middle, self.family) if p)


def _weighted(rng: random.Random, items: list[str], offset: int = 3) -> str:
    # Zipf-like: the i-th item has weight 1/(i+offset): common names are common.
    weights = _weights_cache.setdefault(
        (len(items), offset), [1 / (i + offset) for i in range(len(items))])
    return rng.choices(items, weights=weights)[0]


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
    population of millions fits; a bitmap of the numbers used costs 1.25 MB.
    """

    SPACE = 10**7

    def __init__(self) -> None:
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
            first = f"99{k:07d}"
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
    pc = postcode(rng)
    p = Person(
        person_id=person_id,
        given=title(given), middle=title(middle), family=title(family), sex=sex,
        date_of_birth=dob, postcode=pc,
        address=f"{rng.randrange(1, 200)} {rng.choice(names.STREET_NAMES)}",
        nhs_number=numbers.nhs(rng) if numbers is not None else nhs_number(rng),
    )
    if rng.random() < 0.3:
        p.previous_postcodes.append(postcode(rng))
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
