"""The console's report page in process (TestClient): who may read it, what it shows, and
the same figures as JSON and CSV, over a real audit trail in the broker's store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mash.audit.build import answers_entry, lookup_entry
from mash.audit.config import AuditConfig, AuditKeys
from mash.context import LookupContext
from mash.demo import federation
from mash.identity.tokens import Analyst
from mash.v1 import answer_pb2
from tests.console_support import console_client
from tests.helpers import build_federation
from tests.test_console_app import sign_in

ANALYST = Analyst("sam.analyst", "mash", "analyst", "mash-1", "idp", "t",
                  dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> federation.Federation:
    fed = build_federation(tmp_path_factory.mktemp("console-report") / "fed", background=30)
    # the broker's own trail
    with AuditKeys.read(AuditConfig.load(fed.broker_config)).open_log() as log:
        for n in range(6):
            ctx = LookupContext("child_safeguarding", "research", f"MASH-R-{n}",
                                "a referral about a child", "red")
            log.append(lookup_entry(lookup_id=f"R{n}", analyst=ANALYST, context=ctx,
                                    subject=(), asked=["police", "housing"]))
            log.append(answers_entry(
                lookup_id=f"R{n}", analyst=ANALYST, context=ctx, subject=(),
                answer_ms={"police": 40 + n},
                answers=[answer_pb2.AgencyAnswer(agency_id="police",
                                                 state=answer_pb2.ANSWER_STATE_KNOWN),
                         answer_pb2.AgencyAnswer(
                             agency_id="housing", state=answer_pb2.ANSWER_STATE_NOT_CHECKED,
                             not_checked_reason=answer_pb2.NOT_CHECKED_REASON_AGENT_OFFLINE)]))
    return fed


@pytest.fixture
def client(fed: federation.Federation) -> TestClient:
    return console_client(fed)


def test_the_report_needs_a_session_and_a_role(client: TestClient,
                                               fed: federation.Federation) -> None:
    for path in ("/report", "/report.json", "/report.csv"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/signin"
    sign_in(client, fed.token(role="analyst"))
    assert ">Report</a>" not in client.get("/lookup").text
    for path in ("/report", "/report.json", "/report.csv"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "for supervisors and information governance leads" in response.text


@pytest.mark.parametrize("role", ["supervisor", "ig_lead"])
def test_supervisors_and_ig_leads_read_it(client: TestClient, fed: federation.Federation,
                                          role: str) -> None:
    sign_in(client, fed.token(subject="pat.lead", role=role))
    assert ">Report</a>" in client.get("/lookup").text
    page = client.get("/report")
    assert page.status_code == 200
    html = page.text
    assert "Small numbers suppressed" in html
    assert '<strong id="deadline-share">0.0%</strong>' in html  # housing never answered
    assert '<script src="/static/vendor/chart.umd.min.js" defer></script>' in html
    assert 'id="chart-availability"' in html
    for personal in ("sam.analyst", "MASH-R-", "a referral about a child"):
        assert personal not in html
    report = client.get("/report.json").json()
    assert report["lookups"]["total"] == 6
    assert report["agencies"]["police"]["median_answer_ms"] == 42  # 40..45
    assert report["agencies"]["housing"]["not_checked_reasons"] == {"agent_offline": 6}
    assert report["rag_hours"] == {"red": 4.0, "amber": 24.0, "green": 72.0}
    csv = client.get("/report.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "agency_not_checked_reason,,housing,agent_offline,6" in csv.text


def test_a_window_in_the_past_and_bad_dates(client: TestClient,
                                            fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="pat.lead", role="supervisor"))
    old = client.get("/report.json", params={"since": "2020-01-01", "until": "2020-01-31"})
    assert old.json()["lookups"]["total"] == 0
    bad = client.get("/report", params={"since": "last week"})
    assert bad.status_code == 422
    assert "From: &#39;last week&#39; is not a date like 2026-11-01" in bad.text
    assert client.get("/report", params={"period": "hour"}).status_code == 422
    assert client.get("/report.json", params={"until": "nope"}).status_code == 422


def test_the_chart_library_is_served_by_the_console(client: TestClient) -> None:
    response = client.get("/static/vendor/chart.umd.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.text.startswith("/*!\n * Chart.js v4.6.1")
    package = Path(__file__).parents[1] / "package.json"
    assert '"chart.js": "4.6.1"' in package.read_text()  # the pin the file came from
