"""UK addresses as the matcher compares them: flat, house number or name, street, locality.

Agencies hold addresses as free text in one or several columns ("Flat 2, 14 Acacia Rd,
Headingley, Leeds LS6 3AB"). ``parse`` folds the text, expands the usual abbreviations
(Rd/Road, St/Street, Ave/Avenue, Flat/Apt/Apartment...), takes out a UK postcode written in
it, and splits what is left into:

- ``flat``: the sub-building (Flat 2, Apartment 3, Unit 5, 2/14 -> 2, "2, 14 Acacia Road");
- ``number``: the house number (14, 14a, 12-14);
- ``name``: a house or building name where there is no number (Rose Cottage);
- ``street``: the street with its type spelt out (acacia road);
- ``locality``: every other word (district, town, county), for a weak "same area" level.

``premises`` is what identifies a dwelling on its street: the number (or the house name) and
the flat. Parsing is pure and deterministic: blocking keys and blind match tokens are made
from its output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mash.normalise import POSTCODE_IN_TEXT, fold, normalise_postcode

# Street types and their abbreviations (Royal Mail's common forms), spelt out.
STREET_TYPES: dict[str, str] = {
    "road": "road", "rd": "road", "street": "street", "str": "street",
    "avenue": "avenue", "ave": "avenue", "av": "avenue", "avn": "avenue",
    "lane": "lane", "ln": "lane", "drive": "drive", "dr": "drive", "drv": "drive",
    "crescent": "crescent", "cres": "crescent", "cresc": "crescent", "cr": "crescent",
    "court": "court", "ct": "court", "crt": "court", "place": "place", "pl": "place",
    "square": "square", "sq": "square", "gardens": "gardens", "gdns": "gardens",
    "gdn": "gardens", "grove": "grove", "gr": "grove", "gro": "grove", "close": "close",
    "cl": "close", "terrace": "terrace", "terr": "terrace", "ter": "terrace", "tce": "terrace",
    "park": "park", "pk": "park", "way": "way", "wy": "way", "walk": "walk", "wk": "walk",
    "row": "row", "hill": "hill", "rise": "rise", "vale": "vale", "view": "view",
    "mews": "mews", "green": "green", "grn": "green", "gate": "gate", "parade": "parade",
    "pde": "parade", "circus": "circus", "circuit": "circuit", "cct": "circuit",
    "boulevard": "boulevard", "blvd": "boulevard", "heights": "heights", "hts": "heights",
    "mount": "mount", "mt": "mount", "fold": "fold", "croft": "croft", "garth": "garth",
    "wynd": "wynd", "brow": "brow", "bank": "bank", "side": "side", "end": "end",
    "approach": "approach", "app": "approach", "chase": "chase", "cove": "cove",
    "highway": "highway", "hwy": "highway", "broadway": "broadway", "esplanade": "esplanade",
    "esp": "esplanade", "quay": "quay", "wharf": "wharf", "yard": "yard", "yd": "yard",
    "passage": "passage", "pass": "passage", "alley": "alley", "loke": "loke",
}
# Words that name a part of a building: what follows them is the flat.
FLAT_WORDS = frozenset({"flat", "flt", "apartment", "apt", "appt", "unit", "room", "rm",
                        "maisonette", "suite", "studio", "bedsit", "no"})
# Words that say nothing about where: dropped from the locality.
NOISE = frozenset({"the", "of", "and", "uk", "united", "kingdom", "england", "wales",
                   "scotland", "gb", "c", "o", "co"})
# Street types split off a name they were typed onto ("hodgsoncrescent", "pridhamstreet"):
# long enough that no ordinary street name merely ends in them.
GLUED_TYPES = ("street", "road", "avenue", "crescent", "place", "drive", "close", "court",
               "lane", "grove", "circuit", "terrace", "parade", "gardens", "square")
_NUMBER = re.compile(r"^\d{1,5}[a-z]?$")
_RANGE = re.compile(r"^(\d{1,5})[a-z]?-(\d{1,5})[a-z]?$")
_SLASHED = re.compile(r"^(\d{1,4}[a-z]?)/(\d{1,5}[a-z]?)$")  # 2/14: flat 2 of number 14
_LETTER = re.compile(r"^[a-z]$")
_SEPARATORS = re.compile(r"[^a-z0-9/\-,]+")


@dataclass(frozen=True, slots=True)
class Address:
    flat: str = ""
    number: str = ""
    name: str = ""
    street: str = ""
    locality: tuple[str, ...] = ()
    postcode: str = ""
    # every line that may be the street, the parsed street first (address lines are often
    # swapped: "27 Jarrah, Mackinnon Street")
    streets: tuple[str, ...] = ()

    @property
    def premises(self) -> str:
        """The dwelling on its street: 'f2|14' (flat 2 of 14), '14', 'rose cottage'."""
        where = self.number or self.name
        return f"f{self.flat}|{where}" if self.flat and where else where

    @property
    def key(self) -> str:
        """The premises and street as one string ('' when either is missing): the same
        key means the same dwelling on a street of that name."""
        return f"{self.premises}|{self.street}" if self.premises and self.street else ""

    @property
    def text(self) -> str:
        """The normalised address as one line (what a NOT_KNOWN says was searched)."""
        parts = [f"flat {self.flat}" if self.flat else "", self.number, self.name,
                 self.street, " ".join(self.locality), self.postcode]
        return " ".join(p for p in parts if p)

    def __bool__(self) -> bool:
        return bool(self.premises or self.street or self.locality)


def _unglue(word: str) -> list[str]:
    if word in STREET_TYPES:
        return [word]
    for kind in GLUED_TYPES:
        if word.endswith(kind) and len(word) - len(kind) >= 3 and word[:-len(kind)].isalpha():
            return [word[:-len(kind)], kind]
    return [word]


def _chunks(text: str) -> list[list[str]]:
    """Folded words, in comma-separated chunks, with abbreviations' full stops gone."""
    folded = fold(text).replace("'", "").replace("\u2019", "").replace(".", " ")
    folded = _SEPARATORS.sub(" ", folded)
    out = []
    for chunk in folded.split(","):
        words = [part for raw in chunk.split() if (w := raw.strip("-/")) for part in _unglue(w)]
        if words:
            out.append(words)
    return out


