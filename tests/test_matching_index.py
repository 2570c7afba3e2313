"""The match index: compact, saved, reused after a restart, rebuilt when a source changes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from mash.agent.sources import SourceConfig
from mash.agent.state import AgentState, load_snapshot
from mash.config import read_model
from mash.matching import persist
from mash.matching.index import build
from mash.synth.corrupt import scenario
from tests.matching_helpers import subject

COLUMNS = ["ref", "forename", "surname", "dob", "postcode", "nhs"]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def people(n: int) -> list[dict[str, str]]:
    out = []
    for i, r in enumerate(scenario(n, 1, "clean", seed=9).records):
        out.append({"ref": f"R{i}", "forename": r.names[0].given, "surname": r.names[0].family,
                    "dob": r.date_of_birth.isoformat() if r.date_of_birth else "",
                    "postcode": r.postcodes[0] if r.postcodes else "",
                    "nhs": r.identifiers.get("nhs_number", "")})
    return out


def source(path: Path) -> SourceConfig:
    return read_model(SourceConfig, {
        "name": "records", "type": "csv", "path": str(path),
        "mapping": {"record_id": "ref", "given_name": "forename", "family_name": "surname",
                    "date_of_birth": "dob", "postcode": "postcode", "nhs_number": "nhs"}},
        "sources[0]", path.parent)


def test_the_index_is_columns_not_objects() -> None:
    records = scenario(2000, 1, "low", seed=3).records
    index = build(records)
    assert len(index) == 2000 and index.dob.dtype == np.int32
    assert index.key_hashes.dtype == np.uint64 and np.all(np.diff(index.key_hashes.astype(
        np.float64)) >= 0)
    assert index.nbytes() < 2000 * 450  # a few hundred bytes a record, all in arrays
    # names, sectors and streets are interned once; postcodes and dwellings are per household
    assert len(index.strings.strings) < 2000 * 3


def test_saved_index_is_reused_and_rebuilt_when_the_source_changes(tmp_path: Path) -> None:
    data, saved = tmp_path / "records.csv", tmp_path / "var" / "records.index"
    rows = people(500)
    write_csv(data, rows)
    sources = [source(data)]

    first = load_snapshot(sources, saved)
    assert not first.index_reused and saved.exists()
    again = load_snapshot(sources, saved)
    assert again.index_reused
    for name in ("key_hashes", "key_rows", "dob", "postcode", "name_family"):
        assert np.array_equal(getattr(first.matcher.index, name),
                              getattr(again.matcher.index, name))
    assert again.matcher.index.strings.strings == first.matcher.index.strings.strings
    newcomer = subject("Zebedee", "Quarmby", "2013-03-03", "LS6 2AA")
    assert not again.matcher.search(newcomer).candidates

    write_csv(data, [*rows, {"ref": "NEW", "forename": "Zebedee", "surname": "Quarmby",
                             "dob": "2013-03-03", "postcode": "LS6 2AA", "nhs": ""}])
    changed = load_snapshot(sources, saved)
    assert not changed.index_reused
    assert [c.record.record_id for c in changed.matcher.search(newcomer).candidates] == ["NEW"]
    assert persist.read_meta(saved)["records"] == 501


def test_an_unreadable_index_is_rebuilt(tmp_path: Path) -> None:
    data, saved = tmp_path / "records.csv", tmp_path / "records.index"
    write_csv(data, people(50))
    saved.write_bytes(b"not an index")
    snapshot = load_snapshot([source(data)], saved)
    assert not snapshot.index_reused and persist.read_meta(saved) is not None


def test_fingerprint_follows_content_not_just_size(tmp_path: Path) -> None:
    data = tmp_path / "records.csv"
    rows = people(20)
    write_csv(data, rows)
    before = persist.fingerprint([source(data)])
    rows[3]["surname"] = rows[3]["surname"][::-1].ljust(len(rows[3]["surname"]))[
        :len(rows[3]["surname"])]
    stat = data.stat()
    write_csv(data, rows)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    assert persist.fingerprint([source(data)]) != before


def test_agent_state_refreshes_when_the_source_changes(tmp_path: Path) -> None:
    data = tmp_path / "records.csv"
    rows = people(100)
    write_csv(data, rows)
    state = AgentState()
    state.load([source(data)], tmp_path / "idx")
    assert state.snapshot is not None and state.snapshot.record_count == 100
    assert not state.refresh([source(data)], tmp_path / "idx")
    write_csv(data, rows[:95])  # within max_shrink_percent (test_snapshots: beyond it)
    assert state.refresh([source(data)], tmp_path / "idx")
    assert state.snapshot.record_count == 95


def test_mash_agent_index_builds_then_reuses(fed) -> None:
    config = fed.agent_configs["police"]
    doc = yaml.safe_load(config.read_text())
    doc["index"] = {"path": str(config.parent / "var" / "police.index")}
    config.write_text(yaml.safe_dump(doc))
    command = [sys.executable, "-m", "mash", "agent", "index", "--config", str(config)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "index built" in first.stdout and "police.index" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "index reused (sources unchanged)" in second.stdout


def test_unknown_index_keys_are_rejected(fed) -> None:
    config = fed.agent_configs["police"]
    doc = yaml.safe_load(config.read_text())
    doc["index"] = {"pth": "var/police.index"}
    config.write_text(yaml.safe_dump(doc))
    result = subprocess.run([sys.executable, "-m", "mash", "agent", "check", "--config",
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "pth" in result.stderr


def test_sql_fingerprint_follows_row_count_and_latest_as_at(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (ref TEXT, surname TEXT, updated TEXT)")
        conn.execute("INSERT INTO people VALUES ('A', 'Smith', '2026-01-01')")
    conn.close()
    mapping = {"record_id": "ref", "family_name": "surname"}

    def sql(**where: str) -> SourceConfig:
        return read_model(SourceConfig, {"name": "db", "type": "sql",
                                         "url": f"sqlite:///{db}", "mapping": mapping,
                                         "as_at_column": "updated", **where},
                                        "sources[0]", tmp_path)

    by_table, by_query = sql(table="people"), sql(query="SELECT ref, surname, updated FROM "
                                                        "people")
    before = persist.fingerprint([by_table]), persist.fingerprint([by_query])
    assert before == (persist.fingerprint([by_table]), persist.fingerprint([by_query]))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET surname = 'Smyth', updated = '2026-02-01'")
    conn.close()
    after = persist.fingerprint([by_table]), persist.fingerprint([by_query])
    assert after[0] != before[0] and after[1] != before[1]
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO people VALUES ('B', 'Jones', '2026-02-01')")
    conn.close()
    assert persist.fingerprint([by_table]) != after[0]


def test_locality_words_are_counted_over_the_records_and_over_a_delta_beside_them() -> None:
    """A record counts once for each locality word it names (however many addresses name
    it), and the changes' index counts each of its words over the full load: a record
    moved from one town to another adds one to the new town's count, and its old version
    is no longer counted for the old town."""
    import dataclasses

    from mash.matching.delta import delta_index

    records = scenario(400, 1, "clean", seed=3).records
    base = build(records)

    def count(index, word: str) -> int:
        sid = index.strings.get(word)
        return int(index.locality_count[sid]) if sid >= 0 else 0

    towns = {w for r in records for a in r.addresses for w in a.lower().split(", ")[-1:]}
    assert len(towns) > 1
    by_town = {t: sum(1 for r in records if any(a.lower().endswith(", " + t)
                                                 for a in r.addresses)) for t in towns}
    assert {t: count(base, t) for t in towns} == by_town
    row = next(i for i, r in enumerate(records) if r.addresses)
    old = records[row].addresses[0].lower().split(", ")[-1]
    new = next(t for t in towns if t != old)
    moved = dataclasses.replace(records[row], addresses=(
        f"{records[row].addresses[0].rsplit(', ', 1)[0]}, {new.title()}",
        records[row].addresses[0]))  # the old address kept as a previous one
    same = delta_index([records[row]], base, np.array([row]))
    assert count(same, old) == by_town[old]  # replaced by itself: counted once, as before
    delta = delta_index([dataclasses.replace(moved, addresses=moved.addresses[:1])], base,
                        np.array([row]))
    assert count(delta, new) == by_town[new] + 1
    assert delta.strings.get(old) < 0  # it scores only its own rows: no other word counted
    both = delta_index([moved], base, np.array([row]))  # both towns named: once each
    assert count(both, old) == by_town[old] and count(both, new) == by_town[new] + 1
