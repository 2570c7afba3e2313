"""Retention per agreement: purge leaves a signed checkpoint and the chain still verifies."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from mash.audit.log import AuditLog
from mash.audit.report import Criteria, search
from mash.audit.retention import RetentionPolicy, purge
from mash.audit.verify import verify_store
from tests.audit_support import BACKENDS, JANE, Keys, backend, entry, utc

NOW = utc(2026, 6, 1)
OLD = utc(2020, 1, 1)
RECENT = NOW - dt.timedelta(days=1)
POLICY = RetentionPolicy(default_days=None, agreements={"mou-short": 30, "mou-long": 3650})


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    with backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path / "keys")


class Clock:
    def __init__(self) -> None:
        self.now = OLD

    def __call__(self) -> dt.datetime:
        return self.now


def write(log, clock, when, agreement, count):
    clock.now = when
    for n in range(count):
        log.append(entry(n, log.hasher, agreement=agreement))


@pytest.fixture
def setup(db, keys):
    store = db.open()
    clock = Clock()
    log = AuditLog(store, "agent-police", keys.signer, checkpoint_every=3, clock=clock)
    log.hasher = keys.hasher
    write(log, clock, OLD, "mou-short", 4)        # 1-4: due, and the start of the chain
    write(log, clock, OLD, "mou-long", 2)         # 5-6: kept (ten years)
    write(log, clock, OLD, "mou-short", 2)        # 7-8: due, bodies go, headers stay
    write(log, clock, RECENT, "mou-short", 2)     # 9-10: recent
    write(log, clock, OLD, "mou-unlisted", 1)     # 11: no default retention: kept for ever
    clock.now = NOW
    yield store, log
    store.close()


def found_seqs(store, keys):
    return sorted(f.row.seq for f in search(store, Criteria(subject=JANE), keys.hasher))


def test_purge_follows_each_agreement_and_stays_verifiable(setup, keys):
    store, log = setup
    run = purge(log, POLICY, operator="ig.lead", now=NOW)
    (result,) = run.results
    assert (result.purged, result.deleted, result.base_seq) == (6, 4, 4)
    assert result.checkpoint.checkpoint.kind == "purge"
    assert found_seqs(store, keys) == [5, 6, 9, 10, 11]
    (report,) = verify_store(store, keys.verifier())
    assert report.ok, [str(p) for p in report.problems]
    assert (report.base_seq, report.first_seq, report.last_seq) == (4, 5, 12)
    assert report.purged_bodies == 2
    purge_entry = store.entries("agent-police", 11)[0]
    assert '"event":"purge"' in purge_entry.body and "ig.lead" in purge_entry.body


def test_purge_again_changes_nothing(setup, keys):
    store, log = setup
    purge(log, POLICY, operator="ig.lead", now=NOW)
    again = purge(log, POLICY, operator="ig.lead", now=NOW)
    assert again.purged == 0 and again.recorded is None
    assert all(r.ok for r in verify_store(store, keys.verifier()))


def test_longest_agreement_wins_and_default_applies(db, keys):
    store = db.open()
    clock = Clock()
    log = AuditLog(store, "broker-1", keys.signer, clock=clock)
    log.append(replace(entry(0, keys.hasher), agreements=("mou-short", "mou-long"), outcomes=()))
    log.append(entry(1, keys.hasher, agreement="mou-unlisted"))
    clock.now = NOW
    run = purge(log, RetentionPolicy(default_days=365, agreements=POLICY.agreements),
                operator="ig.lead", now=NOW)
    assert run.purged == 1  # only the unlisted one, by the default; the other has ten years
    assert found_seqs(store, keys) == [1]
    assert all(r.ok for r in verify_store(store, keys.verifier()))
    store.close()


def test_purging_everything_keeps_the_chain_going(setup, keys):
    store, log = setup
    later = NOW + dt.timedelta(days=4000)
    purge(log, RetentionPolicy(default_days=1, agreements=POLICY.agreements), "ig.lead", later)
    log._clock = lambda: later
    log.append(entry(99, keys.hasher))
    reports = {r.writer_id: r for r in verify_store(store, keys.verifier())}
    assert reports["agent-police"].ok, [str(p) for p in reports["agent-police"].problems]
    assert found_seqs(store, keys) == [reports["agent-police"].last_seq]


def test_a_body_deleted_outside_retention_is_detected(db, setup, keys):
    store, log = setup
    purge(log, POLICY, operator="ig.lead", now=NOW)
    db.execute("UPDATE audit_entries SET body = NULL WHERE seq = 9")
    db.execute("DELETE FROM audit_index WHERE seq = 9")
    (report,) = verify_store(store, keys.verifier())
    assert (report.first_problem.seq, report.first_problem.kind) == (9, "edited")


def test_deleting_old_entries_without_purging_is_detected(db, setup, keys):
    store, _ = setup
    db.execute("DELETE FROM audit_entries WHERE seq <= 4")
    (report,) = verify_store(store, keys.verifier())
    assert (report.first_problem.seq, report.first_problem.kind) == (1, "missing")
