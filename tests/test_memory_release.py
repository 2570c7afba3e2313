"""Giving a load's freed heap back to the system (mash.agent.memory)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mash.agent import memory


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_the_freed_heap_is_given_back_without_starting_a_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # find_library("c") runs ldconfig in a child: a fork of a 10 GB agent, and what a
    # worker-memory figure would see as a worker the agent's own size
    def no_child(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_child)
    memory._malloc_trim.cache_clear()
    assert memory._malloc_trim() is not None
    # objects too large for Python's own small-object arenas and too small for an mmap of
    # their own: they live in glibc's heap, whose top a later object pins
    held = [bytearray(2000) for _ in range(100_000)]
    pin = bytearray(2000)
    grown = _rss_kb()
    del held
    kept = _rss_kb()  # freed but kept by the allocator
    memory.release_freed()
    given_back = _rss_kb()
    assert grown - given_back > 100_000, (grown, kept, given_back)  # > 100 MB back
    assert pin
