"""Concurrent writers: threads, asyncio tasks and processes keep gap-free chains, nothing lost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mash.audit.log import AuditLog
from mash.audit.verify import verify_store
from tests.audit_support import BACKENDS, Keys, backend, entry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    with backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path / "keys")


def assert_chains(store, keys, expected: dict[str, int]) -> None:
    reports = {r.writer_id: r for r in verify_store(store, keys.verifier())}
    assert {w: r.entries for w, r in reports.items()} == expected
    for r in reports.values():
        assert r.ok, [str(p) for p in r.problems]
        assert (r.first_seq, r.last_seq) == (1, r.entries)


def count_transactions(store) -> tuple[list[int], object]:
    """Record how many entries each transaction of `store` writes; returns (that list, the
    store's own append_many, to put back)."""
    batches: list[int] = []
    original = store.append_many

    def counting(writer_id, prepares):
        batches.append(len(prepares))
        return original(writer_id, prepares)

    store.append_many = counting
    return batches, original


def test_threads_sharing_one_log(db, keys):
    store = db.open()
    log = AuditLog(store, "broker-1", keys.signer, checkpoint_every=10)
    with ThreadPoolExecutor(8) as pool:
        appended = list(pool.map(lambda n: log.append(entry(n, keys.hasher)), range(120)))
    assert sorted(a.seq for a in appended) == list(range(1, 121))
    assert len({a.entry_hash for a in appended}) == 120
    assert_chains(store, keys, {"broker-1": 120})
    store.close()


def test_threads_with_their_own_stores_and_writers(db, keys):
    """Two brokers, each its own connection, two of them sharing a writer id."""
    logs = [AuditLog(db.open(), w, keys.signer, checkpoint_every=10)
            for w in ("broker-1", "broker-1", "broker-2")]

    def work(i: int) -> None:
        for n in range(40):
            logs[i].append(entry(n, keys.hasher))

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(work, range(3)))
    assert_chains(logs[0].store, keys, {"broker-1": 80, "broker-2": 40})
    for log in logs:
        log.close()


async def test_async_appends(db, keys):
    store = db.open()
    log = AuditLog(store, "broker-1", keys.signer)
    appended = await asyncio.gather(*(log.append_async(entry(n)) for n in range(30)))
    assert sorted(a.seq for a in appended) == list(range(1, 31))
    store.close()


def test_processes(db, keys):
    """Four processes: agent-a and agent-b twice each, all at once."""
    writers = ["agent-a", "agent-a", "agent-b", "agent-b"]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.audit_worker", db.url, w,
                               str(keys.files.hash_key.parent), "30"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in writers]
    acknowledged: dict[str, set[int]] = {"agent-a": set(), "agent-b": set()}
    for writer, proc in zip(writers, procs, strict=True):
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        seqs = [int(line.split()[0]) for line in out.splitlines()[1:]]
        assert len(seqs) == 30
        assert not acknowledged[writer] & set(seqs), "two processes got the same sequence"
        acknowledged[writer] |= set(seqs)
    assert acknowledged == {"agent-a": set(range(1, 61)), "agent-b": set(range(1, 61))}
    store = db.open()
    assert_chains(store, keys, {"agent-a": 60, "agent-b": 60})
    store.close()


def test_concurrent_appends_share_commits_and_fail_together(db, keys):
    """Group commit: concurrent appends are written in shared transactions (fewer fsyncs),
    every caller still gets its own entry back, and a failed commit fails every caller in it."""
    store = db.open()
    batches, original = count_transactions(store)
    log = AuditLog(store, "broker-1", keys.signer, checkpoint_every=10)
    with ThreadPoolExecutor(16) as pool:
        appended = list(pool.map(lambda n: log.append(entry(n, keys.hasher)), range(200)))
    assert sorted(a.seq for a in appended) == list(range(1, 201))
    assert sum(batches) == 200 and max(batches) > 1 and len(batches) < 200
    assert_chains(store, keys, {"broker-1": 200})

    def failing(writer_id, prepares):
        raise RuntimeError("disk full")

    store.append_many = failing  # type: ignore[method-assign]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: _attempt(log, entry(n, keys.hasher)), range(16)))
    assert results == ["AuditError"] * 16
    store.append_many = original  # type: ignore[method-assign]
    assert log.append(entry(999, keys.hasher)).seq == 201  # the log recovers
    store.close()


def _attempt(log, e) -> str:
    from mash.audit.errors import AuditError

    try:
        log.append(e)
    except AuditError:
        return "AuditError"
    return "written"


async def test_async_appends_share_commits_survive_cancellation_and_fail_closed(db, keys):
    """The writer thread commits what the loop handed it meanwhile in one transaction; a
    caller that stops waiting still has its entry written; a failed commit fails every caller
    in it; a closed log refuses."""
    from mash.audit.errors import AuditError

    store = db.open()
    batches, original = count_transactions(store)
    log = AuditLog(store, "broker-1", keys.signer, checkpoint_every=10)
    appended = await asyncio.gather(*(log.append_async(entry(n)) for n in range(100)))
    assert sorted(a.seq for a in appended) == list(range(1, 101))
    assert sum(batches) == 100 and len(batches) < 100

    waiter = asyncio.ensure_future(log.append_async(entry(100)))
    await asyncio.sleep(0)
    waiter.cancel()
    # appends are written in the order they were handed over: the next one lands after it
    assert (await log.append_async(entry(101))).seq == 102
    assert_chains(store, keys, {"broker-1": 102})

    def failing(writer_id, prepares):
        raise RuntimeError("disk full")

    store.append_many = failing  # type: ignore[method-assign]
    results = await asyncio.gather(*(log.append_async(entry(n)) for n in range(8)),
                                   return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["AuditError"] * 8
    store.append_many = original  # type: ignore[method-assign]
    assert (await log.append_async(entry(7))).seq == 103  # the log recovers
    log.close()
    with pytest.raises(AuditError, match="closed"):
        await log.append_async(entry(8))
