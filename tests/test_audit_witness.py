"""Audit heads exchanged and countersigned over the agent stream, so that truncating, rewriting
or deleting a chain at one party is caught by `mash audit verify` with another party's witness
files: a real broker and agents on loopback with mTLS, stores on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mash.audit.checkpoint import Verifier, load_public_key
from mash.audit.store import open_store
from mash.audit.verify import verify_store
from mash.audit.witness import load_heads
from mash.demo import federation
from tests import audit_tamper as tamper
from tests.audit_support import pg_base_url
from tests.helpers import Running, build_federation, lookup_request, wait_until

EVERY = 5
LOOKUPS = 22  # the broker writes two entries a lookup: 44, enough to cut 40


def _store_url(kind: str, root: Path, writer: str, schema: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{root / 'audit' / f'{writer}.db'}"
    return f"{pg_base_url()}?schema={schema}_{writer}"


def _audit(kind: str, root: Path, writer: str, schema: str) -> dict[str, object]:
    section = federation._audit(root, writer)
    section.update(store=_store_url(kind, root, writer, schema), checkpoint_every=EVERY,
                   exchange_seconds=0.3)
    return section


def _held_size(path: Path) -> int:
    if not path.exists():
        return 0
    return int(json.loads(json.loads(path.read_text())["head"]["payload"])["seq"])


def _head_seq(url: str, writer: str) -> int:
    with open_store(url) as store:
        head = store.head(writer)
    return head.seq if head else 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def exchanged(request, tmp_path):
    """A broker and the police agent that exchanged heads over LOOKUPS lookups, stopped."""
    kind = request.param
    root = (tmp_path / "fed").resolve()
    schema = f"witness_{uuid.uuid4().hex[:10]}"
    fed = build_federation(
        root, ["police"],
        broker_overrides={"audit": _audit(kind, root, "broker", schema)},
        agent_overrides={a: {"audit": _audit(kind, root, a, schema)}
                         for a in ("police",)})
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("police")
    analyst = run.analyst()
    for n in range(LOOKUPS):
        await analyst.lookup(lookup_request(case=f"MASH-W-{n}"))
    urls = {w: _store_url(kind, root, w, schema) for w in ("broker", "police")}
    held_by_broker = root / "witness" / "broker" / "police.json"
    held_by_police = root / "witness" / "police" / "broker.json"
    await wait_until(lambda: _held_size(held_by_broker) == _head_seq(urls["police"], "police")
                     and _held_size(held_by_police) == _head_seq(urls["broker"], "broker"),
                     timeout=20)
    await run.stop()
    yield kind, root, urls, schema
    if kind == "postgres":
        import psycopg

        with psycopg.connect(pg_base_url(), autocommit=True) as conn:
            for name in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                     (f"{schema}%",)).fetchall():
                conn.execute(f'DROP SCHEMA "{name[0]}" CASCADE')


def _copy(kind: str, root: Path, url: str, schema: str, label: str) -> str:
    if kind == "sqlite":
        dst = f"sqlite:///{root / 'audit' / f'{label}.db'}"
    else:
        dst = f"{pg_base_url()}?schema={schema}_{label}"
    tamper.clone(url, dst)
    return dst


def _verify(url: str, root: Path, writer: str, witness_dir: Path | None):
    verifier = Verifier([load_public_key(root / "keys" / writer / "audit-signing.pub")])
    heads = load_heads(witness_dir) if witness_dir else []
    with open_store(url) as store:
        return verify_store(store, verifier, heads, checkpoint_every=EVERY)


def _kinds(reports) -> set[str]:
    return {p.kind for r in reports for p in r.problems}


async def test_tampering_at_one_party_is_caught_with_the_other_partys_witness(exchanged):
    kind, root, urls, schema = exchanged
    by_broker, by_police = root / "witness" / "broker", root / "witness" / "police"
    # positive control: both untampered stores verify clean with the other party's witness
    for writer, witnesses in (("broker", by_police), ("police", by_broker)):
        reports = _verify(urls[writer], root, writer, witnesses)
        assert all(r.ok for r in reports), [str(p) for r in reports for p in r.problems]
        assert reports[0].witnessed_seq == _head_seq(urls[writer], writer)

    # 1. the last 40 entries deleted, with their checkpoints, and the head row fixed up
    cut = _copy(kind, root, urls["broker"], schema, "cut")
    tamper.truncate(cut, "broker", 40)
    assert all(r.ok for r in _verify(cut, root, "broker", None))  # the store alone: clean
    reports = _verify(cut, root, "broker", by_police)
    assert "truncated" in _kinds(reports)
    assert "held by another party" in str(reports[0].first_problem)

    # 2. one entry rewritten, the chain recomputed and every checkpoint re-signed
    for writer, witnesses in (("broker", by_police), ("police", by_broker)):
        edited = _copy(kind, root, urls[writer], schema, f"edit_{writer}")
        tamper.rewrite(edited, writer, 3, root / "keys" / writer / "audit-signing.key")
        assert all(r.ok for r in _verify(edited, root, writer, None)), writer
        assert "edited" in _kinds(_verify(edited, root, writer, witnesses)), writer

    # 3. a whole writer's rows deleted: the store alone holds nothing to check
    gone = _copy(kind, root, urls["police"], schema, "gone")
    tamper.delete_writer(gone, "police")
    assert _verify(gone, root, "police", None) == []
    reports = _verify(gone, root, "police", by_broker)
    assert [r.writer_id for r in reports] == ["police"] and "truncated" in _kinds(reports)

    # the command line says so in one line, exit 1; the untampered store exits 0
    cmd = [sys.executable, "-m", "mash", "audit", "verify", "--public-key",
           str(root / "keys" / "broker" / "audit-signing.pub"), "--checkpoint-every",
           str(EVERY), "--witnesses", str(by_police)]
    good = subprocess.run([*cmd, "--store", urls["broker"]], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "witnessed up to seq" in good.stdout
    bad = subprocess.run([*cmd, "--store", cut], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.startswith("mash: error: the audit trail is broken: broker seq ")
    assert "Traceback" not in bad.stderr

    # 4. verify requires a checkpoint at the cadence: one deleted is a finding
    copy = _copy(kind, root, urls["police"], schema, "cadence")
    tamper.delete_checkpoint(copy, "police", EVERY)
    problems = [p for r in _verify(copy, root, "police", None) for p in r.problems]
    assert problems and problems[0].kind == "checkpoint"
    assert f"written every {EVERY} entries" in problems[0].message


# the witness's own checks, on real stores (no federation needed)


def _log(tmp_path: Path, writer: str):
    from mash.audit.checkpoint import Signer
    from mash.audit.keys import write_keys
    from mash.audit.log import AuditLog

    keys = write_keys(tmp_path / "keys" / writer)
    return AuditLog(open_store(f"sqlite:///{tmp_path / f'{writer}.db'}"), writer,
                    Signer.from_file(keys.signing_key), checkpoint_every=EVERY), keys


def _witness(tmp_path: Path):
    from mash.audit.checkpoint import Signer
    from mash.audit.keys import write_keys
    from mash.audit.witness import WitnessFiles

    keys = write_keys(tmp_path / "keys" / "broker")
    return WitnessFiles(tmp_path / "witness", Signer.from_file(keys.signing_key), "broker")


def _offer(witness, exchange, peer: str = "police", known: int = 0):
    message, _ = exchange.head_message(known)
    return witness.accept(peer=peer, payload=message.payload, signature=message.signature,
                          public_key=message.public_key, proof_from=message.proof_from_size,
                          proof=list(message.consistency_proof))


def test_a_witness_takes_only_heads_that_extend_the_one_it_holds(tmp_path):
    from mash.audit.exchange import HeadExchange
    from tests.audit_support import fill

    log, keys = _log(tmp_path, "police")
    witness = _witness(tmp_path)
    fill(log, 7)
    exchange = HeadExchange(log, witness, 1.0)
    first = _offer(witness, exchange)
    assert first.status == "accepted" and first.known_size == 7 and first.cosignature
    fill(log, 13)
    # a proof from the wrong size: told which size to prove from
    assert _offer(witness, exchange, known=3).status == "conflict"
    # positive control: an extension with its consistency proof is taken
    assert _offer(witness, exchange, known=7).status == "accepted"
    assert witness.held("police").checkpoint.seq == 20
    # a head from another party under the same writer id
    assert "not health's" in _offer(witness, exchange, peer="health", known=20).reason
    # history rewritten (with the writer's own key): the new head is not an extension
    url = f"sqlite:///{tmp_path / 'police.db'}"
    log.close()
    tamper.rewrite(url, "police", 4, keys.signing_key)
    log, _ = _log_reopen(tmp_path, keys)
    fill(log, 3)
    refused = _offer(witness, HeadExchange(log, witness, 1.0), known=20)
    assert refused.status == "refused" and "rewritten" in refused.reason
    # truncated below the held head: refused; the witness still holds seq 20 as evidence
    log.close()
    tamper.truncate(url, "police", 10)
    log, _ = _log_reopen(tmp_path, keys)
    refused = _offer(witness, HeadExchange(log, witness, 1.0), known=20)
    assert refused.status == "refused" and "truncated or rolled back" in refused.reason
    assert witness.held("police").checkpoint.seq == 20
    # a head signed with another key than the one first witnessed
    other, _ = _log(tmp_path / "other", "police")
    fill(other, 30)
    changed = _offer(witness, HeadExchange(other, witness, 1.0), known=20)
    assert changed.status == "refused" and "first witnessed" in changed.reason
    log.close()
    other.close()


def _log_reopen(tmp_path: Path, keys):
    from mash.audit.checkpoint import Signer
    from mash.audit.log import AuditLog

    return AuditLog(open_store(f"sqlite:///{tmp_path / 'police.db'}"), "police",
                    Signer.from_file(keys.signing_key), checkpoint_every=EVERY), keys


def test_one_entry_is_proven_to_an_inspector_without_the_rest(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from mash.cli import app
    from tests.audit_support import fill

    log, keys = _log(tmp_path, "police")
    fill(log, 23)
    log.close()
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"audit": {
        "store": f"sqlite:///{tmp_path / 'police.db'}", "writer_id": "police",
        "hash_key_file": str(keys.hash_key), "signing_key_file": str(keys.signing_key),
        "checkpoint_every": EVERY}}))
    runner = CliRunner()

    def mash(*args: str):
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    proof = tmp_path / "proof.json"
    code, out, err = mash("audit", "prove", "--config", str(config), "--entry", "7",
                          "--out", str(proof))
    assert code == 0, err
    check = ("audit", "check-proof", "--proof", str(proof), "--public-key",
             str(keys.public_key))
    code, out, err = mash(*check)  # positive control
    assert code == 0 and out.startswith("OK: police seq 7 (query") and "log of 20" in out
    doc = json.loads(proof.read_text())
    assert len(doc["path"]) <= 5 and "lookup-6" in doc["entry"]["body"]
    assert "lookup-5" not in proof.read_text()  # no other entry is handed over

    # the entry's content changed: caught by its hash
    edited = json.loads(proof.read_text())
    edited["entry"]["body"] = edited["entry"]["body"].replace("bruising", "nothing")
    proof.write_text(json.dumps(edited))
    code, _, err = mash(*check)
    assert code == 1 and err.startswith("mash: error: the proof does not hold: the entry's "
                                        "content does not match")
    # ... and with its hash recomputed: not in the signed tree
    from mash.audit.chain import body_hash

    edited["entry"]["body_hash"] = body_hash(edited["entry"]["body"].encode())
    proof.write_text(json.dumps(edited))
    code, _, err = mash(*check)
    assert code == 1 and "is not in police's log as signed at seq 20" in err
    # another key than the writer's
    other = tmp_path / "other"
    _, other_keys = _log(other, "police")
    proof.write_text(json.dumps(doc))
    code, _, err = mash("audit", "check-proof", "--proof", str(proof), "--public-key",
                        str(other_keys.public_key))
    assert code == 1 and "untrusted key" in err
    # an entry after the last checkpoint: sign one first
    code, _, err = mash("audit", "prove", "--config", str(config), "--entry", "23")
    assert code == 1 and "no signed checkpoint" in err and "Traceback" not in err
    assert mash("audit", "checkpoint", "--config", str(config))[0] == 0
    code, out, _ = mash("audit", "prove", "--config", str(config), "--entry", "23")
    assert code == 0 and json.loads(out)["tree_size"] == 23


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_version_1_store_is_migrated_to_the_tree(kind, tmp_path):
    from mash.audit import merkle
    from mash.audit.log import AuditLog
    from tests.audit_support import Keys, backend, fill

    keys = Keys(tmp_path / "keys")
    with backend(kind, tmp_path) as db:
        with AuditLog(db.open(), "police", keys.signer, checkpoint_every=EVERY) as log:
            fill(log, 12)
        # as version 1 left it: no frontier column
        db.execute("ALTER TABLE audit_heads DROP COLUMN frontier")
        db.execute("UPDATE audit_meta SET value = '1' WHERE name = 'schema_version'")
        with AuditLog(db.open(), "police", keys.signer, checkpoint_every=EVERY) as log:
            head = log.store.head("police")
            hashes = log.store.entry_hashes("police", 0, 12)
            assert head is not None and head.frontier is not None
            assert merkle.frontier_root(head.frontier) == merkle.Tree.of_entries(hashes).root()
            fill(log, 8)
            reports = verify_store(log.store, keys.verifier(), checkpoint_every=EVERY)
            assert all(r.ok for r in reports), [str(p) for r in reports for p in r.problems]
            assert db.execute("SELECT value FROM audit_meta WHERE name = 'schema_version'"
                              ) == [("2",)]
