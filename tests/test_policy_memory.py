"""Policy evaluation does not leak: rego-cpp and grpc share one C++ allocator (mash/_native)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, resource
{first}
import grpc  # a C++ library that would otherwise bind libstdc++ to glibc's allocator
from mash import _native
from mash.demo.federation import POLICIES
from mash.policy import bundle
from mash.policy.engine import RegoEngine

def rss():
    return int(open(f"/proc/{{os.getpid()}}/statm").read().split()[1]) * resource.getpagesize()

engine = RegoEngine(bundle.build(POLICIES))
doc = {{"requester": {{"agency": "mash", "role": "analyst"}}, "purpose": "child_safeguarding",
        "stage": "research", "today": "2026-06-01", "owner": "police"}}
for _ in range(500):
    engine.evaluate("mash/disclosure/gate", doc)
start = rss()
for _ in range(3000):
    engine.evaluate("mash/disclosure/gate", doc)
print(_native.ORDER_OK, (rss() - start) / 2**20)
"""


def run(first: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(first=first)],
                         capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()
    return out[0], float(out[1])


def test_no_growth_when_mash_is_imported_first() -> None:
    order_ok, grown_mb = run("import mash")
    assert order_ok == "True"
    assert grown_mb < 3, f"{grown_mb:.1f} MB grew over 3000 evaluations"


def test_the_wrong_import_order_is_detected() -> None:
    order_ok, _ = run("import grpc as _first")
    assert order_ok == "False"  # and the engine logs rego_allocator_mismatch
