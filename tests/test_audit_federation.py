"""The audit trail in a running federation: every question and answer on the record, no
identifiers in it, searchable by subject, and no answer without its entry."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading

import grpc
import pytest
import yaml

from mash.v1 import answer_pb2
from tests.helpers import Running, lookup_request

R = answer_pb2
MASH = [sys.executable, "-m", "mash"]


def mash(*args: str) -> tuple[int, str, str]:
    r = subprocess.run([*MASH, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def audit_db(fed, writer: str):
    return fed.root / "audit" / f"{writer}.db"


async def test_every_lookup_and_answer_is_on_the_record(running: Running) -> None:
    analyst = running.analyst()
    responses = [await analyst.lookup(lookup_request(case="MASH-AUD-1")),
                 await analyst.lookup(lookup_request("Oliver Grant", "2012-09-30",
                                                     ("HX1 2RS",), case="MASH-AUD-2"))]
    fed = running.fed
    # the chains verify, at the broker and at an agent
    for writer in ("broker", "police"):
        code, out, err = mash("audit", "verify", "--config", str(fed.agent_configs["police"]
                                                               if writer == "police"
                                                               else fed.broker_config))
        assert code == 0, out + err
    # who looked up Leah Thompson, when and why (a subject access request)
    code, out, _ = mash("audit", "search", "--config", str(fed.broker_config), "--name",
                        "Leah Thompson", "--dob", "2014-05-17")
    assert code == 0
    assert "MASH-AUD-1" in out and "a.analyst" in out and "MASH-AUD-2" not in out
    # every answer the analyst received is in the answering agency's own trail
    for response in responses:
        for answer in response.answers:
            if answer.agency_id not in running.agents:
                continue
            code, out, _ = mash("audit", "export", "--config",
                                str(fed.agent_configs[answer.agency_id]), "--format", "json",
                                "--out", "-", "--lookup-id", response.lookup_id)
            entries = json.loads(out)["entries"]
            assert entries, (answer.agency_id, response.lookup_id)
            states = {o["state"] for e in entries for o in e.get("outcomes", [])}
            assert R.AnswerState.Name(answer.state).removeprefix("ANSWER_STATE_") in states


async def test_the_owner_is_notified_of_lookups_that_matched(running: Running) -> None:
    await running.analyst().lookup(lookup_request(case="MASH-AUD-3"))
    code, out, _ = mash("audit", "notifications", "--config",
                        str(running.fed.agent_configs["police"]))
    assert code == 0 and "MASH-AUD-3" in out


async def test_no_identifiers_in_any_audit_store(running: Running) -> None:
    await running.analyst().lookup(lookup_request())
    for path in (running.fed.root / "audit").glob("*.db"):
        with sqlite3.connect(path) as db:
            dump = "\n".join(db.iterdump())
        for value in ("Thompson", "Leah", "2014-05-17", "LS9 8AB", "LS98AB"):
            assert value.lower() not in dump.lower(), (path.name, value)


@pytest.fixture
def quick_audit(monkeypatch):
    """Audit writers give up after 0.3 s of waiting for a lock (the default is 5 s)."""
    monkeypatch.setenv("MASH_AUDIT_WRITE_TIMEOUT", "0.3")


@pytest.fixture
async def locked_running(quick_audit, tmp_path):
    from tests.conftest import CORE
    from tests.helpers import build_federation

    async with Running.up(build_federation(tmp_path / "fed"), CORE) as run:
        yield run


async def test_broker_answers_nothing_when_its_audit_cannot_be_written(
        locked_running: Running) -> None:
    running = locked_running
    path = audit_db(running.fed, "broker")
    before = sqlite3.connect(path).execute("SELECT count(*) FROM audit_entries").fetchone()[0]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    police = audit_db(running.fed, "police")
    police_before = sqlite3.connect(police).execute(
        "SELECT count(*) FROM audit_entries").fetchone()[0]
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.analyst().lookup(lookup_request())
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "audit trail cannot be written" in err.value.details()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # nobody was asked: the police agent recorded no query
    assert sqlite3.connect(police).execute(
        "SELECT count(*) FROM audit_entries").fetchone()[0] == police_before
    after = sqlite3.connect(path).execute("SELECT count(*) FROM audit_entries").fetchone()[0]
    assert after == before
    # and once the store is writable again, lookups resume
    await running.analyst().lookup(lookup_request())


async def test_agent_answers_not_checked_when_its_audit_cannot_be_written(
        locked_running: Running) -> None:
    running = locked_running
    blocker = sqlite3.connect(audit_db(running.fed, "police"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        answers = {a.agency_id: a for a in
                   (await running.analyst().lookup(lookup_request())).answers}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    police = answers["police"]
    assert police.state == R.ANSWER_STATE_NOT_CHECKED
    assert police.not_checked_reason == R.NOT_CHECKED_REASON_AUDIT_FAILED
    assert not police.matches and "could not record this query" in police.detail
    assert answers["health"].state == R.ANSWER_STATE_KNOWN


async def test_an_agent_that_cannot_open_its_audit_store_does_not_start(fed) -> None:
    from mash.agent import config as agent_config
    from mash.agent.service import Agent
    from mash.audit import AuditError

    cfg_path = fed.agent_configs["police"]
    cfg = yaml.safe_load(cfg_path.read_text())
    blocked = fed.root / "not-a-dir"
    blocked.write_text("a file where a directory should be")
    cfg["audit"]["store"] = f"sqlite:///{blocked / 'police.db'}"
    cfg_path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(AuditError):
        Agent(agent_config.load(cfg_path))
    await asyncio.sleep(0)


def _agent_in_process(fed):
    """The police agent's handler, loaded and ready, without a broker link."""
    from mash.agent import config as agent_config
    from mash.agent.service import Agent

    cfg = agent_config.load(fed.agent_configs["police"])
    agent = Agent(cfg)
    agent.policy.store.reload()
    agent.state.load(cfg.sources, cfg.index_path)
    return agent


