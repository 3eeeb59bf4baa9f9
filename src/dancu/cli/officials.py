"""``dancu officials …``: create the first administrator (and any official) from the shell.

After the first administrator, officials are managed in the web UI (/admin/officials); this
command stays for bootstrapping and for recovery (an administrator who lost their phone).
The enrolment link is printed once on stdout and never stored or logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from dancu import bootstrap
from dancu.cli import console
from dancu.config import Settings, get_settings
from dancu.db import make_engine, make_sessionmaker, unit_of_work
from dancu.enums import OfficialRole
from dancu.errors import DancuError
from dancu.officials import service as officials

app = typer.Typer(
    help="Back-office officials: create accounts, reset enrolment.", no_args_is_help=True
)

_ROLES = ", ".join(role.value for role in OfficialRole)


@app.command("add")
def add(
    username: Annotated[str, typer.Option(help="Sign-in name: lower-case letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help=f"One of: {_ROLES}.")],
    unit: Annotated[
        str, typer.Option(help="VN (national), a 2-digit province or a 5-digit commune code.")
    ],
    full_name: Annotated[str | None, typer.Option(help="The official's name, for display.")] = None,
) -> None:
    """Create an official and print their one-time enrolment link (password + TOTP)."""

    def create(session: Session, settings: Settings) -> officials.Enrolment:
        return officials.create(
            session,
            settings,
            username=username,
            role=role,
            unit_code=unit,
            full_name=full_name,
            actor="cli",
        )

    _enrol(create)


@app.command("reset")
def reset(
    username: Annotated[str, typer.Option(help="The official whose enrolment to reset.")],
) -> None:
    """Revoke the password, second factor and sessions of an official; print a new link."""

    def again(session: Session, settings: Settings) -> officials.Enrolment:
        official = officials.by_username(session, username)
        return officials.reset_enrolment(session, settings, official)

    _enrol(again)


def _enrol(issue: Callable[[Session, Settings], officials.Enrolment]) -> None:
    """Run ``issue`` in one transaction and print the enrolment link it made, once."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    bootstrap.prepare(engine)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            line = _link_line(settings, issue(session, settings))
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()
    console.out.print(line, markup=False, soft_wrap=True)


def _link_line(settings: Settings, enrolment: officials.Enrolment) -> str:
    link = officials.enrolment_link(settings, enrolment.token)
    official = enrolment.official
    return (
        f"{official.username} ({official.role}, {official.unit_code}, {official.organization}): "
        f"enrol once at {link} before {official.enrolment_expires_at:%Y-%m-%d %H:%M} UTC"
    )
