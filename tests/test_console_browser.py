"""The console end to end in a real headless browser: Debian's chromium driven by Playwright,
against a real `mash console serve` process (HTTPS), a real broker and agents on loopback with
mutual TLS. Housing is registered but its agent is not started (NOT CHECKED: agent offline),
and the ambulance agreement's review date has passed (highlighted on the agreements page).

Screenshots of the key pages go to tests/screenshots/console/ (gitignored).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mash.demo import federation
from tests.console_support import console_config
from tests.helpers import AGENCIES, ThreadedFederation, build_federation

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots" / "console"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PERSONAL = ("Tyler", "Mason", "Leah", "Thompson", "2009-11-02", "2014-05-17", "LS9 8AB")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("MASH_REQUIRE_BROWSER"),
                       reason="needs Debian's chromium (.ci/run installs it)"),
    pytest.mark.timeout(300),
]


@dataclass
class Console:
    fed: federation.Federation
    url: str
    log: Path
    browser: Any
    spki: str
    threaded: Any = None  # the broker and agents: a test may start an agent later

    def context(self, **kw: Any) -> Any:
        return self.browser.new_context(base_url=self.url, **kw)

    def signed_in(self, role: str = "analyst", subject: str = "a.analyst", **kw: Any) -> Any:
        context = self.context(**kw)
        page = context.new_page()
        page.goto("/signin")
        page.get_by_label("Analyst token").fill(self.fed.token(subject=subject, role=role))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/lookup")
        return context, page


def _policies_with_overdue_review(root: Path) -> Path:
    src = root / "policies"
    shutil.copytree(federation.POLICIES, src)
    mou = src / "mous" / "ambulance-mash-safeguarding.yaml"
    mou.write_text(mou.read_text().replace("review_by: 2027-12-31", "review_by: 2026-06-30"))
    return src


def _spki_hash(cert: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): lets Chromium accept exactly this certificate
    (the dev CA is not in the browser's trust store) without ignoring every TLS error."""
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _wait_https(url: str, ca: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"console exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/signin", context=context, timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"console did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console-browser")
    fed = build_federation(root / "fed", background=60,
                           policies=_policies_with_overdue_review(root))
    threaded = ThreadedFederation(fed, [a for a in AGENCIES if a != "housing"])
    port = federation.free_port()
    cfg = console_config(fed, port=port)
    log = root / "console.log"
    fh = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "mash", "console", "serve", "--config",
                             str(cfg)], stdout=fh, stderr=fh)
    url = f"https://localhost:{port}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        _wait_https(url, fed.certs / "ca.pem", proc, log)
        spki = _spki_hash(fed.certs / "console-console.pem")
        with playwright_sync.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True,
                args=[*ARGS, f"--ignore-certificate-errors-spki-list={spki}"])
            try:
                yield Console(fed, url, log, browser, spki, threaded)
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fh.close()
        threaded.close()


def fill_lookup(page: Any, name: str, dob: str, stage: str, case: str, urgency: str,
                postcode: str = "") -> None:
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Date of birth").fill(dob)
    if postcode:
        page.get_by_label("Postcodes").fill(postcode)
    page.get_by_label("Purpose").select_option("child_safeguarding")
    page.get_by_role("combobox", name="Stage").select_option(stage)
    page.get_by_label("Case reference").fill(case)
    page.get_by_label("Justification").fill("Referral from school: concern about exploitation")
    page.get_by_role("radio", name=re.compile(f"^{urgency.capitalize()} ")).check()


def post(page: Any, path: str, form: dict[str, str]) -> tuple[int, str]:
    """POST from inside the page (the browser's own cookies and TLS), as a forged form would."""
    return tuple(page.evaluate(
        """async ([path, form]) => {
            const r = await fetch(path, {method: "POST", body: new URLSearchParams(form),
                                         redirect: "manual"});
            return [r.status, await r.text()];
        }""", [path, form]))  # type: ignore[return-value]


def cards(page: Any) -> dict[str, Any]:
    return {li.get_attribute("id").removeprefix("answer-"): li
            for li in page.locator("li.card").all()}


def test_refused_without_a_session(console: Console) -> None:
    context = console.context()
    page = context.new_page()
    for path in ("/lookup", "/agents", "/agreements", "/audit"):
        page.goto(path)
        assert page.url.endswith("/signin"), path
    assert page.get_by_label("Analyst token").is_visible()
    status, text = post(page, "/lookup", {"name": "Tyler Mason"})
    assert status == 403
    assert "not signed in" in text
    page.get_by_label("Analyst token").fill("not.a.token")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Sign-in refused")
    assert not [c for c in context.cookies() if c["name"] == "mash_session"]
    page.screenshot(path=str(SHOTS / "signin-refused.png"), full_page=True)
    context.close()


