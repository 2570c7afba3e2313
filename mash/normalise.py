"""Normalisation of UK person data shared by the broker, the agents and the matcher."""

from __future__ import annotations

import re
import unicodedata

# Titles and honorifics, dropped only in front of a name ("Mr Sean O'Brien" -> sean obrien),
# never when they are the name itself: Lord, Master, Dean, Major, Bishop, Judge and Knight
# are family names too, and a family name field holding "Lord" is the family name Lord.
TITLES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "revd", "sir", "dame", "lady",
     "lord", "master"}
)
SUFFIXES = frozenset({"jr", "jnr", "sr", "snr", "ii", "iii", "iv"})
_NON_LETTER = re.compile(r"[^a-z\s-]")
_SPACES = re.compile(r"[\s-]+")


def fold(text: str) -> str:
    """Lower-case ASCII letters with accents removed: 'Zoë' -> 'zoe'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def name_tokens(text: str, *, family: bool = False) -> list[str]:
    """Words of a name, folded, without apostrophes or punctuation, and without the titles
    in front of it or the suffixes after it.

    "Mr Seán O'Brien-Smith Jnr" -> ["sean", "obrien", "smith"]; "Lord" -> ["lord"].
    ``family``: the text is a family name field, so a title is dropped only when it is
    followed by another name ("Mr Lord" -> ["lord"]) and is otherwise the name itself.
    """
    folded = fold(text).replace("'", "").replace("\u2019", "").replace(".", " ")
    folded = _NON_LETTER.sub(" ", folded)
    tokens = [t for t in _SPACES.split(folded) if t]
    while len(tokens) > 1 and tokens[0] in TITLES:
        tokens.pop(0)
    while len(tokens) > 1 and tokens[-1] in SUFFIXES:
        tokens.pop()
    if not family and len(tokens) == 1 and tokens[0] in SUFFIXES:
        return []
    return tokens


def normalise_name(text: str, *, family: bool = False) -> str:
    """A name part as one comparable string: "O'Brien-Smith" -> "obrien smith"."""
    return " ".join(name_tokens(text, family=family))


# Postcodes: the outward code (area + district) and the inward code (sector digit + unit).
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")
_OUTWARD = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")


def normalise_postcode(text: str) -> str | None:
    """'ls14ab' -> 'LS1 4AB'; None when it is not a UK postcode."""
    compact = re.sub(r"\s+", "", text.upper())
    match = _POSTCODE.match(compact)
    if not match:
        return None
    return f"{match[1]} {match[2]}"


POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b")


def postcode_in_text(text: str) -> str | None:
    """The first UK postcode written in a line of text ('14 Acacia Rd, Leeds LS6 3AB' ->
    'LS6 3AB'), or None."""
    for found in POSTCODE_IN_TEXT.finditer(text.upper()):
        postcode = normalise_postcode(found.group(0))
        if postcode:
            return postcode
    return None


def is_outward_code(text: str) -> bool:
    return bool(_OUTWARD.match(text.strip().upper()))


def postcode_district(postcode: str) -> str:
    """'LS1 4AB' -> 'LS1'."""
    return postcode.split(" ")[0]


def postcode_sector(postcode: str) -> str:
    """'LS1 4AB' -> 'LS1 4'."""
    outward, inward = postcode.split(" ")
    return f"{outward} {inward[0]}"


def postcode_area(postcode: str) -> str:
    """'LS1 4AB' -> 'LS'."""
    return re.match(r"[A-Z]+", postcode)[0]  # type: ignore[index]


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus 11 check digit for nine digits, or None when no valid number exists."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(first_nine))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def normalise_nhs_number(text: str) -> str | None:
    """Ten digits with a valid check digit ('943 476 5919' -> '9434765919'), else None."""
    digits = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"[0-9]{10}", digits):
        return None
    if nhs_check_digit(digits[:9]) != int(digits[9]):
        return None
    return digits


# Unique Pupil Number: check letter + 11 digits + a digit (permanent) or a letter (temporary).
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def upn_check_letter(rest: str) -> str:
    """The DfE check letter for the 12 characters after it."""
    total = 0
    for position, char in enumerate(rest, start=2):
        value = int(char) if char.isdigit() else _UPN_LETTERS.index(char)
        total += value * position
    return _UPN_LETTERS[total % 23]


def normalise_upn(text: str) -> str | None:
    compact = re.sub(r"\s+", "", text.upper())
    if not re.fullmatch(r"[A-Z][0-9]{11}[0-9A-Z]", compact):
        return None
    if compact[12].isalpha() and compact[12] not in _UPN_LETTERS:
        return None
    if compact[0] != upn_check_letter(compact[1:]):
        return None
    return compact


# PNC ID: two-digit year, slash, up to seven digits, check letter: '09/123456A'.
_PNC_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"


def pnc_check_letter(year: str, serial: str) -> str:
    return _PNC_LETTERS[int(year + serial.zfill(7)) % 23]


def normalise_pnc_id(text: str) -> str | None:
    compact = re.sub(r"\s+", "", text.upper())
    match = re.fullmatch(r"([0-9]{2}|[0-9]{4})/([0-9]{1,7})([A-Z])", compact)
    if not match:
        return None
    year = match[1][-2:]
    serial = match[2].lstrip("0") or "0"
    if pnc_check_letter(year, serial) != match[3]:
        return None
    return f"{year}/{serial.zfill(7)}{match[3]}"


def normalise_ni_number(text: str) -> str | None:
    compact = re.sub(r"\s+", "", text.upper())
    if not re.fullmatch(r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]",
                        compact):
        return None
    return compact


def normalise_local_id(text: str) -> str | None:
    compact = re.sub(r"\s+", "", text.upper())
    return compact if re.fullmatch(r"[A-Z0-9/_.:-]{1,40}", compact) else None


IDENTIFIER_NORMALISERS = {
    "nhs_number": normalise_nhs_number,
    "upn": normalise_upn,
    "pnc_id": normalise_pnc_id,
    "ni_number": normalise_ni_number,
    "local_id": normalise_local_id,
}

IDENTIFIER_LABELS = {
    "nhs_number": "NHS number",
    "upn": "UPN",
    "pnc_id": "PNC ID",
    "ni_number": "National Insurance number",
    "local_id": "local identifier",
}
