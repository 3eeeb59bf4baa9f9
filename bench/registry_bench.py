"""Benchmarks of the population register (issue: the register foundation).

Measures, on a fresh database of the chosen backend:

- ``seed``: ``dancu seed --citizens N`` (generation and load), wall time;
- ``import``: ``dancu registry import`` of an N-row interchange file, rows/s and peak memory
  (max RSS of the child process) for CSV and Parquet;
- ``lookup``: a person by ID (in process, median and p95) and name searches with and
  without diacritics and with a birth year (p95).

Each step runs the real ``dancu`` command in a child process, as a user would. Results go to
stdout as JSON lines; copy them into docs/benchmarks.md with the date and machine.

    .venv/bin/python bench/registry_bench.py --citizens 1000000 --backend sqlite
    .venv/bin/python bench/registry_bench.py --citizens 1000000 --backend postgresql
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from common import emit
from dancu.registry import service as registry
from dancu.registry.models import Citizen
from dancu.vn import names as vn_names

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/dancu_bench"
DANCU = str(Path(sys.executable).with_name("dancu"))


def _fresh(backend: str, workdir: Path, name: str) -> str:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def _run(args: list[str], url: str) -> tuple[float, float, str]:
    """Run ``dancu args`` against ``url``; return (seconds, peak RSS in MB, stdout)."""
    env = {**os.environ, "DANCU_DATABASE_URL": url}
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", DANCU, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dancu {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    peak_kb = int(done.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    return seconds, peak_kb / 1024, done.stdout.strip()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_seed(n: int, backend: str, workdir: Path) -> str:
    url = _fresh(backend, workdir, "dancu_bench_seed")
    _run(["registry", "export", str(workdir / "warmup.csv")], url)  # schema + units, not timed
    seconds, peak, out = _run(["seed", "--citizens", str(n), "--seed", "7"], url)
    emit(
        bench="seed",
        backend=backend,
        citizens=n,
        seconds=round(seconds, 1),
        peak_rss_mb=round(peak),
        output=out,
        command=f"dancu seed --citizens {n} --seed 7",
    )
    return url


def bench_import(n: int, backend: str, workdir: Path, source_url: str) -> str:
    csv_path = workdir / f"citizens_{n}.csv"
    parquet_path = workdir / f"citizens_{n}.parquet"
    if not csv_path.exists():
        _run(["registry", "export", str(csv_path)], source_url)
    if not parquet_path.exists():
        _run(["registry", "export", str(parquet_path)], source_url)
    url = ""
    for path in (csv_path, parquet_path):
        url = _fresh(backend, workdir, "dancu_bench_import")
        _run(["registry", "export", str(workdir / "warmup.csv")], url)
        seconds, peak, out = _run(["registry", "import", str(path)], url)
        emit(
            bench="import",
            backend=backend,
            format=path.suffix[1:],
            rows=n,
            seconds=round(seconds, 1),
            rows_per_second=round(n / seconds),
            peak_rss_mb=round(peak),
            output=out,
            command=f"dancu registry import {path.name}",
        )
    return url


def bench_lookup(url: str, backend: str, samples: int = 2000) -> None:
    engine = create_engine(url)
    with Session(engine) as session:
        ids = list(session.scalars(select(Citizen.personal_id)))
        rng = random.Random(11)
        picks = rng.sample(ids, min(samples, len(ids)))
        timings = []
        for pid in picks:
            started = time.perf_counter()
            found = registry.get(session, pid)
            timings.append((time.perf_counter() - started) * 1000)
            assert found is not None
            session.expunge_all()
        emit(
            bench="lookup_by_id",
            backend=backend,
            citizens=len(ids),
            samples=len(picks),
            median_ms=round(statistics.median(timings), 3),
            p95_ms=round(_percentile(timings, 0.95), 3),
        )
        people = [session.get(Citizen, pid) for pid in picks[:500]]
        for label, make in (
            ("with diacritics + birth year", lambda c: (c.full_name, c.birth_year)),
            (
                "without diacritics + birth year",
                lambda c: (vn_names.fold(c.full_name), c.birth_year),
            ),
            ("without diacritics, no year", lambda c: (vn_names.fold(c.full_name), None)),
            (
                "family + middle prefix + year",
                lambda c: (f"{c.family_name} {c.middle_name}", c.birth_year),
            ),
        ):
            timings = []
            for c in people:
                assert c is not None
                query, year = make(c)
                started = time.perf_counter()
                registry.search(session, name=query, birth_year=year, limit=20)
                timings.append((time.perf_counter() - started) * 1000)
            emit(
                bench="name_search",
                backend=backend,
                kind=label,
                citizens=len(ids),
                samples=len(timings),
                median_ms=round(statistics.median(timings), 2),
                p95_ms=round(_percentile(timings, 0.95), 2),
            )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    parser.add_argument("--steps", default="seed,import,lookup")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    steps = set(args.steps.split(","))
    url = bench_seed(args.citizens, args.backend, args.workdir)
    if "import" in steps:
        url = bench_import(args.citizens, args.backend, args.workdir, url)
    if "lookup" in steps:
        bench_lookup(url, args.backend)


if __name__ == "__main__":
    main()
