"""The services' event loop: uvloop by default, the standard loop on request, a clear error
for anything else. (The demo and reliability tests run real broker and agent processes on
the default loop; the in-process tests run them on pytest's standard loop: both are covered.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from mash import eventloop
from mash.errors import ConfigError


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASH_EVENT_LOOP", raising=False)
    assert eventloop.run(loop_module()).startswith("uvloop")


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_EVENT_LOOP", "asyncio")
    assert eventloop.run(loop_module()).startswith("asyncio")


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_EVENT_LOOP", "trio")
    with pytest.raises(ConfigError, match="MASH_EVENT_LOOP='trio' is not one of uvloop, asyncio"):
        eventloop.run(loop_module())


def test_an_unknown_loop_is_one_line_exit_2(fed) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mash", "broker", "serve", "--config", str(fed.broker_config)],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "MASH_EVENT_LOOP": "trio"})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["mash: error: MASH_EVENT_LOOP='trio' is not one of uvloop, asyncio"]
