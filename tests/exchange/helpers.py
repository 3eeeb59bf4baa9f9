"""Synthetic partners, tokens and requests for the exchange tests (never a real organisation)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from dancu.exchange import clients

ISSUER = "https://testserver"
TOKEN_URL = ISSUER + "/oauth/token"
PURPOSE = "mở tài khoản thanh toán"
OTHER_PURPOSE = "xác minh khách hàng vay vốn"


@dataclass(frozen=True)
class Partner:
    client_id: str
    client_secret: str | None
    organization: str


def add_partner(
    session: Session,
    *,
    scopes: tuple[str, ...] = ("population.verify",),
    per_minute: int = 100_000,
    per_day: int = 1_000_000,
    jwks: dict[str, Any] | None = None,
) -> Partner:
    """A new client of a synthetic bank (one organisation per client keeps tests apart)."""
    organization = f"Ngân hàng Thử Nghiệm {uuid.uuid4().hex[:8]}"
    creds = clients.add(
        session,
        organization=organization,
        kind="bank",
        scopes=scopes,
        purposes=[PURPOSE, OTHER_PURPOSE],
        per_minute=per_minute,
        per_day=per_day,
        jwks=jwks,
    )
    return Partner(creds.client_id, creds.client_secret, organization)


def oauth_client(app: FastAPI, partner: Partner, **kwargs: Any) -> AsyncOAuth2Client:
    """Authlib's httpx OAuth 2 client, talking to the app in process."""
    return AsyncOAuth2Client(
        partner.client_id,
        partner.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        transport=httpx.ASGITransport(app=app),
        base_url=ISSUER,
        **kwargs,
    )


async def token_for(app: FastAPI, partner: Partner, scope: str | None = None) -> str:
    async with oauth_client(app, partner) as client:
        token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials", scope=scope)
    return str(token["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forge(claims: dict[str, Any], key: ECKey, *, kid: str, typ: str = "at+jwt") -> str:
    """A token signed with ``key`` under ``kid``: a forgery unless ``key`` is the server's."""
    now = int(time.time())
    body = {"iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode({"alg": "ES256", "typ": typ, "kid": kid}, body, key)
