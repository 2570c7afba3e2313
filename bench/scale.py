"""The agent at scale: a first build and a start from the saved index, as an agency runs it.

``python -m bench.scale --records 10000000`` writes ``bench/results/agent_scale_<N>.json``.
Three child processes, so that each one's RSS is its own:

1. data (not timed as the build): --records synthetic people written to a CSV extract, and
   a sample of them corrupted independently as queries; in chunks of about a million people
   written by one process per CPU (each chunk its own seed and NHS numbers; the first is
   the single-process extract of old), optionally kept under --extract-cache for reruns;
2. build: a fresh agent's first load of that extract (``AgentState.load`` with an
   index.path: read and map every row, index, calibrate, write the record store, save the
   index; rows past the first 100,000 mapped and indexed by --build-workers processes,
   default one per CPU) - ``build_seconds``, ``peak_rss_mb_build`` (the agent's process),
   ``peak_rss_mb_build_worker`` (the largest worker's);
3. serve: a fresh agent started on the unchanged extract (``ready_seconds_from_saved_index``:
   the index opened memory-mapped and the store, no source read), then the sampled queries:
   ``match_ms`` (the match alone, ``Matcher.rank``) and ``answer_ms`` (``Matcher.search``:
   the match and the matched records read from the store and decoded, the released fields'
   source; the gRPC, policy and audit layers are not included), and ``rss_mb_serving``.

The machine's load average is recorded beside the figures (2 shared cores).

``--source postgresql`` copies the extract into a PostgreSQL table on 127.0.0.1:5432 (in the
data phase, not timed as the build) and the agent reads that instead, as an agency's SQL
source: ``agent_scale_<N>_postgresql.json``. The table is dropped at the end.

``python -m bench.scale --matcher-only`` is the older benchmark of the index and the matcher
alone (``matching_scale.json``: records streamed into the index, none held).

    python -m bench.scale [--records 1000000] [--queries 1000] [--level low] [--quick]
                          [--data-workers N] [--build-workers N] [--extract-cache var/bench]
                          [--source csv|postgresql]
                          [--matcher-only [--strangers N]]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.results_io import percentile, record
from mash.matching import Matcher, persist
from mash.matching.calibration import calibrate
from mash.matching.index import build
from mash.records import PersonRecord
from mash.synth.corrupt import strangers, stream
from mash.synth.population import UniqueNumbers

TARGET_P99_MS = 5.0
TARGET_RSS_MB = 2048
CALIBRATION_EVERY = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CalibrationSample:
    """One record in CALIBRATION_EVERY, kept (with its index row) as the records stream past
    into the index: what the calibration draws on."""

    def __init__(self) -> None:
        self.records: list[PersonRecord] = []
        self.rows: list[int] = []

    def passing(self, records: Iterator[PersonRecord]) -> Iterator[PersonRecord]:
        for row, r in enumerate(records):
            if row % CALIBRATION_EVERY == 0:
                self.records.append(r)
                self.rows.append(row)
            yield r


def run(n: int, queries: int, level: str, seed: int = 42, progress: bool = True,
        n_strangers: int | None = None) -> dict[str, Any]:
    baseline = rss_mb()
    numbers = UniqueNumbers()
    sampled, records = stream(n, level, seed, numbers, sample_every=max(1, n // queries))
    shown = [0]
    # the records calibration draws on (an agent holds all of its own; this benchmark
    # measures the index and the matcher, so it keeps one record in CALIBRATION_EVERY)
    sample = CalibrationSample()

    def report(rows: int) -> None:
        if progress and rows - shown[0] >= 100_000:
            shown[0] = rows
            print(f"  indexed {rows:,} records", flush=True)

    started = time.perf_counter()
    index = build(sample.passing(records), report)
    build_s = time.perf_counter() - started
    gc.collect()
    after_build = rss_mb()
    started = time.perf_counter()
    model = calibrate(index, sample.records, rows=sample.rows)
    calibrate_s = time.perf_counter() - started
    sample.records.clear()  # the sample is not part of what is measured
    gc.collect()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.index"
        started = time.perf_counter()
        persist.save(index, path, "bench", model)
        save_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 2**20
        started = time.perf_counter()
        loaded = persist.load(path, "bench")
        load_s = time.perf_counter() - started
    assert loaded is not None and len(loaded[0]) == n and loaded[1] is not None
    del loaded
    gc.collect()

    matcher = Matcher(index=index, model=model)
    gc.freeze()  # long-lived objects out of the collector's way, as in a running agent
    # a 0.1% false-known rate needs tens of thousands of strangers to measure (--strangers)
    outsiders = strangers(n_strangers or len(sampled), level, seed, numbers)
    for _, q in sampled[:50]:  # warm the caches the way a running agent's are warm
        matcher.rank(q)
    times, cpu, found, examined = [], [], 0, []
    load_before = os.getloadavg()[0]
    for row, q in sampled:
        t, c = time.perf_counter(), time.thread_time()
        ranked, seen = matcher.rank(q)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        examined.append(seen)
        found += any(r.row == row for r in ranked)
    false_known = 0
    for q in outsiders:
        t, c = time.perf_counter(), time.thread_time()
        ranked, seen = matcher.rank(q)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        examined.append(seen)
        false_known += bool(ranked)
    times.sort()
    cpu.sort()
    p99 = percentile(times, 99)
    rss = rss_mb()
    return {
        "records": n, "level": level, "seed": seed,
        "build_seconds": round(build_s, 1),
        "build_records_per_second": round(n / build_s),
        "save_seconds": round(save_s, 2), "load_seconds": round(load_s, 2),
        "index_file_mb": round(size_mb, 1),
        "index_arrays_mb": round(index.nbytes() / 2**20, 1),
        "blocking_keys": len(index.key_hashes),
        "rss_mb_before": round(baseline, 1),
        "rss_mb_after_build": round(after_build, 1),
        "rss_mb_after_matching": round(rss, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "matches_timed": len(times),
        "match_ms": {"p50": round(percentile(times, 50), 3),
                     "p99": round(p99, 3), "max": round(times[-1], 3)},
        "match_cpu_ms": {"p50": round(percentile(cpu, 50), 3),
                         "p99": round(percentile(cpu, 99), 3)},
        "load_average_during_matching": [round(load_before, 2),
                                         round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "candidates_examined": {"p50": int(np.percentile(examined, 50)),
                                "p99": int(np.percentile(examined, 99))},
        "recall_on_sample": round(found / len(sampled), 4),
        "false_known_on_sample": round(false_known / len(outsiders), 5),
        "found": found, "false_known": false_known,
        "queries_in_records": len(sampled), "queries_not_in_records": len(outsiders),
        "calibration_seconds": round(calibrate_s, 1),
        "thresholds": asdict(matcher.model.thresholds),
        "calibration": matcher.model.provenance,
        "targets": {"p99_ms": TARGET_P99_MS, "rss_mb": TARGET_RSS_MB},
        "meets_target": p99 < TARGET_P99_MS and peak_rss_mb() < TARGET_RSS_MB,
        # on a shared machine wall time includes waiting for a core; CPU time does not
        "meets_target_on_cpu_time": percentile(cpu, 99) < TARGET_P99_MS
        and peak_rss_mb() < TARGET_RSS_MB,
    }


def matcher_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--level", default="low")
    parser.add_argument("--strangers", type=int, default=0,
                        help="queries for people not held (default: as many as --queries)")
    parser.add_argument("--quick", action="store_true", help="50,000 records, 500 queries")
    args = parser.parse_args(argv)
    n, queries = (50_000, 500) if args.quick else (args.records, args.queries)
    figures = run(n, queries, args.level, n_strangers=args.strangers or None)
    name = "matching_scale" + ("_quick" if args.quick else "")
    path = record(name, figures)
    print(f"matching at scale: {n:,} records ({args.level} corruption)")
    print(f"  build {figures['build_seconds']} s ({figures['build_records_per_second']:,}/s); "
          f"save {figures['save_seconds']} s, reload {figures['load_seconds']} s "
          f"({figures['index_file_mb']} MB file)")
    print(f"  calibration {figures['calibration_seconds']} s: thresholds "
          f"{figures['thresholds']}")
    print(f"  RSS after build {figures['rss_mb_after_build']} MB, peak "
          f"{figures['peak_rss_mb']} MB (index arrays {figures['index_arrays_mb']} MB)")
    print(f"  per match p50 {figures['match_ms']['p50']} ms, p99 {figures['match_ms']['p99']} "
          f"ms over {figures['matches_timed']} matches; candidates examined p50 "
          f"{figures['candidates_examined']['p50']}, p99 {figures['candidates_examined']['p99']}")
    print(f"  per match CPU time p50 {figures['match_cpu_ms']['p50']} ms, p99 "
          f"{figures['match_cpu_ms']['p99']} ms (load average "
          f"{figures['load_average_during_matching']} on {figures['cpus']} CPUs)")
    print(f"  recall {figures['recall_on_sample']:.2%} ({figures['found']}/"
          f"{figures['queries_in_records']}), false known {figures['false_known_on_sample']:.3%}"
          f" ({figures['false_known']}/{figures['queries_not_in_records']}) on the sampled "
          "queries")
    print(f"  target p99 < {TARGET_P99_MS} ms and < {TARGET_RSS_MB} MB: "
          f"{'met' if figures['meets_target'] else 'NOT met'} (wall time), "
          f"{'met' if figures['meets_target_on_cpu_time'] else 'NOT met'} (CPU time); "
          f"written to {path}")




# -- the agent at scale ---------------------------------------------------------------------

TARGETS = {"build_seconds": 15 * 60, "ready_seconds_from_saved_index": 60,
           "rss_mb_serving": 4096, "match_p99_ms": 5, "answer_p99_ms": 20}
COLUMNS = ["ref", "forename", "middle", "surname", "aliases", "dob", "sex", "postcode",
           "previous_postcodes", "address", "previous_addresses", "nhs", "upn", "pnc", "ni"]
MAPPING = {"record_id": "ref", "given_name": "forename", "middle_names": "middle",
           "family_name": "surname", "aliases": "aliases", "date_of_birth": "dob", "sex": "sex",
           "postcode": "postcode", "previous_postcodes": "previous_postcodes",
           "address": "address", "previous_addresses": "previous_addresses",
           "nhs_number": "nhs", "upn": "upn", "pnc_id": "pnc", "ni_number": "ni"}
FIELDS = {"first_name": "forename", "last_name": "surname", "born": "dob",
          "home_postcode": "postcode", "home_address": "address"}  # what an answer releases


def _row(r: PersonRecord) -> list[str]:
    first = r.names[0] if r.names else None
    aliases = ";".join(f"{n.family}, {n.given} {n.middle}".strip() for n in r.names[1:])
    ids = r.identifiers
    return [r.record_id, first.given if first else "", first.middle if first else "",
            first.family if first else "", aliases,
            r.date_of_birth.isoformat() if r.date_of_birth else "", r.sex,
            r.postcodes[0] if r.postcodes else "", ";".join(r.postcodes[1:]),
            r.addresses[0] if r.addresses else "", ";".join(r.addresses[1:]),
            ids.get("nhs_number", ""), ids.get("upn", ""), ids.get("pnc_id", ""),
            ids.get("ni_number", "")]


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DATABASE = "mash_bench"


def pg_url(database: str = PG_DATABASE) -> str:
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{database}"


def pg_table(workdir: Path) -> str:
    """The PostgreSQL table a run's extract is copied to (one per work directory)."""
    return "people_" + "".join(c for c in workdir.name if c.isalnum()).lower()[-24:]


