"""Giving memory back to the system after a load.

A load reads every record into Python objects, indexes them and writes them to the record
store; then they are dropped. Python frees them, but the C allocator keeps the freed heap
for reuse unless asked to hand it back: without this a serving agent's RSS stays near its
peak at load. glibc's ``malloc_trim`` does that; elsewhere this does nothing.

The C library is the one already loaded into this process (``CDLL(None)``), not one found
by ``ctypes.util.find_library``: that runs ``ldconfig`` in a child process, and a fork of a
10 GB agent at the end of its load is neither cheap nor what a worker-memory figure should
see.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    return trim


def release_freed() -> None:
    """Collect garbage, then return the freed heap to the system where the C library can."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
