"""``dancu reconcile FILE --out DIR`` (CONTRACTS §1 and §3).

Exit codes: 0 success; 1 a user error (bad input: the message on stderr names the row, column
and problem, and the output directory is left as it was); 2 a usage error (a missing argument,
a malformed or repeated ``--column``). A progress bar with rows/s shows on a terminal; otherwise
one summary line is printed.

The command is also a standalone Typer app (``reconcile_cli``, handy in tests);
the main ``dancu`` app registers :func:`reconcile_command` as its ``reconcile`` command. It
lives with the other commands, not in the ``reconcile`` domain, which stays free of the CLI. The
register is read from ``DANCU_DATABASE_URL`` (the same default as ``dancu serve``) or, with
``--register``, from a snapshot written by ``dancu registry export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dancu.cli import console
from dancu.config import Settings
from dancu.db import is_sqlite, make_engine
from dancu.enums import ReconcileEngine
from dancu.errors import DancuError, ValidationFailed
from dancu.reconcile.columns import FIELDS, parse_mapping
from dancu.reconcile.service import DEFAULT_MEMORY_LIMIT, ReconcileSummary, reconcile

__all__ = ["parse_columns", "reconcile_cli", "reconcile_command"]

DEFAULT_DATABASE_URL: str = Settings.model_fields["database_url"].default

reconcile_cli = typer.Typer(
    help="Check a sectoral file against the population register.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def parse_columns(values: list[str]) -> dict[str, str]:
    """``field=HEADER`` options as a mapping; a usage error for anything malformed or repeated."""
    try:
        return parse_mapping(values)
    except ValidationFailed as exc:
        raise typer.BadParameter(exc.message, param_hint="--column") from None


def _warn_unreadable(summary: ReconcileSummary) -> None:
    for name, found in summary.unreadable.items():
        if found["count"]:
            rows = ", ".join(map(str, found["first_rows"]))
            console.err.print(
                f"warning: column {name}: {found['count']:,} values could not be read "
                f"(rows {rows}{', ...' if found['count'] > len(found['first_rows']) else ''}); "
                "they count as disagreeing with the register",
                markup=False,
            )


def _run(
    file: Path,
    out: Path,
    columns: dict[str, str],
    sheet: str | None,
    register: Path | None,
    database_url: str,
    memory_limit: str,
    engine: ReconcileEngine = ReconcileEngine.DUCKDB,
) -> ReconcileSummary:
    with console.progress("reconciling") as (advance, set_total):
        if register is not None:
            return reconcile(
                None, file, out, columns=columns, sheet=sheet, progress=advance,
                on_total=set_total, register=register, memory_limit=memory_limit, engine=engine,
            )  # fmt: skip
        if is_sqlite(database_url):
            db_file = database_url.split("///", 1)[-1]
            if db_file and db_file != ":memory:" and not Path(db_file).is_file():
                raise DancuError(
                    f"no register at {db_file}: set DANCU_DATABASE_URL, or give --register"
                )
        db = make_engine(database_url)
        try:
            with Session(db) as session:
                return reconcile(
                    session, file, out, columns=columns, sheet=sheet, progress=advance,
                    on_total=set_total, memory_limit=memory_limit, engine=engine,
                )  # fmt: skip
        except SQLAlchemyError as exc:
            raise DancuError(f"cannot read the register: {exc.__class__.__name__}") from exc
        finally:
            db.dispose()


@reconcile_cli.command("reconcile")
def reconcile_command(
    file: Annotated[Path, typer.Argument(help="Sectoral file: .csv (UTF-8), .xlsx or .parquet.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the results.")],
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="Map a field to a header: field=HEADER (fields: "
            + ", ".join(FIELDS)
            + "). Repeatable.",
        ),
    ] = None,
    sheet: Annotated[
        str | None, typer.Option("--sheet", help="Spreadsheet sheet (default: the first).")
    ] = None,
    register: Annotated[
        Path | None,
        typer.Option(
            "--register", help="Read the register from a snapshot (dancu registry export)."
        ),
    ] = None,
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url", envvar="DANCU_DATABASE_URL", help="The register's database."
        ),
    ] = DEFAULT_DATABASE_URL,
    memory_limit: Annotated[
        str,
        typer.Option(
            "--memory-limit",
            help="Memory the run's database may hold before spilling to disk (e.g. 512MB, 4GB).",
        ),
    ] = DEFAULT_MEMORY_LIMIT,
    engine: Annotated[
        ReconcileEngine,
        typer.Option(
            "--engine",
            help="duckdb (this machine) or spark (Apache Spark, for registers and files larger "
            "than one machine: needs the spark extra of dancu and Java; DANCU_SPARK_MASTER "
            "names the cluster).",
        ),
    ] = ReconcileEngine.DUCKDB,
) -> None:
    """Check a sectoral file against the register: status, ID, mismatched fields, duplicates."""
    columns = parse_columns(column or [])
    try:
        summary = _run(file, out, columns, sheet, register, database_url, memory_limit, engine)
    except DancuError as exc:
        raise console.fail(exc, after="nothing was written") from None
    _warn_unreadable(summary)
    console.out.print(summary.line(), markup=False)
