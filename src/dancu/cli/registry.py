"""``dancu seed`` and ``dancu registry …``: generate, import and export the register (CONTRACTS §1).

Imported only when one of these commands runs (``dancu.cli`` loads its commands lazily).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from dancu import bootstrap
from dancu.cli import console
from dancu.config import get_settings
from dancu.db import make_sessionmaker, unit_of_work
from dancu.errors import DancuError
from dancu.registry import exporter, first_load, importer, quality, scope, seeding
from dancu.registry import service as registry

__all__ = ["app", "seed_cli"]

app = typer.Typer(help="Import and export the register.", no_args_is_help=True)
seed_cli = typer.Typer()


@contextmanager
def _loading(
    label: str,
) -> Iterator[tuple[Session, Callable[[int], None], Callable[[int], None]]]:
    """One loading command's unit of work with its progress bar: ``(session, advance,
    set_total)``. On SQLite the load of an empty register is written in place
    (``first_load.written_in_place``) until the commit, which is inside this block."""
    engine = bootstrap.open_engine()
    with (
        first_load.written_in_place(engine),
        console.progress(label) as (advance, set_total),
        unit_of_work(make_sessionmaker(engine)) as session,
    ):
        yield session, advance, set_total


@seed_cli.command()
def seed(
    citizens: Annotated[int, typer.Option(min=1, max=200_000_000, help="How many people.")],
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same people.")
    ] = 1,
) -> None:
    """Generate a realistic synthetic population of N citizens, deterministic for a given seed."""

    try:
        with _loading("seeding") as (session, advance, set_total):
            set_total(citizens)
            weights = bootstrap.commune_weights(session)
            report = seeding.seed(session, citizens, seed, weights, progress=advance)
    except DancuError as exc:
        raise console.fail(exc) from None
    console.out.print(
        f"seeded {report.inserted:,} citizens ({report.unchanged:,} already present, "
        f"{report.households:,} households) in {report.seconds:.1f} s "
        f"({report.rows_per_second:,.0f} rows/s)"
    )


@app.command("import")
def registry_import(
    file: Annotated[Path, typer.Argument(help="Interchange file, .csv or .parquet.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Load the valid rows; write rejects to a file.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Where --skip-invalid writes rejected rows.")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who is importing, for the history.")] = "cli",
) -> None:
    """Load citizens in the interchange format. All-or-nothing unless --skip-invalid."""

    settings = get_settings()
    try:
        with _loading("importing") as (session, advance, set_total):
            report = importer.import_file(
                session,
                file,
                actor=actor,
                chunk_rows=settings.import_chunk_rows,
                max_line_bytes=settings.import_max_line_bytes,
                skip_invalid=skip_invalid,
                rejects_path=rejects,
                progress=advance,
                on_total=set_total,
            )
            if report.inserted:
                importer.refresh_quality(session, report)
    except DancuError as exc:
        raise console.fail(exc) from None
    line = (
        f"imported {file.name}: {report.rows_read:,} rows read, {report.inserted:,} inserted, "
        f"{report.unchanged:,} unchanged, {report.rejected:,} rejected, "
        f"{report.duplicate_candidates:,} duplicate candidates flagged, "
        f"{report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)"
    )
    console.out.print(line, markup=False)
    if report.rejects_path:
        console.err.print(f"rejected rows written to {report.rejects_path}", markup=False)
        for problem in report.problems:
            console.err.print(f"  {problem}", markup=False)


@app.command("quality-refresh")
def registry_quality_refresh(
    unit: Annotated[
        str, typer.Option(help="VN (everywhere), a 2-digit province or a 5-digit commune code.")
    ] = "VN",
) -> None:
    """Recompute the data-quality counts per commune that the back office's overview reads."""

    engine = bootstrap.open_engine()
    factory = make_sessionmaker(engine)
    try:
        with unit_of_work(factory) as session:
            communes = quality.refresh_quality(session, scope.Scope.parse(unit))
    except DancuError as exc:
        raise console.fail(exc) from None
    console.out.print(f"quality counts refreshed for {communes:,} communes ({unit})", markup=False)


@app.command("export")
def registry_export(
    file: Annotated[Path, typer.Argument(help="Output file, .csv or .parquet.")],
) -> None:
    """Write the register in the interchange format."""

    engine = bootstrap.open_engine()
    factory = make_sessionmaker(engine)
    try:
        with console.progress("exporting") as (advance, set_total), factory() as session:
            set_total(registry.count(session))
            rows = exporter.export_file(session, file, progress=advance)
    except DancuError as exc:
        raise console.fail(exc) from None
    console.out.print(f"exported {rows:,} citizens to {file}", markup=False)
