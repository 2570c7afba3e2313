"""The event loop the long-running services (broker, agents) run on.

uvloop (libuv) when it is installed, which it is with MASH Exchange on Linux: a broker and
its agents spend much of their CPU in the event loop and in gRPC's callbacks on it, and
uvloop cuts the CPU a lookup costs across all of them by about a sixth (`python -m
bench.e2e` reports CPU milliseconds per lookup for every process). ``MASH_EVENT_LOOP=asyncio``
selects the standard library's loop instead, to rule uvloop out when diagnosing a problem.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from mash.errors import ConfigError

T = TypeVar("T")
CHOICES = ("uvloop", "asyncio")


def chosen() -> str:
    """The loop MASH_EVENT_LOOP asks for (uvloop by default)."""
    choice = os.environ.get("MASH_EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise ConfigError(f"MASH_EVENT_LOOP={choice!r} is not one of {', '.join(CHOICES)}")
    return choice


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the chosen loop (the standard one when uvloop is not
    installed, e.g. on Windows)."""
    try:
        choice = chosen()
    except ConfigError:
        main.close()  # never awaited: close it, or Python warns about it at exit
        raise
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
