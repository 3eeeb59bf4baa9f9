"""Benchmark of ``dancu reconcile`` at scale: 1,000,000 rows against 1,000,000 people and
10,000,000 against 10,000,000 (issue 5, Figures), the register read from a snapshot.

Builds, once per work directory, a synthetic nation (``dancu.registry.synth``, about 3 s per
million people) split into a register snapshot (Parquet, the format of
``dancu registry export``) and outsiders, and a sectoral CSV with the corruption of
``reconcile_corrupt`` written in bulk by DuckDB. Then runs
``dancu reconcile FILE --out DIR --register SNAPSHOT`` in a child process under
``/usr/bin/time`` and reports wall time, peak memory (maximum resident set size) and the stage
timings of ``summary.json`` as JSON lines, with the machine's load average; then the run's
suggestions and duplicates against the file's truth (written beside it as
``*.truth.parquet``): precision and recall at a scale the row-by-row accuracy benchmark
cannot reach.

    .venv/bin/python bench/reconcile_scale.py --citizens 1000000 --rows 1000000
    .venv/bin/python bench/reconcile_scale.py --citizens 10000000 --rows 10000000 \\
        --memory-limit 4GB
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common import emit
from dancu.registry import synth
from reconcile_bench import measure
from reconcile_corrupt import Units, commune_weights, write_scale_file


def build_nation(workdir: Path, citizens: int, seed: int) -> tuple[Path, Path]:
    """Register snapshot and outsiders (1% more people), written batch by batch."""
    register = workdir / f"register_{citizens}.parquet"
    outsiders = workdir / f"outsiders_{citizens}.parquet"
    if register.exists() and outsiders.exists():
        return register, outsiders
    weights = commune_weights(workdir)
    started = time.perf_counter()
    extra = max(citizens // 100, 10)
    every = (citizens + extra) // extra
    reg_writer = pq.ParquetWriter(
        register.with_suffix(".partial"), synth.SCHEMA, compression="zstd"
    )
    out_writer = pq.ParquetWriter(
        outsiders.with_suffix(".partial"), synth.SCHEMA, compression="zstd"
    )
    done = 0
    for batch in synth.generate(citizens + extra, seed, weights, batch_size=500_000):
        kept = np.arange(done, done + batch.num_rows) % every != every - 1
        done += batch.num_rows
        reg_writer.write_batch(batch.filter(pa.array(kept)))
        out_writer.write_batch(batch.filter(pa.array(~kept)))
    reg_writer.close()
    out_writer.close()
    os.replace(register.with_suffix(".partial"), register)
    os.replace(outsiders.with_suffix(".partial"), outsiders)
    emit(bench="reconcile_scale_setup", step="nation", citizens=citizens,
         seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    return register, outsiders


def accuracy(out: Path, truth: Path) -> dict[str, object]:
    """Suggestions and duplicates of a run against the file's truth (``write_scale_file``).

    A suggestion is due for a row whose status admits one (``not_found``, ``invalid_id``,
    ``missing_id``, ``mismatch``) and whose person is in the register; it is right when it names
    that person. A duplicate is due for every row whose person appeared in an earlier row, and
    ``duplicate_of`` must then be the first such row."""
    con = duckdb.connect(config={"memory_limit": "4GB"})
    con.execute(
        f"""
        CREATE TEMP TABLE joined AS
        SELECT r.row, r.status, r.suggested_id, r.duplicate_of, t.personal_id AS true_id,
            t.in_register,
            nullif(min(t.row) OVER (PARTITION BY t.personal_id), t.row) AS first_row
        FROM read_parquet('{out / "results.parquet"}') r
        JOIN read_parquet('{truth}') t ON t.row = r.row
        """
    )
    eligible = "status IN ('not_found', 'invalid_id', 'missing_id', 'mismatch')"
    counts = con.execute(
        f"""
        SELECT count(suggested_id),
            count(*) FILTER (in_register AND suggested_id = true_id),
            count(*) FILTER (in_register AND {eligible}),
            count(*) FILTER (in_register AND {eligible} AND suggested_id = true_id),
            count(duplicate_of),
            count(*) FILTER (duplicate_of = first_row),
            count(first_row)
        FROM joined
        """
    ).fetchone()
    con.close()
    assert counts is not None  # an aggregate without GROUP BY has one row
    made, right, due, found, dup_made, dup_right, dup_due = counts
    precision = dup_right / dup_made if dup_made else 1.0
    recall = dup_right / dup_due if dup_due else 1.0
    return {
        "suggestions": {
            "made": made, "wrong": made - right,
            "precision": round(right / made, 5) if made else 1.0,
            "due": due, "recall": round(found / due, 5) if due else 1.0,
        },
        "duplicates": {
            "found": dup_made, "due": dup_due, "precision": round(precision, 5),
            "recall": round(recall, 5),
            "f1": round(2 * precision * recall / (precision + recall), 5) if dup_right else 0.0,
        },
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit of the run.")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    register, outsiders = build_nation(args.workdir, args.citizens, args.seed)
    path = args.workdir / f"sectoral_{args.rows}_of_{args.citizens}.csv"
    truth = path.with_suffix(".truth.parquet")
    if not path.exists() or not truth.exists():
        started = time.perf_counter()
        written = write_scale_file(register, outsiders, path, args.rows, seed=args.seed + 4,
                                   units=Units.load(), truth=truth)  # fmt: skip
        emit(
            bench="reconcile_scale_setup", step="file", rows=written,
            mb=round(path.stat().st_size / 1e6), seconds=round(time.perf_counter() - started, 1),
        )  # fmt: skip
    out = args.workdir / f"scale_out_{args.rows}"
    command = [sys.executable, "-m", "dancu", "reconcile", str(path), "--out", str(out),
               "--register", str(register)]  # fmt: skip
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    for _ in range(args.runs):
        load_before = os.getloadavg()
        seconds, peak_kb, _ = measure(command, dict(os.environ))
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        emit(
            bench="reconcile_scale",
            citizens=args.citizens,
            rows=summary["rows"],
            file_mb=round(path.stat().st_size / 1e6),
            wall_seconds=round(seconds, 1),
            peak_rss_mb=round(peak_kb / 1024),
            stages=summary["timings"],
            statuses=summary["statuses"],
            duplicates=summary["duplicates"],
            suggestions={k: summary["suggestions"].get(k) for k in (
                "rows_considered", "candidate_pairs", "suggested")},
            load_average_before=[round(x, 1) for x in load_before],
            load_average_after=[round(x, 1) for x in os.getloadavg()],
        )  # fmt: skip
        emit(bench="reconcile_scale_accuracy", citizens=args.citizens, **accuracy(out, truth))


if __name__ == "__main__":
    main()
