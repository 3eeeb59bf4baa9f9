"""``dancu exchange``: partner organisations, API clients and signing keys (CONTRACTS §1).

``dancu exchange client add --org NAME --scope SCOPE --purpose PURPOSE`` prints
``{"client_id": ..., "client_secret": ...}`` on stdout, the only time the secret is shown.
Options that take several values are repeated: ``--scope population.verify --purpose "mở
tài khoản" --purpose "xác minh khách hàng"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from dancu import bootstrap
from dancu.cli import console
from dancu.config import get_settings
from dancu.db import make_sessionmaker, unit_of_work
from dancu.enums import OrganizationKind
from dancu.errors import DancuError
from dancu.exchange import clients, keys

app = typer.Typer(
    help="Partner organisations, their API clients and the token signing keys.",
    no_args_is_help=True,
)
client_app = typer.Typer(help="Partner API clients.", no_args_is_help=True)
keys_app = typer.Typer(help="The ES256 keys that sign access tokens.", no_args_is_help=True)
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")


def _jwks(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        # orjson, as the admin's form reads a JWK Set: nesting past 1,024 levels is bad JSON
        data = orjson.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--jwks") from None
    if isinstance(data, dict) and "keys" not in data:
        data = {"keys": [data]}  # a single JWK
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: not a JWK or JWK Set", param_hint="--jwks")
    return data


def _print(data: object) -> None:
    console.out.print(json.dumps(data, ensure_ascii=False), markup=False, soft_wrap=True)


@client_app.command("add")
def client_add(
    org: Annotated[str, typer.Option(help="The partner organisation (created if new).")],
    scope: Annotated[list[str], typer.Option(help="A product, e.g. population.verify.")],
    purpose: Annotated[list[str], typer.Option(help="A purpose the client may state.")],
    kind: Annotated[
        OrganizationKind, typer.Option(help="Kind of a new organisation.")
    ] = OrganizationKind.OTHER,
    per_minute: Annotated[int, typer.Option(min=1, help="Quota per minute.")] = (
        clients.DEFAULT_PER_MINUTE
    ),
    per_day: Annotated[int, typer.Option(min=1, help="Quota per day.")] = clients.DEFAULT_PER_DAY,
    jwks: Annotated[
        Path | None,
        typer.Option(help="Public JWK Set file: the client uses private_key_jwt, no secret."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label for the client.")] = None,
) -> None:
    """Register a partner API client; prints client_id and client_secret as JSON."""
    key_set = _jwks(jwks)
    engine = bootstrap.open_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            creds = clients.add(
                session,
                organization=org,
                scopes=scope,
                purposes=purpose,
                per_minute=per_minute,
                per_day=per_day,
                jwks=key_set,
                name=name,
                kind=kind.value,
            )
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()
    _print(creds.as_dict())


def _change(client_id: str, action: str) -> None:
    engine = bootstrap.open_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            if action == "suspend":
                row = clients.suspend(session, client_id)
            else:
                row = clients.reactivate(session, client_id)
            status = row.status
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()
    _print({"client_id": client_id, "status": status})


@client_app.command("suspend")
def client_suspend(client_id: Annotated[str, typer.Argument(help="The client id.")]) -> None:
    """Suspend a client: its token requests and API calls are refused at once."""
    _change(client_id, "suspend")


@client_app.command("reactivate")
def client_reactivate(client_id: Annotated[str, typer.Argument(help="The client id.")]) -> None:
    """Reactivate a suspended client."""
    _change(client_id, "reactivate")


@client_app.command("rotate")
def client_rotate(client_id: Annotated[str, typer.Argument(help="The client id.")]) -> None:
    """Give a client a new secret (printed once); the old one stops working at once."""
    engine = bootstrap.open_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            creds = clients.rotate_secret(session, client_id)
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()
    _print(creds.as_dict())


@client_app.command("list")
def client_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation's clients.")] = None,
) -> None:
    """Every client as one JSON line: id, organisation, method, scopes, purposes, quota,
    status (never a secret)."""
    engine = bootstrap.open_engine()
    try:
        with make_sessionmaker(engine)() as session:
            for row in clients.list_clients(session, organization=org):
                _print(
                    {
                        "client_id": row.client_id,
                        "organization": clients.organization_name(session, row),
                        "auth_method": row.auth_method,
                        "scopes": row.scopes,
                        "purposes": row.purposes,
                        "per_minute": row.per_minute,
                        "per_day": row.per_day,
                        "status": row.status,
                    }
                )
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Create a new signing key; the previous one keeps verifying until its tokens expire."""
    settings = get_settings()
    engine = bootstrap.open_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            key = keys.rotate(session, secret=settings.secret_key.get_secret_value())
            kid = key.kid
    except DancuError as exc:
        raise console.fail(exc) from None
    finally:
        engine.dispose()
    _print({"kid": kid})
