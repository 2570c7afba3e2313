"""Settling asyncio futures from a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


def settle_from_thread(outcomes: list[tuple[asyncio.Future[Any], object]]) -> None:
    """Give each future its outcome (an exception is raised in its waiter), with one wake-up
    of each event loop for all its futures. A future already done (its waiter was cancelled)
    and a loop that has closed (nobody waits on it) are passed over."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
    for future, outcome in outcomes:
        by_loop.setdefault(future.get_loop(), []).append((future, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_give, settled)


def _give(settled: list[tuple[asyncio.Future[Any], object]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
