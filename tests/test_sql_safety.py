"""SQL metacharacters: in the records an agent reads (names in its SQLite source), and in the
request text that reaches the audit store's SQL (case reference, justification, requester,
lookup id: stored, indexed and searched by), kept as text, never executed."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mash.audit.log import AuditLog
from mash.audit.report import Criteria, search
from mash.audit.verify import verify_writer
from mash.v1 import answer_pb2
from tests.audit_support import BACKENDS, Keys, backend, entry
from tests.helpers import Running, build_federation, lookup_request

TRICKY = [
    ("Robert'); DROP TABLE patients;--", "O'Brien"),
    ("Amy", "Smith\" OR \"1\"=\"1"),
    ("Zoë", "Lee; DELETE FROM patients"),
]


async def test_sql_metacharacters_in_names(tmp_path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["health"])
    db = yaml.safe_load(fed.agent_configs["health"].read_text())["sources"][0]["path"]
    with sqlite3.connect(db) as conn:
        for i, (given, family) in enumerate(TRICKY):
            conn.execute(
                "INSERT INTO patients (patient_id, first_name, last_name, date_of_birth, sex, "
                "postcode, nhs_number, gp_practice, cp_flag, last_ae_attendance, "
                "safeguarding_note, restricted) VALUES (?, ?, ?, ?, 'F', 'LS1 4AB', '', "
                "'Test Surgery', 'N', '2026-01-01', '', 'N')",
                (f"T{i}", given, family, f"2015-0{i + 1}-01"))
    conn.close()
    before = sqlite3.connect(db).execute("SELECT count(*) FROM patients").fetchone()[0]
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("health")
    try:
        analyst = run.analyst()
        for i, (given, family) in enumerate(TRICKY):
            request = lookup_request(None, f"2015-0{i + 1}-01", ("LS1 4AB",))
            request.subject.name.given, request.subject.name.family = given, family
            answers = {a.agency_id: a for a in (await analyst.lookup(request)).answers}
            assert answers["health"].state == answer_pb2.ANSWER_STATE_KNOWN, (given, family)
            # and someone else with a metacharacter name is simply not known
            request.subject.name.given = "Quentin');--"
            request.subject.name.family = family + "x'--"
            request.subject.date_of_birth.year = 2001
            answers = {a.agency_id: a for a in (await analyst.lookup(request)).answers}
            assert answers["health"].state == answer_pb2.ANSWER_STATE_NOT_KNOWN
    finally:
        await run.stop()
    after = sqlite3.connect(db).execute("SELECT count(*) FROM patients").fetchone()[0]
    assert after == before


# Request text as an analyst can type it: quotes of both kinds, statement ends, comments,
# LIKE wildcards, a backslash escape, a NUL-free control character.
TRICKY_TEXT = [
    "CASE-1'; DROP TABLE audit_entries;--",
    "x' OR '1'='1",
    'a" OR "1"="1',
    "Robert'); DELETE FROM audit_index WHERE ('1'='1",
    "%",
    "_",
    "\\'; SELECT 1; --",
    "CASE-2 /* comment */ UNION SELECT * FROM audit_heads",
]


@pytest.mark.parametrize("kind", BACKENDS)
def test_audit_store_keeps_request_text_with_sql_metacharacters_as_text(
        kind: str, tmp_path: Path) -> None:
    keys = Keys(tmp_path / "keys")
    with backend(kind, tmp_path) as db, AuditLog(db.open(), "demo-broker", keys.signer) as log:
        log.append(replace(entry(0), case_reference="CASE-PLAIN", requester="a.analyst"))
        for n, text in enumerate(TRICKY_TEXT, start=1):
            log.append(replace(entry(n), case_reference=text, justification=text,
                               requester=text, lookup_id=f"lookup-{text}"))
        count = len(TRICKY_TEXT) + 1
        # Positive control: the plain entry is found by its case reference, and only it.
        (plain,) = search(log.store, Criteria(case_reference="CASE-PLAIN"))
        assert plain.entry is not None and plain.entry.requester == "a.analyst"
        for text in TRICKY_TEXT:
            for criteria in (Criteria(case_reference=text), Criteria(requester=text),
                             Criteria(lookup_id=f"lookup-{text}")):
                found = search(log.store, criteria)
                # exactly its own entry: not every entry (an OR '1'='1' that ran), not none
                assert [f.entry.case_reference for f in found if f.entry] == [text], criteria
                assert found[0].entry.justification == text and found[0].intact
        # Nothing dropped or deleted, and the chain over the stored text still verifies.
        assert len(db.execute("SELECT seq FROM audit_entries")) == count
        assert len(db.execute("SELECT writer_id FROM audit_heads")) == 1
        assert db.execute("SELECT count(*) FROM audit_index")[0][0] >= 3 * count
        report = verify_writer(log.store, "demo-broker", keys.verifier())
        assert report.ok and report.entries == count
