"""A large full load is mapped and indexed by worker processes (mash.agent.prepare): the
index, the record store, the calibration and every count must be exactly those of the
same load done in the agent's own process, a worker's failure must fail the load closed,
and the index built in shards must be the one a single pass builds."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mash.agent import prepare as prepare_mod
from mash.agent import sources as sources_mod
from mash.agent.sources import SourceConfig
from mash.agent.state import AgentState, Snapshot, stream_snapshot
from mash.matching import index as index_mod
from mash.matching.index import ARRAYS, MatchIndex
from mash.synth.corrupt import scenario
from tests.test_snapshots import WHO, csv_source, people, write_csv


def rows(n: int, seed: int, prefix: str) -> list[dict[str, str]]:
    out = []
    for i, r in enumerate(scenario(n, 1, "low", seed=seed).records):
        out.append({"ref": f"{prefix}{i}", "forename": r.names[0].given,
                    "surname": r.names[0].family,
                    "dob": r.date_of_birth.isoformat() if r.date_of_birth else "",
                    "postcode": r.postcodes[0] if r.postcodes else "",
                    "nhs": r.identifiers.get("nhs_number", "")})
    return out


def two_sources(tmp_path: Path) -> list[SourceConfig]:
    first = people(1) + rows(6_000, 3, "A")
    first[100]["ref"] = ""  # rejected: no record id
    first[4_321]["dob"] = "31/31/2001"  # kept, its date dropped with a warning
    second = rows(2_500, 4, "B")
    write_csv(tmp_path / "a.csv", first)
    write_csv(tmp_path / "b.csv", second)
    return [csv_source(tmp_path / "a.csv", max_rejected_percent=50),
            csv_source(tmp_path / "b.csv", name="second")]


def spy_on_workers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each batch went to the workers (the pool was running when it was sent)."""
    seen: list[bool] = []
    submit = prepare_mod.Preparer.submit

    def spied(self: prepare_mod.Preparer, job: prepare_mod.Job) -> Any:
        out = list(submit(self, job))
        seen.append(self.parallel)
        return iter(out)

    monkeypatch.setattr(prepare_mod.Preparer, "submit", spied)
    return seen


def load(sources: list[SourceConfig], index: Path, workers: int,
         monkeypatch: pytest.MonkeyPatch) -> Snapshot:
    seen = spy_on_workers(monkeypatch)
    snapshot, load = stream_snapshot(sources, index, workers=workers, parallel_from=2_000)
    # the first batches in this process; with workers, the rest in theirs
    assert seen[:2] == [False, False] and all(seen[3:]) == (workers > 1) and any(seen) == (
        workers > 1)
    assert snapshot is not None and load.refusal is None
    return snapshot


def same_index(a: MatchIndex, b: MatchIndex) -> None:
    assert a.strings.strings == b.strings.strings
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name
    for kind, column in a.identifiers.items():
        assert np.array_equal(column, b.identifiers[kind]), kind


def stored(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    with sqlite3.connect(snapshot.store.path) as conn:
        return conn.execute("SELECT row, record, source, record_id FROM records "
                            "ORDER BY row").fetchall()


def test_workers_build_exactly_what_one_process_builds(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(sources_mod, "ROW_BATCH", 700)  # many batches, several in flight
    sources = two_sources(tmp_path)
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    alone = load(sources, tmp_path / "one" / "agent.index", 1, monkeypatch)
    shared = load(sources, tmp_path / "many" / "agent.index", 2, monkeypatch)
    same_index(alone.matcher.index, shared.matcher.index)
    assert stored(alone) == stored(shared) and len(stored(alone)) == 8_500
    for a, b in zip(alone.sources, shared.sources, strict=True):
        assert (a.rows_read, a.kept, a.rows_rejected, a.present, a.warnings, a.content) == (
            b.rows_read, b.kept, b.rows_rejected, b.present, b.warnings, b.content)
    assert alone.sources[0].rows_read == 6_001 and alone.sources[0].kept == 6_000
    assert sum(alone.sources[0].rows_rejected.values()) == 1 and alone.sources[0].warnings
    assert alone.matcher.model.thresholds == shared.matcher.model.thresholds
    assert alone.matcher.model.provenance == shared.matcher.model.provenance
    found = [c.record.record_id for c in shared.matcher.search(WHO).candidates]
    assert found == ["HELD"]


def failing_prepare(job: prepare_mod.Job) -> prepare_mod.Prepared:
    raise RuntimeError("a worker failed")


def test_a_failing_worker_fails_the_load_closed(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources_mod, "ROW_BATCH", 1_000)
    sources = two_sources(tmp_path)
    index = tmp_path / "agent.index"
    state = AgentState(build_workers=2)
    monkeypatch.setattr(prepare_mod, "PARALLEL_FROM", 2_000)
    seen = spy_on_workers(monkeypatch)
    assert state.load(sources, index).refusal is None  # positive control
    assert seen[-1]  # the workers prepared the load's last batches
    index.unlink()
    for old in tmp_path.glob("agent.index.records-*"):
        old.unlink()
    state = AgentState(build_workers=2)
    # the worker processes import the module afresh: the failure is in the function sent
    monkeypatch.setattr(prepare_mod, "prepare", failing_prepare)
    with pytest.raises(RuntimeError, match="a worker failed"):
        stream_snapshot(sources, index, workers=2, parallel_from=0)
    status = state.load(sources, index)
    assert status.refusal is not None and status.refusal.problem == "load_failed"
    assert state.snapshot is None  # nothing served: NOT_CHECKED, never NOT_KNOWN
    assert not list(tmp_path.glob(".records-*.tmp")) and not index.exists()


def dying_prepare(job: prepare_mod.Job) -> prepare_mod.Prepared:
    if multiprocessing.parent_process() is not None:  # a worker: it dies
        os._exit(3)
    return real_prepare(job)


real_prepare = prepare_mod.prepare


def test_workers_that_die_leave_the_load_to_the_agent(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.setattr(sources_mod, "ROW_BATCH", 700)
    sources = two_sources(tmp_path)
    (tmp_path / "one").mkdir()
    alone = load(sources, tmp_path / "one" / "agent.index", 1, monkeypatch)
    monkeypatch.setattr(prepare_mod, "prepare", dying_prepare)
    seen = spy_on_workers(monkeypatch)
    snapshot, status = stream_snapshot(sources, tmp_path / "agent.index", workers=2,
                                       parallel_from=2_000)
    assert any(seen) and not seen[-1]  # the workers started, died, and the agent went on
    assert snapshot is not None and status.refusal is None
    same_index(alone.matcher.index, snapshot.matcher.index)
    assert stored(alone) == stored(snapshot)


def test_shards_join_into_the_single_pass_index(monkeypatch: pytest.MonkeyPatch) -> None:
    records = list(scenario(3_000, 1, "medium", seed=11).records)
    whole = index_mod.build(records)
    monkeypatch.setattr(index_mod, "SHARD_ROWS", 7)  # strings first seen in later shards
    same_index(whole, index_mod.build(records))
    builder = index_mod.IndexBuilder()
    for start in (0, 1, 1_000, 2_999):  # uneven shards, one of a single record
        end = {0: 1, 1: 1_000, 1_000: 2_999, 2_999: 3_000}[start]
        builder.add(index_mod.shard(records[start:end]))
    same_index(whole, builder.finish())
    empty = index_mod.build([])
    assert len(empty) == 0 and empty.postcode.shape == (0, index_mod.MAX_POSTCODES)