def test_lookup_shows_every_answer_state(console: Console) -> None:
    context, page = console.signed_in()
    session = next(c for c in context.cookies() if c["name"] == "mash_session")
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    assert time.time() < session["expires"] <= time.time() + 3600 + 60
    assert "eyJ" not in session["value"]  # the JWT never reaches the browser
    page.screenshot(path=str(SHOTS / "lookup-form.png"), full_page=True)

    # Tyler Mason at triage: police and CSC know him, education may only say it holds
    # something, health and ambulance searched and found nothing, three have no agreement.
    fill_lookup(page, "Tyler Mason", "2009-11-02", "triage", "MASH-2026-0104", "red")
    page.get_by_role("button", name="Ask the agencies").click()
    page.wait_for_selector("#results")
    answers = cards(page)
    assert set(answers) == set(AGENCIES)
    states = {agency: li.get_attribute("data-state") for agency, li in answers.items()}
    assert set(states.values()) == {"known", "not-known", "withheld", "not-checked"}
    assert states["police"] == "known" and states["education"] == "withheld"
    assert states["health"] == "not-known" and states["probation"] == "not-checked"
    # every state is said in words, not only in colour
    for agency, label in (("police", "KNOWN"), ("health", "NOT KNOWN"),
                          ("education", "WITHHELD"), ("probation", "NOT CHECKED")):
        assert label in answers[agency].locator(".state-badge").inner_text()
    police = answers["police"].inner_text()
    assert "confidence" in police.lower() and "Contact" in police and "Data as at" in police
    health = answers["health"]
    assert health.get_by_text("What was searched").is_visible()
    assert "Name variants" in health.inner_text() and "records, as at" in health.inner_text()
    probation = answers["probation"].inner_text()
    assert "NOT CHECKED: no agreement" in probation
    assert "not the same as not known" in probation
    # NOT CHECKED cannot be mistaken for NOT KNOWN: its frame, background and text differ
    style = "e => [getComputedStyle(e).borderTopStyle, getComputedStyle(e).backgroundImage]"
    assert answers["probation"].evaluate(style)[0] == "dashed"
    assert answers["health"].evaluate(style) == ["solid", "none"]
    warning = page.locator("#not-checked-warning").inner_text()
    assert "3 agencies were NOT CHECKED" in warning
    rag = page.locator("#rag-timer").inner_text()
    assert "RED" in rag and "Respond by" in rag and "left" in rag
    due = dt.datetime.fromisoformat(page.locator("#rag-timer time").get_attribute("datetime"))
    assert dt.timedelta(hours=3, minutes=58) < due - dt.datetime.now(dt.UTC) <= \
        dt.timedelta(hours=4)
    page.screenshot(path=str(SHOTS / "lookup-every-state.png"), full_page=True)

    page.goto("/lookups")
    row = page.locator("#history tbody tr").first.inner_text()
    assert "RED" in row and "MASH-2026-0104" in row and "left" in row
    context.close()


def test_redaction_reasons_offline_agents_and_print(console: Console) -> None:
    context, page = console.signed_in()
    fill_lookup(page, "Leah Thompson", "2014-05-17", "research", "MASH-2026-0101", "amber",
                postcode="LS9 8AB")
    page.get_by_role("button", name="Ask the agencies").click()
    answers = cards(page)
    # a long list of withheld fields is collapsed: the analyst opens it
    for details in answers["police"].locator("details.withheld-list:not([open])").all():
        details.locator("summary").click()
    row = answers["police"].locator("tr.withheld-group").filter(
        has=page.locator(".withheld-field[data-field='officer_in_case']"))
    reason = row.locator(".withheld-reason").inner_text()
    assert reason.strip() and reason != "no reason given", "a withheld field says why"
    released = answers["police"].locator("table.released").inner_text()
    assert "last_incident_date" in released and "month" in released
    housing = answers["housing"].inner_text()
    assert "NOT CHECKED: agent offline" in housing
    assert answers["housing"].get_attribute("data-state") == "not-checked"
    # prints cleanly: no navigation or form, every card and its text label on paper
    page.emulate_media(media="print")
    assert page.locator("#lookup-form").is_hidden()
    assert page.locator("header nav").is_hidden()
    assert answers["police"].is_visible() and answers["housing"].is_visible()
    page.pdf(path=str(SHOTS / "lookup-print.pdf"))
    page.screenshot(path=str(SHOTS / "lookup-print-view.png"), full_page=True)
    context.close()


