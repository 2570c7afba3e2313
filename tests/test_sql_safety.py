"""SQL metacharacters in names: stored, matched and answered safely, never executed."""

from __future__ import annotations

import sqlite3

import yaml

from mash.v1 import answer_pb2
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
