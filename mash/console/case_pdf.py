"""The family picture as a PDF for the local authority's case management system (fpdf2).

One landscape A4 document: the case reference, purpose, stage and urgency, the RAG deadline,
when it was generated, by whom, and until when the console keeps it; the grid (people down
the side, agencies across the top, each cell its state in words, NOT CHECKED with its
reason); then every cell's detail. Made on the server from the stored picture, never by a
browser. Text is set in DejaVu Sans where the system has it (Debian's fonts-dejavu-core), so
that any name prints as typed; otherwise in the PDF core font Helvetica, with letters it
cannot show reduced to their plain form ("Zoë" stays, "Łukasz" prints as "Lukasz").
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from mash.cases.picture import STATE_SYMBOLS, STATE_WORDS

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
GREY = (230, 230, 230)
NOT_CHECKED_FILL = (251, 233, 235)
# letters and dashes that have no decomposition to a Latin-1 one
PLAIN = {"\u0141": "L", "\u0142": "l", "\u2013": "-", "\u2014": "-"}


def _unicode_font(pdf: FPDF) -> bool:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            return True
    return False


def _latin1(text: str) -> str:
    """For the core font: each character Latin-1 can hold, else its plain letter, else '?'."""
    out = []
    for char in text:
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode()
            out.append(plain or PLAIN.get(char, "?"))
    return "".join(out)


def _when(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def case_pdf(*, header: dict[str, Any], picture: dict[str, Any], case_id: str,
             due_at: dt.datetime, stored_at: dt.datetime, kept_until: dt.datetime,
             generated_by: str, now: dt.datetime | None = None) -> bytes:
    """The PDF's bytes (`picture` as stored: FamilyPicture.to_dict, with later answers)."""
    now = now or dt.datetime.now(dt.UTC)
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(f"Family picture {header.get('reference', '')}")
    pdf.set_creator("MASH Exchange console")
    unicode = _unicode_font(pdf)
    family = "DejaVu" if unicode else "Helvetica"

    def text(value: object) -> str:
        return str(value) if unicode else _latin1(str(value))

    def state(cell: dict[str, Any]) -> str:
        words = STATE_WORDS[cell["state"]]
        shown = f"{STATE_SYMBOLS[cell['state']]} {words}" if unicode else words
        return f"{shown} ({cell['reason']})" if cell.get("reason") else shown

    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font(family, "B", 15)
    pdf.cell(0, 9, text(f"Family picture: case {header.get('reference', '')}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    facts = [
        ("Case reference", header.get("reference", "")),
        ("Purpose", header.get("purpose", "")), ("Stage", header.get("stage", "")),
        ("Urgency", str(header.get("urgency", "")).upper()),
        ("RAG deadline", f"respond by {_when(due_at)} (asked {_when(stored_at)})"),
        ("Generated", f"{_when(now)} by {generated_by} from the console's stored record "
                      "(the agencies were not asked again)"),
        ("Kept by the console until", _when(kept_until)),
        ("Console case id", case_id),
    ]
    for label, value in facts:
        pdf.set_font(family, "B", 10)
        pdf.cell(55, 6, text(label))
        pdf.set_font(family, "", 10)
        pdf.cell(0, 6, text(value), new_x="LMARGIN", new_y="NEXT")
    not_checked = int(picture.get("not_checked", 0))
    if not_checked:
        pdf.set_font(family, "B", 10)
        pdf.multi_cell(0, 6, text(
            f"{not_checked} {'answer was' if not_checked == 1 else 'answers were'} NOT "
            "CHECKED: treat them as unknown; not checked is not the same as not known."),
            new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    agencies = picture["agencies"]
    size = 8 if len(agencies) <= 7 else 7
    pdf.set_font(family, "", size)
    widths = (40, *([(pdf.epw - 40) / max(len(agencies), 1)] * len(agencies)))
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=size * 0.55,
                   headings_style=FontFace(emphasis="BOLD", fill_color=GREY),
                   first_row_as_headings=True, repeat_headings=1) as table:
        heading = table.row()
        heading.cell(text("Person"))
        for agency in agencies:
            heading.cell(text(agency["name"]))
        for person in picture["people"]:
            row = table.row()
            row.cell(text(f"{person['label']} ({person['relationship'].replace('_', ' ')})"))
            for agency in agencies:
                cell = person["cells"].get(agency["id"]) or {"state": "NOT_CHECKED",
                                                             "reason": "not asked"}
                style = (FontFace(emphasis="BOLD", fill_color=NOT_CHECKED_FILL)
                         if cell["state"] == "NOT_CHECKED" else None)
                row.cell(text(state(cell)), style=style)

    details = [(person, agency, person["cells"][agency["id"]])
               for person in picture["people"] for agency in agencies
               if person["cells"].get(agency["id"], {}).get("detail")]
    if details:
        pdf.ln(4)
        pdf.set_font(family, "B", 12)
        pdf.cell(0, 8, "Details", new_x="LMARGIN", new_y="NEXT")
        for person, agency, cell in details:
            pdf.set_font(family, "B", 9)
            pdf.multi_cell(0, 5, text(f"{person['label']} - {agency['name']}: "
                                      f"{state(cell)}"), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(family, "", 9)
            pdf.multi_cell(0, 5, text(cell["detail"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 8)
    pdf.ln(3)
    pdf.multi_cell(0, 4, "Official - Sensitive. Every lookup is recorded with the analyst's "
                         "name, the case and the reason.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
