"""The agent holds no records in memory: they sit in an on-disk store built with the index,
and an answer reads only the records it matched, from the store of the snapshot it searched.
A store that cannot be read then (removed, locked, short of a row) is NOT_CHECKED, never
NOT_KNOWN and never a part of a record; a refused or half-written load never replaces it."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mash.agent.record_store import RecordStore, StoreUnavailable
from mash.agent.sources import SourceConfig
from mash.agent.state import AgentState, load_snapshot
from mash.config import read_model
from mash.v1 import answer_pb2
from tests.helpers import Running, lookup_request
from tests.test_snapshots import HELD, MAPPING, WHO, csv_source, people, write_csv

R = answer_pb2
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def stores(index: Path) -> list[Path]:
    return sorted(index.parent.glob(f"{index.name}.records-*.sqlite"))


def first_load(tmp_path: Path) -> tuple[AgentState, list[SourceConfig], Path, Path]:
    """An agent that has loaded 200 people from a CSV file, with its index saved:
    (state, sources, the CSV, the index path)."""
    data, index = tmp_path / "records.csv", tmp_path / "records.index"
    write_csv(data, people(200))
    sources = [csv_source(data)]
    state = AgentState()
    assert state.load(sources, index).refusal is None
    return state, sources, data, index


def held_ids(snapshot) -> list[str]:
    return [c.record.record_id for c in snapshot.matcher.search(WHO).candidates]


def test_the_snapshot_holds_no_records_and_answers_from_its_store(tmp_path: Path) -> None:
    data, index = tmp_path / "records.csv", tmp_path / "var" / "records.index"
    write_csv(data, people(300))
    snapshot = load_snapshot([csv_source(data)], index)
    assert snapshot.matcher.records == []
    assert all(not s.records for s in snapshot.sources)
    assert [s.record_count for s in snapshot.sources] == [300]
    assert stores(index) == [snapshot.store.path]
    assert snapshot.store.path.stat().st_mode & 0o077 == 0  # the agent's user alone
    (candidate,) = snapshot.matcher.search(WHO).candidates
    assert candidate.record.record_id == "HELD" and candidate.row == 0
    assert candidate.record.values["given_name"] == HELD["forename"]
    # the same content again: the index and the store are reused, not written again
    again = load_snapshot([csv_source(data)], index)
    assert again.index_reused and again.store.path == snapshot.store.path
    assert held_ids(again) == ["HELD"]


def test_a_store_that_does_not_hold_this_load_is_written_again(tmp_path: Path) -> None:
    data, index = tmp_path / "records.csv", tmp_path / "records.index"
    write_csv(data, people(200))
    first = load_snapshot([csv_source(data)], index).store
    path = first.path
    for damage in (b"not a database", path.read_bytes()[:4096]):
        path.write_bytes(damage)
        snapshot = load_snapshot([csv_source(data)], index)
        assert snapshot.store.path == path and held_ids(snapshot) == ["HELD"]
    # a store of another load under this name (its header names another key): rebuilt
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = 'other' WHERE key = 'key'")
    conn.commit()
    conn.close()
    assert RecordStore.open(path=path, key=first.key, count=200) is None
    assert held_ids(load_snapshot([csv_source(data)], index)) == ["HELD"]


def test_a_store_removed_between_match_and_fetch_is_unavailable(tmp_path: Path) -> None:
    data = tmp_path / "records.csv"
    write_csv(data, people(200))
    snapshot = load_snapshot([csv_source(data)])  # no index.path: a private temp dir
    assert held_ids(snapshot) == ["HELD"]  # positive control (and a connection is open)
    snapshot.store.path.unlink()
    assert snapshot.matcher.rank(WHO)[0]  # the index still finds the row ...
    with pytest.raises(StoreUnavailable, match="record store file is missing"):
        snapshot.matcher.search(WHO)  # ... but no candidate comes without its record


def test_a_store_replaced_is_read_on_only_when_it_holds_the_same_load(tmp_path: Path) -> None:
    data, index = tmp_path / "records.csv", tmp_path / "records.index"
    write_csv(data, people(200))
    snapshot = load_snapshot([csv_source(data)], index)
    assert held_ids(snapshot) == ["HELD"]
    store = snapshot.store
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(store.path.read_bytes())
    copy.replace(store.path)  # the same load's store written again by another process
    assert held_ids(snapshot) == ["HELD"]
    other = RecordStore.build(path=tmp_path / "other.sqlite", key="another load",
                              records=store.fetch(list(range(200))))
    other.path.replace(store.path)
    with pytest.raises(StoreUnavailable, match="replaced by another load's"):
        snapshot.matcher.search(WHO)


def test_a_locked_or_damaged_store_is_unavailable(tmp_path: Path) -> None:
    data = tmp_path / "records.csv"
    write_csv(data, people(200))
    snapshot = load_snapshot([csv_source(data)])
    writer = sqlite3.connect(snapshot.store.path)
    writer.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="SQLITE_BUSY"):
        snapshot.matcher.search(WHO)
    writer.rollback()
    assert held_ids(snapshot) == ["HELD"]  # positive control: the lock gone, it answers
    writer.execute("DELETE FROM records WHERE row = 0")
    writer.commit()
    with pytest.raises(StoreUnavailable, match="holds 0 of the 1 records matched"):
        snapshot.matcher.search(WHO)
    writer.execute("INSERT INTO records VALUES (0, '[\"HELD\"]', 'records', 'HELD')")
    writer.commit()
    writer.close()
    with pytest.raises(StoreUnavailable, match="damaged record"):
        snapshot.matcher.search(WHO)


def test_a_refused_load_keeps_the_store_answered_from(tmp_path: Path) -> None:
    data, index = tmp_path / "records.csv", tmp_path / "records.index"
    write_csv(data, people(300))
    sources = [csv_source(data, min_records=100)]
    state = AgentState()
    assert state.load(sources, index).refusal is None
    first = state.snapshot
    assert first is not None
    write_csv(data, people(20))  # truncated: refused
    assert state.load(sources, index).refusal is not None
    assert state.snapshot is first and stores(index) == [first.store.path]
    assert held_ids(first) == ["HELD"]
    # positive control: good loads replace it; the store of the one replaced stays for the
    # queries still on it, and the one before that goes
    write_csv(data, people(301))
    assert state.load(sources, index).refusal is None
    second = state.snapshot
    assert second is not None and second.store.path != first.store.path
    assert stores(index) == sorted([first.store.path, second.store.path])
    write_csv(data, people(302))
    assert state.load(sources, index).refusal is None
    assert state.snapshot is not None
    assert stores(index) == sorted([second.store.path, state.snapshot.store.path])
    assert held_ids(state.snapshot) == ["HELD"]


def people_table(prefix: str, extra_columns: str = "") -> Iterator[tuple[sa.Engine, str]]:
    """A fresh PostgreSQL table with the test people's columns (and ``extra_columns``, SQL),
    dropped afterwards, for a fixture to ``yield from``: (engine, table name). Skips the
    test where PostgreSQL is not running on 127.0.0.1:5432."""
    engine = sa.create_engine(PG_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE TABLE "{name}" (ref text PRIMARY KEY, forename text, '
                                 f"surname text, dob text, postcode text, nhs text"
                                 f"{extra_columns})"))
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    yield engine, name
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()


@pytest.fixture
def pg_table() -> Iterator[tuple[sa.Engine, str]]:
    yield from people_table("persons")


def test_a_postgresql_source_answers_from_the_load_it_was_matched_in(pg_table,
                                                                      tmp_path: Path) -> None:
    """The released values are the snapshot's (its as-at time is true of them): edited or
    dropped in PostgreSQL after the load, the answer is still the load's, until a refresh."""
    engine, table = pg_table
    with engine.begin() as conn:
        conn.execute(sa.text(f'INSERT INTO "{table}" VALUES (:ref, :forename, :surname, :dob, '
                             ":postcode, :nhs)"), people(200))
    cfg = read_model(SourceConfig, {"name": "records", "type": "sql", "url": PG_URL,
                                    "table": table, "mapping": MAPPING},
                                   "sources[0]", tmp_path)
    snapshot = load_snapshot([cfg], tmp_path / "pg.index")
    with engine.begin() as conn:
        conn.execute(sa.text(f'UPDATE "{table}" SET forename = :new WHERE ref = :ref'),
                     {"new": "Changed", "ref": "HELD"})
        conn.execute(sa.text(f'DROP TABLE "{table}"'))
    (candidate,) = snapshot.matcher.search(WHO).candidates
    assert candidate.record.values["given_name"] == HELD["forename"]
    snapshot.store.path.unlink()
    with pytest.raises(StoreUnavailable):
        snapshot.matcher.search(WHO)


