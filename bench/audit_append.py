"""Audit append throughput: `python -m bench.audit_append` (SQLite and PostgreSQL).

Each append is one durable transaction (SQLite WAL synchronous=FULL; PostgreSQL
synchronous_commit=on) holding the entry, its search keys and, every 100 entries, a signed
checkpoint. Measures one thread, eight threads sharing one log, and verification speed.
Writes bench/results/audit_append.json. PostgreSQL: MASH_BENCH_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/test, in a temporary schema dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from mash.audit.checkpoint import Signer, Verifier
from mash.audit.keys import write_keys
from mash.audit.log import AuditLog
from mash.audit.store import open_store
from mash.audit.subject_hash import SubjectHasher
from mash.audit.verify import verify_store
from tests.audit_support import entry

RESULTS = Path(__file__).resolve().parent / "results" / "audit_append.json"
N = int(os.environ.get("MASH_BENCH_APPENDS", "2000"))


def measure(url: str, signer: Signer, hasher: SubjectHasher) -> dict[str, float]:
    entries = [entry(n, hasher, state="KNOWN" if n % 5 == 0 else "NOT_KNOWN") for n in range(N)]
    with AuditLog(open_store(url), "bench-1", signer, checkpoint_every=100) as log:
        started = time.perf_counter()
        for e in entries:
            log.append(e)
        single = N / (time.perf_counter() - started)
    with AuditLog(open_store(url), "bench-8", signer, checkpoint_every=100) as log, \
            ThreadPoolExecutor(8) as pool:
        started = time.perf_counter()
        list(pool.map(log.append, entries))
        threaded = N / (time.perf_counter() - started)
    with open_store(url) as store:
        started = time.perf_counter()
        reports = verify_store(store, Verifier([signer.public_key]))
        verified = sum(r.entries for r in reports) / (time.perf_counter() - started)
        assert all(r.ok for r in reports)
    return {"appends_per_second_1_thread": round(single),
            "appends_per_second_8_threads_one_log": round(threaded),
            "entries_verified_per_second": round(verified)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keys = write_keys(Path(tmp) / "keys")
        signer = Signer.from_file(keys.signing_key)
        hasher = SubjectHasher.from_file(keys.hash_key)
        figures = {"appends": N, "sqlite": measure(f"sqlite:///{tmp}/audit.db", signer, hasher)}
        base = os.environ.get("MASH_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
        schema = f"audit_bench_{uuid.uuid4().hex[:8]}"
        try:
            figures["postgresql"] = measure(f"{base}?schema={schema}", signer, hasher)
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    doc = {"benchmark": "audit_append",
           "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "machine": {"python": platform.python_version(), "machine": platform.machine(),
                       "cpus": os.cpu_count(), "system": platform.system()},
           **figures}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    for backend in ("sqlite", "postgresql"):
        print(f"{backend:>10}: " + ", ".join(f"{k} {v}" for k, v in figures[backend].items()))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
