"""An incremental refresh: for SQL sources with an as-at (updated-at) column, a refresh reads
only the rows changed since the full load and applies them beside its index (a changed
record is found in its new version and never its old one, a new record is found) without
reading the sources in full. A failed read of the changes keeps the snapshot answered from,
whole; what an as-at column cannot show (deleted rows), too many changes or an explicit
load means a full load, swapped in whole."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mash.agent import state as agent_state
from mash.agent.sources import Problem, SourceConfig, SourceError
from mash.agent.state import AgentState, Snapshot
from mash.config import read_model
from mash.matching.delta import LayeredMatcher, delta_index, on_base
from mash.matching.index import build
from mash.records import PersonRecord
from tests.test_record_store import PG_URL
from tests.test_snapshots import MAPPING, WHO, people
from tests.test_snapshots import subject as make_subject

STAMP = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
LATER = STAMP + dt.timedelta(hours=1)
MOVED = {"ref": "HELD", "forename": "Zebedee", "surname": "Featherstone", "dob": "2011-07-09",
         "postcode": "BD1 1AA", "nhs": ""}
MOVED_WHO = make_subject("Zebedee", "Featherstone", "2011-07-09", "BD1 1AA")
NEW = {"ref": "NEW", "forename": "Ottoline", "surname": "Brackenbury", "dob": "2012-02-02",
       "postcode": "HX1 2BB", "nhs": ""}
NEW_WHO = make_subject("Ottoline", "Brackenbury", "2012-02-02", "HX1 2BB")


class Db:
    """A table of people in a real database (PostgreSQL, or an SQLite file)."""

    def __init__(self, url: str, kind: str, tmp_path: Path, path: Path | None = None) -> None:
        self.engine = sa.create_engine(url)
        self.url, self.kind, self.tmp_path, self.path = url, kind, tmp_path, path
        self.name = f"incr_{uuid.uuid4().hex[:8]}"
        self.table = sa.Table(
            self.name, sa.MetaData(),
            *[sa.Column(c, sa.Text, primary_key=c == "ref")
              for c in ("ref", "forename", "surname", "dob", "postcode", "nhs")],
            sa.Column("updated", sa.DateTime(timezone=True), index=True))

    def create(self, rows: list[dict[str, str]]) -> None:
        self.table.create(self.engine)
        self.insert(rows, STAMP)

    def insert(self, rows: list[dict[str, str]], at: dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), [r | {"updated": at} for r in rows])

    def update(self, row: dict[str, str], at: dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.update().where(self.table.c.ref == row["ref"])
                         .values(**row, updated=at))

    def execute(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql))

    def source(self) -> SourceConfig:
        where = ({"url": self.url} if self.kind == "sql" else {"path": str(self.path)})
        return read_model(SourceConfig, {"name": "records", "type": self.kind, **where,
                                         "table": self.name, "as_at_column": "updated",
                                         "mapping": MAPPING}, "sources[0]", self.tmp_path)


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        path = tmp_path / "agency.db"
        one = Db(f"sqlite:///{path}", "sqlite", tmp_path, path)
    else:
        one = Db(PG_URL, "sql", tmp_path)
        try:
            with one.engine.connect():
                pass
        except sa.exc.OperationalError:
            pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    yield one
    one.table.drop(one.engine, checkfirst=True)
    one.engine.dispose()


@pytest.fixture
def full_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources read in full (a full load reads every row through RowBatches), by name."""
    real = agent_state.RowBatches
    seen: list[str] = []

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self, cfg: SourceConfig, *args: Any, **kwargs: Any) -> None:
            seen.append(cfg.name)
            super().__init__(cfg, *args, **kwargs)

    monkeypatch.setattr(agent_state, "RowBatches", Counted)
    return seen


def ids(snapshot: Snapshot | None, who: Any = WHO) -> list[str]:
    assert snapshot is not None
    return [c.record.record_id for c in snapshot.matcher.search(who).candidates]


def loaded(db: Db, n: int = 200) -> tuple[AgentState, list[SourceConfig], Path]:
    db.create(people(n))
    state, sources, index = AgentState(), [db.source()], db.tmp_path / "var" / "agency.index"
    assert state.load(sources, index).refusal is None
    assert state.snapshot is not None and state.snapshot.changes is None
    return state, sources, index


