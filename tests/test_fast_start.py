"""An agent restarting on unchanged sources opens its saved index (memory-mapped) and its
record store without reading the sources, and tells the same counts and as-at time as the
load that built them. Anything that does not fit (the sources changed, the index or the
store damaged, truncated or missing) means a full load that rebuilds it; a store that cannot
be read once serving is NOT_CHECKED, never NOT_KNOWN."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mash.agent import state as agent_state
from mash.agent.record_store import StoreUnavailable
from mash.agent.sources import SourceConfig
from mash.agent.state import AgentState, Snapshot, load_snapshot
from mash.config import read_model
from tests.test_record_store import PG_URL, people_table
from tests.test_snapshots import MAPPING, WHO, csv_source, people, write_csv


def held(snapshot: Snapshot) -> list[str]:
    return [c.record.record_id for c in snapshot.matcher.search(WHO).candidates]


@pytest.fixture
def no_source_read(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fails the test if a source is read (RowBatches is what reads every record)."""
    real = agent_state.RowBatches

    def refuse(enabled: bool) -> None:
        def guarded(cfg: SourceConfig, *args: Any) -> Any:
            raise AssertionError(f"source {cfg.name} was read")

        monkeypatch.setattr(agent_state, "RowBatches", guarded if enabled else real)
    return refuse


def saved_state(tmp_path: Path, n: int = 300) -> tuple[list[SourceConfig], Path, Snapshot]:
    data, index = tmp_path / "records.csv", tmp_path / "var" / "records.index"
    write_csv(data, people(n))
    sources = [csv_source(data)]
    state = AgentState()
    assert state.load(sources, index).refusal is None
    assert state.snapshot is not None and not state.snapshot.index_reused
    return sources, index, state.snapshot


def test_a_restart_on_unchanged_sources_reads_none_of_them(tmp_path: Path,
                                                            no_source_read: Any) -> None:
    sources, index, first = saved_state(tmp_path)
    no_source_read(True)
    state = AgentState()
    status = state.load(sources, index)
    assert status.refusal is None and state.snapshot is not None
    snapshot = state.snapshot
    assert snapshot.index_reused and snapshot.store.path == first.store.path
    dob = snapshot.matcher.index.dob  # mapped from the file, not a copy
    assert isinstance(dob.base, np.memmap) and not dob.flags.owndata
    # the same counts, as-at time and summaries as the load that built it
    assert snapshot.record_count == first.record_count == 300
    assert snapshot.as_at == first.as_at
    assert snapshot.counts() == first.counts()
    assert list(snapshot.sources_proto) == list(first.sources_proto)
    assert snapshot.fingerprint == first.fingerprint == status.fingerprint
    assert held(snapshot) == ["HELD"]
    assert state.refresh(sources, index) is None  # unchanged: nothing to do
    assert load_snapshot(sources, index).index_reused  # `mash agent index` too


def test_changed_sources_are_read_again(tmp_path: Path, no_source_read: Any) -> None:
    sources, index, _ = saved_state(tmp_path)
    (data,) = [cfg.path for cfg in sources]
    assert data is not None
    write_csv(data, [*people(300), {"ref": "NEW", "forename": "Zebedee", "surname": "Quarmby",
                                    "dob": "2013-03-03", "postcode": "LS6 2AA", "nhs": ""}])
    no_source_read(True)
    with pytest.raises(AssertionError, match="was read"):  # positive control of the guard
        load_snapshot(sources, index)
    no_source_read(False)
    state = AgentState()
    assert state.load(sources, index).refusal is None
    assert state.snapshot is not None and not state.snapshot.index_reused
    assert state.snapshot.record_count == 301


def test_a_touched_file_of_the_same_content_starts_fast_once_read(tmp_path: Path,
                                                                  no_source_read: Any) -> None:
    """Its mtime (the as-at time) is new: read once, the index reused and its start facts
    saved again; the next start reads nothing and tells the new as-at time."""
    sources, index, first = saved_state(tmp_path)
    (data,) = [cfg.path for cfg in sources]
    assert data is not None
    later = first.as_at + dt.timedelta(hours=1)
    os.utime(data, (later.timestamp(), later.timestamp()))
    touched = load_snapshot(sources, index)
    assert touched.index_reused and touched.as_at == later
    no_source_read(True)
    again = load_snapshot(sources, index)
    assert again.index_reused and again.as_at == later and held(again) == ["HELD"]


