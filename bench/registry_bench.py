"""Benchmarks of the population register (issue: the register foundation).

Measures, on a fresh database of the chosen backend:

- ``seed``: ``dancu seed --citizens N`` (generation and load), wall time;
- ``import``: ``dancu registry import`` of an N-row interchange file into an empty register
  (the first load of a nation, ``registry.first_load``), rows/s, peak memory (max RSS of the
  child process) and the stage timings that ``dancu -v`` logs, for CSV and Parquet;
- ``reimport``: the same CSV imported again into the register the import made (N rows
  unchanged: the checked merge of a populated register, and the idempotence check);
- ``merge``: the CSV into an empty register through the checked merge (staging table,
  whole-file checks, merge), the path every import into a populated register takes, here for
  N new people (``dancu registry import`` with the first-load path switched off);
- ``floor``: what the same file costs with no check, no derived column and no index: a bare
  COPY (PostgreSQL) or ``executemany`` (SQLite) of its text columns into a plain table, and
  the start-up of the ``dancu`` command; the import can never be faster than these;
- ``lookup``: a person by ID (in process, median and p95) and name searches with and
  without diacritics and with a birth year (p95).

Each step runs the real ``dancu`` command in a child process, as a user would. Results go to
stdout as JSON lines; copy them into docs/benchmarks.md with the date and machine, and the load
of the machine (``uptime``, printed with each result): on a shared machine run it several
times (``--repeat``) and report the best and the median.

    .venv/bin/python bench/registry_bench.py --citizens 1000000 --backend sqlite
    .venv/bin/python bench/registry_bench.py --citizens 1000000 --backend postgresql \
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/dancu_bench
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from common import emit
from dancu import cli
from dancu.registry import first_load
from dancu.registry import service as registry
from dancu.registry.interchange import COLUMNS
from dancu.registry.models import Citizen
from dancu.vn import names as vn_names

PG_URL = os.environ.get(
    "DANCU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/dancu_bench"
)
DANCU = str(Path(sys.executable).with_name("dancu"))
_STAGES = re.compile(r"dancu\.registry\.importer import .*\((?P<stages>[^()]*)\)\s*$", re.M)


def _fresh(backend: str, workdir: Path, name: str) -> str:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    base = make_url(PG_URL)
    name = f"{base.database}_{name}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


@dataclass
class _Ran:
    seconds: float
    peak_mb: float
    stdout: str
    stderr: str
    loaded_at: float | None  # when the importer logged its summary (its load was done)


def _run(args: list[str], url: str, *, command: list[str] | None = None) -> _Ran:
    """Run ``dancu args`` (or ``command args``) against ``url``, timing it and the importer's
    summary log line."""
    env = {**os.environ, "DANCU_DATABASE_URL": url}
    started = time.perf_counter()
    child = subprocess.Popen(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", *(command or [DANCU]), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None and child.stdout is not None
    lines, loaded_at = [], None
    for line in child.stderr:
        lines.append(line)
        if loaded_at is None and _STAGES.search(line):
            loaded_at = time.perf_counter() - started
    stdout = child.stdout.read()
    child.wait()
    seconds = time.perf_counter() - started
    stderr = "".join(lines)
    if child.returncode != 0:
        raise SystemExit(f"dancu {' '.join(args)} failed:\n{stderr[-4000:]}")
    peak_kb = int(stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    return _Ran(seconds, peak_kb / 1024, stdout.strip(), stderr, loaded_at)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_seed(n: int, backend: str, workdir: Path) -> str:
    url = _fresh(backend, workdir, "seed")
    _run(["registry", "export", str(workdir / "warmup.csv")], url)  # schema + units, not timed
    load = _load()
    ran = _run(["-v", "seed", "--citizens", str(n), "--seed", "7"], url)
    emit(
        bench="seed",
        backend=backend,
        citizens=n,
        **_ran_fields(ran, load),
        command=f"dancu -v seed --citizens {n} --seed 7",
    )
    return url


def _files(n: int, backend: str, workdir: Path, source_url: str | None) -> tuple[Path, Path]:
    """The N-row CSV and Parquet files, exported from a seeded register the first time."""
    csv_path = workdir / f"citizens_{n}.csv"
    parquet_path = workdir / f"citizens_{n}.parquet"
    if not (csv_path.exists() and parquet_path.exists()):
        if source_url is None:
            source_url = _fresh(backend, workdir, "seed")
            _run(["seed", "--citizens", str(n), "--seed", "7"], source_url)
        _run(["registry", "export", str(csv_path)], source_url)
        _run(["registry", "export", str(parquet_path)], source_url)
    return csv_path, parquet_path


def bench_import(n: int, backend: str, workdir: Path, source_url: str | None) -> str:
    url = ""
    for path in _files(n, backend, workdir, source_url):
        url = _fresh(backend, workdir, "import")
        _run(["registry", "export", str(workdir / "warmup.csv")], url)
        load = _load()
        ran = _run(["-v", "registry", "import", str(path)], url)
        _emit_import("import", path, n, backend, ran, load,
                     command=f"dancu -v registry import {path.name}")  # fmt: skip
    return url


def _emit_import(
    bench: str, path: Path, n: int, backend: str, ran: _Ran, load: str, command: str | None = None
) -> None:
    """One import's figures; ``loaded_after_s`` runs from the start of the command to the end
    of the import itself (what follows is the commit, the quality refresh and the exit)."""
    emit(
        bench=bench,
        backend=backend,
        format=path.suffix[1:],
        rows=n,
        rows_per_second=round(n / ran.seconds),
        **_ran_fields(ran, load),
        **({"command": command} if command else {}),
    )


def _ran_fields(ran: _Ran, load: str) -> dict[str, object]:
    """What every timed ``dancu`` run reports: wall time, when the load ended, peak memory,
    the command's own stage timings and summary line, the load average around it."""
    stages = _STAGES.search(ran.stderr)
    return {
        "seconds": round(ran.seconds, 1),
        "loaded_after_s": round(ran.loaded_at, 1) if ran.loaded_at else None,
        "peak_rss_mb": round(ran.peak_mb),
        "stages": stages.group("stages") if stages else None,
        "output": ran.stdout,
        "load_before": load,
        "load_after": _load(),
    }


