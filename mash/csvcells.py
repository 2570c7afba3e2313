"""Writing CSV that a spreadsheet opens as text: every cell neutralised against formulas.

Analysts type free text (justifications, case references, names in tokens) that ends up in
reports. A cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula ("CSV injection": `=HYPERLINK(...)`,
`=cmd|' /C calc'!A0`). Following OWASP, such a cell is written with a leading single quote,
which spreadsheets show as text. Leading whitespace and line breaks are looked through (some
importers trim them), and the full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20) count too.
Every CSV the project writes for people goes through `write_dicts` (or `neutralise` for one cell).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_LEADING_SPACE = " \u00a0\u3000\t\r\n\v\f"


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet will read it as text; numbers and plain text unchanged."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    if not text:
        return text
    if text[0] in TRIGGERS or text.lstrip(_LEADING_SPACE)[:1] in TRIGGERS:
        return "'" + text
    return text


def write_dicts(
    out: TextIO, *, fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any]],
) -> None:
    """A header and one line per row (keys outside `fieldnames` are ignored), every cell
    neutralised; the header is neutralised too."""
    writer = csv.writer(out)
    writer.writerow([neutralise(name) for name in fieldnames])
    for row in rows:
        writer.writerow([neutralise(row.get(name, "")) for name in fieldnames])