def test_csrf_protects_the_forms(console: Console) -> None:
    context, page = console.signed_in()
    form = {"name": "Tyler Mason", "dob": "2009-11-02", "purpose": "child_safeguarding",
            "stage": "triage", "case": "MASH-X", "reason": "Testing CSRF protection",
            "urgency": "red"}
    for extra in ({}, {"csrf_token": "forged"}):
        status, text = post(page, "/lookup", {**form, **extra})
        assert status == 403
        assert "CSRF" in text
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    status, text = post(page, "/lookup", {**form, "csrf_token": token})
    assert status == 200 and 'id="results"' in text
    assert post(page, "/signout", {})[0] == 403
    context.close()


def test_validation_messages_next_to_fields(console: Console) -> None:
    context, page = console.signed_in()
    fill_lookup(page, "Tyler Mason", "31/02/2009", "triage", "MASH 1 !", "amber")
    page.get_by_label("Justification").fill("short")
    page.get_by_role("button", name="Ask the agencies").click()
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    # the page's script moves the focus at DOMContentLoaded, which can come after the
    # summary is visible: wait for it (up to 5 s) rather than read the focus once
    playwright_sync.expect(summary).to_be_focused()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    for field in ("dob", "case", "reason"):
        box = page.locator(f"#{field}")
        assert box.get_attribute("aria-invalid") == "true"
        assert f"{field}-error" in box.get_attribute("aria-describedby")
        assert page.locator(f"#{field}-error").is_visible()
    assert "not a calendar date" in page.locator("#dob-error").inner_text()
    assert page.get_by_label("Full name").input_value() == "Tyler Mason"
    page.screenshot(path=str(SHOTS / "lookup-validation.png"), full_page=True)
    context.close()


def test_core_lookup_works_without_javascript_and_by_keyboard(console: Console) -> None:
    context, page = console.signed_in(java_script_enabled=False)
    page.goto("/lookup")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    fill_lookup(page, "Tyler Mason", "2009-11-02", "triage", "MASH-NOJS-1", "green")
    page.get_by_label("Case reference").focus()
    page.keyboard.press("Enter")  # submits the form from the keyboard, no script involved
    page.wait_for_selector("#results")
    assert len(cards(page)) == len(AGENCIES)
    assert "GREEN" in page.locator("#rag-timer").inner_text()
    context.close()


CONTRAST = """els => els.map(e => {
    const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = c => { const [r, g, b] = rgb(c).map(v => { v /= 255;
        return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
    let node = e, bg = "rgba(0, 0, 0, 0)";
    while (node && /rgba\\(.*, 0\\)/.test(bg)) {
        bg = getComputedStyle(node).backgroundColor; node = node.parentElement; }
    if (/rgba\\(.*, 0\\)/.test(bg)) bg = "rgb(255, 255, 255)";
    const [a, b] = [lum(getComputedStyle(e).color), lum(bg)].sort((x, y) => y - x);
    return [e.className, (a + 0.05) / (b + 0.05)];
})"""


