"""The ``dancu`` command (CONTRACTS.md section 1).

Exit codes: 0 success, 1 user error (bad input; the message on stderr names the row, column
and problem), 2 usage error. Long commands show a progress bar on a terminal and print one
summary line when stdout is not a terminal.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from dancu import __version__, bootstrap
from dancu.audit import service as audit
from dancu.cli import console, reconcile
from dancu.cli import exchange as exchange_cli
from dancu.cli import officials as officials_cli
from dancu.config import get_settings
from dancu.db import make_engine, make_sessionmaker, unit_of_work
from dancu.errors import DancuError
from dancu.registry import exporter, importer, quality, scope, seeding
from dancu.registry import service as registry

app = typer.Typer(
    help="dancu: the national population register, e-ID and the applications on top.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
registry_app = typer.Typer(help="Import and export the register.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
audit_app = typer.Typer(
    help="The access log: who read whose data, when and why.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
app.add_typer(exchange_cli.app, name="exchange")
app.add_typer(officials_cli.app, name="officials")
app.command("reconcile")(reconcile.reconcile_command)


def _engine() -> Engine:

    settings = get_settings()
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    bootstrap.prepare(engine)
    return engine


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@app.command()
def seed(
    citizens: Annotated[int, typer.Option(min=1, max=200_000_000, help="How many people.")],
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same people.")
    ] = 1,
) -> None:
    """Generate a realistic synthetic population of N citizens, deterministic for a given seed."""

    engine = _engine()
    factory = make_sessionmaker(engine)
    try:
        with console.progress("seeding") as (advance, set_total), unit_of_work(factory) as session:
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


@registry_app.command("import")
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
    engine = _engine()
    factory = make_sessionmaker(engine)
    try:
        with (
            console.progress("importing") as (advance, set_total),
            unit_of_work(factory) as session,
        ):
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
                quality.refresh_quality(session)
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


@registry_app.command("quality-refresh")
def registry_quality_refresh(
    unit: Annotated[
        str, typer.Option(help="VN (everywhere), a 2-digit province or a 5-digit commune code.")
    ] = "VN",
) -> None:
    """Recompute the data-quality counts per commune that the back office's overview reads."""

    engine = _engine()
    factory = make_sessionmaker(engine)
    try:
        with unit_of_work(factory) as session:
            communes = quality.refresh_quality(session, scope.Scope.parse(unit))
    except DancuError as exc:
        raise console.fail(exc) from None
    console.out.print(f"quality counts refreshed for {communes:,} communes ({unit})", markup=False)


@registry_app.command("export")
def registry_export(
    file: Annotated[Path, typer.Argument(help="Output file, .csv or .parquet.")],
) -> None:
    """Write the register in the interchange format."""

    engine = _engine()
    factory = make_sessionmaker(engine)
    try:
        with console.progress("exporting") as (advance, set_total), factory() as session:
            set_total(registry.count(session))
            rows = exporter.export_file(session, file, progress=advance)
    except DancuError as exc:
        raise console.fail(exc) from None
    console.out.print(f"exported {rows:,} citizens to {file}", markup=False)


def _anchor(value: str | None) -> audit.Anchor | None:
    """Parse ``ID:SHA256`` (as printed by ``dancu audit verify``) into an anchor."""
    if value is None:
        return None
    entry_id, sep, entry_hash = value.partition(":")
    if not sep or not entry_id.isdigit():
        raise typer.BadParameter(
            "expected ID:SHA256, for example 1042:3f7a…", param_hint="--anchor"
        )
    return audit.Anchor(int(entry_id), entry_hash.strip().lower())


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            help="ID:SHA256 of an entry published earlier; also catches a rewritten chain "
            "and entries deleted from the end."
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Entries read at a time (memory bound).")
    ] = 10_000,
) -> None:
    """Recompute the access log's hash chain; exit 1 and name the first broken link if any.

    Reads only: unlike the other commands it neither creates nor upgrades the schema.
    """

    pinned = _anchor(anchor)
    engine = make_engine(get_settings().database_url)
    try:
        if not inspect(engine).has_table("access_log"):
            console.err.print(
                "error: this database has no access log (run `dancu serve` first)", markup=False
            )
            raise typer.Exit(1)
        with make_sessionmaker(engine)() as session:
            result = audit.verify(session, batch_size=batch_size, anchor=pinned)
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()
    if result.broken is not None:
        console.err.print(
            f"access log broken at entry {result.broken.entry_id} "
            f"({result.broken.problem.value}): {result.broken.detail}",
            markup=False,
        )
        console.err.print(f"{result.entries:,} entries before it are intact", markup=False)
        raise typer.Exit(1)
    line = f"access log intact: {result.entries} entries"
    if result.last is not None:
        line += f"; last entry {result.last.entry_id}:{result.last.entry_hash}"
    console.out.print(line, markup=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Seed a synthetic population when the register is empty "
            "(default: on in development).",
        ),
    ] = None,
) -> None:
    """Serve the web app and API; creates or upgrades the schema first."""

    settings = get_settings()
    engine = _engine()
    if demo is None:
        demo = settings.environment == "development"
    factory = make_sessionmaker(engine)
    with factory() as session:
        empty = registry.count(session) == 0
    if demo and empty and settings.demo_citizens:
        with (
            console.progress("seeding demo") as (advance, set_total),
            unit_of_work(factory) as session,
        ):
            set_total(settings.demo_citizens)
            report = seeding.seed(
                session,
                settings.demo_citizens,
                settings.demo_seed,
                bootstrap.commune_weights(session),
                name="demo",
                actor="serve",
                progress=advance,
            )
        console.out.print(f"seeded a demo population of {report.inserted:,} synthetic citizens")
    engine.dispose()
    console.out.print(f"dancu is running: open http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(
        "dancu.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
    )


@app.command("version")
def version() -> None:
    """Print the version as JSON."""

    console.out.print(json.dumps({"dancu": __version__}))


def main() -> None:
    """Console entry point: usage errors exit 2 (click), user errors 1."""
    app()
