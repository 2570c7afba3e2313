"""End-to-end lookups: a broker and eight agents on loopback with mTLS, as real processes.

Each agent holds --records synthetic records (default 100,000) in its agency's own schema
(education: the pupils among them, at most --records: only they have a UPN, its record id).
Lookups are a realistic mix: half about people the agencies hold, half about people nobody
holds, each typed with the generator's --corruption (default low).
Reports latency (p50/p95/p99) at concurrency 1, sustained lookups per second at concurrency
16, and two floors that make the overheads visible as ratios:
  * bare fan-out: the client itself asks as many gRPC servers at once as a lookup asks
    agents (no broker, no work);
  * broker floor: the same broker and streams, but agents that answer at once with nothing.
broker overhead = broker floor / bare fan-out; agent work = full / broker floor.
Each agent's memory is read from /proc after the full runs (resident, its heap and mapped
parts, and its peak: the first build's).

    python -m bench.e2e [--records 100000] [--lookups 300] [--seconds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.null_agents import tls
from bench.results_io import percentile, record, speed_probe
from mash import eventloop
from mash.answers import STATE_LABELS
from mash.blind.session import BlindSession
from mash.client import ClientConfig
from mash.demo import data, federation
from mash.demo.agencies import AGENCIES as SPECS
from mash.grpc_options import channel_options
from mash.synth.corrupt import LEVELS, view
from mash.synth.population import Person, population
from mash.v1 import answer_pb2, lookup_pb2, lookup_pb2_grpc, subject_pb2
from tests.helpers import lookup_request

AGENCIES = ["police", "health", "csc", "education", "probation", "housing", "asc", "ambulance"]
ROWS = {"police": data.police_row, "health": data.health_row, "csc": data.csc_row,
        "education": data.education_row, "probation": data.probation_row,
        "housing": data.housing_row, "asc": data.asc_row, "ambulance": data.ambulance_row}
# Agencies the broker does not ask at all (refused at routing, before any agent).
ROUTING_REFUSALS = (answer_pb2.NOT_CHECKED_REASON_NO_AGREEMENT,
                    answer_pb2.NOT_CHECKED_REASON_APPROVAL_REQUIRED)
# Who an agency can hold at all: education's records are keyed by UPN, which only pupils
# have (a row without its record id is rejected, and a load with too many is refused).
HOLDS = {"education": lambda p: bool(p.upn)}
SEXES = {"M": subject_pb2.SEX_MALE, "F": subject_pb2.SEX_FEMALE}
TARGETS = {"p99_ms_concurrency_1": 50.0, "lookups_per_second_concurrency_16": 100.0,
           "broker_overhead_ratio": 3.0,
           # issue 21: less than each agent needed at 1,000,000 records before (2.5 GB)
           "agent_rss_mb_max": 2500.0}


def write_data(directory: Path, per_agent: int, seed: int) -> tuple[dict[str, Path],
                                                                     list[Person]]:
    directory.mkdir(parents=True, exist_ok=True)
    people = population(int(per_agent * 1.5), seed=seed)
    rng = random.Random(seed)
    files = {}
    for agency in AGENCIES:
        source = SPECS[agency]["source"]
        eligible = [p for p in people if HOLDS.get(agency, bool)(p)]
        rows = [ROWS[agency](p, rng) for p in rng.sample(eligible, min(per_agent,
                                                                       len(eligible)))]
        path = directory / source["file"]
        if source["type"] == "csv":
            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        else:
            path.unlink(missing_ok=True)
            cols = list(rows[0])
            with sqlite3.connect(path) as db:
                columns = ", ".join(f"{c} TEXT" for c in cols)
                db.execute(f"CREATE TABLE {source['table']} ({columns})")
                db.executemany(f"INSERT INTO {source['table']} VALUES "
                               f"({', '.join('?' for _ in cols)})",
                               [tuple(r[c] for c in cols) for r in rows])
            db.close()
        files[agency] = path
    return files, people


def requests_for(people: list[Person], n: int, seed: int,
                 corruption: str = "low") -> tuple[list[lookup_pb2.LookupRequest], int]:
    """Lookups as a MASH asks them: half about people the agencies hold (each agent holds
    two thirds of `people`), half about people nobody holds, every one of them as an
    analyst would type it, with the generator's `corruption` (typos, nicknames, a moved
    address, a missing date...). Returns the requests and how many are about held people."""
    rng = random.Random(seed + 1)
    today = dt.date.today()
    level = LEVELS[corruption]
    strangers = population(n, seed=seed + 99)
    out, held = [], 0
    for i in range(n):
        about_held = i % 2 == 0
        held += about_held
        v = view(rng.choice(people) if about_held else strangers[i], level, rng, today)
        request = lookup_request(" ".join(filter(None, (v.given, v.family))) or None,
                                 v.date_of_birth.isoformat() if v.date_of_birth else None,
                                 tuple(v.postcodes), case=f"BENCH-{i}")
        if v.addresses and request.subject.addresses:
            request.subject.addresses[0].lines.append(v.addresses[0])
        elif v.addresses:
            request.subject.addresses.add(lines=[v.addresses[0]])
        if v.sex in ("M", "F"):
            request.subject.sex = SEXES[v.sex]
        out.append(request)
    return out, held


def build_federation(root: Path, files: dict[str, Path]) -> federation.Federation:
    """The benchmark's broker and eight agents: no rate limit, warnings-only logs."""
    return federation.build(root, AGENCIES, files, broker_overrides={
        "rate_limit": {"lookups_per_minute": 100_000, "burst": 100_000},
        "deadline_seconds": 10, "log_level": "warning"},
        agent_overrides={a: {"log_level": "warning"} for a in AGENCIES})


