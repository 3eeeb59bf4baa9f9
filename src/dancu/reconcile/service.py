"""``reconcile``: check a sectoral file against the register (CONTRACTS §3).

Stages, each timed: *read* (stream the file), *normalise* (the register's rules, once per
distinct value, into DuckDB), *exact* (fetch the register rows the file names, apply the rules
in SQL), *suggestions* (not implemented yet: the columns exist and stay empty), *write*
(results, workbook, report).

Nothing half-written is ever left in the output directory: everything is written into a
hidden scratch directory inside it, then each finished file is renamed into place (an atomic
rename on one file system), ``summary.json`` last. A failed or interrupted run leaves the
previous results as they were; a scratch directory left by a killed run is removed by the next
run. The results depend only on the file and the register, so a rerun gives identical
``results.csv`` and ``results.parquet``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dancu.errors import DancuError
from dancu.reconcile import engines, report
from dancu.reconcile.exact import MISMATCH_FIELDS, STATUSES, Figures, Workspace
from dancu.reconcile.normalise import AddressResolver, Normaliser
from dancu.reconcile.reader import Source, open_source
from dancu.reconcile.suggest import THRESHOLD

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "OUTPUT_FILES",
    "SUGGESTIONS_NOTE",
    "ReconcileSummary",
    "reconcile",
]

log = logging.getLogger(__name__)

OUTPUT_FILES: tuple[str, ...] = (
    "results.csv",
    "results.parquet",
    "results.xlsx",
    "report.html",
    "summary.json",
)
"""What a run writes into the output directory, in the order they are put in place."""

SUGGESTIONS_NOTE = (
    "suggested_id: for rows whose ID is missing, malformed, not found or disagrees, the person "
    "of the register the row most probably describes, given only when the probability "
    "(suggestion_score) is high; check it before correcting the file. / suggested_id: người "
    "trong CSDL dân cư mà dòng có khả năng cao nhất mô tả, chỉ đưa ra khi xác suất "
    "(suggestion_score) cao; cần kiểm tra trước khi sửa tệp."
)
DEFAULT_MEMORY_LIMIT = "1GB"
"""What the run's DuckDB database may hold in memory before it spills to the scratch
directory (the register snapshot, the file's rows and the candidate pairs live there)."""
_SCRATCH_PREFIX = ".reconcile-"
_SCRATCH_SUFFIX = ".tmp"
_PARALLEL_FROM_BYTES = 1 << 20

Progress = Callable[[int], None]


@dataclass(slots=True)
class ReconcileSummary:
    """The outcome of a run: the figures of ``summary.json`` and where the files are."""

    source: Path
    out_dir: Path
    rows: int
    statuses: dict[str, int]
    mismatched_fields: dict[str, int]
    duplicates: int
    timings: dict[str, float]
    unreadable: dict[str, dict[str, Any]]
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows checked per second of the whole run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One line for a terminal or a log: counts, time, stage timings, where."""
        counts = ", ".join(f"{self.statuses[s]:,} {s}" for s in STATUSES)
        stages = ", ".join(
            f"{k} {self.timings[k]:.1f} s"
            for k in ("read", "normalise", "exact", "write")
            if k in self.timings
        )
        return (
            f"reconciled {self.source.name}: {self.rows:,} rows: {counts}; "
            f"{self.duplicates:,} duplicates; {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s; {stages}); results in {self.out_dir}"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_scratch(out_dir: Path) -> None:
    """Remove scratch directories of runs that were killed (their process is gone)."""
    for path in out_dir.glob(f"{_SCRATCH_PREFIX}*{_SCRATCH_SUFFIX}"):
        pid = path.name[len(_SCRATCH_PREFIX) :].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _prepare_out_dir(out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise DancuError(f"{out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_scratch(out_dir)
    scratch = out_dir / f"{_SCRATCH_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{_SCRATCH_SUFFIX}"
    scratch.mkdir()
    return scratch


def _summary_data(
    source: Source,
    figures: Figures,
    timings: dict[str, float],
    register: dict[str, Any],
    suggestions: dict[str, Any],
) -> dict[str, Any]:
    rows = figures.rows
    return {
        "format": "dancu-reconcile/1",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "input": {
            "file": source.path.name,
            "format": source.kind,
            "bytes": source.path.stat().st_size,
            "sheet": source.sheet,
            "other_sheets": source.other_sheets,
            "header_line": source.header_line,
            "columns": source.columns.headers,
        },
        "register": register,
        "rows": rows,
        "statuses": figures.statuses,
        "rates": {s: round(c / rows, 6) if rows else 0.0 for s, c in figures.statuses.items()},
        "mismatched_fields": figures.mismatched_fields,
        "mismatched_field_rates": {
            f: round(c / rows, 6) if rows else 0.0 for f, c in figures.mismatched_fields.items()
        },
        "duplicates": figures.duplicates,
        "found_by_legacy_number": figures.found_by_legacy_number,
        "unreadable": figures.unreadable,
        "provinces": figures.provinces,
        "examples": figures.mismatch_examples,
        "suggestions": {**suggestions, "note": SUGGESTIONS_NOTE},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "rows_per_second": round(rows / timings["total"]) if timings["total"] > 0 else 0,
        "outputs": list(OUTPUT_FILES),
    }


def reconcile(
    session: Session | None,
    path: Path,
    out_dir: Path,
    *,
    columns: Mapping[str, str] | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    register: Path | None = None,
    chunk_rows: int = 50_000,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threshold: float = THRESHOLD,
    engine: str = engines.DEFAULT_ENGINE,
) -> ReconcileSummary:
    """Check ``path`` against the register and write the results into ``out_dir``.

    ``columns`` maps fields to headers (``--column``), ``sheet`` picks a spreadsheet's sheet,
    ``register`` reads the register from a snapshot instead of ``session``'s database (which
    is only read). ``progress`` is told how many rows each batch held; ``on_total`` the row
    count when the format knows it up front. ``engine`` (``--engine``, :mod:`.engines`) runs
    the same stages on DuckDB or on Apache Spark. Raises ValidationFailed (bad input, naming
    the row, column and problem) or DancuError; the output directory is then left as it was.
    """
    if session is None and register is None:
        raise DancuError("nothing to reconcile against: give a database session or a snapshot")
    started = time.perf_counter()
    timings = dict.fromkeys(("read", "normalise", "exact", "suggestions", "write"), 0.0)
    scratch = _prepare_out_dir(out_dir)
    workspace: Workspace | None = None
    resolver: AddressResolver | None = None
    try:
        mark = time.perf_counter()
        source = open_source(path, columns=columns, sheet=sheet, chunk_rows=chunk_rows)
        if on_total is not None and source.total_rows is not None:
            on_total(source.total_rows)
        timings["read"] += time.perf_counter() - mark
        mark = time.perf_counter()
        if "address" in source.columns.positions:
            # before DuckDB starts its threads: the resolver may fork worker processes
            resolver = AddressResolver(parallel=path.stat().st_size >= _PARALLEL_FROM_BYTES)
        # --engine (dancu.reconcile.engines): the same stages on DuckDB or on Apache Spark
        workspace = engines.workspace(engine, scratch / "work", memory_limit=memory_limit)
        normaliser = Normaliser(resolver)
        timings["normalise"] += time.perf_counter() - mark
        while True:
            mark = time.perf_counter()
            batch = next(source.batches, None)
            timings["read"] += time.perf_counter() - mark
            if batch is None:
                break
            mark = time.perf_counter()
            workspace.add(normaliser.batch(batch))
            timings["normalise"] += time.perf_counter() - mark
            if progress is not None:
                progress(len(batch))
        mark = time.perf_counter()
        if register is not None:
            fetched = workspace.load_snapshot(register)
            origin: dict[str, Any] = {"source": "snapshot", "snapshot": register.name}
        else:
            assert session is not None
            fetched = workspace.load_register(session)
            origin = {"source": "database", "snapshot": None}
        origin["rows_read"] = fetched
        if resolver is not None:
            workspace.add_addresses(resolver.collect())  # parsed meanwhile by the workers
            resolver.close()
        workspace.check()
        timings["exact"] = time.perf_counter() - mark
        mark = time.perf_counter()
        suggestions = workspace.suggest(session=session, snapshot=register, threshold=threshold)
        timings["suggestions"] = time.perf_counter() - mark
        mark = time.perf_counter()
        workspace.write_results(scratch / "results.csv", scratch / "results.parquet")
        figures = workspace.figures()
        interim = {**timings, "write": time.perf_counter() - mark}
        interim["total"] = time.perf_counter() - started
        report.write_xlsx(
            scratch / "results.xlsx",
            _summary_data(source, figures, interim, origin, suggestions),
            workspace.results(),
            rows=figures.rows,
        )
        timings["write"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        data = _summary_data(source, figures, timings, origin, suggestions)
        report.write_html(scratch / "report.html", data)
        report.write_summary(scratch / "summary.json", data)
        workspace.close()
        workspace = None
        for name in OUTPUT_FILES:
            os.replace(scratch / name, out_dir / name)
    finally:
        if resolver is not None:
            resolver.close()
        if workspace is not None:
            workspace.close()
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - started
    log.info("reconciled %s: %d rows in %.1f s", path.name, figures.rows, seconds)
    return ReconcileSummary(
        source=path,
        out_dir=out_dir,
        rows=figures.rows,
        statuses=figures.statuses,
        mismatched_fields={f: figures.mismatched_fields[f] for f in MISMATCH_FIELDS},
        duplicates=figures.duplicates,
        timings=timings,
        unreadable=figures.unreadable,
        seconds=seconds,
        data=data,
    )