def _is_number(word: str) -> bool:
    return bool(_NUMBER.match(word) or _RANGE.match(word))


def _street_words(words: list[str]) -> list[str]:
    """A street's words with the type spelt out; 'st' is Street at the end and Saint
    before a name (St James Road)."""
    out = []
    for i, w in enumerate(words):
        if w == "st":
            out.append("street" if i == len(words) - 1 else "saint")
        elif i == len(words) - 1 or words[i + 1] in STREET_TYPES:
            out.append(STREET_TYPES.get(w, w) if i > 0 else w)
        else:
            out.append(w)
    return out


def _has_type(words: list[str]) -> bool:
    return len(words) > 1 and (words[-1] in STREET_TYPES or words[-1] == "st")


@lru_cache(maxsize=100_000)
def parse(text: str) -> Address:
    """One address line (or several joined with commas) as its parts."""
    if not text or not text.strip():
        return Address()
    postcode = ""
    found = POSTCODE_IN_TEXT.search(text.upper())
    if found:
        normalised = normalise_postcode(found.group(0))
        if normalised:
            postcode = normalised
            text = text[:found.start()] + " " + text[found.end():]
    chunks = _chunks(text)
    lines = [" ".join(_street_words([w for w in c if not _is_number(w) and w not in FLAT_WORDS]))
             for c in chunks]
    flat = number = name = ""
    street: list[str] = []
    rest: list[str] = []
    # flat: a flat word and what follows it; 2/14; a chunk that is a lone number or letter
    # followed by a chunk that starts with a number ("2, 14 Acacia Road")
    for c, words in enumerate(chunks):
        for i, w in enumerate(words[:-1]):
            if w in FLAT_WORDS and (_is_number(words[i + 1]) or _LETTER.match(words[i + 1])):
                flat = words[i + 1]
                del words[i:i + 2]
                break
        if flat:
            break
        if (c + 1 < len(chunks) and len(words) == 1
                and (_is_number(words[0]) or _LETTER.match(words[0]))
                and _is_number(chunks[c + 1][0])):
            flat = words[0]
            words.clear()
            break
    chunks = [c for c in chunks if c]
    # the house number and the street after it: in the first chunk, or in the second when
    # the first is a building's name ("Rose Court, 3 Mill Lane"), never in the town's line
    searched = chunks[:1] + [c for c in chunks[1:2] if _is_number(c[0])]
    for c, words in enumerate(searched):
        for i, w in enumerate(words):
            slashed = _SLASHED.match(w)
            if slashed and not flat:
                flat, w = slashed.group(1), slashed.group(2)
            if _is_number(w):
                number = w
                after = words[i + 1:]
                if not after and c + 1 < len(chunks):
                    after = chunks[c + 1]
                    chunks[c + 1] = []
                street = after
                before = words[:i]
                if before:
                    name = " ".join(before)
                words.clear()
                break
        if number:
            break
    chunks = [c for c in chunks if c]
    if not number:
        # no number: the street is the first chunk that ends in a street type (or, failing
        # that, the first chunk); a chunk before it is the house name
        typed = [i for i, words in enumerate(chunks) if _has_type(words)]
        at = typed[0] if typed else (1 if len(chunks) > 2 else 0)
        if len(chunks) == 1 and not typed:
            at = -1  # one line, no number and no street type: a place, not a street
        if chunks and at >= 0:
            street = chunks[at]
            if at > 0:
                name = " ".join(chunks[0])
            chunks = [c for i, c in enumerate(chunks) if i != at and not (at > 0 and i == 0)]
    elif not street and chunks:
        street = chunks.pop(0)
    for words in chunks:
        rest.extend(words)
    street_text = " ".join(_street_words(street))
    locality = tuple(dict.fromkeys(w for w in rest if w not in NOISE and w not in FLAT_WORDS))
    others = [line for line in lines[:3] if line and line != street_text
              and not (len(line.split()) == 1 and len(line) < 3)]
    return Address(flat=flat, number=number, name=name, street=street_text,
                   locality=locality, postcode=postcode,
                   streets=tuple(dict.fromkeys([s for s in (street_text, *others) if s])))