def spawn(args: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A process of the federation, run in `cwd` (a checkout: `-m mash` imports its code);
    MASH_BENCH_PROFILE=DIR runs each under cProfile and writes DIR/<log name>.prof when it
    stops (to find where the time goes)."""
    profile = os.environ.get("MASH_BENCH_PROFILE")
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        args = ["-m", "cProfile", "-o", str(Path(profile).resolve() / f"{log.stem}.prof"),
                *args]
    return subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


class Client:
    def __init__(self, fed: federation.Federation) -> None:
        client_tls = tls(fed.root, "mash-client")
        self.channel = grpc.aio.secure_channel(f"127.0.0.1:{fed.broker_port}",
                                               client_tls.channel_credentials(),
                                               options=channel_options("localhost"))
        self.stub = lookup_pb2_grpc.LookupServiceStub(self.channel)
        self.federation = lookup_pb2_grpc.FederationServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {fed.token(ttl=dt.timedelta(hours=2))}"),)
        assert fed.blind_client_config is not None
        blind = ClientConfig.load(fed.blind_client_config).blind
        assert blind is not None
        self.blind, self.directory = blind, blind.directory.load()

    async def lookup(self, request: lookup_pb2.LookupRequest) -> lookup_pb2.LookupResponse:
        return await self.stub.Lookup(request, timeout=30, metadata=self.metadata)

    async def blind_lookup(self, request: lookup_pb2.LookupRequest
                           ) -> lookup_pb2.LookupResponse:
        """The same lookup, blind: both rounds, sealing and verification included."""
        session = BlindSession(self.blind, self.directory, request)
        call = self.stub.BlindLookup(timeout=30, metadata=self.metadata)
        await call.write(session.first())
        one = await call.read()
        await call.write(session.second(one.round_one))
        two = await call.read()
        await call.done_writing()
        return session.result(two.round_two)

    async def wait_online(self, agencies: list[str], timeout: float,
                          procs: list[subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a process exited early: see the logs under the bench dir")
            try:
                agents = (await self.federation.ListAgents(
                    lookup_pb2.ListAgentsRequest(), timeout=5, metadata=self.metadata)).agents
                if all(a.online and a.ready for a in agents if a.agency_id in agencies):
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.5)
        raise RuntimeError("agents did not come online in time")


async def latencies(call: Any, requests: list[Any]) -> list[float]:
    out = []
    for request in requests:
        start = time.perf_counter()
        await call(request)
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


async def throughput(call: Any, requests: list[Any], seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.monotonic() < deadline:
            await call(requests[i % len(requests)])
            done += 1
            i += concurrency
    start = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done / (time.monotonic() - start)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by a process (None: this one)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def metered(call: Any, requests: list[Any], seconds: float, concurrency: int,
                  procs: dict[str, subprocess.Popen[bytes]]) -> tuple[float, dict[str, float]]:
    """Throughput, and the CPU milliseconds each process spent per lookup meanwhile (where
    the time goes when the machine's cores are the limit). "client" is this benchmark."""
    before = {name: cpu_seconds(p.pid) for name, p in procs.items()} | {"client": cpu_seconds()}
    started = time.monotonic()
    rate = await throughput(call, requests, seconds, concurrency)
    lookups = rate * (time.monotonic() - started)
    after = {name: cpu_seconds(p.pid) for name, p in procs.items()} | {"client": cpu_seconds()}
    cpu = {name: round((after[name] - before[name]) * 1000 / max(lookups, 1), 2)
           for name in before}
    cpu["total"] = round(sum(cpu.values()), 2)
    return rate, cpu


def asked_agents(response: lookup_pb2.LookupResponse) -> int:
    """How many agents a lookup asked: every answer but those refused at routing."""
    return sum(a.not_checked_reason not in ROUTING_REFUSALS for a in response.answers)


def memory_mb(pid: int) -> dict[str, float]:
    """A process's memory as /proc says: resident now (``rss``), its anonymous part (the
    heap) and its file-backed part (mapped index pages the system may drop and read again),
    and its peak resident size (``peak``: the first build's, for an agent)."""
    fields = {"VmRSS": "rss", "RssAnon": "rss_anon", "RssFile": "rss_file", "VmHWM": "peak"}
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            out[fields[name]] = round(int(value.split()[0]) / 1024, 1)
    return out


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "p99": round(percentile(values, 99), 2), "mean": round(statistics.fmean(values), 2)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = args.dir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    started = time.monotonic()
    files, people = write_data(root / "data", args.records, args.seed)
    held_rows = {a: min(args.records, sum(map(HOLDS.get(a, bool), people))) for a in AGENCIES}
    fed = build_federation(root, files)
    requests, held = requests_for(people, args.lookups, args.seed, args.corruption)
    logs = root / "logs"
    logs.mkdir()
    figures: dict[str, Any] = {"records_per_agent": args.records, "agents": len(AGENCIES),
                               "records_held": held_rows,
                               "lookups": {"asked": len(requests), "about_held_people": held,
                                           "corruption": args.corruption},
                               "data_written_seconds": round(time.monotonic() - started, 1),
                               "speed_probe_ms_before": speed_probe()}
    procs = [spawn(["-m", "mash", "broker", "serve", "--config", str(fed.broker_config)],
                   logs / "broker.log")]
    client = Client(fed)
    try:
        started = time.monotonic()
        procs += [spawn(["-m", "mash", "agent", "serve", "--config",
                         str(fed.agent_configs[a])], logs / f"{a}.log") for a in AGENCIES]
        await client.wait_online(AGENCIES, timeout=1800, procs=procs)
        figures["agents_ready_seconds"] = round(time.monotonic() - started, 1)
        await latencies(client.lookup, requests[:50])  # warm up
        # This machine's speed varies from minute to minute (shared hosts): measure in
        # several runs and report the median run, and every run, rather than one sample.
        full, runs = [], []
        for _ in range(args.runs):
            full += await latencies(client.lookup, requests)
            rate, cpu = await metered(client.lookup, requests, args.seconds, 16,
                                      dict(zip(["broker", *AGENCIES], procs, strict=True)))
            runs.append((round(rate, 1), cpu))
        median = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
        figures["full_concurrency_1_ms"] = stats(sorted(full))
        figures["full_lookups_per_second_concurrency_16"] = median[0]
        figures["full_cpu_ms_per_lookup_concurrency_16"] = median[1]
        figures["full_runs"] = [{"lookups_per_second_concurrency_16": rate,
                                 "cpu_ms_per_lookup_total": cpu["total"]} for rate, cpu in runs]
        memory = {a: memory_mb(p.pid) for a, p in zip(AGENCIES, procs[1:], strict=True)}
        figures["agent_memory_mb"] = memory  # after the full runs: serving, warm
        figures["agent_rss_mb_max"] = max(m["rss"] for m in memory.values())
        figures["agent_peak_rss_mb_max"] = max(m["peak"] for m in memory.values())
        states: dict[str, int] = {}
        for response in [await client.lookup(r) for r in requests[:50]]:
            for a in response.answers:
                key = STATE_LABELS[a.state]
                states[key] = states.get(key, 0) + 1
        figures["answer_states_in_50_lookups"] = states
        # The bare fan-out asks as many servers as a lookup asks agents: agencies refused at
        # routing (no agreement for the purpose) are never asked, so they are not counted.
        asked = asked_agents(await client.lookup(requests[0]))
        figures["agents_asked_per_lookup"] = asked
        if args.plain_only:
            return figures
        await latencies(client.blind_lookup, requests[:10])
        figures["blind_concurrency_1_ms"] = stats(
            await latencies(client.blind_lookup, requests[:100]))
        figures["blind_lookups_per_second_concurrency_16"] = round(await throughput(
            client.blind_lookup, requests, args.seconds / 2, 16), 1)
        stop_all(procs[1:])
        del procs[1:]

        procs.append(spawn(["-m", "bench.null_agents", "agents", "--root", str(root),
                            "--broker", f"127.0.0.1:{fed.broker_port}",
                            "--agencies", ",".join(AGENCIES)], logs / "null_agents.log"))
        await client.wait_online(AGENCIES, timeout=60, procs=procs)
        await latencies(client.lookup, requests[:20])
        rate, cpu = await metered(client.lookup, requests, args.seconds, 16,
                                  {"broker": procs[0], "null_agents": procs[-1]})
        figures["broker_floor_lookups_per_second_concurrency_16"] = round(rate, 1)
        figures["broker_floor_cpu_ms_per_lookup_concurrency_16"] = cpu

        ports = [federation.free_port() for _ in range(asked)]
        procs.append(spawn(["-m", "bench.null_agents", "servers", "--root", str(root),
                            "--ports", ",".join(map(str, ports))], logs / "servers.log"))
        await asyncio.sleep(2)
        server_tls = tls(root, "mash-client")
        stubs = [health_pb2_grpc.HealthStub(grpc.aio.secure_channel(
            f"127.0.0.1:{p}", server_tls.channel_credentials(),
            options=channel_options("localhost"))) for p in ports]

        async def bare(_request: Any) -> None:
            await asyncio.gather(*(s.Check(health_pb2.HealthCheckRequest(), timeout=10)
                                   for s in stubs))
        await latencies(bare, requests[:20])
        # The overhead ratio divides one latency by another: measure the two in turns, so
        # that a change in the machine's load during the run moves both alike.
        floor, fanout = [], []
        for turn in range(5):
            chunk = requests[turn::5]
            floor += await latencies(client.lookup, chunk)
            fanout += await latencies(bare, chunk)
        figures["broker_floor_concurrency_1_ms"] = stats(sorted(floor))
        figures["bare_fanout_concurrency_1_ms"] = stats(sorted(fanout))
    finally:
        stop_all(procs)
        await client.channel.close()
    figures["broker_overhead_ratio"] = round(
        figures["broker_floor_concurrency_1_ms"]["p50"]
        / figures["bare_fanout_concurrency_1_ms"]["p50"], 2)
    figures["agent_work_ratio"] = round(figures["full_concurrency_1_ms"]["p50"]
                                        / figures["broker_floor_concurrency_1_ms"]["p50"], 2)
    figures["speed_probe_ms_after"] = speed_probe()
    figures["targets"] = TARGETS
    figures["meets"] = {
        "p99_ms_concurrency_1": figures["full_concurrency_1_ms"]["p99"]
        < TARGETS["p99_ms_concurrency_1"],
        "lookups_per_second_concurrency_16": figures["full_lookups_per_second_concurrency_16"]
        >= TARGETS["lookups_per_second_concurrency_16"],
        "broker_overhead_ratio": figures["broker_overhead_ratio"]
        < TARGETS["broker_overhead_ratio"],
        "agent_rss_mb_max": figures["agent_rss_mb_max"] < TARGETS["agent_rss_mb_max"],
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=3,
                        help="measure full lookups this many times (median reported)")
    parser.add_argument("--corruption", choices=sorted(LEVELS), default="low",
                        help="how the lookups are typed (the generator's corruption level)")
    parser.add_argument("--dir", type=Path, default=Path("var/bench-e2e"))
    parser.add_argument("--name", default="")
    parser.add_argument("--plain-only", action="store_true",
                        help="full plain lookups only (no blind, no floors), printed, not saved")
    args = parser.parse_args()
    figures = eventloop.run(run(args))  # the load generator on the services' loop too
    if args.plain_only:
        print(figures)
        return
    name = args.name or f"e2e_{args.records}"
    path = record(name, figures)
    full, floor, bare = (figures["full_concurrency_1_ms"],
                         figures["broker_floor_concurrency_1_ms"],
                         figures["bare_fanout_concurrency_1_ms"])
    print(f"8 agents x {args.records} records; agents ready in "
          f"{figures['agents_ready_seconds']} s; machine speed probe "
          f"{figures['speed_probe_ms_before']} ms before, {figures['speed_probe_ms_after']} ms "
          "after (bench.results_io.speed_probe: lower is faster)")
    print(f"full lookup, concurrency 1: p50 {full['p50']} ms, p95 {full['p95']} ms, "
          f"p99 {full['p99']} ms")
    print(f"full lookups/s at concurrency 16: "
          f"{figures['full_lookups_per_second_concurrency_16']} (median of "
          f"{[r['lookups_per_second_concurrency_16'] for r in figures['full_runs']]})")
    print(f"CPU ms per lookup at concurrency 16: "
          f"{figures['full_cpu_ms_per_lookup_concurrency_16']}")
    blind = figures["blind_concurrency_1_ms"]
    print(f"blind lookup, concurrency 1: p50 {blind['p50']} ms, p99 {blind['p99']} ms; "
          f"{figures['blind_lookups_per_second_concurrency_16']} lookups/s at concurrency 16")
    print(f"broker floor (empty agent answers): p50 {floor['p50']} ms, "
          f"{figures['broker_floor_lookups_per_second_concurrency_16']} lookups/s")
    print(f"broker floor CPU ms per lookup: "
          f"{figures['broker_floor_cpu_ms_per_lookup_concurrency_16']}")
    print(f"bare fan-out (client asks {figures['agents_asked_per_lookup']} servers, as many "
          f"as a lookup asks agents): p50 {bare['p50']} ms")
    print(f"broker overhead {figures['broker_overhead_ratio']}x the bare fan-out; agent work "
          f"{figures['agent_work_ratio']}x the broker floor")
    print(f"agent memory: largest resident {figures['agent_rss_mb_max']} MB serving, largest "
          f"peak {figures['agent_peak_rss_mb_max']} MB (its first build)")
    print(f"targets met: {figures['meets']}; written to {path}")


if __name__ == "__main__":
    main()
