"""Agency record sets with overlapping people and controlled corruption, with ground truth.

Each agency holds a share of a population, as it recorded them: typos, nicknames, swapped
names, day/month swaps, 01/01 placeholder dates, old addresses, missing identifiers. Queries
are drawn for people an agency holds (``in_records``) and for people it does not
(``strangers`` from a different seed), and are corrupted independently of the records.
Everything is reproducible by seed.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from mash.matching import nicknames
from mash.matching.corruption import typo
from mash.normalise import name_tokens
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery
from mash.synth import names
from mash.synth.population import (
    Person,
    UniqueNumbers,
    dwelling,
    households,
    person,
    surname,
    title,
)


@dataclass(frozen=True)
class Corruption:
    """Per-field error probabilities applied to one view (record or query) of a person."""

    name: str
    typo: float = 0.0  # a keyboard typo in the given or family name
    nickname: float = 0.0  # Bill for William
    swap_names: float = 0.0  # given and family names swapped
    drop_barrel: float = 0.0  # one half of a double-barrelled surname dropped
    dob_swap: float = 0.0  # day and month swapped
    dob_placeholder: float = 0.0  # 01/01 of the right year
    dob_typo: float = 0.0  # one of day, month or year off by one digit
    dob_missing: float = 0.0
    moved: float = 0.0  # the other side has an older or newer address
    postcode_missing: float = 0.0
    identifier_missing: float = 0.5  # the identifier is not recorded / not given
    given_replaced: float = 0.0  # another given name altogether (known by another name)
    family_replaced: float = 0.0  # another family name (married, a step-parent's)
    dob_replaced: float = 0.0  # another date altogether
    address_missing: float = 0.0  # the address lines not given (the postcode may be)


LEVELS: dict[str, Corruption] = {
    "clean": Corruption("clean"),
    "low": Corruption("low", typo=0.03, nickname=0.03, swap_names=0.01, drop_barrel=0.2,
                      dob_swap=0.01, dob_placeholder=0.005, dob_typo=0.01, dob_missing=0.01,
                      moved=0.1, postcode_missing=0.05, given_replaced=0.01,
                      family_replaced=0.01, dob_replaced=0.005, address_missing=0.2),
    "medium": Corruption("medium", typo=0.08, nickname=0.08, swap_names=0.03, drop_barrel=0.3,
                         dob_swap=0.03, dob_placeholder=0.02, dob_typo=0.03, dob_missing=0.03,
                         moved=0.2, postcode_missing=0.1, identifier_missing=0.6,
                         given_replaced=0.03, family_replaced=0.02, dob_replaced=0.01,
                         address_missing=0.3),
    "high": Corruption("high", typo=0.15, nickname=0.15, swap_names=0.05, drop_barrel=0.5,
                       dob_swap=0.05, dob_placeholder=0.05, dob_typo=0.06, dob_missing=0.05,
                       moved=0.35, postcode_missing=0.15, identifier_missing=0.7,
                       given_replaced=0.06, family_replaced=0.04, dob_replaced=0.03,
                       address_missing=0.4),
}

def _nickname(given: str, rng: random.Random) -> str:
    options = nicknames.variants(given.lower())
    return title(rng.choice(options)) if options else given


def _dob_typo(dob: dt.date, rng: random.Random) -> dt.date:
    for _ in range(10):
        part = rng.randrange(3)
        try:
            if part == 0:
                return dob.replace(day=dob.day + rng.choice((-1, 1)))
            if part == 1:
                return dob.replace(month=dob.month + rng.choice((-1, 1)))
            return dob.replace(year=dob.year + rng.choice((-1, 1, -10, 10)))
        except ValueError:
            continue
    return dob


@dataclass
class View:
    """One agency's (or one analyst's) version of a person."""

    person_id: str
    given: str
    middle: str
    family: str
    sex: str
    date_of_birth: dt.date | None
    postcodes: list[str]
    nhs_number: str
    upn: str
    pnc_id: str
    addresses: list[str] = field(default_factory=list)


def view(p: Person, level: Corruption, rng: random.Random, today: dt.date) -> View:
    given, family = p.given, p.family
    if rng.random() < level.given_replaced:
        pool = names.FEMALE if p.sex == "F" else names.MALE
        given = title(rng.choice(pool))
    if rng.random() < level.family_replaced:
        family = title(surname(rng))
    if rng.random() < level.nickname:
        given = _nickname(given, rng)
    if "-" in family and rng.random() < level.drop_barrel:
        family = rng.choice(family.split("-"))
    if rng.random() < level.typo:
        if rng.random() < 0.5:
            given = typo(given, rng)
        else:
            family = typo(family, rng)
    if rng.random() < level.swap_names:
        given, family = family, given
    born = p.date_of_birth
    dob: dt.date | None = born
    r = rng.random()
    if r < level.dob_missing:
        dob = None
    elif r < level.dob_missing + level.dob_placeholder:
        dob = born.replace(month=1, day=1)
    elif r < level.dob_missing + level.dob_placeholder + level.dob_swap and born.day <= 12:
        dob = born.replace(month=born.day, day=born.month)
    elif r < level.dob_missing + level.dob_placeholder + level.dob_swap + level.dob_typo:
        dob = _dob_typo(born, rng)
    elif r < (level.dob_missing + level.dob_placeholder + level.dob_swap + level.dob_typo
              + level.dob_replaced):
        dob = born.replace(year=max(1900, min(today.year, born.year + rng.randint(-30, 30))),
                          month=rng.randint(1, 12), day=rng.randint(1, 28))
    if dob is not None and dob > today:
        dob = p.date_of_birth
    postcodes, addresses = [p.postcode], [p.address] if p.address else []
    if rng.random() < level.moved:
        # an old address: the previous one when there is one, else one never seen elsewhere
        if p.previous_postcodes:
            postcodes = [p.previous_postcodes[0]]
            addresses = list(p.previous_addresses[:1])
        else:
            new_postcode, new_address = dwelling(rng)
            postcodes, addresses = [new_postcode], [new_address]
    if addresses and rng.random() < level.typo:
        addresses = [_address_typo(addresses[0], rng)]
    if rng.random() < level.postcode_missing:
        postcodes = []
    if rng.random() < level.address_missing:
        addresses = []
    keep = rng.random() >= level.identifier_missing
    return View(p.person_id, given, p.middle, family, p.sex, dob, postcodes,
                p.nhs_number if keep else "", p.upn if keep else "",
                p.pnc_id if keep else "", addresses)


def _address_typo(address: str, rng: random.Random) -> str:
    """A slip in the street name (the first word after the house number)."""
    words = address.split(" ")
    for i, w in enumerate(words):
        if w.isalpha() and len(w) > 3 and i > 0 and words[i - 1].rstrip(",").isdigit():
            words[i] = typo(w, rng)
            break
    return " ".join(words)


def _name(given: str, middle: str, family: str) -> Name:
    return Name(*(" ".join(name_tokens(part, family=i == 2))
                   for i, part in enumerate((given, middle, family))))


def to_record(v: View, source: str, record_id: str) -> PersonRecord:
    """A view as an agency source would load it (same normalisation as the source mapping)."""
    identifiers = {k: val for k, val in (("nhs_number", v.nhs_number), ("upn", v.upn),
                                         ("pnc_id", v.pnc_id)) if val}
    return PersonRecord(record_id=record_id, source=source,
                        names=(_name(v.given, v.middle, v.family),),
                        date_of_birth=v.date_of_birth, sex=v.sex,
                        postcodes=tuple(v.postcodes), identifiers=identifiers,
                        values={"person_id": v.person_id}, addresses=tuple(v.addresses))


def to_query(v: View, with_identifiers: bool = True) -> SubjectQuery:
    """A view as an analyst would type it (the middle name is often not known)."""
    identifiers = {k: val for k, val in (("nhs_number", v.nhs_number), ("upn", v.upn),
                                         ("pnc_id", v.pnc_id)) if val and with_identifiers}
    return SubjectQuery(names=(_name(v.given, "", v.family),), date_of_birth=v.date_of_birth,
                        sex=v.sex, postcodes=tuple(v.postcodes), identifiers=identifiers,
                        addresses=tuple(v.addresses))


@dataclass
class Scenario:
    """One agency's records and labelled queries against them."""

    level: Corruption
    records: list[PersonRecord]
    in_records: list[tuple[SubjectQuery, str]]  # (query, the person_id it should find)
    strangers: list[SubjectQuery]  # people the agency does not hold
    # people the agency does not hold who live with someone it does (a twin, a sibling, a
    # parent): (query, the person_id of the held member they live with)
    household: list[tuple[SubjectQuery, str]] = field(default_factory=list)
    # per household query: whether it is a same-sex twin of someone the agency holds (the
    # household member hardest to tell from the person: bench.ceiling)
    household_twins: list[bool] = field(default_factory=list)


