"""The report page in Debian's chromium (Playwright) against a real console, broker and
agents: a supervisor sees the figures and the charts drawn by the console's own Chart.js
(no request leaves the console; no CSP violation); an analyst is not offered the page. The
self-contained HTML of `mash report` draws the same charts from a file, offline.

Screenshots go to tests/screenshots/console/ (gitignored), as the other browser tests'.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import urlparse

from mash.client import BrokerClient, ClientConfig
from tests.console_support import open_family_case
from tests.helpers import lookup_request
from tests.test_console_browser import SHOTS, Console, console, pytestmark  # noqa: F401

CHARTS = ("chart-purpose", "chart-urgency", "chart-states", "chart-reasons",
          "chart-availability", "chart-completeness")


def drawn(page: Any) -> list[str]:
    """The charts Chart.js has drawn, with at least one non-blank pixel each."""
    return page.evaluate("""(ids) => ids.filter(id => {
        const canvas = document.getElementById(id);
        const chart = canvas && Chart.getChart(canvas);
        if (!chart) return false;
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width,
                                                           canvas.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
        return false;
    })""", list(CHARTS))


def test_report_page_with_charts(console: Console) -> None:  # noqa: F811 (the fixture)
    with BrokerClient(ClientConfig.load(console.fed.client_config)) as client:
        for urgency in ("red", "red", "red", "amber", "amber", "green"):
            client.lookup(lookup_request(urgency=urgency, case="MASH-2026-0500"))

    context, page = console.signed_in()  # an analyst: no report
    assert page.get_by_role("link", name="Report").count() == 0
    assert page.goto("/report").status == 403
    context.close()

    context, page = console.signed_in(role="supervisor", subject="pat.supervisor")
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.get_by_role("link", name="Report").click()
    page.wait_for_selector("#board-report[data-charts='drawn']")
    assert drawn(page) == list(CHARTS)
    assert "Small numbers suppressed" in page.locator(".board-suppression").inner_text()
    agencies = page.locator("table.board-agencies").inner_text()
    assert "police" in agencies and "housing" in agencies
    assert page.locator("#deadline-share").inner_text() == "0.0%"  # housing is offline
    text = page.locator("#board-report").inner_text()
    assert "MASH-2026-0500" not in text and "Leah" not in text and "a.analyst" not in text
    hosts = {urlparse(u).netloc for u in requests if not u.startswith("data:")}
    assert hosts == {urlparse(console.url).netloc}, hosts  # nothing from a CDN
    assert not problems, problems
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)

    page.get_by_label("From (YYYY-MM-DD)").fill("not a date")
    page.get_by_role("button", name="Show the report").click()
    assert "is not a date like" in page.locator("#report-error").inner_text()
    context.close()


def test_the_report_file_draws_its_charts_offline(console: Console) -> None:  # noqa: F811
    out = SHOTS / "board-report.html"
    result = subprocess.run([sys.executable, "-m", "mash", "report", "--config",
                             str(console.fed.broker_config), "--since", "2026-01-01",
                             "--format", "html", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    context = console.browser.new_context(offline=True)
    page = context.new_page()
    page.goto(out.as_uri())
    page.wait_for_selector("#board-report[data-charts='drawn']")
    assert drawn(page) == list(CHARTS)
    page.screenshot(path=str(SHOTS / "report-file.png"), full_page=True)
    context.close()


def test_case_grid(console: Console) -> None:  # noqa: F811 (the fixture)
    context, page = console.signed_in(subject="sam.analyst")
    page.get_by_role("link", name="Cases").click()
    open_family_case(page, "MASH-2026-0600")
    leah = page.locator("#person-0")
    police = leah.locator("td[data-agency='police']")
    housing = leah.locator("td[data-agency='housing']")
    assert police.get_attribute("data-state") == "known"
    assert "● KNOWN" in police.inner_text()
    assert housing.get_attribute("data-state") == "not-checked"
    assert "⚠ NOT CHECKED" in housing.inner_text() and "agent offline" in housing.inner_text()
    style = "e => getComputedStyle(e).borderTopStyle"
    assert housing.evaluate(style) == "dashed" and police.evaluate(style) == "solid"
    housing.locator("summary").click()  # a click opens the detail
    assert "not connected" in housing.locator("details p").inner_text()
    assert "RED" in page.locator("#rag-timer").inner_text()
    page.screenshot(path=str(SHOTS / "case-grid.png"), full_page=True)
    # on paper: no navigation or links, and every cell's detail printed below the grid
    page.emulate_media(media="print")
    assert page.locator("header nav").is_hidden()
    assert page.locator("#grid-details").is_visible()
    assert "not connected" in page.locator("#grid-details").inner_text()
    page.pdf(path=str(SHOTS / "case-grid-print.pdf"))
    page.emulate_media(media="screen")
    page.get_by_role("link", name="All my cases").click()
    assert "MASH-2026-0600" in page.locator("#my-cases").inner_text()
    context.close()