def test_a_damaged_or_truncated_index_is_rebuilt_not_served(tmp_path: Path) -> None:
    sources, index, _ = saved_state(tmp_path)
    good = index.read_bytes()
    assert load_snapshot(sources, index).index_reused  # positive control
    middle = len(good) - 50
    for damaged in (good[:len(good) // 2], good[:-1],
                    good[:middle] + bytes([good[middle] ^ 0x01]) + good[middle + 1:]):
        index.write_bytes(damaged)
        snapshot = load_snapshot(sources, index)
        assert not snapshot.index_reused and held(snapshot) == ["HELD"]
        assert load_snapshot(sources, index).index_reused  # rebuilt whole


def test_a_missing_or_damaged_store_at_start_is_written_again(tmp_path: Path) -> None:
    sources, index, first = saved_state(tmp_path)
    path = first.store.path
    for damage in (None, b"not a database", path.read_bytes()[:4096]):
        if damage is None:
            path.unlink()
        else:
            path.write_bytes(damage)
        state = AgentState()
        assert state.load(sources, index).refusal is None
        assert state.snapshot is not None and held(state.snapshot) == ["HELD"]
        assert state.snapshot.store.path == path


def test_a_store_lost_after_a_fast_start_is_not_checked(tmp_path: Path) -> None:
    sources, index, _ = saved_state(tmp_path)
    snapshot = load_snapshot(sources, index)
    assert snapshot.index_reused and held(snapshot) == ["HELD"]  # positive control
    snapshot.store.path.unlink()
    with pytest.raises(StoreUnavailable, match="missing"):
        snapshot.matcher.search(WHO)


def test_another_mapping_or_target_is_not_started_from(tmp_path: Path,
                                                       no_source_read: Any) -> None:
    sources, index, _ = saved_state(tmp_path)
    (data,) = [cfg.path for cfg in sources]
    assert data is not None
    assert agent_state.open_saved(sources, index) is not None  # positive control
    assert agent_state.open_saved(sources, index, target_false_known=0.05) is None
    other = csv_source(data, fields={"surname": "family_name"})
    assert agent_state.open_saved([other], index) is None


def test_a_model_calibrated_the_old_way_is_calibrated_again(tmp_path: Path) -> None:
    """A saved index whose model was calibrated by an older way of choosing thresholds
    (its provenance's version) is not started from, and a load keeps the index but
    calibrates again, so no threshold chosen the old way is served."""
    from mash.matching import persist
    from mash.matching.calibration import CALIBRATION_VERSION, still_fits

    sources, index, first = saved_state(tmp_path)
    assert agent_state.open_saved(sources, index) is not None  # positive control
    meta = persist.read_meta(index)
    assert meta is not None
    loaded = persist.load(index, meta["fingerprint"])
    assert loaded is not None and loaded[1] is not None
    saved, model = loaded
    assert still_fits(model, 0.001)
    model.provenance["version"] = CALIBRATION_VERSION - 1
    model.thresholds = dataclasses.replace(model.thresholds, possible=99.0, match=102.0)
    assert not still_fits(model, 0.001)
    older = index.with_name("older.index")
    persist.save(saved, older, meta["fingerprint"], model, extra=meta.get("extra"))
    del saved, loaded
    os.replace(older, index)
    assert agent_state.open_saved(sources, index) is None
    state = AgentState()
    assert state.load(sources, index).refusal is None and state.snapshot is not None
    again = state.snapshot.matcher.model
    assert again.provenance["version"] == CALIBRATION_VERSION
    assert again.thresholds == first.matcher.model.thresholds
    assert held(state.snapshot) == ["HELD"]


@pytest.fixture
def pg_people() -> Any:
    yield from people_table("fast", ", updated timestamptz")


def test_a_postgresql_source_with_an_as_at_column_starts_fast(pg_people: Any, tmp_path: Path,
                                                              no_source_read: Any) -> None:
    engine, table = pg_people
    stamp = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
    insert = sa.text(f'INSERT INTO "{table}" VALUES (:ref, :forename, :surname, :dob, '
                     ":postcode, :nhs, :updated)")
    with engine.begin() as conn:
        conn.execute(insert, [r | {"updated": stamp} for r in people(200)])

    def source(**more: Any) -> SourceConfig:
        return read_model(SourceConfig, {"name": "records", "type": "sql", "url": PG_URL,
                                         "table": table, "mapping": MAPPING, **more},
                          "sources[0]", tmp_path)

    index = tmp_path / "pg.index"
    first = load_snapshot([source(as_at_column="updated")], index)
    assert not first.index_reused and first.as_at == stamp
    no_source_read(True)
    again = load_snapshot([source(as_at_column="updated")], index)
    assert again.index_reused and again.as_at == stamp and held(again) == ["HELD"]
    with pytest.raises(AssertionError, match="was read"):  # no as-at column: always read
        load_snapshot([source()], tmp_path / "other.index")
    with engine.begin() as conn:  # a change that moves the latest as-at: read again
        conn.execute(sa.text(f'UPDATE "{table}" SET surname = :s, updated = :u '
                             "WHERE ref = 'HELD'"),
                     {"s": "Quimby", "u": stamp + dt.timedelta(minutes=5)})
    with pytest.raises(AssertionError, match="was read"):
        load_snapshot([source(as_at_column="updated")], index)


# --- the first build streams the sources ----------------------------------------------------


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.glob(".records-*.tmp"))


