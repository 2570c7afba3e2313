"""Tampering with a stored chain behind the library's back is detected and located."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization

from mash.audit.chain import make_row
from mash.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer, generate_signing_key
from mash.audit.log import AuditLog
from mash.audit.verify import verify_store
from tests.audit_support import BACKENDS, Keys, backend, fill

WRITER = "broker-1"


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    with backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path / "keys")


@pytest.fixture
def store(db, keys):
    """20 entries of broker-1 (checkpoints at 5, 10, 15, 20) and 6 of agent-police."""
    store = db.open()
    fill(AuditLog(store, WRITER, keys.signer, checkpoint_every=5), 20, keys.hasher)
    fill(AuditLog(store, "agent-police", keys.signer, checkpoint_every=5), 6, keys.hasher)
    yield store
    store.close()


def report(store, keys, writer=WRITER, witnesses=()):
    reports = {r.writer_id: r for r in verify_store(store, keys.verifier(), witnesses)}
    return reports[writer]


def first_break(store, keys):
    r = report(store, keys)
    assert not r.ok, "tampering went unnoticed"
    assert report(store, keys, "agent-police").ok, "the other writer's chain was affected"
    return r.first_problem


def test_intact_chains_verify(store, keys):
    reports = verify_store(store, keys.verifier())
    assert [r.writer_id for r in reports] == ["agent-police", WRITER]
    broker = reports[1]
    assert broker.ok and broker.entries == 20 and broker.checkpoints == 4
    assert (broker.first_seq, broker.last_seq, broker.last_signed_seq) == (1, 20, 20)
    assert broker.summary().startswith("OK broker-1: 20 entries")


def test_edited_body_is_detected(db, store, keys):
    db.execute("UPDATE audit_entries SET body = replace(body, 'a.analyst', 'b.analyst') "
               "WHERE writer_id = ? AND seq = 7", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (7, "edited")
    assert "content" in problem.message


def test_edited_header_is_detected(db, store, keys):
    db.execute("UPDATE audit_entries SET recorded_at = '2020-01-01T00:00:00.000000Z' "
               "WHERE writer_id = ? AND seq = 11", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (11, "edited")


def _rechain(db, start, end, tamper):
    """Rewrite entries start..end with recomputed hashes, as a careful attacker would."""
    rows = db.execute("SELECT seq, recorded_at, agreements, body, prev_hash FROM audit_entries "
                      "WHERE writer_id = ? AND seq BETWEEN ? AND ? ORDER BY seq",
                      (WRITER, start, end))
    prev = rows[0][4]
    for seq, at, agreements, body, _ in rows:
        if seq == start:
            body = tamper(body)
        row = make_row(WRITER, seq, prev, at, tuple(json.loads(agreements)), body.encode())
        db.execute("UPDATE audit_entries SET body = ?, body_hash = ?, prev_hash = ?, "
                   "entry_hash = ? WHERE writer_id = ? AND seq = ?",
                   (row.body, row.body_hash, row.prev_hash, row.entry_hash, WRITER, seq))
        prev = row.entry_hash
    db.execute("UPDATE audit_heads SET entry_hash = ? WHERE writer_id = ?", (prev, WRITER))


def test_rewritten_history_is_caught_by_the_signed_checkpoint(db, store, keys):
    _rechain(db, 12, 20, lambda body: body.replace("bruising", "nothing"))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (15, "edited")
    assert "after seq 10 up to seq 15 were rewritten" in problem.message


def test_one_entry_rehashed_breaks_the_link_to_the_next(db, store, keys):
    _rechain(db, 12, 12, lambda body: body.replace("bruising", "nothing"))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (12, "edited")
    assert "between seq 12 and 13" in problem.message


def test_deleted_entry_is_detected(db, store, keys):
    db.execute("DELETE FROM audit_entries WHERE writer_id = ? AND seq = 9", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (9, "missing")
    assert "entries 9 were deleted" in problem.message


def test_deleted_first_entries_are_detected(db, store, keys):
    db.execute("DELETE FROM audit_entries WHERE writer_id = ? AND seq <= 2", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (1, "missing")
    assert "1..2" in problem.message


def test_reordered_entries_are_detected(db, store, keys):
    for old, new in ((8, -1), (9, 8), (-1, 9)):
        db.execute("UPDATE audit_entries SET seq = ? WHERE writer_id = ? AND seq = ?",
                   (new, WRITER, old))
    r = report(store, keys)
    problem = r.first_problem
    assert (problem.seq, problem.kind) == (8, "reordered")
    assert "written as seq 9" in problem.message
    assert [(p.seq, p.kind) for p in r.problems][:2] == [(8, "reordered"), (9, "reordered")]


def test_truncated_tail_is_detected_by_the_head(db, store, keys):
    db.execute("DELETE FROM audit_entries WHERE writer_id = ? AND seq > 17", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (18, "truncated")
    assert "head is at seq 20" in problem.message


def test_truncation_with_the_head_rewound_is_caught_by_a_checkpoint(db, store, keys):
    db.execute("DELETE FROM audit_entries WHERE writer_id = ? AND seq > 12", (WRITER,))
    (hash12,), = db.execute("SELECT entry_hash FROM audit_entries WHERE writer_id = ? "
                            "AND seq = 12", (WRITER,))
    db.execute("UPDATE audit_heads SET seq = 12, entry_hash = ? WHERE writer_id = ?",
               (hash12, WRITER))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (13, "truncated")
    assert "covers seq 20" in problem.message


def test_truncation_hiding_its_checkpoints_is_caught_by_a_witness(db, store, keys):
    witness = AuditLog(store, WRITER, keys.signer).checkpoint()
    witness = SignedCheckpoint.from_json(witness.to_json())  # as read back from the file
    db.execute("DELETE FROM audit_entries WHERE writer_id = ? AND seq > 12", (WRITER,))
    db.execute("DELETE FROM audit_checkpoints WHERE writer_id = ? AND seq > 12", (WRITER,))
    (hash12,), = db.execute("SELECT entry_hash FROM audit_entries WHERE writer_id = ? "
                            "AND seq = 12", (WRITER,))
    db.execute("UPDATE audit_heads SET seq = 12, entry_hash = ? WHERE writer_id = ?",
               (hash12, WRITER))
    assert report(store, keys).ok  # the documented limit without a witness
    r = report(store, keys, witnesses=[witness])
    assert (r.first_problem.seq, r.first_problem.kind) == (13, "truncated")


def test_deleted_head_row_is_detected(db, store, keys):
    db.execute("DELETE FROM audit_heads WHERE writer_id = ?", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (20, "edited")


def test_edited_checkpoint_fails_its_signature(db, store, keys):
    db.execute("UPDATE audit_checkpoints SET payload = replace(payload, '\"seq\":10', "
               "'\"seq\":11') WHERE writer_id = ? AND seq = 10", (WRITER,))
    problem = first_break(store, keys)
    assert problem.kind == "checkpoint" and "bad signature" in problem.message


def test_checkpoint_from_an_untrusted_key_is_refused(db, store, keys):
    private, _ = generate_signing_key()
    intruder = Signer(serialization.load_pem_private_key(private, password=None))
    head = store.head(WRITER)
    forged = intruder.sign(Checkpoint("manual", WRITER, head.seq, head.entry_hash,
                                      "2030-01-01T00:00:00.000000Z", intruder.key_id))
    db.execute("INSERT INTO audit_checkpoints (writer_id, seq, kind, payload, signature) "
               "VALUES (?, ?, ?, ?, ?)", (WRITER, head.seq, "manual", forged.payload,
                                          forged.signature))
    problem = first_break(store, keys)
    assert problem.kind == "checkpoint" and "untrusted key" in problem.message


def test_removed_search_keys_are_detected(db, store, keys):
    db.execute("DELETE FROM audit_index WHERE writer_id = ? AND seq = 4", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (4, "index")


def test_body_removed_without_a_purge_is_detected(db, store, keys):
    db.execute("UPDATE audit_entries SET body = NULL WHERE writer_id = ? AND seq = 6", (WRITER,))
    db.execute("DELETE FROM audit_index WHERE writer_id = ? AND seq = 6", (WRITER,))
    problem = first_break(store, keys)
    assert (problem.seq, problem.kind) == (6, "edited")
    assert "no signed purge" in problem.message
