"""Load rego-cpp's library first, globally, so the whole process shares one C++ allocator.

librego_shared.so (regopy) exports its own `operator new`/`operator delete` (snmalloc). If
grpc or protobuf load libstdc++ first, libstdc++'s out-of-line code binds to glibc's
allocator while rego-cpp's inline code uses snmalloc; memory then crosses allocators and is
never returned (measured: about 12 KB lost per policy evaluation). Loaded before any other
C++ library and with RTLD_GLOBAL, every C++ library in the process binds to the same one.
`mash/__init__.py` calls this before anything else is imported.
"""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

ORDER_OK: bool | None = None  # None: regopy not installed


def _libstdcxx_loaded() -> bool:
    try:
        return "libstdc++" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def preload_rego() -> None:
    global ORDER_OK
    spec = importlib.util.find_spec("regopy")
    if spec is None or spec.origin is None:
        return
    library = Path(spec.origin).parent / "librego_shared.so"
    if not library.exists():
        return
    ORDER_OK = not _libstdcxx_loaded()
    ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
