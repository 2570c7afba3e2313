"""Dates in the agency's own format: declared by the source, normalised on load, warned about."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import yaml

from mash.agent.sources import SourceConfig, load_source
from mash.config import read_model
from mash.demo.federation import POLICIES
from mash.errors import ConfigError
from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import RegoEngine
from mash.policy.model import Requester
from mash.policy.transforms import TransformContext
from tests.test_policy_cli import mash

MAPPING = {"record_id": "ref", "given_name": "forename", "family_name": "surname"}
ROWS = [{"ref": "A1", "forename": "Amy", "surname": "Lee", "incident": "02/10/2026"},
        {"ref": "A2", "forename": "Ben", "surname": "Lee", "incident": "2026-10-03"},
        {"ref": "A3", "forename": "Cat", "surname": "Lee", "incident": "last Tuesday"}]


def source(tmp_path: Path, **kw: object) -> SourceConfig:
    raw = {"name": "niche", "type": "csv", "path": "people.csv", "mapping": MAPPING,
           "fields": {"last_incident_date": "incident"},
           "date_formats": ["%d/%m/%Y", "%Y-%m-%d"], **kw}
    return read_model(SourceConfig, raw, "agent.yaml: sources[0]", tmp_path)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    with (tmp_path / "people.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    return tmp_path


def released(records: list, field: str = "last_incident_date") -> list[tuple[str, str]]:
    built = bundle_mod.build(POLICIES)
    policy = LoadedPolicy(built, RegoEngine(built))
    who = Requester("mash", "analyst", "child_safeguarding", "research")
    today = dt.date(2026, 11, 1)
    out = []
    for record in records:
        d = policy.disclose("police", who, record, today, TransformContext(today=today))
        out += [(r.name, r.value or "") for r in d.released if r.name == field]
        out += [(w.name, w.reason) for w in d.withheld if w.name == field]
    return out


def test_declared_date_fields_are_normalised_and_released_by_month(people: Path) -> None:
    loaded = load_source(source(people, date_fields=["last_incident_date"]))
    assert [r.values["last_incident_date"] for r in loaded.records] == [
        "2026-10-02", "2026-10-03", "last Tuesday"]
    assert loaded.warnings["last_incident_date not in a configured date format"] == 1
    assert released(loaded.records) == [
        ("last_incident_date", "2026-10"), ("last_incident_date", "2026-10"),
        ("last_incident_date", "the recorded value is not a date")]


def test_undeclared_the_agency_format_is_not_a_date(people: Path) -> None:
    # the walkthrough: 02/10/2026 withheld by `month` as "not a date" (the control for above)
    loaded = load_source(source(people))
    assert loaded.records[0].values["last_incident_date"] == "02/10/2026"
    assert released(loaded.records[:1]) == [
        ("last_incident_date", "the recorded value is not a date")]


def test_sql_date_columns_need_no_format(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "p.db", detect_types=sqlite3.PARSE_DECLTYPES)
    db.execute("CREATE TABLE people (ref TEXT, forename TEXT, surname TEXT, incident DATE)")
    db.execute("INSERT INTO people VALUES ('A1', 'Amy', 'Lee', '2026-10-02')")
    db.commit()
    db.close()
    loaded = load_source(source(tmp_path, type="sqlite", path="p.db", table="people",
                                date_fields=["last_incident_date"], date_formats=["%d/%m/%Y"]))
    assert loaded.records[0].values["last_incident_date"] == "2026-10-02"


def test_a_date_field_must_be_an_agency_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"date_fields\[0\]: 'incident' is not an agency"):
        source(tmp_path, date_fields=["incident"])


def test_checks_warn_when_a_date_transform_meets_an_undeclared_field(fed) -> None:  # type: ignore[no-untyped-def]
    declared = fed.agent_configs["police"]
    code, out, err = mash("policy", "check", "--src", str(POLICIES), "--agent-config",
                          str(declared), "--today", "2026-06-01")
    assert code == 0, err
    assert "does not declare it a date" not in out and "0 warning(s)" in out
    doc = yaml.safe_load(declared.read_text())
    for src in doc["sources"]:
        src.pop("date_fields", None)
    undeclared = declared.with_name("agent-undeclared.yaml")
    undeclared.write_text(yaml.safe_dump(doc))
    code, out, _ = mash("policy", "check", "--src", str(POLICIES), "--agent-config",
                        str(undeclared), "--today", "2026-06-01")
    text = " ".join(out.split())
    assert code == 0 and ("police-mash-safeguarding releases last_incident_date as month, but "
                          "source niche_rms does not declare it a date") in text
    assert text.count("does not declare it a date") == 1  # once, not once per stage
    code, out, err = mash("agent", "check", "--config", str(undeclared))
    assert "warning: police-mash-safeguarding releases last_incident_date as month" in out, \
        out + err
    code, out, err = mash("agent", "check", "--config", str(declared))
    assert "does not declare it a date" not in out and "policy: revision" in out, out + err
