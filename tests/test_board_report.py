"""The board report over a real audit trail (SQLite and PostgreSQL), and `mash report`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mash.audit.build import answers_entry, lookup_entry
from mash.audit.entry import AuditEntry
from mash.audit.log import AuditLog
from mash.audit.verify import verify_store
from mash.board import render, suppress
from mash.board.figures import Window, compute
from mash.context import LookupContext
from mash.identity.tokens import Analyst
from mash.v1 import answer_pb2
from tests.audit_support import BACKENDS, Keys, backend, entry, utc
from tests.helpers import Running, lookup_request
from tests.test_cli import mash, one_error_line, run_mash

R = answer_pb2
ANALYST = Analyst("a.analyst", "mash", "analyst", "mash-1", "idp", "tok-1",
                  dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
AGENCIES = {"police": "Police", "health": "Health", "housing": "Housing",
            "probation": "Probation", "ambulance": "Ambulance"}


def answer(agency: str, state: int, reason: int = 0) -> answer_pb2.AgencyAnswer:
    return answer_pb2.AgencyAnswer(agency_id=agency, state=state,  # type: ignore[arg-type]
                                   not_checked_reason=reason)  # type: ignore[arg-type]


class OldEntry(AuditEntry):
    """An entry as written before `answer_ms` and `elapsed_ms` existed."""

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.pop("elapsed_ms")
        data["outcomes"] = tuple({k: v for k, v in o.items() if k != "answer_ms"}
                                 for o in data["outcomes"])
        return data


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Trail:
    store: Any
    keys: Keys
    clock: Clock
    log: AuditLog
    n: int = 0

    def lookup(self, at: dt.datetime, *, purpose: str, stage: str, urgency: str,
               answers: list[answer_pb2.AgencyAnswer] | None, after: dt.timedelta,
               old: bool = False) -> None:
        """One lookup as the broker records it: the question, then (`after` later) its
        answer set; `answers=None`: the broker stopped before answering."""
        self.n += 1
        lookup_id = f"L{self.n:04d}"
        ctx = LookupContext(purpose, stage, f"CASE-{self.n}", "a referral to look into", urgency)
        self.clock.now = at
        self.log.append(lookup_entry(lookup_id=lookup_id, analyst=ANALYST, context=ctx,
                                     subject=(), asked=[a.agency_id for a in answers or []]))
        if answers is None:
            return
        self.clock.now = at + after
        built = answers_entry(lookup_id=lookup_id, analyst=ANALYST, context=ctx, subject=(),
                              answers=answers,
                              answer_ms={a.agency_id: 100 + self.n for a in answers},
                              elapsed_ms=int(after.total_seconds() * 1000))
        self.log.append(OldEntry(**{f: getattr(built, f) for f in built.__dataclass_fields__})
                        if old else built)


@pytest.fixture(params=BACKENDS)
def trail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trail]:
    with backend(request.param, tmp_path) as db:
        store = db.open()
        keys = Keys(tmp_path / "keys")
        clock = Clock(utc(2026, 11, 2, 9))
        log = AuditLog(store, "broker", keys.signer, checkpoint_every=7, clock=clock)
        t = Trail(store, keys, clock, log)
        day1, day2 = utc(2026, 11, 2, 9), utc(2026, 11, 3, 9)
        seconds = dt.timedelta(seconds=2)
        for i in range(10):  # red, every agency with an agreement answered in time
            t.lookup(day1 + dt.timedelta(minutes=i), purpose="child_safeguarding",
                     stage="research", urgency="red", after=seconds, answers=[
                         answer("police", R.ANSWER_STATE_KNOWN),
                         answer("health", R.ANSWER_STATE_NOT_KNOWN),
                         answer("housing", R.ANSWER_STATE_NOT_KNOWN),
                         answer("probation", R.ANSWER_STATE_NOT_CHECKED,
                                R.NOT_CHECKED_REASON_NO_AGREEMENT)])
        for i in range(5):  # amber: housing timed out, so not answered (NOT CHECKED)
            t.lookup(day1 + dt.timedelta(hours=1, minutes=i), purpose="child_safeguarding",
                     stage="triage", urgency="amber", after=seconds, answers=[
                         answer("police", R.ANSWER_STATE_KNOWN),
                         answer("health", R.ANSWER_STATE_WITHHELD),
                         answer("housing", R.ANSWER_STATE_NOT_CHECKED,
                                R.NOT_CHECKED_REASON_TIMED_OUT),
                         answer("probation", R.ANSWER_STATE_NOT_CHECKED,
                                R.NOT_CHECKED_REASON_NO_AGREEMENT)])
        for i in range(3):  # green, written as entries were before answer_ms existed
            t.lookup(day2 + dt.timedelta(minutes=i), purpose="adult_safeguarding",
                     stage="s42", urgency="green", after=seconds, old=True, answers=[
                         answer("police", R.ANSWER_STATE_KNOWN),
                         answer("health", R.ANSWER_STATE_NOT_KNOWN),
                         answer("housing", R.ANSWER_STATE_NOT_KNOWN),
                         answer("probation", R.ANSWER_STATE_NOT_CHECKED,
                                R.NOT_CHECKED_REASON_NO_AGREEMENT)])
        t.lookup(day2 + dt.timedelta(hours=2), purpose="child_safeguarding", stage="research",
                 urgency="red", after=seconds, answers=None)  # the broker stopped
        t.lookup(utc(2026, 11, 9), purpose="child_safeguarding", stage="research",
                 urgency="red", after=seconds, answers=[answer("police", R.ANSWER_STATE_KNOWN)])
        clock.now = day2
        log.append(entry(99, event="query"))  # an agent's entry in the same store: ignored
        yield t
        store.close()


def window(**kw: Any) -> Window:
    return Window(**{"since": utc(2026, 11, 2), "until": utc(2026, 11, 4),
                     "agencies": AGENCIES, **kw})


def test_the_report_counts_the_trail(trail: Trail) -> None:
    report = compute(trail.store, window())
    assert all(r.ok for r in verify_store(trail.store, trail.keys.verifier()))  # old + new
    lookups = report["lookups"]
    assert lookups["total"] == 19  # 10 + 5 + 3 + 1; the one on 9 November is outside
    # 3 adult lookups: below 5, so hidden; child's 16 would give them away from the total
    assert lookups["by_purpose"] == {"adult_safeguarding": "<5",
                                     "child_safeguarding": "suppressed"}
    assert lookups["by_stage"] == {"adult_safeguarding": {"s42": "<5"},
                                   "child_safeguarding": {"research": 11, "triage": 5}}
    assert lookups["by_urgency"] == {"amber": "suppressed", "green": "<5", "red": 11}
    # in time: the 10 red and the 3 green; not: 5 amber (housing timed out), 1 unanswered
    assert report["answered_within_deadline_share"] == round(13 / 19, 4)
    within = report["answered_within_deadline"]
    assert within["amber"] == {"lookups": 5, "within": 0, "share": 0.0}  # 5 is shown
    assert within["red"] == {"lookups": 11, "within": 10, "share": None}  # 1 missed: hidden
    assert within["green"] == {"lookups": "<5", "within": "<5", "share": None}


def test_per_agency_states_reasons_and_times(trail: Trail) -> None:
    agencies = compute(trail.store, window())["agencies"]
    assert set(agencies) == set(AGENCIES)
    housing = agencies["housing"]
    assert housing["states"] == {"KNOWN": 0, "NOT_CHECKED": 5, "NOT_KNOWN": 13, "WITHHELD": 0}
    assert housing["not_checked_reasons"] == {"timed_out": 5}
    assert housing["availability"] == round(13 / 18, 4)
    assert housing["completeness"] == round(13 / 18, 4)
    assert [(s["period"], s["asked"], s["availability"]) for s in housing["over_time"]] == [
        ("2026-11-02", 15, round(10 / 15, 4)), ("2026-11-03", "<5", None)]
    probation = agencies["probation"]  # no agreement: reachable, but checks nothing
    assert probation["not_checked_reasons"] == {"no_agreement": 18}
    assert (probation["availability"], probation["completeness"]) == (1.0, 0.0)
    police = agencies["police"]
    assert police["states"]["KNOWN"] == 18
    # answer times are recorded by the 15 new-style entries, not by the 3 old ones
    assert police["answer_times_recorded"] == 15
    assert police["median_answer_ms"] == 100 + 8  # lookups 1..15 took 101..115 ms
    assert probation["median_answer_ms"] is None  # it never answered
    assert agencies["ambulance"] == {**agencies["ambulance"], "asked": 0, "over_time": [],
                                     "median_answer_ms": None}


def test_the_report_holds_no_personal_data(trail: Trail) -> None:
    text = json.dumps(compute(trail.store, window()))
    for needle in ("a.analyst", "CASE-", "a referral to look into", "L00"):
        assert needle not in text


def test_the_suppression_rule() -> None:
    assert [suppress.count(n) for n in (0, 1, 4, 5, 6)] == [0, "<5", "<5", 5, 6]
    assert suppress.group({"a": 3, "b": 9, "c": 40}) == {"a": "<5", "b": "suppressed",
                                                          "c": 40}
    assert suppress.group({"a": 3, "b": 2, "c": 40}) == {"a": "<5", "b": "<5", "c": 40}
    assert suppress.group({"a": 5, "b": 0}) == {"a": 5, "b": 0}  # positive control
    assert suppress.share(10, 20) == 0.5
    assert suppress.share(3, 20) is None and suppress.share(17, 20) is None
    assert suppress.share(4, 4) is None and suppress.share(0, 5) == 0.0


def test_a_window_without_lookups_is_all_zeros(trail: Trail) -> None:
    report = compute(trail.store, window(since=utc(2026, 10, 1), until=utc(2026, 10, 2)))
    assert report["lookups"]["total"] == 0
    assert report["answered_within_deadline_share"] is None
    assert report["agencies"]["police"]["asked"] == 0


def test_weeks_and_csv_and_html(trail: Trail) -> None:
    report = compute(trail.store, window(period="week"))
    assert [s["period"] for s in report["agencies"]["housing"]["over_time"]] == ["2026-W45"]
    out = io.StringIO()
    render.write_csv(report, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["section"] == "note" and "shown as \"<5\"" in rows[0]["value"]
    assert {"section": "agency_state", "period": "", "agency": "housing",
            "measure": "NOT_CHECKED", "value": "5"} in rows
    page = render.page(report)
    assert "Chart.js v4.6.1" in page and "cdn" not in page.lower()
    assert 'id="board-data"' in page and "Small numbers suppressed" in page


# --- `mash report` against a real federation -------------------------------------------


async def test_mash_report_from_a_real_broker(running: Running, tmp_path: Path) -> None:
    analyst = running.analyst()
    for urgency in ("red",) * 5 + ("amber",) * 2:
        await analyst.lookup(lookup_request(urgency=urgency))
    today = dt.datetime.now(dt.UTC).date().isoformat()
    config = str(running.fed.broker_config)
    code, out, err = await mash("report", "--config", config, "--since", today)
    assert code == 0, err
    report = json.loads(out)
    assert report["lookups"]["total"] == 7
    assert report["lookups"]["by_urgency"] == {"amber": "<5", "red": "suppressed"}
    police = report["agencies"]["police"]
    assert police["name"] == "West Yorkshire Police (synthetic)"
    assert police["states"]["KNOWN"] == 7
    assert police["median_answer_ms"] is not None  # the broker records answer times now
    housing = report["agencies"]["housing"]  # no agent running
    assert housing["not_checked_reasons"] == {"agent_offline": 7}
    assert housing["availability"] == 0.0
    # every agency with an agreement did not answer (housing is offline): none in time
    assert report["answered_within_deadline_share"] == 0.0
    code, out, _ = await mash("report", "--config", config, "--since", today,
                              "--format", "csv")
    assert code == 0 and out.startswith("section,period,agency,measure,value")
    html = tmp_path / "board.html"
    code, _, err = await mash("report", "--config", config, "--since", today, "--format",
                              "html", "--out", str(html))
    assert code == 0 and "report written to" in err
    assert "West Yorkshire Police (synthetic)" in html.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "'yesterday' is not a date"),
    (["--since", "2026-11-05", "--until", "2026-11-01"], "--until must be after --since"),
    (["--since", "2026-11-01", "--format", "pdf"], "--format 'pdf' is not one of"),
    (["--since", "2026-11-01", "--rag-hours", "red=9,amber=2"], "red must be soonest"),
    (["--since", "2026-11-01", "--rag-hours", "blue=3"], "write red=4,amber=24,green=72"),
])
def test_bad_report_options_are_one_line(fed: Any, args: list[str], message: str) -> None:
    code, out, err = run_mash("report", "--config", str(fed.broker_config), *args)
    assert code == 2, err
    assert message in one_error_line(err) and out == ""


def test_report_needs_a_broker_config(tmp_path: Path) -> None:
    code, _, err = run_mash("report", "--since", "2026-11-01")
    assert code == 2 and "no broker config" in one_error_line(err)


def test_answer_times_must_be_milliseconds() -> None:
    from mash.audit.entry import Outcome
    from mash.audit.errors import AuditError

    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(AuditError, match="whole number of milliseconds"):
            Outcome("police", "KNOWN", answer_ms=bad)  # type: ignore[arg-type]
        with pytest.raises(AuditError, match="whole number of milliseconds"):
            AuditEntry(event="answers", elapsed_ms=bad)  # type: ignore[arg-type]
    assert Outcome("police", "KNOWN", answer_ms=0).answer_ms == 0  # positive control
