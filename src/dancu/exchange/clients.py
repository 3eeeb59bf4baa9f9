"""Partner organisations and their API clients: add, suspend, reactivate, rotate, list.

A client secret is 256 bits from ``secrets`` and is shown once, at creation or rotation; the
database keeps its SHA-256 only. A slow password hash (argon2) protects guessable passwords;
a random 256-bit secret cannot be guessed, so its plain SHA-256 is as safe and costs
microseconds instead of tens of milliseconds on every token request (docs/exchange.md).
Services only flush; whoever opened the session commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.enums import ClientAuthMethod, ClientStatus, OrganizationKind
from dancu.errors import Problem
from dancu.exchange.exceptions import (
    DuplicateOrganization,
    InvalidClientSettings,
    UnknownClient,
    UnknownOrganization,
)
from dancu.exchange.models import ApiClient, Organization

SCOPES: frozenset[str] = frozenset({"population.verify", "population.reconcile"})
"""The products a client may be granted (more will come: lookup, e-documents...)."""

DEFAULT_PER_MINUTE = 60_000
DEFAULT_PER_DAY = 10_000_000
MAX_PURPOSE = 200

# Called with a client id whenever a client changes (suspended, rotated...), so that this
# process's caches forget it at once; other processes re-check within seconds
# (docs/exchange.md, "Suspension").
_listeners: list[Callable[[str], None]] = []


def on_change(listener: Callable[[str], None]) -> None:
    """Call ``listener(client_id)`` whenever a client is changed in this process."""
    _listeners.append(listener)


def _changed(client_id: str) -> None:
    for listener in _listeners:
        listener(client_id)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a partner needs, printed once: the client id and (client_secret_basic) secret."""

    client_id: str
    client_secret: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}


def hash_secret(secret: str) -> str:
    """The stored form of a client secret: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_secret(client: ApiClient, secret: str) -> bool:
    """True if ``secret`` is the client's, compared in constant time."""
    if client.secret_hash is None:
        return False
    return hmac.compare_digest(client.secret_hash, hash_secret(secret))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clean(value: str) -> str:
    return " ".join(unicodedata.normalize("NFC", value).split())


def clean_purpose(value: str) -> str:
    """A purpose as registered and as compared: NFC, single spaces, no surrounding space.

    Purposes are what the citizen reads in their access log ("mở tài khoản ngân hàng"), so
    they are text, compared exactly after this cleaning.
    """
    return _clean(value)


def get_organization(session: Session, name: str) -> Organization | None:
    return session.scalars(select(Organization).where(Organization.name == _clean(name))).first()


def create_organization(session: Session, *, name: str, kind: str) -> Organization:
    """A new partner organisation; its name is unique."""
    cleaned = _clean(name)
    if not cleaned or len(cleaned) > 200:
        raise InvalidClientSettings(
            "an organisation needs a name of 1 to 200 characters",
            [Problem(None, "org", "1 to 200 characters")],
        )
    if kind not in {k.value for k in OrganizationKind}:
        kinds = ", ".join(k.value for k in OrganizationKind)
        raise InvalidClientSettings(
            f"organisation kind must be one of {kinds}", [Problem(None, "kind", kinds)]
        )
    if get_organization(session, cleaned) is not None:
        raise DuplicateOrganization(f"an organisation named {cleaned!r} exists")
    org = Organization(name=cleaned, kind=kind, created_at=_now())
    session.add(org)
    session.flush()
    return org


def list_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.name)))


def _check_settings(
    scopes: Sequence[str], purposes: Sequence[str], per_minute: int, per_day: int
) -> tuple[list[str], list[str]]:
    problems: list[Problem] = []
    scope_list = sorted({s.strip() for s in scopes if s.strip()})
    if not scope_list:
        problems.append(Problem(None, "scope", "give at least one scope"))
    for scope in scope_list:
        if scope not in SCOPES:
            problems.append(
                Problem(None, "scope", f"{scope!r} is not a product; one of {sorted(SCOPES)}")
            )
    purpose_list = sorted({clean_purpose(p) for p in purposes if clean_purpose(p)})
    if not purpose_list:
        problems.append(Problem(None, "purpose", "register at least one purpose"))
    for purpose in purpose_list:
        if len(purpose) > MAX_PURPOSE or not purpose.isprintable():
            problems.append(
                Problem(None, "purpose", f"{purpose[:40]!r}: printable text, {MAX_PURPOSE} max")
            )
    if per_minute < 1 or per_day < 1:
        problems.append(Problem(None, "quota", "requests per minute and per day must be >= 1"))
    if problems:
        raise InvalidClientSettings("; ".join(str(p) for p in problems), problems)
    return scope_list, purpose_list


def check_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A client's JWK Set for private_key_jwt: public EC P-256 or RSA keys only."""
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidClientSettings(
            f"not a JWK Set: {exc}", [Problem(None, "jwks", "not a JWK Set")]
        ) from None
    if not keys.keys:
        raise InvalidClientSettings("the JWK Set is empty", [Problem(None, "jwks", "empty")])
    for key in keys.keys:
        if key.key_type not in ("EC", "RSA"):
            raise InvalidClientSettings(
                "only EC and RSA public keys are accepted",
                [Problem(None, "jwks", f"key type {key.key_type}")],
            )
        if key.is_private:
            raise InvalidClientSettings(
                "the JWK Set holds a private key: register the public key only",
                [Problem(None, "jwks", "private key")],
            )
    return {"keys": [k.as_dict(private=False) for k in keys.keys]}