def bench_reimport(n: int, backend: str, workdir: Path, url: str) -> None:
    """The CSV again into the register its first import made: every row unchanged."""
    csv_path, _ = _files(n, backend, workdir, None)
    load = _load()
    ran = _run(["-v", "registry", "import", str(csv_path)], url)
    _emit_import("reimport", csv_path, n, backend, ran, load)


def bench_merge(n: int, backend: str, workdir: Path, source_url: str | None) -> None:
    """The CSV into an empty register through the checked merge (first load switched off)."""
    csv_path, _ = _files(n, backend, workdir, source_url)
    url = _fresh(backend, workdir, "merge")
    _run(["registry", "export", str(workdir / "warmup.csv")], url)
    load = _load()
    ran = _run(
        ["-v", "registry", "import", str(csv_path)],
        url,
        command=[sys.executable, __file__, "--as-merge"],
    )
    _emit_import("merge", csv_path, n, backend, ran, load)


def _never_empty(_session: Session) -> bool:
    return False


def _as_merge(args: list[str]) -> None:
    """``dancu args`` with the first-load path off: every import takes the checked merge."""
    first_load.register_is_empty = _never_empty
    sys.argv = ["dancu", *args]
    cli.main()


def bench_floor(n: int, backend: str, workdir: Path, source_url: str | None) -> None:
    """The least any import of the file can cost: start the command, and move the file's text
    into a plain table (no check, no derived column, no index) in one transaction."""
    csv_path, _ = _files(n, backend, workdir, source_url)
    startup = _run(["version"], "sqlite://")
    emit(bench="floor", backend=backend, step="dancu start-up", seconds=round(startup.seconds, 2))
    url = _fresh(backend, workdir, "floor")
    columns = ", ".join(f"{c} TEXT" for c in COLUMNS)
    load = _load()
    if backend == "postgresql":
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            conn.execute(f"CREATE TABLE floor ({columns})")
            conn.commit()
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy("COPY floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                csv_path.open("rb") as fh,
            ):
                while block := fh.read(8 << 20):
                    copy.write(block)
            conn.commit()
            seconds = time.perf_counter() - started
        how = "COPY of the CSV into a table of its 19 text columns"
    else:
        path = make_url(url).database
        lite = sqlite3.connect(str(path))
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("PRAGMA synchronous=NORMAL")
        lite.execute(f"CREATE TABLE floor ({columns})")
        started = time.perf_counter()
        with csv_path.open(encoding="utf-8", newline="") as fh:
            rows = csv.reader(fh)
            next(rows)
            marks = ", ".join("?" * len(COLUMNS))
            lite.executemany(f"INSERT INTO floor VALUES ({marks})", rows)
        lite.commit()
        lite.close()
        seconds = time.perf_counter() - started
        how = "executemany of the CSV's rows (csv module) into a table of its 19 text columns"
    emit(
        bench="floor",
        backend=backend,
        step=how,
        rows=n,
        seconds=round(seconds, 1),
        rows_per_second=round(n / seconds),
        load_before=load,
    )


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
    global PG_URL
    if sys.argv[1:2] == ["--as-merge"]:
        _as_merge(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    parser.add_argument(
        "--steps",
        default="seed,import,lookup",
        help="Any of seed,import,reimport,merge,floor,lookup.",
    )
    parser.add_argument("--repeat", type=int, default=1, help="Runs of seed, import, floor.")
    parser.add_argument("--pg-url", default=PG_URL, help="Base name of the bench databases.")
    args = parser.parse_args()
    PG_URL = args.pg_url
    args.workdir.mkdir(parents=True, exist_ok=True)
    steps = set(args.steps.split(","))
    url: str | None = None
    for _ in range(args.repeat):
        if "seed" in steps:
            url = bench_seed(args.citizens, args.backend, args.workdir)
        if "import" in steps:
            url = bench_import(args.citizens, args.backend, args.workdir, url)
            if "reimport" in steps:
                bench_reimport(args.citizens, args.backend, args.workdir, url)
        if "merge" in steps:
            bench_merge(args.citizens, args.backend, args.workdir, url)
        if "floor" in steps:
            bench_floor(args.citizens, args.backend, args.workdir, url)
    if "lookup" in steps and url is not None:
        bench_lookup(url, args.backend)


if __name__ == "__main__":
    main()