async def test_a_store_gone_at_answer_time_is_not_checked_end_to_end(
        running: Running) -> None:
    answers = {a.agency_id: a for a in (await running.analyst().lookup(
        lookup_request())).answers}
    assert answers["police"].state == R.ANSWER_STATE_KNOWN  # positive control
    snapshot = running.agents["police"].state.snapshot
    assert snapshot is not None and snapshot.matcher.records == []
    snapshot.store.path.unlink()
    answers = {a.agency_id: a for a in (await running.analyst().lookup(
        lookup_request())).answers}
    police = answers["police"]
    assert police.state == R.ANSWER_STATE_NOT_CHECKED
    assert police.not_checked_reason == R.NOT_CHECKED_REASON_DATA_UNAVAILABLE
    assert "record store file is missing" in police.detail
    assert not police.matches
    assert answers["health"].state == R.ANSWER_STATE_KNOWN


def test_a_load_that_fails_after_indexing_leaves_no_store_behind(tmp_path: Path) -> None:
    state, sources, data, index = first_load(tmp_path)
    first = state.snapshot
    assert first is not None

    def fail(_snapshot) -> None:
        raise RuntimeError("the blind token index could not be built")

    state.prepare = fail
    write_csv(data, people(201))
    assert state.load(sources, index).refusal is not None
    assert state.snapshot is first and stores(index) == [first.store.path]
    assert held_ids(first) == ["HELD"]


