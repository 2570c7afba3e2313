"""Recording benchmark figures with the machine they were measured on."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "system": platform.system()}


def speed_probe() -> float:
    """CPU milliseconds for a fixed piece of pure Python (median of three): how fast this
    machine was running. Shared hosts vary by half from hour to hour, so figures measured at
    different times compare only alongside their probes."""
    times = []
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(2_000_000):
            total += i * i % 7
        times.append((time.process_time() - started) * 1000)
    return round(statistics.median(times), 1)


def record(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {"benchmark": name, "measured_at": dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"), "machine": machine(), **figures}
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]
