"""The authorization server end to end with Authlib's httpx client: metadata (RFC 8414),
client credentials (RFC 6749 §4.4) with client_secret_basic and private_key_jwt (RFC 7523),
RFC 9068 ES256 access tokens, JWKS and signing-key rotation."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from dancu.db import unit_of_work
from dancu.exchange import clients, keys
from tests.exchange.helpers import (
    ISSUER,
    PURPOSE,
    TOKEN_URL,
    Partner,
    add_partner,
    bearer,
    oauth_client,
    token_for,
)
from tests.reconcile.helpers import ALIVE

pytestmark = pytest.mark.anyio


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def test_metadata_advertises_the_token_endpoint(http: httpx.AsyncClient) -> None:
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == TOKEN_URL
    assert meta["jwks_uri"] == ISSUER + "/oauth/jwks"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "private_key_jwt",
    }  # fmt: skip
    assert "population.verify" in meta["scopes_supported"]


async def test_client_secret_basic_gets_an_rfc9068_es256_token(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner
) -> None:
    async with oauth_client(app, partner) as client:
        token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer"
    assert 0 < token["expires_in"] <= 3600
    access = token["access_token"]
    header, claims = _header(access), _claims(access)
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    assert claims["iss"] == ISSUER and claims["aud"] == ISSUER + "/api/v1"
    assert claims["client_id"] == claims["sub"] == partner.client_id
    assert claims["scope"] == "population.verify"
    assert {"exp", "iat", "jti"} <= set(claims)
    # the JWKS verifies it
    jwks = KeySet.import_key_set((await http.get("/oauth/jwks")).json())
    assert jwt.decode(access, jwks, algorithms=["ES256"]).claims["client_id"] == partner.client_id


async def test_the_token_works_through_authlibs_client(app: FastAPI, partner: Partner) -> None:
    async with oauth_client(app, partner) as client:
        await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        answer = await client.post(
            "/api/v1/verify", json={"personal_id": ALIVE, "sex": "Nam", "purpose": PURPOSE}
        )
    assert answer.status_code == 200
    assert answer.json()["result"] == "match"


async def test_a_wrong_secret_is_refused(app: FastAPI, partner: Partner) -> None:
    wrong = Partner(partner.client_id, "not-the-secret", partner.organization)
    with pytest.raises(OAuthError, match="invalid_client"):
        await token_for(app, wrong)


async def test_an_unknown_client_is_refused(app: FastAPI, partner: Partner) -> None:
    with pytest.raises(OAuthError, match="invalid_client"):
        await token_for(app, Partner("dc_nobody", partner.client_secret, ""))


async def test_a_scope_the_client_lacks_is_refused(app: FastAPI, partner: Partner) -> None:
    with pytest.raises(OAuthError, match="invalid_scope"):
        await token_for(app, partner, scope="population.lookup")


async def test_a_suspended_client_gets_no_token(app: FastAPI, partner: Partner) -> None:
    with unit_of_work(app.state.sessions) as session:
        clients.suspend(session, partner.client_id)
    with pytest.raises(OAuthError, match="invalid_client"):
        await token_for(app, partner)


async def test_a_rotated_secret_replaces_the_old_one(app: FastAPI, partner: Partner) -> None:
    with unit_of_work(app.state.sessions) as session:
        creds = clients.rotate_secret(session, partner.client_id)
    with pytest.raises(OAuthError, match="invalid_client"):
        await token_for(app, partner)
    assert await token_for(app, Partner(creds.client_id, creds.client_secret, ""))


def _key_partner(app: FastAPI) -> tuple[Partner, ECKey]:
    key = ECKey.generate_key("P-256", parameters={"kid": "partner-key-1"})
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, jwks={"keys": [key.as_dict(private=False)]})
    return partner, key


def _jwt_client(app: FastAPI, client_id: str, key: ECKey) -> AsyncOAuth2Client:
    client = AsyncOAuth2Client(
        client_id,
        key,
        token_endpoint_auth_method="private_key_jwt",
        transport=httpx.ASGITransport(app=app),
        base_url=ISSUER,
    )
    auth = PrivateKeyJWT(TOKEN_URL, alg="ES256", headers={"kid": key.kid})
    client.register_client_auth_method(auth)
    return client


async def test_private_key_jwt_with_the_registered_key_gets_a_token(app: FastAPI) -> None:
    partner, key = _key_partner(app)
    assert partner.client_secret is None
    async with _jwt_client(app, partner.client_id, key) as client:
        token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        answer = await client.post(
            "/api/v1/verify", json={"personal_id": ALIVE, "purpose": PURPOSE}
        )
    assert _claims(token["access_token"])["client_id"] == partner.client_id
    assert answer.status_code == 200


async def test_private_key_jwt_with_any_other_key_is_refused(app: FastAPI) -> None:
    partner, _key = _key_partner(app)
    other = ECKey.generate_key("P-256", parameters={"kid": "partner-key-1"})
    async with _jwt_client(app, partner.client_id, other) as client:
        with pytest.raises(OAuthError, match="invalid_client"):
            await client.fetch_token(TOKEN_URL, grant_type="client_credentials")


async def test_a_replayed_client_assertion_is_refused(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    partner, key = _key_partner(app)
    assertion = PrivateKeyJWT(TOKEN_URL, alg="ES256").sign(
        type("Auth", (), {"client_id": partner.client_id, "client_secret": key})(), TOKEN_URL
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert (await http.post("/oauth/token", data=form)).status_code == 200
    again = await http.post("/oauth/token", data=form)
    assert again.status_code in (400, 401)
    assert again.json()["error"] == "invalid_client"


async def test_a_secret_client_cannot_use_private_key_jwt(app: FastAPI, partner: Partner) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"})
    async with _jwt_client(app, partner.client_id, key) as client:
        with pytest.raises(OAuthError, match="invalid_client"):
            await client.fetch_token(TOKEN_URL, grant_type="client_credentials")


async def test_only_the_client_credentials_grant_is_served(
    http: httpx.AsyncClient, partner: Partner
) -> None:
    answer = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "x", "password": "y"},
        auth=(partner.client_id, partner.client_secret or ""),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


async def test_rotating_the_signing_key_keeps_valid_tokens_working(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner, api_settings: object
) -> None:
    before = await token_for(app, partner)
    with unit_of_work(app.state.sessions) as session:
        new = keys.rotate(session, secret=app.state.exchange.settings.secret_key.get_secret_value())
    after = await token_for(app, partner)
    assert _header(after)["kid"] == new.kid != _header(before)["kid"]
    published = {k["kid"] for k in (await http.get("/oauth/jwks")).json()["keys"]}
    assert {_header(before)["kid"], new.kid} <= published
    for token in (before, after):
        answer = await http.post(
            "/api/v1/verify", json={"personal_id": ALIVE, "purpose": PURPOSE},
            headers=bearer(token),
        )  # fmt: skip
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("part", ["header", "claims"])
async def test_a_client_assertion_nested_past_any_parser_is_refused(
    http: httpx.AsyncClient, part: str
) -> None:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    deep = b64(b"[" * 3_000)
    header, claims = b64(b'{"alg":"ES256","kid":"k"}'), b64(b'{"iss":"dc_x","sub":"dc_x"}')
    assertion = f"{deep}.{claims}" if part == "header" else f"{header}.{deep}"
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": f"{assertion}.{b64(b'x')}",
    }
    response = await http.post("/oauth/token", data=form)
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == "invalid_client"