def _query(fed, query_id: str, request=None, token: str | None = None):
    from mash.v1 import agent_pb2

    request = request or lookup_request()
    return agent_pb2.Query(query_id=query_id, lookup_id=f"l-{query_id}",
                           analyst_token=fed.token() if token is None else token,
                           subject=request.subject, context=request.context)


async def test_an_agent_answers_nothing_when_its_entry_cannot_be_recorded(fed) -> None:
    """A query whose entry cannot be built, or whose log is closed, is NOT_CHECKED and
    releases nothing; a query still queued when the query threads shut down is told so at
    once rather than left to time out."""
    from concurrent.futures import ThreadPoolExecutor

    from mash.agent.batches import QueryQueue

    agent = _agent_in_process(fed)
    handler, query = agent.handler, _query(fed, "q-1")
    workers = ThreadPoolExecutor(2)
    queries = QueryQueue(handler.answer_batch, workers, 2)
    try:
        answer = await asyncio.wait_for(handler.answer_queued(query, queries), 10)
        assert answer.state == R.ANSWER_STATE_KNOWN and answer.matches

        def broken(decided):
            raise ValueError("entry could not be built")

        handler.audit_entry = broken  # type: ignore[method-assign]
        answer = await asyncio.wait_for(handler.answer_queued(query, queries), 10)
        assert answer.state == R.ANSWER_STATE_NOT_CHECKED
        assert answer.not_checked_reason == R.NOT_CHECKED_REASON_AUDIT_FAILED
        assert not answer.matches and "could not record this query" in answer.detail
        del handler.audit_entry

        # a query still queued when the query threads shut down is told so, not left waiting
        release = threading.Event()
        busy = ThreadPoolExecutor(1)
        busy.submit(release.wait, 10)
        queued = asyncio.ensure_future(handler.answer_queued(query, QueryQueue(
            handler.answer_batch, busy, 1)))
        await asyncio.sleep(0.05)
        busy.shutdown(wait=False, cancel_futures=True)
        release.set()
        answer = await asyncio.wait_for(queued, 10)
        assert answer.state == R.ANSWER_STATE_NOT_CHECKED and not answer.matches
        assert answer.not_checked_reason == R.NOT_CHECKED_REASON_AGENT_ERROR
        assert "stopped before it searched" in answer.detail
        # ... and so is one that arrives after they have shut down
        answer = await asyncio.wait_for(handler.answer_queued(query, QueryQueue(
            handler.answer_batch, busy, 1)), 10)
        assert answer.not_checked_reason == R.NOT_CHECKED_REASON_AGENT_ERROR

        agent.audit.close()
        answer = await asyncio.wait_for(handler.answer_queued(query, queries), 10)
        assert answer.not_checked_reason == R.NOT_CHECKED_REASON_AUDIT_FAILED
        assert not answer.matches and "closed" in answer.detail
    finally:
        workers.shutdown()
        agent.audit.close()


