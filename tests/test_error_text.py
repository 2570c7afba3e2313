"""No error text that may quote a value reaches a log line or an answer (issue 17, section 4).

Database errors (an agent's SQL sources: tests/test_snapshot_federation.py runs a real
PostgreSQL error quoting an NHS number through broker and agent processes), the audit stores'
errors, policy evaluation errors and any exception logged with its traceback are reported by
class, source or store, and code only.
"""

from __future__ import annotations

import io
import json
import sqlite3
import traceback

import pytest

from mash.audit.errors import AuditError
from mash.audit.log import AuditLog
from mash.dberrors import describe
from mash.logs import configure, get_logger
from tests.audit_support import BACKENDS, Keys, backend, entry, fill

NHS = "9434765919"


def _parse_dob(text: str) -> None:
    raise ValueError(f"Couldn't parse date string {text!r}")


def _load_row(row: dict[str, str]) -> None:
    try:
        _parse_dob(row["dob"])
    except ValueError as exc:
        raise RuntimeError(f"row {row} rejected") from exc


def test_a_logged_exception_keeps_its_class_and_frames_not_its_message() -> None:
    out = io.StringIO()
    configure("info", stream=out)
    try:
        try:
            _load_row({"dob": NHS, "name": "Jane Smith"})
        except RuntimeError:
            # positive control: the standard traceback carries the values
            assert NHS in traceback.format_exc() and "Jane Smith" in traceback.format_exc()
            get_logger("mash.test").exception("query_failed", query_id="q-1")
    finally:
        configure("warning")
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "query_failed" and line["query_id"] == "q-1"
    text = json.dumps(line)
    assert NHS not in text and "Jane" not in text and "Couldn't" not in text
    assert line["exception"].startswith("RuntimeError at test_error_text.py:")
    assert "_load_row" in line["exception"] and "; from ValueError at" in line["exception"]
    assert "_parse_dob" in line["exception"]


@pytest.mark.parametrize("kind", BACKENDS)
def test_an_audit_store_error_quoting_a_value_is_passed_on_by_code(kind, tmp_path) -> None:
    """A trigger (or constraint) whose message quotes a value: the AuditError, which is
    logged and becomes the analyst's NOT_CHECKED detail, has the class and code only."""
    keys = Keys(tmp_path / "keys")
    with backend(kind, tmp_path) as db:
        store = db.open()
        log = AuditLog(store, "agent-police", keys.signer)
        fill(log, 2)
        if kind == "postgres":
            db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       f"$$ BEGIN RAISE EXCEPTION 'invalid NHS number {NHS}'; END $$")
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON audit_entries "
                       "FOR EACH ROW EXECUTE FUNCTION refuse()")
        else:
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON audit_entries "
                       f"BEGIN SELECT RAISE(ABORT, 'invalid NHS number {NHS}'); END")
        with pytest.raises(AuditError) as err:
            log.append(entry(2))
        message = str(err.value)
        assert NHS not in message, message
        assert ("SQLSTATE P0001" if kind == "postgres" else "SQLITE_CONSTRAINT_TRIGGER") \
            in message
        cause = err.value.__cause__
        assert cause is not None and NHS in str(cause)  # positive control: the raw text had it
        store.close()


def test_describe_names_the_code_never_the_text(tmp_path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (nhs TEXT CHECK (length(nhs) = 3))")
    with pytest.raises(sqlite3.Error) as err:
        conn.execute(f"INSERT INTO t VALUES ('{NHS}')")
    words = describe(err.value)
    assert words == ("a constraint or trigger refused the write "
                     "(IntegrityError, SQLITE_CONSTRAINT_CHECK)")
    with pytest.raises(sqlite3.Error) as err:
        conn.execute(f"SELECT * FROM no_table_{NHS}")
    assert NHS in str(err.value) and NHS not in describe(err.value)
    assert "SQLITE_ERROR" in describe(err.value)


def test_policy_evaluation_errors_carry_no_engine_text(monkeypatch) -> None:
    """Rego's error text may quote its input (a matched record's values): the PolicyError
    (an analyst's NOT_CHECKED detail) says where evaluation failed, not what Rego said."""
    from mash.policy import engine as engine_mod
    from mash.policy.bundle import Bundle
    from mash.policy.errors import PolicyError

    monkeypatch.setattr(engine_mod, "ENTRYPOINTS", ("mash/x/n",))
    bundle = Bundle(revision="t", federation={}, agreements={}, modules={
        "mash/x.rego": "package mash.x\n\nn := to_number(input.record.nhs)\n"})
    engine = engine_mod.RegoEngine(bundle)
    assert engine.evaluate("mash/x/n", {"record": {"nhs": NHS}}) == int(NHS)  # control
    with pytest.raises(PolicyError) as err:
        engine.evaluate("mash/x/n", {"record": {"nhs": f"NHS {NHS}"}})
    assert str(err.value) == "policy evaluation failed at mash/x/n (the policy raised an error)"