def stores(index: Path) -> list[Path]:
    return sorted(index.parent.glob(f"{index.name}.records-*.sqlite"))


def test_an_updated_row_is_found_in_its_new_version_without_a_full_read(
        db: Db, full_reads: list[str]) -> None:
    state, sources, index = loaded(db)
    first = state.snapshot
    assert ids(first) == ["HELD"] and full_reads == ["records"]
    db.update(MOVED, LATER)
    status = state.refresh(sources, index)
    assert status is not None and status.refusal is None
    assert full_reads == ["records"]  # the changed rows only: no second full read
    snapshot = state.snapshot
    assert snapshot is not None and snapshot is not first and snapshot.changes is not None
    assert len(snapshot.changes.store) == 1 and snapshot.changes.added == 0
    assert "HELD" not in ids(snapshot)  # the old version is gone ...
    (candidate,) = snapshot.matcher.search(MOVED_WHO).candidates  # ... the new one found
    assert candidate.record.record_id == "HELD" and candidate.band == "match"
    # what is released is the new version's
    assert candidate.record.values["family_name"] == "Featherstone"
    assert candidate.record.values["date_of_birth"] == "2011-07-09"
    assert snapshot.record_count == 200 and snapshot.as_at == LATER
    assert [s.record_count for s in snapshot.sources] == [200]
    assert snapshot.matcher.index is first.matcher.index  # the saved index as it was
    assert ids(first) == ["HELD"]  # a query still on the old snapshot reads it whole
    # the blind token index is built from the records answered from: new versions only
    records = list(snapshot.records())
    assert len(records) == 200
    assert [r.names[0].family for r in records if r.record_id == "HELD"] == ["featherstone"]
    assert state.refresh(sources, index) is None  # unchanged since: nothing to do


def test_a_new_row_is_found_and_changes_accumulate_over_refreshes(
        db: Db, full_reads: list[str]) -> None:
    state, sources, index = loaded(db)
    db.insert([NEW], LATER)
    assert (status := state.refresh(sources, index)) is not None and status.refusal is None
    snapshot = state.snapshot
    assert snapshot is not None and snapshot.changes is not None
    assert snapshot.changes.added == 1 and snapshot.record_count == 201
    assert ids(snapshot, NEW_WHO) == ["NEW"] and ids(snapshot) == ["HELD"]
    # a second change: applied to the full load with the first, the first's store removed
    db.update(MOVED, LATER + dt.timedelta(minutes=10))
    assert (status := state.refresh(sources, index)) is not None and status.refusal is None
    second = state.snapshot
    assert second is not None and second.changes is not None
    assert second.changes.base is snapshot.changes.base
    assert len(second.changes.store) == 2 and second.record_count == 201
    assert ids(second, NEW_WHO) == ["NEW"] and ids(second, MOVED_WHO) == ["HELD"]
    assert "HELD" not in ids(second)
    assert second.as_at == LATER + dt.timedelta(minutes=10)
    db.insert([NEW | {"ref": "NEW2", "forename": "Peregrine"}], LATER + dt.timedelta(hours=1))
    assert state.refresh(sources, index) is not None
    third = state.snapshot
    assert third is not None and third.record_count == 202
    # the stores answered from, and the one replaced (for the queries still on it)
    assert stores(index) == sorted([*third.stores, second.changes.store.path])
    assert full_reads == ["records"]


def test_a_changed_record_scores_as_it_did_in_the_full_load(db: Db) -> None:
    """The changes' index counts each value over the full load too (its term frequencies
    and population): a record among the changes scores (nearly) as it did in the full
    load, not as a rare record in an index of a few."""
    state, _, _ = loaded(db)
    snapshot = state.snapshot
    assert snapshot is not None
    base = snapshot.matcher
    ((before, _),) = [(c, c.row) for c in base.search(WHO).candidates]
    held = base.fetch([before.row])
    masked = np.array([before.row])
    layered = LayeredMatcher(base=base, delta=delta_index(held, base.index, masked),
                             masked=masked, delta_lookup=ListLookup(held))
    (after,) = layered.search(WHO).candidates
    assert after.row == len(base.index) and after.record.record_id == "HELD"
    assert after.band == before.band and after.score == before.score
    assert len(layered) == len(base)
    # counted over itself alone, the record would look rarer than it is (positive control)
    alone = LayeredMatcher(base=base, delta=on_base(build(held), build(held)), masked=masked,
                           delta_lookup=ListLookup(held))
    assert alone.search(WHO).candidates[0].score != before.score


