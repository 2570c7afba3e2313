"""The board report as JSON, CSV, and HTML with charts (Chart.js, vendored: no CDN).

The HTML is one fragment used twice: `mash report --format html` wraps it in a page that
carries the chart library and `board.js` inline (one file that opens anywhere, offline); the
console's report page links the same two scripts from its own /static. The tables are the
figures themselves, so the report reads (and prints) without JavaScript; the charts draw from
the same JSON, embedded in the page as data.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from typing import Any, TextIO

from mash.csvcells import write_dicts

CSV_COLUMNS = ("section", "period", "agency", "measure", "value")
STATE_ORDER = ("KNOWN", "NOT_KNOWN", "WITHHELD", "NOT_CHECKED")
STATIC = resources.files("mash.console") / "static"
CHART_JS = "vendor/chart.umd.min.js"
BOARD_JS = "board.js"


def write_json(report: dict[str, Any], out: TextIO) -> None:
    json.dump(report, out, indent=2, ensure_ascii=False, sort_keys=True)
    out.write("\n")


def _value(value: Any) -> Any:
    return "" if value is None else value


def csv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(section: str, measure: str, value: Any, agency: str = "", period: str = "") -> None:
        rows.append({"section": section, "period": period, "agency": agency,
                     "measure": measure, "value": _value(value)})

    add("note", "suppression", report["suppression"]["note"] +
        " An empty value is not shown: suppressed, or nothing to measure.")
    add("window", "since", report["since"])
    add("window", "until", report["until"])
    lookups = report["lookups"]
    add("lookups", "total", lookups["total"])
    for purpose, n in lookups["by_purpose"].items():
        add("lookups_by_purpose", purpose, n)
    for purpose, stages in lookups["by_stage"].items():
        for stage, n in stages.items():
            add("lookups_by_stage", f"{purpose}/{stage}", n)
    for urgency, n in lookups["by_urgency"].items():
        add("lookups_by_urgency", urgency, n)
    add("answered_within_deadline", "share", report["answered_within_deadline_share"])
    for urgency, figures in report["answered_within_deadline"].items():
        for measure, value in figures.items():
            add("answered_within_deadline", f"{urgency}_{measure}", value)
    for agency, a in report["agencies"].items():
        for measure in ("asked", "availability", "completeness", "median_answer_ms",
                        "answer_times_recorded"):
            add("agency", measure, a[measure], agency)
        for state, n in a["states"].items():
            add("agency_state", state, n, agency)
        for reason, n in a["not_checked_reasons"].items():
            add("agency_not_checked_reason", reason, n, agency)
        for slot in a["over_time"]:
            for measure in ("asked", "answered", "availability", "completeness"):
                add("agency_period", measure, slot[measure], agency, slot["period"])
            for reason, n in slot["not_checked_reasons"].items():
                add("agency_period_not_checked_reason", reason, n, agency, slot["period"])
    return rows


def write_csv(report: dict[str, Any], out: TextIO) -> None:
    write_dicts(out, fieldnames=CSV_COLUMNS, rows=csv_rows(report))


def _share(value: float | None) -> str:
    return "not shown" if value is None else f"{value:.1%}"


def _ms(value: int | None) -> str:
    return "not shown" if value is None else f"{value:,} ms"


def _cell(value: Any) -> str:
    return escape(str(value))


def _table(caption: str, head: list[str], rows: list[list[str]], css: str = "") -> str:
    th = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(
        f'<th scope="row">{c}</th>' if i == 0 else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>" for r in rows) or f'<tr><td colspan="{len(head)}">none</td></tr>'
    return (f'<table class="board-table {css}"><caption>{escape(caption)}</caption>'
            f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")


def _chart(chart_id: str, label: str) -> str:
    return (f'<figure class="board-chart"><canvas id="{chart_id}" role="img" '
            f'aria-label="{escape(label)}"></canvas><figcaption>{escape(label)}'
            "</figcaption></figure>")


def _data_json(report: dict[str, Any]) -> str:
    """JSON safe inside <script>: no "</" can close the element early."""
    return json.dumps(report, sort_keys=True, ensure_ascii=False).replace("</", "<\\/")


def fragment(report: dict[str, Any]) -> str:
    """The report's tables, chart canvases and data; no scripts (the caller adds them)."""
    lookups = report["lookups"]
    agencies = report["agencies"]
    parts = [
        '<section class="board-report" id="board-report">',
        f'<p class="board-window">From <time>{escape(report["since"])}</time> to '
        f'<time>{escape(report["until"])}</time>; periods: {escape(report["period"])}; RAG '
        "deadlines: " + ", ".join(f"{escape(u)} {h:g} h" for u, h in
                                  report["rag_hours"].items()) + ".</p>",
        '<p class="board-suppression" role="note"><strong>Small numbers suppressed.</strong> '
        f'{escape(report["suppression"]["note"])} No personal data is in this report: counts '
        "only.</p>",
        "<h2>Lookups</h2>",
        f'<p class="board-headline">Lookups: <strong>{_cell(lookups["total"])}</strong>. '
        "Answered within their RAG deadline (every agency with an agreement answered): "
        f'<strong id="deadline-share">{_share(report["answered_within_deadline_share"])}'
        "</strong>.</p>",
        '<div class="board-charts">',
        _chart("chart-purpose", "Lookups by purpose"),
        _chart("chart-urgency", "Lookups by urgency"),
        "</div>",
        _table("Lookups by purpose and stage", ["Purpose", "Stage", "Lookups"],
               [[_cell(p), _cell(s), _cell(n)] for p, stages in lookups["by_stage"].items()
                for s, n in stages.items()]),
        _table("Answered within the RAG deadline, by urgency",
               ["Urgency", "Lookups", "Answered in time", "Share"],
               [[_cell(u), _cell(f["lookups"]), _cell(f["within"]), _share(f["share"])]
                for u, f in report["answered_within_deadline"].items()]),
        "<h2>Agencies</h2>",
        '<div class="board-charts">',
        _chart("chart-states", "Answer states by agency"),
        _chart("chart-reasons", "NOT CHECKED reasons by agency"),
        _chart("chart-availability", "Availability over time (share of lookups the agency "
                                     "could be reached for)"),
        _chart("chart-completeness", "Completeness over time (share of lookups the agency "
                                     "checked)"),
        "</div>",
        _table("Answers by agency",
               ["Agency", "Asked", "KNOWN", "NOT KNOWN", "WITHHELD", "NOT CHECKED",
                "Availability", "Completeness", "Median answer time"],
               [[_cell(a["name"]), _cell(a["asked"]),
                 *(_cell(a["states"].get(s, 0)) for s in STATE_ORDER),
                 _share(a["availability"]), _share(a["completeness"]),
                 _ms(a["median_answer_ms"])] for a in agencies.values()], "board-agencies"),
        _table("NOT CHECKED reasons by agency", ["Agency", "Reason", "Lookups"],
               [[_cell(a["name"]), _cell(r.replace("_", " ")), _cell(n)]
                for a in agencies.values() for r, n in a["not_checked_reasons"].items()]),
        f'<script type="application/json" id="board-data">{_data_json(report)}</script>',
        "</section>",
    ]
    return "\n".join(parts)


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #0b0c0c; }
.board-table { border-collapse: collapse; margin: 1rem 0; }
.board-table caption { text-align: left; font-weight: bold; padding: .3rem 0; }
.board-table th, .board-table td { border: 1px solid #b1b4b6; padding: .25rem .6rem; }
.board-charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.board-chart { width: 30rem; max-width: 100%; margin: 0; }
.board-suppression { border-left: 5px solid #1d70b8; padding-left: .6rem; }
"""


def page(report: dict[str, Any]) -> str:
    """A whole HTML file: the fragment, the chart library and board.js inline (no CDN)."""
    chart = (STATIC / CHART_JS).read_text(encoding="utf-8")
    board = (STATIC / BOARD_JS).read_text(encoding="utf-8")
    return ("<!doctype html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">"
            "<title>MASH performance report</title>"
            f"<style>{PAGE_STYLE}</style></head><body>"
            "<h1>MASH performance report</h1>\n"
            f"{fragment(report)}\n<script>{chart}</script>\n<script>{board}</script>\n"
            "</body></html>\n")
