"""Agency sources: CSV, SQLite and PostgreSQL through a column mapping."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from mash.agent.sources import SourceConfig, SourceError, load_source
from mash.config import read_model
from mash.errors import ConfigError
from mash.subject import Name

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAPPING = {"record_id": "ref", "given_name": "forename", "family_name": "surname",
           "aliases": "aka", "date_of_birth": "dob", "sex": "gender", "postcode": "pc",
           "previous_postcodes": "old_pc", "nhs_number": "nhs"}
ROWS = [
    {"ref": "A1", "forename": "Seán", "surname": "O'Brien-Smith", "aka": "Shaun Smith",
     "dob": "03/04/2015", "gender": "Male", "pc": "ls1 4ab", "old_pc": "BD5 7HJ; nonsense",
     "nhs": "943 476 5919", "flag": "Y"},
    {"ref": "A2", "forename": "Amy", "surname": "Lee", "aka": "", "dob": "31/02/2015",
     "gender": "f", "pc": "", "old_pc": "", "nhs": "1234567890", "flag": ""},
    {"ref": "", "forename": "No", "surname": "Id", "aka": "", "dob": "", "gender": "",
     "pc": "", "old_pc": "", "nhs": "", "flag": ""},
]


def source(tmp_path: Path, **kw) -> SourceConfig:
    raw = {"name": "test", "mapping": MAPPING, "fields": {"flag": "flag"},
           "date_formats": ["%d/%m/%Y", "%Y-%m-%d"], **kw}
    return read_model(SourceConfig, raw, "agent.yaml: sources[0]", tmp_path)


def check_loaded(loaded) -> None:
    assert loaded.rows_read == 3
    assert len(loaded.records) == 2
    assert loaded.rows_rejected == {"record_id is empty": 1}
    first, second = loaded.records
    assert first.names[0] == Name("sean", "", "obrien smith")
    assert first.names[1] == Name("shaun", "", "smith")
    assert first.date_of_birth.isoformat() == "2015-04-03"
    assert first.sex == "M"
    assert first.postcodes == ("LS1 4AB", "BD5 7HJ")
    assert first.identifiers == {"nhs_number": "9434765919"}
    assert first.values["flag"] == "Y" and first.values["date_of_birth"] == "2015-04-03"
    assert second.date_of_birth is None and second.identifiers == {}
    assert loaded.warnings["date_of_birth unparseable"] == 1
    assert loaded.warnings["nhs_number invalid"] == 1
    assert loaded.warnings["postcode not a UK postcode"] == 1


def write_csv(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)


def test_csv_source(tmp_path: Path) -> None:
    write_csv(tmp_path / "people.csv")
    check_loaded(load_source(source(tmp_path, type="csv", path="people.csv")))


def test_sqlite_source(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'people.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (ref TEXT, forename TEXT, surname TEXT, "
                             "aka TEXT, dob TEXT, gender TEXT, pc TEXT, old_pc TEXT, nhs TEXT, "
                             "flag TEXT)"))
        conn.execute(sa.text("INSERT INTO people VALUES (:ref, :forename, :surname, :aka, :dob, "
                             ":gender, :pc, :old_pc, :nhs, :flag)"), ROWS)
    engine.dispose()
    check_loaded(load_source(source(tmp_path, type="sqlite", path="people.db", table="people")))


@pytest.mark.postgres
def test_postgresql_source(tmp_path: Path) -> None:
    schema = f"mash_test_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            conn.execute(sa.text(
                f"CREATE TABLE {schema}.people (ref TEXT, forename TEXT, surname TEXT, aka TEXT, "
                "dob DATE, gender TEXT, pc TEXT, old_pc TEXT, nhs TEXT, flag TEXT, "
                "updated_at TIMESTAMPTZ)"))
            rows = [dict(r, dob=None if r["ref"] != "A1" else "2015-04-03",
                         updated_at="2026-10-01T09:00:00+00:00") for r in ROWS]
            conn.execute(sa.text(
                f"INSERT INTO {schema}.people VALUES (:ref, :forename, :surname, :aka, "
                ":dob, :gender, :pc, :old_pc, :nhs, :flag, :updated_at)"), rows)
        loaded = load_source(source(
            tmp_path, type="sql", url=PG_URL,
            query=f"SELECT * FROM {schema}.people ORDER BY ref DESC NULLS LAST",
            as_at_column="updated_at"))
        assert loaded.rows_read == 3 and len(loaded.records) == 2
        first = next(r for r in loaded.records if r.record_id == "A1")
        assert first.date_of_birth.isoformat() == "2015-04-03"  # a real DATE column
        assert first.identifiers == {"nhs_number": "9434765919"}
        assert loaded.as_at.isoformat() == "2026-10-01T09:00:00+00:00"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_unreachable_is_a_clear_source_error(tmp_path: Path) -> None:
    cfg = source(tmp_path, type="sql", url="postgresql+psycopg://postgres@127.0.0.1:1/test",
                 table="people")
    with pytest.raises(SourceError, match="database error"):
        load_source(cfg)
    assert "postgres@127.0.0.1:1/test" in cfg.describe()


def test_missing_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("ref,forename\nA1,Amy\n")
    with pytest.raises(SourceError, match="no column"):
        load_source(source(tmp_path, type="csv", path="people.csv"))


def test_missing_table_is_named(tmp_path: Path) -> None:
    sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}").connect().close()
    with pytest.raises(SourceError, match="table people does not exist"):
        load_source(source(tmp_path, type="sqlite", path="x.db", table="people"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(type="excel"), "is not one of"),
        (dict(type="csv", path="nope.csv"), "file not found"),
        (dict(type="csv", path="people.csv", colour="blue"), "unknown setting 'colour'"),
        (dict(type="sqlite", path="people.csv"), "give either 'table' or 'query'"),
        (dict(type="csv", path="people.csv", mapping={"ref": "x"}), "not a canonical field"),
        (dict(type="csv", path="people.csv", mapping={"given_name": "x"}), "record id"),
        (dict(type="csv", path="people.csv", fields={"given_name": "x"}), "canonical field"),
    ],
)
def test_config_errors_name_the_setting(tmp_path: Path, change, message) -> None:
    write_csv(tmp_path / "people.csv")
    with pytest.raises(ConfigError, match=message):
        source(tmp_path, **change)
