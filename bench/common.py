"""What every benchmark script shares: one JSON line per figure, with date and machine."""

from __future__ import annotations

import functools
import json
import os
import platform
import time


def emit(**fields: object) -> None:
    """Print one result as a JSON line, stamped with the date and the machine."""
    fields.setdefault("date", time.strftime("%Y-%m-%d"))
    fields.setdefault("machine", f"{platform.machine()}, {os.cpu_count()} cores")
    fields.setdefault("python_loop_ms", python_loop_ms())
    print(json.dumps(fields, ensure_ascii=False), flush=True)


@functools.cache
def python_loop_ms() -> float:
    """How fast this machine runs Python, to compare figures taken on different machines of
    the same kind (their speed differs several-fold from session to session): the best of
    five runs of a fixed loop of 2,000,000 additions, in milliseconds. Lower is faster."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for number in range(2_000_000):
            total += number
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def busy_cpu_seconds() -> float:
    """CPU time every core of the machine spent busy since boot (``/proc/stat``: all but
    idle and I/O wait), to tell a figure's whole cost from the server's part of it."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
