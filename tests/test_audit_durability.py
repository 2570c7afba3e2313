"""Fail closed: an append that is not committed raises; one that returned survives a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mash.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer
from mash.audit.errors import AuditError
from mash.audit.log import AuditLog
from mash.audit.sqlite_store import SqliteStore
from mash.audit.verify import verify_store
from tests.audit_support import BACKENDS, Keys, backend, entry, fill

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    with backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path / "keys")


def count_rows(db, table):
    return db.execute(f"SELECT count(*) FROM {table}")[0][0]


def assert_verifies(store, keys):
    reports = verify_store(store, keys.verifier())
    assert all(r.ok for r in reports), [str(p) for r in reports for p in r.problems]


class FailingSigner(Signer):
    fail = True

    def sign(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        if self.fail:
            raise RuntimeError("the HSM is unplugged")
        return super().sign(checkpoint)


def test_a_failure_inside_the_write_leaves_nothing_behind(db, keys):
    store = db.open()
    signer = FailingSigner(keys.signer._key)
    log = AuditLog(store, "agent-police", signer, checkpoint_every=3)
    fill(log, 2, keys.hasher)
    with pytest.raises(AuditError, match="HSM is unplugged"):
        log.append(entry(2, keys.hasher, state="KNOWN"))  # seq 3 would carry a checkpoint
    assert count_rows(db, "audit_entries") == 2
    assert count_rows(db, "audit_notifications") == 0
    assert db.execute("SELECT max(seq) FROM audit_index")[0][0] == 2
    assert store.head("agent-police").seq == 2
    signer.fail = False
    assert log.append(entry(2, keys.hasher)).seq == 3
    assert_verifies(store, keys)
    store.close()


def test_a_commit_that_fails_raises_and_writes_nothing(db, keys):
    store = db.open()
    log = AuditLog(store, "broker-1", keys.signer)
    fill(log, 2)
    if db.kind == "postgres":  # fails at COMMIT itself, after every statement succeeded
        db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'disk full at commit'; END $$")
        db.execute("CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON audit_entries "
                   "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()")
    else:  # SQLite has no deferred triggers: fail the last statement before COMMIT
        db.execute("CREATE TRIGGER refuse_commit BEFORE UPDATE ON audit_heads "
                   "BEGIN SELECT RAISE(ABORT, 'disk full at commit'); END")
    with pytest.raises(AuditError, match=r"SQLSTATE P0001|SQLITE_CONSTRAINT_TRIGGER") as err:
        log.append(entry(2))
    assert "disk full at commit" not in str(err.value)  # the database's text may quote values
    assert count_rows(db, "audit_entries") == 2
    db.execute("DROP TRIGGER refuse_commit" + (" ON audit_entries" if db.kind == "postgres"
                                               else ""))
    assert log.append(entry(2)).seq == 3
    assert_verifies(store, keys)
    store.close()


def test_a_locked_sqlite_store_fails_closed(tmp_path, keys):
    path = tmp_path / "audit.db"
    store = SqliteStore(path, busy_timeout=0.2)
    log = AuditLog(store, "agent-police", keys.signer)
    fill(log, 3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(AuditError, match="locked"):
        log.append(entry(3))
    other.execute("ROLLBACK")
    other.close()
    assert log.append(entry(3)).seq == 4
    assert_verifies(store, keys)


def test_sqlite_commits_are_synchronous(tmp_path):
    store = SqliteStore(tmp_path / "audit.db")
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] >= 2  # FULL
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.postgres
def test_a_lost_postgres_connection_fails_closed_then_recovers(tmp_path, keys):
    with backend("postgres", tmp_path) as db:
        store = db.open()
        log = AuditLog(store, "broker-1", keys.signer)
        fill(log, 2)
        db.execute("SELECT pg_terminate_backend(?)", (store.backend_pid(),))
        with pytest.raises(AuditError):
            log.append(entry(2))
        assert log.append(entry(2)).seq == 3  # reconnected
        assert count_rows(db, "audit_entries") == 3
        assert_verifies(store, keys)
        store.close()


def test_an_append_that_returned_survives_sigkill(db, keys):
    """The process dies right after append returned: the entry is there on reopen."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.audit_worker", db.url, "agent-police",
         str(keys.files.hash_key.parent), "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        acknowledged = []
        while len(acknowledged) < 15:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            acknowledged.append(line.split())
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no flush, no atexit
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = db.open()
    stored = {r.seq: r.entry_hash for r in store.iter_entries("agent-police")}
    for seq, entry_hash in acknowledged:
        assert stored.get(int(seq)) == entry_hash, f"acknowledged entry {seq} was lost"
    assert_verifies(store, keys)
    store.close()