def test_a_first_build_holds_no_list_of_records_and_serves_mapped(tmp_path: Path) -> None:
    _, index, snapshot = saved_state(tmp_path)
    hashes = snapshot.matcher.index.key_hashes  # reopened from its file: mapped, not copied
    assert isinstance(hashes.base, np.memmap) and not hashes.flags.owndata
    assert snapshot.matcher.records == [] and held(snapshot) == ["HELD"]
    assert not leftovers(index.parent)


def test_the_calibration_sample_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_state, "CALIBRATION_SAMPLE", 10)
    sample = agent_state._Sample()
    record = people(1)[0]
    for row in range(1000):
        sample.offer(row, row, record)
    assert 10 <= len(sample.records) < 20 and len(sample.rows) == len(sample.records)
    assert sample.rows == list(range(0, 1000, sample.stride))[:len(sample.rows)]
    small = agent_state._Sample()
    for row in range(15):
        small.offer(row, row, record)
    assert small.rows == list(range(15))  # below the bound: every record, as before


def test_a_refused_or_failed_read_leaves_no_store_behind(tmp_path: Path) -> None:
    sources, index, first = saved_state(tmp_path)
    (data,) = [cfg.path for cfg in sources]
    assert data is not None
    state = AgentState()
    assert state.load(sources, index).refusal is None  # positive control
    write_csv(data, people(20))
    refused = state.load([csv_source(data, min_records=100)], index)
    assert refused.refusal is not None and refused.refusal.problem == "too_few_records"
    data.write_bytes(data.read_bytes() + b"R9,\xff\xfe,x,,,\n")  # not UTF-8, at the end
    failed = state.load(sources, index)
    assert failed.refusal is not None and failed.refusal.problem == "unreadable"
    assert state.snapshot is not None and held(state.snapshot) == ["HELD"]
    assert not leftovers(index.parent)
    assert sorted(index.parent.glob("*.sqlite")) == [first.store.path]


def test_an_index_file_removed_or_replaced_while_serving(tmp_path: Path) -> None:
    """The mapping holds the file it was opened from: removed, or replaced by a rename (as
    the agent saves), the snapshot answers on from it; the next start rebuilds."""
    sources, index, first = saved_state(tmp_path)
    index.unlink()
    assert held(first) == ["HELD"]
    rebuilt = load_snapshot(sources, index)  # saved again: a new file, renamed into place
    assert not rebuilt.index_reused and index.exists()
    assert held(first) == ["HELD"] and held(rebuilt) == ["HELD"]
