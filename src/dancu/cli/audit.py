"""``dancu audit verify``: recompute the access log's hash chain (CONTRACTS §1);
``dancu audit generations`` and ``rotate``: the batch items' generations (PostgreSQL).

Imported only when the command runs (``dancu.cli`` loads its commands lazily).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from dancu import bootstrap
from dancu.audit import generations
from dancu.audit import service as audit
from dancu.cli import console
from dancu.config import get_settings
from dancu.db import make_engine, make_sessionmaker
from dancu.errors import DancuError

__all__ = ["app"]

app = typer.Typer(help="The access log: who read whose data, when and why.", no_args_is_help=True)


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


def _needs(engine: Engine, table: str, lacking: str) -> None:
    """Exit 1 unless the database has ``table`` (saying what its log ``lacking``)."""
    if not inspect(engine).has_table(table):
        console.err.print(
            f"error: this database's access log {lacking}; upgrade it first "
            "(`dancu serve` upgrades on start)",
            markup=False,
        )
        raise typer.Exit(1)


@app.command("verify")
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
        _needs(engine, "access_log_item", "predates batch entries (schema revision 0007)")
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


@app.command("generations")
def audit_generations() -> None:
    """List the generations of the batch items (PostgreSQL partitions) as JSON lines:
    number, size in bytes, and whether items are written to it now. Reads only, like
    ``verify``."""
    engine = make_engine(get_settings().database_url)
    try:
        _needs(engine, "access_log_generation", "has no generations (schema revision 0013)")
        with engine.connect() as connection:
            listed = generations.generations(connection)
    finally:
        engine.dispose()
    for generation in listed:
        console.out.print(json.dumps(generation._asdict()), markup=False)


@app.command("rotate")
def audit_rotate(
    max_mb: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Close the current generation only if its rows take this many MB "
            "(default: DANCU_AUDIT_GENERATION_MB; 0: whatever its size).",
        ),
    ] = None,
) -> None:
    """Close the current generation of the batch items and open the next (PostgreSQL; the
    server does this by itself after batches). Prints what it did as JSON."""
    limit = get_settings().audit_generation_mb if max_mb is None else max_mb
    engine = bootstrap.open_engine()
    try:
        with engine.begin() as connection:
            done = generations.rotate(connection, max_bytes=limit << 20)
    except OperationalError as exc:
        console.err.print(
            f"error: a lock was not granted within {generations.LOCK_TIMEOUT} "
            f"({str(exc.orig).splitlines()[0]}); nothing changed, try again",
            markup=False,
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.out.print(json.dumps(done._asdict()), markup=False)
