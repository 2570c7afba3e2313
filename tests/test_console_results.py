"""The result page as a new user found it, in process (TestClient) against a real broker and
agents: answers grouped by state with the agencies named in the summary, whom they are about
at the top, the date rules the agents applied, long withheld lists collapsed, the chosen
purpose's stages only, IG-only users not offered lookups, and My lookups reopening a kept
result (audited, never asked again)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from mash.audit.report import Criteria, search
from mash.audit.store import open_store
from mash.demo import federation
from tests.console_support import console_fixtures
from tests.helpers import ThreadedFederation
from tests.test_console_app import csrf_of, sign_in

CORE = ["police", "health", "csc", "education", "ambulance"]
TYLER = {"name": "Tyler Mason", "dob": "2009-11-02", "purpose": "child_safeguarding",
         "stage": "triage", "case": "MASH-2026-0600", "urgency": "red",
         "reason": "Referral from school: concern about exploitation"}


threaded, fed, client = console_fixtures("console-results", CORE)


def look_up(client: TestClient, form: dict[str, str]) -> str:
    page = client.get("/lookup")
    response = client.post("/lookup", data={**form, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 200, response.text
    return response.text


def lookups_in_broker_audit(fed: federation.Federation, case: str) -> int:
    store = open_store(f"sqlite:///{fed.root / 'audit' / 'broker.db'}")
    try:
        return sum(1 for f in search(store, Criteria(case_reference=case))
                   if f.entry and f.entry.event == "lookup")
    finally:
        store.close()


def reopened_in_console_audit(fed: federation.Federation, case: str) -> int:
    store = open_store(f"sqlite:///{fed.root / 'audit' / 'console.db'}")
    try:
        return sum(1 for f in search(store, Criteria(case_reference=case))
                   if f.entry and f.entry.event == "reopen")
    finally:
        store.close()


def test_answers_grouped_by_state_with_the_agencies_named(client: TestClient,
                                                          fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    html = look_up(client, TYLER)
    groups = re.findall(r'<section class="answer-group" id="group-([a-z-]+)"', html)
    assert groups == ["known", "not-checked", "withheld", "not-known"]
    summary = html.split('id="answer-summary"')[1].split("</ul>")[0]
    known = re.search(r'data-state="known">.*?</a>: ([^<]+)', summary, re.S)
    assert known and "Police" in known[1] and "Children" in known[1]
    not_checked = re.search(r'data-state="not-checked">.*?</a>: ([^<]+)', summary, re.S)
    assert not_checked and "Housing" in not_checked[1] and "Probation" in not_checked[1]
    assert "Police" not in not_checked[1]
    # each card sits in its state's group
    known_group = html.split('id="group-known"')[1].split('<section class="answer-group"')[0]
    assert 'id="answer-police"' in known_group and 'id="answer-health"' not in known_group


def test_whom_the_answers_are_about_and_the_date_rules(client: TestClient,
                                                       fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    html = look_up(client, {**TYLER, "postcodes": "LS9 8AB"})
    about = html.split('id="about"')[1].split("</div>")[0]
    assert "Tyler Mason" in about and "2009-11-02" in about and "LS9 8AB" in about
    assert "MASH-2026-0600" in about
    printed = html.split('class="print-only print-about"')[1].split("</p>")[0]
    assert "Tyler Mason" in printed  # on every printed page
    # NOT KNOWN says which date rules were applied, as `mash lookup` does
    health = html.split('id="answer-health"')[1].split("</li>")[0]
    rules = re.search(r'<dd class="dob-rules">([^<]+)</dd>', health)
    assert rules and "0 days" not in rules[1] and "exact" in rules[1]


def test_long_withheld_lists_are_collapsed(client: TestClient,
                                           fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    html = look_up(client, {**TYLER, "name": "Leah Thompson", "dob": "2014-05-17",
                            "postcodes": "LS9 8AB", "stage": "research"})
    lists = re.findall(r'<details class="withheld-list"( open)?>\s*<summary>Withheld, and '
                       r'why \((\d+) fields?\)', html)
    assert lists, "a withheld list"
    for opened, count in lists:
        assert (opened == " open") == (int(count) <= 5)
    assert any(int(count) > 5 for _opened, count in lists), "a long one, collapsed"


def test_only_the_chosen_purposes_stages_are_offered(client: TestClient,
                                                     fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    page = client.get("/lookup")
    # every stage at first, each saying its purposes (the page's script narrows them)
    assert re.search(r'<option value="s42" data-purposes="adult_safeguarding">', page.text)
    response = client.post("/lookup", data={**TYLER, "reason": "short",
                                            "csrf_token": csrf_of(page.text)})
    assert response.status_code == 422
    assert re.search(r'<option value="s42" data-purposes="adult_safeguarding" hidden disabled>',
                     response.text)
    assert re.search(r'<option value="s47" data-purposes="child_safeguarding" selected>|'
                     r'<option value="s47" data-purposes="child_safeguarding">', response.text)
    assert 'id="reason-error"' in response.text


def test_ig_only_users_are_not_offered_lookups(client: TestClient,
                                               fed: federation.Federation) -> None:
    sign_in(client, fed.token(role="ig_lead", subject="ira.ig"))
    page = client.get("/lookup")
    assert page.status_code == 200
    assert 'id="not-offered"' in page.text and 'id="lookup-form"' not in page.text
    assert ">Lookup</a>" not in page.text and ">My lookups</a>" not in page.text
    assert ">Cases</a>" not in page.text and ">Agreements</a>" in page.text
    response = client.post("/lookup", data={**TYLER, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 403
    assert client.get("/lookups").status_code == 403
    assert client.get("/cases").status_code == 403
    assert lookups_in_broker_audit(fed, TYLER["case"] + "-IG") == 0


def test_my_lookups_reopen_the_kept_result(client: TestClient, fed: federation.Federation,
                                           threaded: ThreadedFederation) -> None:
    case = "MASH-2026-0601"
    sign_in(client, fed.token(subject="sam.analyst"))
    first = look_up(client, {**TYLER, "case": case})
    history = client.get("/lookups").text
    link = re.search(r'<a href="(/lookups/[0-9a-f]{32})" class="reopen">', history)
    assert link, history
    assert lookups_in_broker_audit(fed, case) == 1
    assert reopened_in_console_audit(fed, case) == 0
    threaded.call(threaded.run.stop_agent("police"))  # nothing is asked again: no matter
    try:
        page = client.get(link[1])
    finally:
        threaded.call(threaded.run.start_agent("police"))
    assert page.status_code == 200
    html = page.text
    assert 'id="reopened"' in html and 'id="lookup-form"' not in html
    assert 'id="answer-police" data-state="known"' in html
    for agency in ("police", "health", "education", "probation"):
        state = re.search(rf'id="answer-{agency}" data-state="([a-z-]+)"', first)
        assert state and f'id="answer-{agency}" data-state="{state[1]}"' in html
    assert "Tyler Mason" in html.split('id="about"')[1].split("</div>")[0]
    assert lookups_in_broker_audit(fed, case) == 1  # never asked again
    assert reopened_in_console_audit(fed, case) == 1  # the reopening is on the record
    assert 'id="earlier"' not in client.get("/lookups").text  # it is this session's

    # signed in again (a new session): the kept result is still listed, and reopens
    later = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    sign_in(later, fed.token(subject="sam.analyst"))
    earlier = later.get("/lookups").text.split('id="earlier"')[1].split("</table>")[0]
    assert f'href="{link[1]}"' in earlier and case in earlier
    assert later.get(link[1]).status_code == 200
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    sign_in(other, fed.token(subject="someone.else"))
    assert 'id="earlier"' not in other.get("/lookups").text
    assert other.get(link[1]).status_code == 404  # only its analyst reopens it
    assert client.get("/lookups/" + "0" * 32).status_code == 404
    assert client.get(link[1].replace("/lookups/", "/cases/")).status_code == 404
