"""The console's cases in process (TestClient) against a real broker and agents: open a case,
the family picture kept encrypted and reopened (audited) without asking again."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fastapi.testclient import TestClient

from mash.audit.report import Criteria, search
from mash.audit.store import open_store
from mash.demo import federation
from tests.console_support import console_client, console_fixtures
from tests.helpers import ThreadedFederation
from tests.test_console_app import csrf_of, sign_in

CORE = ["police", "health", "csc", "education"]
FAMILY = {"reference": "MASH-2026-0300", "purpose": "child_safeguarding", "stage": "research",
          "urgency": "red", "reason": "School referral; the household is checked together",
          "p0-relationship": "child", "p0-name": "Leah Thompson", "p0-dob": "2014-05-17",
          "p0-postcode": "LS9 8AB", "p1-relationship": "father",
          "p1-name": "Darren Thompson", "p1-dob": "1986-07-21"}


threaded, fed, client = console_fixtures("console-cases", CORE)


def open_case(client: TestClient, form: dict[str, str]) -> Any:
    page = client.get("/cases")
    return client.post("/cases", data={**form, "csrf_token": csrf_of(page.text)})


def test_a_case_is_looked_up_kept_and_reopened(client: TestClient,
                                               fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    assert ">Cases</a>" in client.get("/lookup").text
    response = open_case(client, FAMILY)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    page = client.get(location)
    assert page.status_code == 200
    html = page.text
    assert "Family picture: case MASH-2026-0300" in html and "RED" in html
    grid = re.findall(r'<tr id="person-(\d)">.*?</tr>', html, re.S)
    assert grid == ["0", "1"]
    leah = html.split('<tr id="person-0">')[1].split("</tr>")[0]
    assert 'data-state="known" data-agency="police"' in leah
    assert 'data-state="not-checked" data-agency="housing"' in leah  # no agent: never blank
    assert "⚠ NOT CHECKED" in leah and "agent offline" in leah and "● KNOWN" in leah
    assert "Darren Thompson" in html and "father" in html
    # kept: listed, and each reopening is on the console's audit record
    listing = client.get("/cases").text
    assert "MASH-2026-0300" in listing and location in listing
    client.get(location)
    audit = open_store(f"sqlite:///{fed.root / 'audit' / 'console.db'}")
    reopened = [f.entry for f in search(audit, Criteria(case_reference="MASH-2026-0300"))
                if f.entry and f.entry.event == "reopen"]
    audit.close()
    assert [e.requester for e in reopened] == ["sam.analyst", "sam.analyst"]
    # the broker was asked once per person, not again on reopening
    broker = open_store(f"sqlite:///{fed.root / 'audit' / 'broker.db'}")
    lookups = [f for f in search(broker, Criteria(case_reference="MASH-2026-0300"))
               if f.entry and f.entry.event == "lookup"]
    broker.close()
    assert len(lookups) == 2


def test_someone_else_cannot_reopen_it(client: TestClient, fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    location = open_case(client, {**FAMILY, "reference": "MASH-2026-0301"}).headers["location"]
    assert client.get(location).status_code == 200  # control
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    sign_in(other, fed.token(subject="jo.analyst"))
    response = other.get(location)
    assert response.status_code == 404 and "not yours" in response.text
    assert "MASH-2026-0301" not in other.get("/cases").text
    assert other.get("/cases/not-an-id").status_code == 404


@pytest.mark.parametrize(("change", "message"), [
    ({"p1-dob": "1986-13-21"}, 'id="p1-dob-error"><span class="visually-hidden">Error: '
                               '</span>date &#39;1986-13-21&#39; is not a calendar'),
    ({"p1-relationship": "child"}, "exactly one person must have relationship: child"),
    ({"reason": "short"}, 'id="c-reason-error"'),
    ({"purpose": "tea"}, 'id="c-purpose-error"><span class="visually-hidden">Error: </span>'
                         'choose one of the purposes the agreements name'),
])
def test_a_bad_case_is_refused_with_the_field(client: TestClient, fed: federation.Federation,
                                              change: dict[str, str], message: str) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    response = open_case(client, {**FAMILY, **change})
    assert response.status_code == 422
    assert message in response.text, response.text[:2000]
    assert "There is a problem" in response.text


def test_every_wrong_field_of_a_case_is_named_at_once(client: TestClient,
                                                      fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    response = open_case(client, {**FAMILY, "stage": "s42", "reason": "short",
                                  "p0-dob": "31/02/2014", "p0-postcode": "NOT A POSTCODE",
                                  "p1-nhs": "1234567890"})
    assert response.status_code == 422
    html = response.text
    for key in ("c-stage", "c-reason", "p0-dob", "p0-postcode", "p1-nhs"):
        assert f'id="{key}-error"' in html, key
        assert re.search(rf'id="{key}"[^>]*aria-invalid="true"', html), key
        assert f'href="#{key}"' in html, key  # and in the summary at the top
    assert "&#39;s42&#39; is not a stage of child_safeguarding" in html
    assert 'value="Darren Thompson"' in html  # what was typed is kept
    assert ">Person 2: NHS number: " in html


def test_the_form_needs_its_csrf_token(client: TestClient, fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    assert client.post("/cases", data=FAMILY).status_code == 403


def test_the_case_record_export_is_audited_too(client: TestClient,
                                               fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    location = open_case(client, {**FAMILY, "reference": "MASH-2026-0302"}).headers["location"]
    response = client.get(f"{location}/export.json")
    assert response.status_code == 200
    assert 'filename="family-picture-MASH-2026-0302.json"' in \
        response.headers["content-disposition"]
    record = response.json()
    assert record["case"]["reference"] == "MASH-2026-0302"
    assert [p["relationship"] for p in record["people"]] == ["child", "father"]
    assert record["people"][0]["cells"]["housing"]["state"] == "NOT_CHECKED"
    audit = open_store(f"sqlite:///{fed.root / 'audit' / 'console.db'}")
    reopened = [f for f in search(audit, Criteria(case_reference="MASH-2026-0302"))
                if f.entry and f.entry.event == "reopen"]
    audit.close()
    assert len(reopened) == 1  # the export, and nothing else yet


def pdf_text(body: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_case_record_as_pdf_is_audited(client: TestClient,
                                           fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    location = open_case(client, {**FAMILY, "reference": "MASH-2026-0304"}).headers["location"]
    assert f'href="{location}/export.pdf"' in client.get(location).text
    response = client.get(f"{location}/export.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="family-picture-MASH-2026-0304.pdf"' in \
        response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    record = client.get(f"{location}/export.json").json()
    text = pdf_text(response.content)
    # positive control: the extraction reads this PDF's text at all
    assert "Family picture: case MASH-2026-0304" in text
    for needed in ("child_safeguarding", "research", "RED", "RAG deadline", "respond by",
                   "Generated", "sam.analyst", "Leah Thompson", "Darren Thompson", "father"):
        assert needed in text, needed
    flat = " ".join(text.split())
    for agency in record["agencies"]:
        assert " ".join(agency["name"].split()) in flat, agency
    # every cell's state in words: as many of each in the PDF's grid as in the record
    states = [c["state"] for p in record["people"] for c in p["cells"].values()]
    assert "KNOWN" in states and "NOT_CHECKED" in states
    grid = flat.split("Details")[0].split(" Person ", 1)[1]  # the table only
    assert grid.count("NOT CHECKED") == states.count("NOT_CHECKED")
    assert grid.count("NOT KNOWN") == states.count("NOT_KNOWN")
    assert grid.count("KNOWN") - grid.count("NOT KNOWN") == states.count("KNOWN")
    assert "agent offline" in grid and "no agreement" in grid
    assert "requests" not in flat and "CiQ" not in flat  # the sealed questions stay out
    audit = open_store(f"sqlite:///{fed.root / 'audit' / 'console.db'}")
    reopened = [f for f in search(audit, Criteria(case_reference="MASH-2026-0304"))
                if f.entry and f.entry.event == "reopen"]
    audit.close()
    assert len(reopened) == 3  # the page, the PDF and the JSON
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    sign_in(other, fed.token(subject="someone.else"))
    assert other.get(f"{location}/export.pdf").status_code == 404


def test_the_pdf_holds_names_the_core_font_cannot(tmp_path: Path) -> None:
    from mash.console import case_pdf

    picture = {"agencies": [{"id": "police", "name": "West Yorkshire Police"}],
               "people": [{"index": 0, "relationship": "child", "label": "Łukasz Zoë Nowak",
                           "cells": {"police": {"state": "WITHHELD", "reason": "",
                                                "detail": "Call the MASH desk"}}}],
               "not_checked": 0}
    now = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
    header = {"reference": "MASH-2026-0305", "purpose": "child_safeguarding",
              "stage": "triage", "urgency": "green"}
    body = case_pdf.case_pdf(header=header, picture=picture, case_id="c" * 32,
                             due_at=now + dt.timedelta(hours=72), stored_at=now,
                             kept_until=now + dt.timedelta(days=30), generated_by="sam")
    text = pdf_text(body)
    assert "MASH-2026-0305" in text and "WITHHELD" in text and "2026-12-07 09:00 UTC" in text
    if any(d.exists() for d in case_pdf.FONT_DIRS):
        assert "Łukasz Zoë Nowak" in text
    assert case_pdf._latin1("Łukasz Zoë") == "Lukasz Zoë"


def test_asking_again_fills_in_later_answers(client: TestClient, threaded: ThreadedFederation,
                                             fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    location = open_case(client, {**FAMILY, "reference": "MASH-2026-0303"}).headers["location"]
    page = client.get(location).text
    assert 'data-state="not-checked" data-agency="housing"' in page  # its agent is offline
    threaded.call(threaded.run.start_agent("housing"))  # ... and now it is back
    try:
        response = client.post(f"{location}/ask-again", data={"csrf_token": csrf_of(page)})
        assert response.status_code == 303
        page = client.get(location).text
    finally:
        threaded.call(threaded.run.stop_agent("housing"))
    leah = page.split('<tr id="person-0">')[1].split("</tr>")[0]
    assert 'data-state="not-checked" data-agency="housing"' not in leah
    assert 'data-state="not-checked" data-agency="probation"' in leah  # no agreement: kept
    assert 'data-state="known" data-agency="police"' in leah  # earlier answers kept
    broker = open_store(f"sqlite:///{fed.root / 'audit' / 'broker.db'}")
    asked = [f.entry.asked for f in search(broker, Criteria(case_reference="MASH-2026-0303"))
             if f.entry and f.entry.event == "lookup"]
    broker.close()
    # asked again: only the agencies offline before (ambulance and asc still are)
    assert len(asked) == 4 and asked[2:] == [("ambulance", "asc", "housing")] * 2
    assert 'data-state="not-checked" data-agency="asc"' in leah
    record = client.get(f"{location}/export.json").json()
    assert "requests" not in record  # the sealed questions are not exported
    assert client.post(f"{location}/ask-again", data={}).status_code == 403  # CSRF


def reopenings(fed: federation.Federation, case: str) -> list[str]:
    audit = open_store(f"sqlite:///{fed.root / 'audit' / 'console.db'}")
    try:
        return [f.entry.requester for f in search(audit, Criteria(case_reference=case))
                if f.entry and f.entry.event == "reopen"]
    finally:
        audit.close()


def test_the_live_grid_asks_an_agency_again_once_its_agent_answers(
        client: TestClient, threaded: ThreadedFederation, fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="sam.analyst"))
    case = "MASH-2026-0306"
    location = open_case(client, {**FAMILY, "reference": case}).headers["location"]
    page = client.get(location).text
    assert f'data-live-url="{location}/live" data-revision="0"' in page
    csrf = csrf_of(page)
    assert len(reopenings(fed, case)) == 1
    # housing's agent is still offline: nothing asked, nothing reopened, nothing sent
    quiet = client.post(f"{location}/live", data={"csrf_token": csrf, "since": "0"})
    assert quiet.status_code == 200 and quiet.json() == {"revision": 0, "changed": False}
    assert len(reopenings(fed, case)) == 1
    assert client.post(f"{location}/live", data={"since": "0"}).status_code == 403  # CSRF
    threaded.call(threaded.run.start_agent("housing"))
    try:
        live = client.post(f"{location}/live", data={"csrf_token": csrf, "since": "0"})
    finally:
        threaded.call(threaded.run.stop_agent("housing"))
    body = live.json()
    assert body["changed"] is True and body["revision"] == 1
    assert body["can_ask"] is True  # ambulance and asc are still offline
    leah = next(r for r in body["rows"] if r["index"] == 0)
    cells = {c["agency"]: c for c in leah["cells"]}
    assert cells["housing"]["css"] != "not-checked"  # its later answer
    assert cells["housing"]["word"] in ("KNOWN", "NOT KNOWN", "WITHHELD")
    assert cells["police"]["css"] == "known" and cells["probation"]["css"] == "not-checked"
    assert "requests" not in body and "answers" not in str(body)
    # the follow-up (whose picture is the grid sent) is one reopening on the record; the
    # page's next poll (already at revision 1) is none, and asks nobody: housing was just
    # asked
    assert len(reopenings(fed, case)) == 2
    again = client.post(f"{location}/live", data={"csrf_token": csrf, "since": "1"})
    assert again.json() == {"revision": 1, "changed": False}
    assert len(reopenings(fed, case)) == 2
    # a page still at revision 0 (another tab) is sent the grid: a reopening
    behind = client.post(f"{location}/live", data={"csrf_token": csrf, "since": "0"})
    assert behind.json()["revision"] == 1 and behind.json()["changed"] is True
    assert len(reopenings(fed, case)) == 3
    assert 'data-state="not-checked" data-agency="housing"' not in \
        client.get(location).text.split('<tr id="person-0">')[1].split("</tr>")[0]
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    sign_in(other, fed.token(subject="someone.else"))
    page = other.get("/cases").text
    assert other.post(f"{location}/live", data={"csrf_token": csrf_of(page),
                                                "since": "0"}).status_code == 404


def test_open_cases_are_followed_up_with_no_page_open(
        threaded: ThreadedFederation, fed: federation.Federation) -> None:
    """The console's background follow-ups: an agency a case still waits for is asked again
    once its agent answers, with the signed-in analyst's session, though no case page is
    open; the stored case has the later answer (and the reopening is audited)."""
    case = "MASH-2026-0307"
    # as a context: the app's lifespan runs the task (every second: the setting's least)
    with console_client(fed, cases={"follow_up_seconds": 1}) as client:
        follow_ups = client.app.state.case_follow_ups
        assert follow_ups.sweep_seconds == 1
        sign_in(client, fed.token(subject="sam.analyst"))
        location = open_case(client, {**FAMILY, "reference": case}).headers["location"]
        case_id = location.rsplit("/", 1)[1]

        def waiting() -> list[str]:
            return list(follow_ups.store.header_of(case_id, "sam.analyst").header["waiting"])

        time.sleep(2.5)  # two sweeps: housing's agent is offline, so nothing is asked
        assert "housing" in waiting() and reopenings(fed, case) == []
        threaded.call(threaded.run.start_agent("housing"))
        try:
            deadline = time.monotonic() + 30
            while "housing" in waiting() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            threaded.call(threaded.run.stop_agent("housing"))
        assert "housing" not in waiting()
        assert waiting() == ["ambulance", "asc"]  # still offline: asked when they answer
        assert len(reopenings(fed, case)) == 1  # the follow-up's reopening, on the record
        broker = open_store(f"sqlite:///{fed.root / 'audit' / 'broker.db'}")
        asked = [f.entry.asked for f in search(broker, Criteria(case_reference=case))
                 if f.entry and f.entry.event == "lookup"]
        broker.close()
        assert asked[2:] == [("housing",)] * 2  # each person, only the agency now answering
        page = client.get(location).text
        leah = page.split('<tr id="person-0">')[1].split("</tr>")[0]
        assert 'data-state="not-checked" data-agency="housing"' not in leah
        client.post("/signout", data={"csrf_token": csrf_of(page)})
        assert client.app.state.sessions.signed_in() == []