def _source(workdir: Path) -> Any:
    """The agent's source: the CSV extract, or (``source.txt`` says postgresql) the table
    it was copied to, read as any SQL source is (a streamed query, REPEATABLE READ)."""
    from mash.agent.sources import SourceConfig
    from mash.config import read_model

    marker = workdir / "source.txt"
    if marker.exists() and marker.read_text().strip() == "postgresql":
        settings: dict[str, Any] = {"type": "sql", "url": pg_url(), "table": pg_table(workdir),
                                    "as_at_column": "updated_at"}
    else:
        settings = {"type": "csv", "path": "records.csv"}
    return read_model(SourceConfig, {"name": "records", **settings, "mapping": MAPPING,
                                     "fields": FIELDS}, "sources[0]", workdir)


def copy_to_postgresql(workdir: Path) -> dict[str, Any]:
    """The extract copied into a fresh PostgreSQL table (COPY), with what an agency's table
    would have: ``ref`` its primary key, an indexed ``updated_at`` (the source's as-at column,
    which lets an agent start from its saved index and refresh by changed rows); and
    ``source.txt`` set so that the agent reads it."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (PG_DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    table = pg_table(workdir)
    columns = ", ".join(f"{c} text" for c in COLUMNS[1:])
    with psycopg.connect(f"{PG_SERVER}/{PG_DATABASE}") as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        conn.execute(f'CREATE TABLE "{table}" (ref text PRIMARY KEY, {columns}, '
                     "updated_at timestamptz NOT NULL DEFAULT now())")
        with conn.cursor().copy(f'COPY "{table}" ({", ".join(COLUMNS)}) FROM STDIN WITH '
                                "(FORMAT csv)") as copy, (workdir / "records.csv").open("rb") as fh:
            fh.readline()  # the header (its line ends in CR LF, the rows' in LF)
            while block := fh.read(2**20):
                copy.write(block)
        conn.execute(f'CREATE INDEX ON "{table}" (updated_at)')
        conn.execute(f'ANALYZE "{table}"')
    (workdir / "source.txt").write_text("postgresql\n")
    return {"source": "postgresql", "postgresql_table": f"{PG_DATABASE}.{table}",
            "postgresql_copy_seconds": round(time.perf_counter() - started, 1)}


def drop_postgresql(workdir: Path) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/{PG_DATABASE}", autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{pg_table(workdir)}"')


def rss_parts_mb() -> dict[str, float]:
    """RSS split as /proc says: anonymous (the heap) and file-backed (the mapped index's
    pages in memory, which the system can drop and read again)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[f"rss_{key[3:].lower()}_mb"] = round(int(value.split()[0]) / 1024, 1)
    return out


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        one = todo.pop()
        for task in Path(f"/proc/{one}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:  # gone meanwhile
                continue
            out += kids
            todo += kids
    return out


class WorkerPeak:
    """The largest peak RSS (VmHWM) of any process below this one, sampled every 0.5 s
    while running: the index workers'. Not RUSAGE_CHILDREN, which a fork of the agent
    itself (a library running a command) would set to the agent's own size; and for the
    same reason not a process whose command line is this one's (a fork, or a vfork not yet
    exec'd, shares or copies this process's memory: it is no worker)."""

    def __init__(self) -> None:
        import threading

        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> WorkerPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        own = Path("/proc/self/cmdline").read_bytes()
        while not self._stop.wait(0.5):
            for pid in _descendants(os.getpid()):
                try:
                    if Path(f"/proc/{pid}/cmdline").read_bytes() == own:
                        continue
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.mb = max(self.mb, int(line.split()[1]) / 1024)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


CHUNK_RECORDS = 1_000_000  # the extract is written in chunks of about this many people
MAX_CHUNKS = 10  # one NHS-number prefix each (99, 98, ... 90: ~9.09M people in each)
EXTRACT_VERSION = 2  # part of the cache key: a change to how extracts are made bumps it


def chunks(n: int) -> list[tuple[int, int, int]]:
    """(chunk, first row, rows): the extract's chunks, made independently (in parallel)."""
    k = min(MAX_CHUNKS, max(1, -(-n // CHUNK_RECORDS)))
    size = -(-n // k)
    assert size <= 4_500_000, "more people than the NHS-number prefixes hold"
    return [(c, c * size, min(size, n - c * size)) for c in range(k) if c * size < n]


def chunk_seed(seed: int, chunk: int) -> int:
    """Chunk 0 is the single-process extract of old (the same people for the same seed);
    each later chunk has its own seed, derived from the run's, and its own NHS numbers."""
    return seed if chunk == 0 else seed * 1_000 + chunk


def _write_chunk(job: tuple[int, int, int, int, str, int, str]
                 ) -> tuple[int, list[tuple[int, Any]], float]:
    import csv

    chunk, first, rows, seed, level, sample_every, out = job
    started = time.perf_counter()
    sampled, records = stream(rows, level, chunk_seed(seed, chunk),
                              UniqueNumbers(prefix=str(99 - chunk)),
                              sample_every=sample_every, start=first)
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        for r in records:
            writer.writerow(_row(r))
    return chunk, sampled, time.perf_counter() - started


def write_extract(n: int, queries: int, level: str, out: Path, seed: int = 42,
                  workers: int = 0) -> dict[str, Any]:
    """records.csv and queries.pickle in ``out``: --records people in chunks written by
    ``workers`` processes (default: one per CPU) and joined in order."""
    import multiprocessing
    import pickle
    import shutil

    started = time.perf_counter()
    sample_every = max(1, n // queries)
    plan = chunks(n)
    workers = max(1, min(workers or os.cpu_count() or 1, len(plan)))
    jobs = [(c, first, rows, seed, level, sample_every, str(out / f"records.part{c}.csv"))
            for c, first, rows in plan]
    sampled: dict[int, list[tuple[int, Any]]] = {}
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for c, got, seconds in pool.imap_unordered(_write_chunk, jobs):
            sampled[c] = got
            print(f"  data: chunk {c + 1}/{len(plan)} ({plan[c][2]:,} records) written in "
                  f"{seconds:.0f} s ({time.perf_counter() - started:.0f} s so far)",
                  flush=True)
    with (out / "records.csv").open("w", newline="") as fh:
        fh.write(",".join(COLUMNS) + "\r\n")  # csv.writer's header, as before
        for c, _, _ in plan:
            part = out / f"records.part{c}.csv"
            with part.open() as src:
                shutil.copyfileobj(src, fh, 16 * 2**20)
            part.unlink()
    with (out / "queries.pickle").open("wb") as fh:  # the bench's own hand-over
        pickle.dump([q for c, _, _ in plan for q in sampled[c]], fh)
    return {"data_seconds": round(time.perf_counter() - started, 1),
            "data_workers": workers, "data_chunks": len(plan),
            "extract_mb": round((out / "records.csv").stat().st_size / 2**20, 1)}


def data_phase(n: int, queries: int, level: str, workdir: Path, seed: int = 42,
               cache: Path | None = None, workers: int = 0) -> dict[str, Any]:
    """The extract in ``workdir``: made there, or (with ``cache``) made once under
    ``cache/extract-<records>-<level>-<seed>-<queries>-v<version>`` and linked."""
    import json

    if cache is None:
        return {**write_extract(n, queries, level, workdir, seed, workers),
                "extract_cached": False}
    key = cache / f"extract-{n}-{level}-{seed}-{queries}-v{EXTRACT_VERSION}"
    figures_path = key / "data.json"
    reused = figures_path.exists()
    if not reused:
        tmp = key.with_name(key.name + ".tmp")
        shutil_rmtree(tmp)
        tmp.mkdir(parents=True)
        figures = write_extract(n, queries, level, tmp, seed, workers)
        (tmp / "data.json").write_text(json.dumps(figures))
        tmp.rename(key)
    figures = json.loads(figures_path.read_text())
    for name in ("records.csv", "queries.pickle"):
        (workdir / name).symlink_to((key / name).resolve())
    return {**figures, "extract_cached": reused, "extract_cache": str(key)}


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def build_phase(workdir: Path, workers: int = 0) -> dict[str, Any]:
    from mash.agent.prepare import default_workers
    from mash.agent.state import AgentState

    load_before = _load()
    started = time.perf_counter()
    state = AgentState(build_workers=workers)
    with WorkerPeak() as worker_peak:
        status = state.load([_source(workdir)], workdir / "agent.index")
    build_s = time.perf_counter() - started
    assert status.refusal is None and state.snapshot is not None, status
    assert not state.snapshot.index_reused
    calibration = state.snapshot.matcher.model.provenance
    return {"records_indexed": state.snapshot.record_count,
            "build_seconds": round(build_s, 1),
            "calibration_seconds": calibration.get("seconds"),
            "calibration_seconds_by_step": calibration.get("seconds_by_step"),
            "peak_rss_mb_build": round(peak_rss_mb(), 1),
            "build_workers": workers or default_workers(),
            "peak_rss_mb_build_worker": round(worker_peak.mb, 1),
            "rss_mb_after_build": round(rss_mb(), 1),
            "index_file_mb": round((workdir / "agent.index").stat().st_size / 2**20, 1),
            "store_file_mb": round(state.snapshot.store.path.stat().st_size / 2**20, 1),
            "load_average_build": [load_before, _load()]}


def serve_phase(workdir: Path) -> dict[str, Any]:
    import pickle

    from mash.agent import memory
    from mash.agent.state import AgentState

    baseline = rss_mb()
    load_before = _load()
    started = time.perf_counter()
    state = AgentState()
    status = state.load([_source(workdir)], workdir / "agent.index")
    ready_s = time.perf_counter() - started
    snapshot = state.snapshot
    assert status.refusal is None and snapshot is not None and snapshot.index_reused, status
    rss_ready = rss_mb()
    with (workdir / "queries.pickle").open("rb") as fh:
        sampled = pickle.load(fh)  # noqa: S301 - written by the data phase, our own temp dir
    matcher = snapshot.matcher
    for _, q in sampled[:50]:
        matcher.search(q)  # warm, as a running agent is
    match_ms, answer_ms, found, known = [], [], 0, 0
    for row, q in sampled:
        t = time.perf_counter()
        matcher.rank(q)
        match_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        outcome = matcher.search(q)
        answer_ms.append((time.perf_counter() - t) * 1000)
        known += bool(outcome.candidates)
        found += any(c.row == row for c in outcome.candidates)
    memory.release_freed()
    match_ms.sort()
    answer_ms.sort()
    return {"ready_seconds_from_saved_index": round(ready_s, 2),
            "rss_mb_serving_before_start": round(baseline, 1),
            "rss_mb_ready": round(rss_ready, 1),
            "rss_mb_serving": round(rss_mb(), 1),
            **{f"{k}_serving": v for k, v in rss_parts_mb().items()},
            "peak_rss_mb_serving": round(peak_rss_mb(), 1),
            "queries": len(sampled), "found": found, "answered_with_candidates": known,
            "match_p50_ms": round(percentile(match_ms, 50), 3),
            "match_p99_ms": round(percentile(match_ms, 99), 3),
            "answer_p50_ms": round(percentile(answer_ms, 50), 3),
            "answer_p99_ms": round(percentile(answer_ms, 99), 3),
            "load_average_serve": [load_before, _load()]}


PHASES = {"data", "build", "serve"}


def _child(phase: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    started = time.perf_counter()
    print(f"{phase} phase ...", flush=True)
    subprocess.run([sys.executable, "-m", "bench.scale", "--phase", phase,
                    "--records", str(args.records), "--queries", str(args.queries),
                    "--level", args.level, "--workdir", str(workdir),
                    "--data-workers", str(args.data_workers),
                    "--build-workers", str(args.build_workers),
                    "--source", args.source,
                    *(["--extract-cache", str(args.extract_cache)] if args.extract_cache
                      else [])], check=True)
    print(f"{phase} phase done in {time.perf_counter() - started:.0f} s", flush=True)
    figures: dict[str, Any] = json.loads((workdir / f"{phase}.json").read_text())
    return figures


def agent_run(args: argparse.Namespace) -> dict[str, Any]:
    import subprocess

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="agent-scale-",
                                     dir=args.workdir_root) as tmp:
        workdir = Path(tmp)
        figures: dict[str, Any] = {}
        for phase in ("data", "build", "serve"):
            figures.update(_child(phase, args, workdir))
        if args.source == "postgresql":
            drop_postgresql(workdir)
    after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    met = {name: figures[name] < target for name, target in TARGETS.items()}
    return {"records": args.records, "level": args.level,
            "build_seconds": figures["build_seconds"],
            "ready_seconds_from_saved_index": figures["ready_seconds_from_saved_index"],
            "rss_mb_serving": figures["rss_mb_serving"],
            "match_p50_ms": figures["match_p50_ms"], "match_p99_ms": figures["match_p99_ms"],
            "answer_p99_ms": figures["answer_p99_ms"],
            "targets": TARGETS, "meets_targets": met,
            "answer_is": "Matcher.search: the match and the matched records read from the "
                         "record store and decoded (no gRPC, policy or audit)",
            "machine_load": {"uptime_before": uptime, "uptime_after": after,
                             "cpus": os.cpu_count()},
            **figures}


def main(argv: list[str] | None = None) -> None:
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--level", default="low")
    parser.add_argument("--workdir-root", type=Path, default=None,
                        help="where the extract, index and store are written (temporary)")
    parser.add_argument("--quick", action="store_true",
                        help="50,000 records, 200 queries (agent_scale_quick.json)")
    parser.add_argument("--matcher-only", action="store_true",
                        help="the older benchmark of the index and matcher alone")
    parser.add_argument("--data-workers", type=int, default=0,
                        help="processes writing the extract (default: one per CPU)")
    parser.add_argument("--build-workers", type=int, default=0,
                        help="the agent's index.build_workers (default 0: one per CPU)")
    parser.add_argument("--extract-cache", type=Path, default=None,
                        help="keep the extract here, keyed by records, level, seed and "
                             "queries, and reuse it (e.g. var/bench; default: not kept)")
    parser.add_argument("--source", choices=("csv", "postgresql"), default="csv",
                        help="what the agent reads: the CSV extract, or the extract copied "
                             "into a PostgreSQL table on 127.0.0.1:5432 (database "
                             f"{PG_DATABASE}, made if absent; the table dropped after)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.matcher_only:
        matcher_main(["--records", str(args.records), "--queries", str(args.queries),
                      "--level", args.level, *(["--quick"] if args.quick else []), *rest])
        return
    if args.quick:
        args.records, args.queries = 50_000, 200
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.phase:
        figures = ({**data_phase(args.records, args.queries, args.level, args.workdir,
                                 cache=args.extract_cache, workers=args.data_workers),
                    **(copy_to_postgresql(args.workdir) if args.source == "postgresql"
                       else {"source": "csv"})}
                   if args.phase == "data" else build_phase(args.workdir, args.build_workers)
                   if args.phase == "build" else serve_phase(args.workdir))
        (args.workdir / f"{args.phase}.json").write_text(json.dumps(figures))
        return
    figures = agent_run(args)
    name = "agent_scale_quick" if args.quick else f"agent_scale_{args.records}"
    path = record(name + ("_postgresql" if args.source == "postgresql" else ""), figures)
    print(f"agent at scale: {args.records:,} records ({args.level} corruption)")
    for name, target in TARGETS.items():
        print(f"  {name}: {figures[name]} (target < {target}: "
              f"{'met' if figures['meets_targets'][name] else 'NOT met'})")
    print(f"  match p50 {figures['match_p50_ms']} ms; peak RSS of the build "
          f"{figures['peak_rss_mb_build']} MB; found {figures['found']}/{figures['queries']}")
    print(f"  {figures['machine_load']['uptime_after']}; written to {path}")


if __name__ == "__main__":
    main()