def scenario(n_records: int, n_queries: int, level: str | Corruption, seed: int,
             today: dt.date = dt.date(2026, 11, 1), n_strangers: int | None = None,
             n_household: int = 0, share: float = 0.5) -> Scenario:
    """An agency holding ``n_records`` people of an area's households (``share`` of its
    people, chosen at random, so that it holds some members of a household and not
    others), each corrupted at ``level``; queries for ``n_queries`` of them, for
    ``n_strangers`` (default ``n_queries``) people of other households, and for
    ``n_household`` people it does not hold who live with someone it does; every view
    corrupted independently."""
    lvl = LEVELS[level] if isinstance(level, str) else level
    rng = random.Random(seed * 7919 + 1)
    numbers = UniqueNumbers()
    area = households(max(1, round(n_records / share)), seed=seed, today=today,
                      numbers=numbers)
    people = rng.sample(area, min(n_records, len(area)))
    held = {p.person_id for p in people}
    records = [to_record(view(p, lvl, rng, today), "synthetic", f"R{i:08d}")
               for i, p in enumerate(people)]
    chosen = rng.sample(people, min(n_queries, len(people)))
    in_records = [(to_query(view(p, lvl, rng, today)), p.person_id) for p in chosen]
    outsiders = households(n_queries if n_strangers is None else n_strangers,
                           seed=seed + 10_007, today=today, numbers=numbers, prefix="S")
    outsiders = outsiders[:n_queries if n_strangers is None else n_strangers]
    strangers = [to_query(view(p, lvl, rng, today)) for p in outsiders]
    held_in: dict[str, str] = {}
    for p in people:
        held_in.setdefault(p.household, p.person_id)
    housemates = [p for p in area if p.person_id not in held and p.household in held_in]
    members = rng.sample(housemates, min(n_household, len(housemates)))
    household = [(to_query(view(p, lvl, rng, today)), held_in[p.household]) for p in members]
    born = {(p.household, p.date_of_birth, p.sex) for p in people}
    twins = [(p.household, p.date_of_birth, p.sex) in born for p in members]
    return Scenario(lvl, records, in_records, strangers, household, twins)