def test_labels_and_contrast(console: Console) -> None:
    context, page = console.signed_in()
    fill_lookup(page, "Tyler Mason", "2009-11-02", "triage", "MASH-A11Y-1", "amber")
    page.get_by_role("button", name="Ask the agencies").click()
    page.wait_for_selector("#results")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea, button')].filter(e =>
        !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
        !(e.tagName === 'BUTTON' && e.textContent.trim())).map(e => e.outerHTML)""")
    assert unlabelled == []
    checked = page.locator(".state-badge, .rag-badge, .state-explanation, .field-error, "
                           ".hint, .small, h3, dd").evaluate_all(CONTRAST)
    assert len(checked) > 20
    low = [(cls, round(ratio, 2)) for cls, ratio in checked if ratio < 4.5]
    assert low == [], low  # WCAG AA for normal text
    context.close()


def test_agents_panel(console: Console) -> None:
    context, page = console.signed_in()
    page.get_by_role("link", name="Agents").click()
    housing = page.locator("#agent-housing").inner_text()
    assert "OFFLINE" in housing
    police = page.locator("#agent-police").inner_text()
    assert "ONLINE" in police
    revision = page.locator("#agent-police td.mono").inner_text()
    assert len(revision) == 16
    page.screenshot(path=str(SHOTS / "agents.png"), full_page=True)
    context.close()


def test_ig_lead_pages_agreements_explain_audit(console: Console) -> None:
    # an analyst asks about Tyler first, so that the audit trail has something to show
    context, page = console.signed_in(subject="sam.analyst")
    fill_lookup(page, "Tyler Mason", "2009-11-02", "triage", "MASH-2026-0999", "red")
    page.get_by_role("button", name="Ask the agencies").click()
    page.wait_for_selector("#results")
    assert page.get_by_role("link", name="Audit search").count() == 0  # not for analysts
    context.close()

    context, page = console.signed_in(role="ig_lead", subject="jo.ig")
    page.get_by_role("link", name="Agreements").click()
    overdue = page.locator("#agreement-ambulance-mash-safeguarding")
    assert overdue.get_attribute("data-status") == "review-overdue"
    assert "REVIEW OVERDUE since 2026-06-30" in overdue.inner_text()
    assert page.locator("#agreement-police-mash-safeguarding").get_attribute(
        "data-status") == "in-force"
    assert "2030-12-31" in page.locator("#agreement-police-mash-safeguarding").inner_text()
    page.screenshot(path=str(SHOTS / "agreements.png"), full_page=True)

    page.get_by_role("link", name="Explain", exact=True).click()
    page.get_by_label("Purpose").select_option("child_safeguarding")
    page.get_by_role("combobox", name="Stage").select_option("research")
    page.get_by_role("button", name="Explain").click()
    police = page.locator("#explain-police").inner_text()
    assert "police-mash-safeguarding" in police and "Lawful basis" in police
    assert "last_incident_date" in police
    assert "is NOT asked" in page.locator("#explain-probation").inner_text()
    page.screenshot(path=str(SHOTS / "explain.png"), full_page=True)

    page.get_by_role("link", name="Audit search").click()
    page.get_by_label("Full name").fill("Tyler Mason")
    page.get_by_label("Date of birth (YYYY-MM-DD)").fill("2009-11-02")
    page.get_by_role("button", name="Search the audit trail").click()
    results = page.locator("#audit-results").inner_text()
    assert "sam.analyst" in results and "MASH-2026-0999" in results
    assert "Referral from school" in results and "urgency red" in results
    assert "intact" in results
    page.screenshot(path=str(SHOTS / "audit-search.png"), full_page=True)
    context.close()


def test_result_page_grouped_about_and_reopened(console: Console) -> None:
    context, page = console.signed_in(subject="rae.analyst")
    page.get_by_label("Purpose").select_option("adult_safeguarding")
    offered = page.locator("#stage option:not([hidden])").all_inner_texts()
    assert "s42" in offered and "s47" not in offered  # the chosen purpose's stages only
    fill_lookup(page, "Tyler Mason", "2009-11-02", "triage", "MASH-2026-0105", "amber")
    page.get_by_role("button", name="Ask the agencies").click()
    page.wait_for_selector("#results")
    groups = [g.get_attribute("id") for g in page.locator("section.answer-group").all()]
    assert groups == ["group-known", "group-not-checked", "group-withheld", "group-not-known"]
    summary = page.locator("#answer-summary").inner_text()
    assert re.search(r"2 KNOWN: .*West Yorkshire Police", summary), summary
    assert re.search(r"3 NOT CHECKED: .*Housing", summary), summary
    about = page.locator("#about").inner_text()
    assert "Tyler Mason" in about and "2009-11-02" in about
    health = page.locator("#answer-health .dob-rules").inner_text()
    assert health and "0 days" not in health
    page.emulate_media(media="print")
    assert page.locator("#about").is_visible() and page.locator(".print-about").is_visible()
    assert "Tyler Mason" in page.locator(".print-about").inner_text()
    page.pdf(path=str(SHOTS / "lookup-grouped-print.pdf"))
    page.emulate_media(media="screen")
    page.screenshot(path=str(SHOTS / "lookup-grouped.png"), full_page=True)
    # My lookups reopens the kept result (audited on the console's log), never asked again
    page.get_by_role("link", name="My lookups and their RAG timers").click()
    page.locator("#history a.reopen").first.click()
    page.wait_for_selector("#reopened")
    assert page.locator("#lookup-form").count() == 0
    assert page.locator("#answer-police").get_attribute("data-state") == "known"
    assert "Tyler Mason" in page.locator("#about").inner_text()
    page.screenshot(path=str(SHOTS / "lookup-reopened.png"), full_page=True)
    context.close()

    context, page = console.signed_in(role="ig_lead", subject="ira.ig")
    assert page.get_by_role("link", name="Lookup", exact=True).count() == 0
    assert page.locator("#not-offered").is_visible() and page.locator("#lookup-form").count() == 0
    context.close()


def test_console_log_has_no_personal_data(console: Console) -> None:
    text = console.log.read_text()
    assert '"event": "lookup_answered"' in text
    for value in PERSONAL:
        assert value not in text, value