class ListLookup:
    def __init__(self, records: list[PersonRecord]) -> None:
        self.records = records

    def fetch(self, rows: Sequence[int]) -> list[PersonRecord]:
        return [self.records[r] for r in rows]


def test_a_failing_read_of_the_changes_keeps_the_last_snapshot(
        db: Db, full_reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    state, sources, index = loaded(db)
    db.update(MOVED, LATER)
    good = state.refresh(sources, index)  # positive control: a good refresh applies
    assert good is not None and good.refusal is None
    applied = state.snapshot
    assert applied is not None and ids(applied, MOVED_WHO) == ["HELD"]
    kept = stores(index)
    # a column gone: the read of the changes fails; the snapshot answered from stays
    db.update(NEW | {"ref": "HELD"}, LATER + dt.timedelta(minutes=5))
    db.execute(f'ALTER TABLE "{db.name}" RENAME COLUMN forename TO given')
    refused = state.refresh(sources, index)
    assert refused is not None and refused.refusal is not None
    assert refused.refusal.problem == Problem.COLUMNS_MISSING
    assert state.snapshot is applied and state.stale
    assert ids(applied, MOVED_WHO) == ["HELD"] and ids(applied, NEW_WHO) == []
    assert stores(index) == kept and not list(index.parent.glob(".records-*.tmp"))
    db.execute(f'ALTER TABLE "{db.name}" RENAME COLUMN given TO forename')

    # a read that fails half-way: nothing of it is answered from
    real = agent_state.open_changed

    def half(cfg: SourceConfig, since: dt.datetime) -> Any:
        one, stream, reading = real(cfg, since)

        def broken() -> Iterator[PersonRecord]:
            yield next(stream)
            raise SourceError(cfg.name, Problem.DATABASE_ERROR, "database error: the "
                              "connection was lost (OperationalError)")
        return one, broken(), reading

    db.insert([NEW | {"ref": "NEW2"}], LATER + dt.timedelta(minutes=6))
    monkeypatch.setattr(agent_state, "open_changed", half)
    failed = state.refresh(sources, index)
    assert failed is not None and failed.refusal is not None
    assert failed.refusal.problem == Problem.DATABASE_ERROR and failed.retry
    assert state.snapshot is applied and ids(applied, NEW_WHO) == []
    assert stores(index) == kept and not list(index.parent.glob(".records-*.tmp"))
    monkeypatch.setattr(agent_state, "open_changed", real)
    again = state.refresh(sources, index)  # retried at the next refresh, and applied
    assert again is not None and again.refusal is None and not state.stale
    assert ids(state.snapshot, NEW_WHO) == ["HELD", "NEW2"]
    assert full_reads == ["records"]


def test_what_the_changes_cannot_show_means_a_full_load(
        db: Db, full_reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    state, sources, index = loaded(db)
    # a deleted row: the source holds fewer rows than the full load and its changes
    db.update(MOVED, LATER)
    db.execute(f"DELETE FROM \"{db.name}\" WHERE ref = 'R0'")
    status = state.refresh(sources, index)
    assert status is not None and status.refusal is None
    assert full_reads == ["records", "records"]
    snapshot = state.snapshot
    assert snapshot is not None and snapshot.changes is None and snapshot.record_count == 199
    assert ids(snapshot, MOVED_WHO) == ["HELD"] and not snapshot.index_reused
    # more changes than MAX_CHANGED_SHARE of the full load: read in full, calibrated afresh
    monkeypatch.setattr(agent_state, "MAX_CHANGED_SHARE", 0.01)
    for i, row in enumerate(people(5)[1:]):
        db.update(row | {"surname": f"Changed{i}"}, LATER + dt.timedelta(minutes=1))
    assert state.refresh(sources, index) is not None
    assert full_reads == ["records"] * 3 and state.snapshot is not None
    assert state.snapshot.changes is None and state.snapshot.record_count == 199
    # below it: applied (positive control)
    db.update(people(5)[2] | {"surname": "Again"}, LATER + dt.timedelta(minutes=2))
    assert state.refresh(sources, index) is not None
    assert full_reads == ["records"] * 3 and state.snapshot.changes is not None


def test_a_full_load_when_asked_replaces_the_changes_whole(db: Db,
                                                            full_reads: list[str]) -> None:
    state, sources, index = loaded(db)
    db.update(MOVED, LATER)
    assert state.refresh(sources, index) is not None
    applied = state.snapshot
    assert applied is not None and applied.changes is not None
    status = state.load(sources, index)  # a full rebuild, asked for
    assert status.refusal is None and full_reads == ["records", "records"]
    rebuilt = state.snapshot
    assert rebuilt is not None and rebuilt.changes is None and not rebuilt.index_reused
    assert ids(rebuilt, MOVED_WHO) == ["HELD"] and "HELD" not in ids(rebuilt)
    assert rebuilt.as_at == LATER
    assert ids(applied, MOVED_WHO) == ["HELD"]  # the one replaced answers on, whole
    # the saved index is the rebuilt one: a restart opens it without reading the sources
    restarted = AgentState()
    assert restarted.load(sources, index).refusal is None
    assert restarted.snapshot is not None and restarted.snapshot.index_reused
    assert full_reads == ["records", "records"]


def test_a_source_without_an_as_at_column_is_read_in_full(db: Db,
                                                         full_reads: list[str]) -> None:
    db.create(people(50))
    source = db.source().model_copy(update={"as_at_column": None})
    state = AgentState()
    assert state.load([source]).refusal is None
    db.update(MOVED, LATER)
    assert state.apply_changes([source], fingerprint="").refusal is None
    assert full_reads == ["records", "records"]
    assert state.snapshot is not None and state.snapshot.changes is None
    assert ids(state.snapshot, MOVED_WHO) == ["HELD"]


def test_a_restart_on_changed_sources_opens_the_saved_index_and_applies_the_changes(
        db: Db, full_reads: list[str]) -> None:
    _, sources, index = loaded(db)
    db.update(MOVED, LATER)
    db.insert([NEW], LATER)
    restarted = AgentState()
    status = restarted.load(sources, index)
    assert status.refusal is None and full_reads == ["records"]  # no second full read
    snapshot = restarted.snapshot
    assert snapshot is not None and snapshot.changes is not None and snapshot.index_reused
    assert ids(snapshot, MOVED_WHO) == ["HELD"] and "HELD" not in ids(snapshot)
    assert ids(snapshot, NEW_WHO) == ["NEW"] and snapshot.record_count == 201
    assert snapshot.as_at == LATER and snapshot.fingerprint == status.fingerprint
    assert restarted.refresh(sources, index) is None  # nothing new since
    # rows deleted since the saved index: a full load at start
    db.execute(f"DELETE FROM \"{db.name}\" WHERE ref = 'R0'")
    again = AgentState()
    assert again.load(sources, index).refusal is None
    assert full_reads == ["records", "records"]
    assert again.snapshot is not None and again.snapshot.changes is None
    assert again.snapshot.record_count == 200 and ids(again.snapshot, NEW_WHO) == ["NEW"]


@pytest.mark.parametrize("form", ["table", "query"])
def test_a_column_without_a_time_zone_is_compared_as_utc(tmp_path: Path, form: str,
                                                        full_reads: list[str]) -> None:
    """A `timestamp` (no zone) column holds UTC as a full read takes it; the changes' read
    compares it with UTC whatever the session's zone (here 9 hours ahead)."""
    url = PG_URL + "?options=-c%20timezone%3DAsia/Tokyo"
    db = Db(url, "sql", tmp_path)
    db.table = sa.Table(db.name, sa.MetaData(),
                        *[sa.Column(c.name, c.type, primary_key=c.primary_key)
                          for c in db.table.columns if c.name != "updated"],
                        sa.Column("updated", sa.DateTime(timezone=False)))
    try:
        with db.engine.connect():
            pass
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    try:
        db.table.create(db.engine)
        with db.engine.begin() as conn:
            conn.execute(db.table.insert(),
                         [r | {"updated": STAMP.replace(tzinfo=None)} for r in people(200)])
        source = db.source()
        if form == "query":
            source = source.model_copy(update={"table": None,
                                               "query": f'SELECT * FROM "{db.name}"'})
        state, sources, index = AgentState(), [source], tmp_path / "agency.index"
        assert state.load(sources, index).refusal is None
        assert state.snapshot is not None and state.snapshot.as_at == STAMP
        with db.engine.begin() as conn:
            conn.execute(db.table.update().where(db.table.c.ref == "HELD").values(
                **MOVED, updated=LATER.replace(tzinfo=None)))
        assert (status := state.refresh(sources, index)) is not None and status.refusal is None
        snapshot = state.snapshot
        assert snapshot is not None and snapshot.changes is not None
        assert ids(snapshot, MOVED_WHO) == ["HELD"] and snapshot.as_at == LATER
        assert full_reads == ["records"]
    finally:
        db.table.drop(db.engine, checkfirst=True)
        db.engine.dispose()


def test_as_at_values_that_are_not_times_mean_a_full_load(db: Db,
                                                          full_reads: list[str]) -> None:
    """An SQLite query's as-at column comes back as text, not times: the full load's as-at
    is then when it read, and the changes' read cannot be trusted to see every change."""
    if db.kind != "sqlite":
        pytest.skip("PostgreSQL returns a query's timestamps as times")
    db.create(people(50))
    source = db.source().model_copy(update={"table": None,
                                            "query": f'SELECT * FROM "{db.name}"'})
    state = AgentState()
    assert state.load([source]).refusal is None
    db.update(MOVED, LATER)
    assert (status := state.refresh([source])) is not None and status.refusal is None
    assert full_reads == ["records", "records"]
    assert state.snapshot is not None and state.snapshot.changes is None
    assert ids(state.snapshot, MOVED_WHO) == ["HELD"]


def test_changes_that_fail_to_prepare_leave_no_store_and_keep_the_snapshot(
        db: Db, full_reads: list[str]) -> None:
    state, sources, index = loaded(db)
    first = state.snapshot
    assert first is not None

    def fail(_snapshot: Snapshot) -> None:
        raise RuntimeError("the blind token index could not be built")

    state.prepare = fail
    db.update(MOVED, LATER)
    status = state.refresh(sources, index)
    assert status is not None and status.refusal is not None
    assert status.refusal.problem == Problem.LOAD_FAILED and status.retry
    assert state.snapshot is first and ids(first) == ["HELD"]
    assert stores(index) == [first.store.path] and full_reads == ["records"]
    state.prepare = None
    assert (again := state.refresh(sources, index)) is not None and again.refusal is None
    assert ids(state.snapshot, MOVED_WHO) == ["HELD"] and full_reads == ["records"]


def test_a_full_load_a_day_old_is_read_again_not_added_to(
        db: Db, full_reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    state, sources, index = loaded(db)
    db.update(MOVED, LATER)
    assert state.refresh(sources, index) is not None  # positive control: applied
    assert state.snapshot is not None and state.snapshot.changes is not None
    monkeypatch.setattr(agent_state, "FULL_LOAD_EVERY", dt.timedelta(0))
    db.insert([NEW], LATER)
    assert (status := state.refresh(sources, index)) is not None and status.refusal is None
    assert full_reads == ["records", "records"] and state.snapshot.changes is None
    assert ids(state.snapshot, NEW_WHO) == ["NEW"] and ids(state.snapshot, MOVED_WHO) == ["HELD"]
    # at a start: the saved index's age is its file's
    monkeypatch.setattr(agent_state, "FULL_LOAD_EVERY", dt.timedelta(hours=24))
    db.update(MOVED | {"surname": "Fotheringay"}, LATER + dt.timedelta(minutes=1))
    fresh = AgentState()
    assert fresh.load(sources, index).refusal is None and full_reads == ["records"] * 2
    assert fresh.snapshot is not None and fresh.snapshot.changes is not None
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).timestamp()
    os.utime(index, (old, old))
    stale = AgentState()
    assert stale.load(sources, index).refusal is None and full_reads == ["records"] * 3
    assert stale.snapshot is not None and stale.snapshot.changes is None