def test_a_calibration_that_fails_while_the_store_is_finished_leaves_no_store_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is finished on a thread beside the calibration: a failed calibration waits
    for it and deletes what it wrote (the last good load's store stays and answers)."""
    from mash.agent import state as agent_state

    state, sources, data, index = first_load(tmp_path)  # positive control: a store written
    first = state.snapshot
    assert first is not None and stores(index) == [first.store.path]

    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("calibration failed")

    monkeypatch.setattr(agent_state, "calibrate", fail)
    write_csv(data, people(201))
    assert state.load(sources, index).refusal is not None
    assert state.snapshot is first and stores(index) == [first.store.path]
    assert not list(tmp_path.glob(".records-*"))
    assert held_ids(first) == ["HELD"]


def test_a_store_that_cannot_be_finished_fails_the_load(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mash.agent.record_store import StoreWriter

    state, sources, data, index = first_load(tmp_path)
    first = state.snapshot
    assert first is not None

    def full(self: StoreWriter, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(StoreWriter, "finish_or_reuse", full)
    write_csv(data, people(201))
    status = state.load(sources, index)
    assert status.refusal is not None and "OperationalError" in str(status.refusal)
    assert "disk is full" not in str(status.refusal)  # named, not quoted
    assert state.snapshot is first and stores(index) == [first.store.path]
    assert not list(tmp_path.glob(".records-*"))
