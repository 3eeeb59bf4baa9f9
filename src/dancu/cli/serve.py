"""``dancu serve``: the web app and API (CONTRACTS §1).

Imported only when the command runs (``dancu.cli`` loads its commands lazily), so that the
other commands do not pay for uvicorn and the web app.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from dancu import bootstrap
from dancu.cli import console
from dancu.config import get_settings
from dancu.db import make_sessionmaker, unit_of_work
from dancu.officials import service as officials
from dancu.registry import seeding
from dancu.registry import service as registry

__all__ = ["serve_cli"]

serve_cli = typer.Typer()


@serve_cli.command()
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
    engine = bootstrap.open_engine()
    if demo is None:
        demo = settings.environment == "development"
    factory = make_sessionmaker(engine)
    with factory() as session:
        empty = registry.count(session) == 0
        nobody_signs_in = officials.count(session) == 0
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
    if nobody_signs_in:
        console.out.print(
            "no back-office official yet: create one with `dancu officials add --username U "
            "--role province_officer --unit 01` (or --role system_admin --unit VN); "
            "it prints a one-time enrolment link (password and TOTP)",
            markup=False,
        )
    uvicorn.run(
        "dancu.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
    )
