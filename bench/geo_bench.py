"""Administrative units: how long a fresh load takes and how fast addresses parse.

.venv/bin/python bench/geo_bench.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from dancu.db import make_engine
from dancu.geo import loader
from dancu.geo.service import get_index, parse_address
from dancu.migrations import upgrade


def main() -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'geo.db'}")
        upgrade(engine)
        with Session(engine) as session:
            started = time.perf_counter()
            loader.load(session)
            session.commit()
            fresh = time.perf_counter() - started
            started = time.perf_counter()
            loader.load(session)
            again = time.perf_counter() - started
        engine.dispose()
    started = time.perf_counter()
    index = get_index()
    build = time.perf_counter() - started
    provinces = {p.code: p.name for p in index.provinces()}
    texts = [f"Số 1, {c.name}, {provinces[c.province_code]}" for c in index.communes()]
    timings = []
    for text in texts:
        started = time.perf_counter()
        parse_address(text)
        timings.append((time.perf_counter() - started) * 1000)
    print(
        json.dumps(
            {
                "bench": "geo",
                "date": time.strftime("%Y-%m-%d"),
                "machine": machine,
                "fresh_load_s": round(fresh, 2),
                "second_load_s": round(again, 2),
                "index_build_s": round(build, 2),
                "addresses": len(texts),
                "parse_median_ms": round(statistics.median(timings), 3),
                "parse_p95_ms": round(sorted(timings)[int(0.95 * len(timings))], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
