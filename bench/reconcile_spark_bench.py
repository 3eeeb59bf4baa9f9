"""Benchmark of ``dancu reconcile --engine spark`` against the DuckDB engine (issue 5 §6).

Builds (once per work directory, as ``reconcile_accuracy`` does) a synthetic nation split into
a register snapshot and outsiders, and a sectoral file drawn from it with the corruption mix of
``reconcile_corrupt``; then runs ``dancu reconcile FILE --out DIR --register SNAPSHOT`` in a
child process with each engine, as an official would, checks that ``results.csv`` is the same
byte for byte, and reports wall times and stage timings as JSON lines (copy them into
docs/benchmarks.md with the date, the machine and its load).

    .venv/bin/python bench/reconcile_spark_bench.py                        # 60k rows, 200k people
    .venv/bin/python bench/reconcile_spark_bench.py --master 'local[2]' --rows 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import emit
from reconcile_accuracy import build


def _run(engine: str, register: Path, sectoral: Path, out: Path, master: str) -> dict[str, object]:
    env = {**os.environ, "DANCU_SPARK_MASTER": master}
    command = [
        str(Path(sys.executable).with_name("dancu")), "reconcile", str(sectoral), "--out",
        str(out), "--register", str(register), "--engine", engine,
    ]  # fmt: skip
    load = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {
        "engine": engine,
        "seconds": round(wall, 1),
        "stages": summary["timings"],
        "load_before": round(load, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]", help="DANCU_SPARK_MASTER for the run")
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    register, sectoral, _ = build(args.workdir, args.citizens, args.rows, args.seed)
    outs = {e: args.workdir / f"spark_bench_{e}" for e in ("duckdb", "spark")}
    for engine, out in outs.items():
        figures = _run(engine, register, sectoral, out, args.master)
        emit(bench="reconcile_engine", citizens=args.citizens, rows=args.rows,
             master=args.master if engine == "spark" else None, **figures)  # fmt: skip
    same = (outs["duckdb"] / "results.csv").read_bytes() == (
        outs["spark"] / "results.csv"
    ).read_bytes()
    emit(bench="reconcile_engine_agreement", rows=args.rows, identical_results_csv=same)


if __name__ == "__main__":
    main()
