"""Cases in Debian's chromium (Playwright) against a real console process, broker and agents:
open a case, the family grid (every cell its state in words; NOT CHECKED unmistakable), a
cell's detail, the grid updating without a reload when an offline agency's agent comes back
(and the RAG timer counting down), print, and the PDF and JSON exports.

Screenshots go to tests/screenshots/console/ (gitignored), as the other browser tests'.
"""

from __future__ import annotations

import io
import json
import re

import pypdf

from tests.console_support import open_family_case
from tests.test_console_browser import SHOTS, Console, console, pytestmark  # noqa: F401


def test_case_flow_live_grid_print_and_export(console: Console) -> None:  # noqa: F811
    context, page = console.signed_in(subject="casey.analyst")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.get_by_role("link", name="Cases").click()
    page.get_by_label("Purpose").select_option("child_safeguarding")
    # only the chosen purpose's stages are offered
    stages = page.locator("#c-stage option:not([hidden])").all_inner_texts()
    assert "s47" in stages and "s42" not in stages
    page.get_by_label("Purpose").select_option("adult_safeguarding")
    stages = page.locator("#c-stage option:not([hidden])").all_inner_texts()
    assert "s42" in stages and "s47" not in stages
    open_family_case(page, "MASH-2026-0700")
    assert "Family picture: case MASH-2026-0700" in page.locator("h1").inner_text()

    leah = page.locator("#person-0")
    housing = leah.locator("td[data-agency='housing']")
    assert housing.get_attribute("data-state") == "not-checked"  # its agent is offline
    assert "NOT CHECKED" in housing.inner_text() and "agent offline" in housing.inner_text()
    assert leah.locator("td[data-agency='police']").get_attribute("data-state") == "known"
    style = "e => getComputedStyle(e).borderTopStyle"
    assert housing.evaluate(style) == "dashed"
    police = leah.locator("td[data-agency='police']")
    police.locator("summary").click()  # a click opens the cell's detail
    assert police.locator("details").get_attribute("open") is not None
    # the RAG timer counts down while the page is open
    remaining = page.locator("#rag-timer .rag-remaining")
    first = remaining.inner_text()
    page.wait_for_function("t => document.querySelector('#rag-timer .rag-remaining')"
                           ".textContent !== t", arg=first, timeout=5000)
    assert re.match(r"3h 59m \d+s left", remaining.inner_text()), remaining.inner_text()
    page.screenshot(path=str(SHOTS / "case-grid-before-update.png"), full_page=True)

    # housing's agent comes back: its cell changes to the later answer without a reload
    page.evaluate("window.__same_page = true")
    console.threaded.call(console.threaded.run.start_agent("housing"))
    try:
        page.wait_for_function(
            "() => document.querySelector(\"#person-0 td[data-agency='housing']\")"
            ".getAttribute('data-state') !== 'not-checked'", timeout=30000)
    finally:
        console.threaded.call(console.threaded.run.stop_agent("housing"))
    assert page.evaluate("window.__same_page") is True  # not reloaded
    housing = page.locator("#person-0 td[data-agency='housing']")
    assert housing.get_attribute("data-state") in ("known", "not-known", "withheld")
    assert "NOT CHECKED" not in housing.inner_text()
    assert "Updated" in page.locator("#live-status").inner_text()
    # only "no agreement" is left NOT CHECKED: asking again could not change it
    assert page.locator("#ask-again").is_hidden()
    assert page.locator("#no-agreement-note").is_visible()
    assert "Housing" in page.locator("#live-status").inner_text()
    page.screenshot(path=str(SHOTS / "case-grid-live-update.png"), full_page=True)

    # on paper: no navigation or forms, the grid and every cell's detail below it
    page.emulate_media(media="print")
    assert page.locator("header nav").is_hidden() and page.locator("#grid-details").is_visible()
    page.pdf(path=str(SHOTS / "case-print.pdf"))
    page.emulate_media(media="screen")

    # the exports for the case record, made by the console (not the browser)
    with page.expect_download() as download:
        page.locator("#export-pdf").click()
    body = open(download.value.path(), "rb").read()  # noqa: SIM115
    (SHOTS / "case-export.pdf").write_bytes(body)
    text = " ".join("\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body))
                              .pages).split())
    assert "Family picture: case MASH-2026-0700" in text  # positive control
    assert "RAG deadline" in text and "KNOWN" in text and "NOT CHECKED" in text
    with page.expect_download() as download:
        page.locator("#export-json").click()
    record = json.loads(open(download.value.path(), "rb").read())  # noqa: SIM115
    assert record["case"]["reference"] == "MASH-2026-0700"
    assert record["people"][0]["cells"]["housing"]["state"] != "NOT_CHECKED"  # kept
    assert not problems, problems  # no script error, no CSP violation
    context.close()
    log = console.log.read_text()
    assert '"event": "case_asked_again"' in log
    for value in ("Leah", "Thompson", "Darren", "2014-05-17", "1986-07-21", "LS9 8AB"):
        assert value not in log, value  # nothing typed about a person is logged
