"""An incremental refresh against a full load, on a PostgreSQL source with an updated-at
column.

``python -m bench.incremental --records 100000 --changes 1000`` writes
``bench/results/incremental_<N>.json``: N synthetic people in a PostgreSQL table (indexed on
its ``updated`` column, stamped 10 s apart up to the newest), a fresh agent's full load of
it (``full_load_seconds``), then ``--changes`` rows edited (a new family name, another's
postcode) and a tenth as many inserted, and the refresh that applies them
(``refresh_seconds``, with no full read: asserted); then the search time of the changed
records, found in their new versions (``search_ms_with_changes``: Matcher.search, the
matched records read from the stores), against the same searches on the full load before
(``search_ms_full_load``) and on a full load of the changed source after
(``changed_found_after_a_full_load``, ``search_ms_full_load_after``). The machine's load
average is recorded beside the figures (2 shared cores).

    python -m bench.incremental [--records 100000] [--changes 1000] [--url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.results_io import percentile, record
from mash.synth.corrupt import stream
from mash.synth.population import UniqueNumbers

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAPPING = {"record_id": "ref", "given_name": "forename", "family_name": "surname",
           "date_of_birth": "dob", "postcode": "postcode", "nhs_number": "nhs"}
STAMP = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(n: int, changes: int, url: str, workdir: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    from mash.agent import state as agent_state
    from mash.agent.sources import SourceConfig
    from mash.agent.state import AgentState
    from mash.config import read_model
    from mash.normalise import name_tokens, normalise_postcode
    from mash.subject import Name, SubjectQuery

    engine = sa.create_engine(url)
    name = f"bench_incr_{uuid.uuid4().hex[:8]}"
    table = sa.Table(name, sa.MetaData(),
                     *[sa.Column(c, sa.Text, primary_key=c == "ref")
                       for c in ("ref", "forename", "surname", "dob", "postcode", "nhs")],
                     sa.Column("updated", sa.DateTime(timezone=True), index=True))
    table.create(engine)
    try:
        started = time.perf_counter()
        _, records = stream(n, "low", 42, UniqueNumbers())
        batch: list[dict[str, Any]] = []
        with engine.begin() as conn:
            for i, r in enumerate(records):  # stamped over the days before STAMP
                first = r.names[0] if r.names else None
                batch.append({"ref": r.record_id, "forename": first.given if first else "",
                              "surname": first.family if first else "",
                              "dob": r.date_of_birth.isoformat() if r.date_of_birth else "",
                              "postcode": r.postcodes[0] if r.postcodes else "",
                              "nhs": r.identifiers.get("nhs_number", ""),
                              "updated": STAMP - dt.timedelta(seconds=10 * (n - 1 - i))})
                if len(batch) == 5000:
                    conn.execute(table.insert(), batch)
                    batch = []
            if batch:
                conn.execute(table.insert(), batch)
        data_s = time.perf_counter() - started
        cfg = read_model(SourceConfig, {"name": "records", "type": "sql", "url": url,
                                        "table": name, "as_at_column": "updated",
                                        "mapping": MAPPING}, "sources[0]", workdir)
        index = workdir / "agent.index"
        load_before = _load()
        started = time.perf_counter()
        state = AgentState()
        status = state.load([cfg], index)
        full_s = time.perf_counter() - started
        assert status.refusal is None and state.snapshot is not None, status
        full = state.snapshot

        # edit `changes` rows (a new family name and postcode), insert a tenth as many
        with engine.connect() as conn:
            picked = [dict(row._mapping) for row in conn.execute(
                sa.select(table).order_by(table.c.ref).limit(changes))]
        later = STAMP + dt.timedelta(hours=1)
        edited = [row | {"surname": f"Changedname{i}", "updated": later,  # moved house
                         "postcode": picked[(i + 7) % len(picked)]["postcode"]}
                  for i, row in enumerate(picked)]
        added = [row | {"ref": f"NEW{i}", "updated": later, "forename": "Newperson"}
                 for i, row in enumerate(picked[:max(1, changes // 10)])]
        with engine.begin() as conn:
            for row in edited:
                conn.execute(table.update().where(table.c.ref == row["ref"]).values(**row))
            conn.execute(table.insert(), added)

        real = agent_state.open_source

        def refuse(cfg: Any) -> Any:
            raise AssertionError("a full read")

        agent_state.open_source = refuse  # type: ignore[assignment]
        started = time.perf_counter()
        refreshed = state.refresh([cfg], index)
        refresh_s = time.perf_counter() - started
        agent_state.open_source = real  # type: ignore[assignment]
        assert refreshed is not None and refreshed.refusal is None, refreshed
        snapshot = state.snapshot
        assert snapshot is not None and snapshot.changes is not None

        def who(row: dict[str, Any]) -> SubjectQuery:
            pc = normalise_postcode(row["postcode"]) if row["postcode"] else None
            return SubjectQuery(
                names=(Name(" ".join(name_tokens(row["forename"])), "",
                            " ".join(name_tokens(row["surname"], family=True))),),
                date_of_birth=dt.date.fromisoformat(row["dob"]) if row["dob"] else None,
                postcodes=(pc,) if pc else ())

        def timed(matcher: Any, rows: list[dict[str, Any]]) -> tuple[list[float], int, int]:
            """(search times, rows found in the version searched for, old versions
            returned)."""
            times, found, stale = [], 0, 0
            old = {row["ref"]: row["surname"] for row in picked}
            for row in rows:
                t0 = time.perf_counter()
                outcome = matcher.search(who(row))
                times.append((time.perf_counter() - t0) * 1000)
                mine = [c for c in outcome.candidates if c.record.record_id == row["ref"]]
                found += any(c.record.values.get("family_name") == row["surname"]
                             for c in mine)
                stale += sum(1 for c in outcome.candidates if c.record.record_id in old
                             and c.record.values.get("family_name") == old[c.record.record_id]
                             and matcher is snapshot.matcher)
            return sorted(times), found, stale

        sample = edited[:200]
        layered_ms, found_new, stale_new = timed(snapshot.matcher, sample)
        _, _, stale_old = timed(snapshot.matcher, picked[:200])
        base_ms, found_in_full, _ = timed(full.matcher, picked[:200])
        state.load([cfg], index)  # a full load of the changed source, for comparison
        assert state.snapshot is not None and state.snapshot.changes is None
        rebuilt_ms, found_rebuilt, _ = timed(state.snapshot.matcher, sample)
        return {
            "records": n, "changes_edited": len(edited), "changes_inserted": len(added),
            "data_seconds": round(data_s, 1),
            "full_load_seconds": round(full_s, 1),
            "refresh_seconds": round(refresh_s, 2),
            "refresh_full_read": False,
            "records_after": snapshot.record_count,
            "changed_found_in_new_version": f"{found_new}/{len(sample)}",
            "old_versions_returned": stale_new + stale_old,
            "full_load_found_before_the_changes": f"{found_in_full}/{len(sample)}",
            "changed_found_after_a_full_load": f"{found_rebuilt}/{len(sample)}",
            "search_ms_with_changes": {"p50": round(percentile(layered_ms, 50), 2),
                                       "p99": round(percentile(layered_ms, 99), 2)},
            "search_ms_full_load": {"p50": round(percentile(base_ms, 50), 2),
                                    "p99": round(percentile(base_ms, 99), 2)},
            "search_ms_full_load_after": {"p50": round(percentile(rebuilt_ms, 50), 2),
                                          "p99": round(percentile(rebuilt_ms, 99), 2)},
            "load_average_before": load_before, "load_average_after": _load(),
            "cpus": os.cpu_count(),
        }
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.incremental")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--url", default=URL)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mash-incr-") as tmp:
        figures = run(args.records, args.changes, args.url, Path(tmp))
    path = record(f"incremental_{args.records}", figures)
    print(f"incremental refresh at {args.records:,} records: full load "
          f"{figures['full_load_seconds']} s, refresh of {figures['changes_edited']:,} edits "
          f"and {figures['changes_inserted']:,} inserts {figures['refresh_seconds']} s; "
          f"written to {path}")


if __name__ == "__main__":
    main()