def add(
    session: Session,
    *,
    organization: str,
    scopes: Sequence[str],
    purposes: Sequence[str],
    per_minute: int = DEFAULT_PER_MINUTE,
    per_day: int = DEFAULT_PER_DAY,
    jwks: dict[str, Any] | None = None,
    name: str | None = None,
    kind: str | None = None,
) -> Credentials:
    """Register a client of ``organization`` (created with ``kind`` if it does not exist).

    With ``jwks`` the client authenticates with private_key_jwt (RFC 7523) and has no secret;
    otherwise with client_secret_basic and the secret returned here, shown this once.
    """
    scope_list, purpose_list = _check_settings(scopes, purposes, per_minute, per_day)
    org = get_organization(session, organization)
    if org is None:
        if kind is None:
            raise UnknownOrganization(
                f"no organisation named {_clean(organization)!r}; give its kind to create it"
            )
        org = create_organization(session, name=organization, kind=kind)
    now = _now()
    client_id = "dc_" + secrets.token_hex(12)
    secret = None if jwks is not None else secrets.token_urlsafe(32)
    client = ApiClient(
        client_id=client_id,
        organization_id=org.id,
        name=_clean(name) if name else None,
        auth_method=(
            ClientAuthMethod.PRIVATE_KEY_JWT
            if jwks is not None
            else ClientAuthMethod.CLIENT_SECRET_BASIC
        ).value,
        secret_hash=hash_secret(secret) if secret is not None else None,
        jwks=check_jwks(jwks) if jwks is not None else None,
        scopes=scope_list,
        purposes=purpose_list,
        per_minute=per_minute,
        per_day=per_day,
        status=ClientStatus.ACTIVE.value,
        created_at=now,
        updated_at=now,
        secret_rotated_at=now if secret is not None else None,
    )
    session.add(client)
    session.flush()
    return Credentials(client_id, secret)


def get(session: Session, client_id: str) -> ApiClient | None:
    return session.get(ApiClient, client_id)


def get_or_raise(session: Session, client_id: str) -> ApiClient:
    client = get(session, client_id)
    if client is None:
        raise UnknownClient(f"no API client {client_id!r}")
    return client


def organization_name(session: Session, client: ApiClient) -> str:
    org = session.get(Organization, client.organization_id)
    return org.name if org is not None else ""


def set_status(session: Session, client_id: str, status: ClientStatus) -> ApiClient:
    """Suspend (refused at once: token endpoint and API) or reactivate a client."""
    client = get_or_raise(session, client_id)
    client.status = status.value
    client.updated_at = _now()
    session.flush()
    _changed(client_id)
    return client


def suspend(session: Session, client_id: str) -> ApiClient:
    return set_status(session, client_id, ClientStatus.SUSPENDED)


def reactivate(session: Session, client_id: str) -> ApiClient:
    return set_status(session, client_id, ClientStatus.ACTIVE)


def rotate_secret(session: Session, client_id: str) -> Credentials:
    """A new secret for a client_secret_basic client; the old one stops working at once
    (tokens already issued stay valid until they expire, at most the token lifetime)."""
    client = get_or_raise(session, client_id)
    if client.auth_method != ClientAuthMethod.CLIENT_SECRET_BASIC.value:
        raise InvalidClientSettings(
            "this client authenticates with private_key_jwt: register a new key set instead",
            [Problem(None, "client_id", "no secret to rotate")],
        )
    secret = secrets.token_urlsafe(32)
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = client.updated_at = _now()
    session.flush()
    _changed(client_id)
    return Credentials(client_id, secret)


def set_jwks(session: Session, client_id: str, jwks: dict[str, Any]) -> ApiClient:
    """Replace a private_key_jwt client's public keys (key rotation on the partner's side)."""
    client = get_or_raise(session, client_id)
    client.jwks = check_jwks(jwks)
    client.auth_method = ClientAuthMethod.PRIVATE_KEY_JWT.value
    client.secret_hash = None
    client.updated_at = _now()
    session.flush()
    _changed(client_id)
    return client


def update(
    session: Session,
    client_id: str,
    *,
    scopes: Sequence[str] | None = None,
    purposes: Sequence[str] | None = None,
    per_minute: int | None = None,
    per_day: int | None = None,
) -> ApiClient:
    """Change a client's scopes, purposes or quota."""
    client = get_or_raise(session, client_id)
    scope_list, purpose_list = _check_settings(
        scopes if scopes is not None else client.scopes,
        purposes if purposes is not None else client.purposes,
        per_minute if per_minute is not None else client.per_minute,
        per_day if per_day is not None else client.per_day,
    )
    client.scopes, client.purposes = scope_list, purpose_list
    client.per_minute = per_minute if per_minute is not None else client.per_minute
    client.per_day = per_day if per_day is not None else client.per_day
    client.updated_at = _now()
    session.flush()
    _changed(client_id)
    return client


def list_clients(session: Session, *, organization: str | None = None) -> list[ApiClient]:
    query = select(ApiClient).order_by(ApiClient.created_at, ApiClient.client_id)
    if organization is not None:
        org = get_organization(session, organization)
        if org is None:
            raise UnknownOrganization(f"no organisation named {_clean(organization)!r}")
        query = query.where(ApiClient.organization_id == org.id)
    return list(session.scalars(query))