async def test_queries_waiting_together_are_answered_together_each_on_its_own_merits(
        fed) -> None:
    """Queries that queue while the query thread is busy are answered as one batch, with one
    audit transaction; each still gets its own answer, and one query's failure (a refused
    token, an entry that cannot be built) is that query's alone."""
    from concurrent.futures import ThreadPoolExecutor

    from prometheus_client import REGISTRY

    from mash.agent.batches import QueryQueue

    agent = _agent_in_process(fed)
    handler = agent.handler
    build = handler.audit_entry

    def entry(decided):
        if decided.query.query_id == "q-broken":
            raise ValueError("entry could not be built")
        return build(decided)

    handler.audit_entry = entry  # type: ignore[method-assign]
    db = sqlite3.connect(audit_db(fed, "police"))
    before = db.execute("SELECT count(*) FROM audit_entries").fetchone()[0]
    batches = {"agency": "police"}
    def sizes() -> tuple[float, float]:
        return tuple(REGISTRY.get_sample_value(f"mash_agent_batch_queries_{kind}", batches) or 0
                     for kind in ("count", "sum"))

    count_before, sum_before = sizes()
    workers, release = ThreadPoolExecutor(1), threading.Event()
    workers.submit(release.wait, 10)  # the one query thread is busy while they queue
    queries = QueryQueue(handler.answer_batch, workers, 1, "police")
    asked = [_query(fed, "q-known"),
             _query(fed, "q-stranger", lookup_request("Quentin Nobody", "1950-01-01",
                                                      ("ZZ9 9ZZ",))),
             _query(fed, "q-token", token="not-a-token"),
             _query(fed, "q-broken")]
    try:
        waiting = [asyncio.ensure_future(handler.answer_queued(q, queries)) for q in asked]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiting)
        release.set()
        known, stranger, token, broken = await asyncio.wait_for(asyncio.gather(*waiting), 10)
    finally:
        workers.shutdown()
        agent.audit.close()
    assert known.state == R.ANSWER_STATE_KNOWN and known.matches
    assert stranger.state == R.ANSWER_STATE_NOT_KNOWN and not stranger.matches
    assert token.not_checked_reason == R.NOT_CHECKED_REASON_TOKEN_REJECTED
    assert broken.not_checked_reason == R.NOT_CHECKED_REASON_AUDIT_FAILED and not broken.matches
    # one batch of four, and every query but the broken one on the record
    assert sizes() == (count_before + 1, sum_before + 4)
    rows = db.execute("SELECT seq, body FROM audit_entries ORDER BY seq").fetchall()[before:]
    recorded = [q.query_id for q in asked if any(q.query_id in body for _, body in rows)]
    assert recorded == ["q-known", "q-stranger", "q-token"] and len(rows) == 3


async def test_purge_takes_retention_from_the_signed_agreements(running: Running) -> None:
    await running.analyst().lookup(lookup_request())
    fed = running.fed
    bundle = fed.root / "policy" / "bundle.json"
    code, out, err = mash("audit", "purge", "--config", str(fed.broker_config), "--bundle",
                          str(bundle), "--trusted", str(fed.certs / "ig-lead.pub"),
                          "--dry-run")
    assert code == 0, err
    assert "broker: 0 entries would be purged" in out  # everything is younger than 6 years
    code, _, err = mash("audit", "purge", "--config", str(fed.broker_config), "--bundle",
                        str(bundle), "--dry-run")
    assert code == 2 and "needs --trusted" in err
    stranger = fed.root / "stranger.pub"
    from mash import signing

    stranger.write_bytes(signing.generate_key()[1])
    code, _, err = mash("audit", "purge", "--config", str(fed.broker_config), "--bundle",
                        str(bundle), "--trusted", str(stranger), "--dry-run")
    assert code == 1 and "does not trust" in err