def agencies(people: list[Person], shares: dict[str, float], level: str, seed: int,
             today: dt.date = dt.date(2026, 11, 1)) -> dict[str, list[PersonRecord]]:
    """Several agencies' overlapping record sets: each holds a random share of ``people``,
    recorded with its own errors. ``values['person_id']`` is the ground truth."""
    rng = random.Random(seed)
    lvl = LEVELS[level]
    out: dict[str, list[PersonRecord]] = {}
    for agency, share in shares.items():
        held = [p for p in people if rng.random() < share]
        out[agency] = [to_record(view(p, lvl, rng, today), agency, f"{agency}-{i:07d}")
                       for i, p in enumerate(held)]
    return out


def with_alias(record: PersonRecord, given: str, family: str) -> PersonRecord:
    return replace(record, names=(*record.names, _name(given, "", family)))


def stream(n: int, level: str, seed: int, numbers: UniqueNumbers, sample_every: int = 0,
           today: dt.date = dt.date(2026, 11, 1), start: int = 0
           ) -> tuple[list[tuple[int, SubjectQuery]], Iterator[PersonRecord]]:
    """Records for ``n`` people one at a time (nothing kept), for indexing at scale.

    Returns (queries, records): as the iterator runs, every ``sample_every``-th person also
    gets an independently corrupted query, appended to ``queries`` as (row, query).
    ``start`` numbers the rows (and the ids) from there, for one chunk of a larger set
    made in parallel (each chunk with its own ``seed`` and ``numbers``).
    """
    lvl = LEVELS[level]
    queries: list[tuple[int, SubjectQuery]] = []

    def records() -> Iterator[PersonRecord]:
        rng, noise = random.Random(seed), random.Random(seed * 7919 + 1)
        for i in range(start, start + n):
            p = person(rng, f"P{seed}-{i:07d}", today, numbers=numbers)
            yield to_record(view(p, lvl, noise, today), "synthetic", f"R{i:08d}")
            if sample_every and i % sample_every == 0:
                queries.append((i, to_query(view(p, lvl, noise, today))))

    return queries, records()


def strangers(n: int, level: str, seed: int, numbers: UniqueNumbers,
              today: dt.date = dt.date(2026, 11, 1)) -> list[SubjectQuery]:
    """Queries for ``n`` people from another seed, not in the records of ``seed`` (pass the
    same ``numbers``, after the records were made, so that no NHS number is shared)."""
    rng = random.Random(seed + 10_007)
    noise = random.Random(seed + 20_011)
    return [to_query(view(person(rng, f"S{i}", today, numbers=numbers), LEVELS[level], noise,
                          today))
            for i in range(n)]
