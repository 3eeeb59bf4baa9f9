"""The OAuth 2 authorization server on Authlib, framework-free (STYLE.md: protocol code apart
from the web layer); ``routes`` adapts it to Starlette requests.

* Client credentials grant (RFC 6749 §4.4), the only grant partners need.
* Client authentication (RFC 7591 names): ``client_secret_basic`` (RFC 6749 §2.3.1) and
  ``private_key_jwt`` (RFC 7523 §2.2, OpenID Connect Core §9): a JWT signed with a key of the
  client's registered JWK Set, ``aud`` the token endpoint or the issuer, a ``jti`` never seen
  before (kept in ``client_assertion`` until it expires, so replay fails in every worker).
* JWT access tokens (RFC 9068) signed ES256 with the current key, ``kid`` in the header.
* Metadata (RFC 8414) and the JWKS (RFC 7517 §5).

The e-ID issue extends this same server with OpenID Connect.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import rfc6749
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dancu.enums import ClientAuthMethod, ClientStatus
from dancu.exchange import clients, keys
from dancu.exchange.models import ApiClient, ClientAssertion

TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/oauth/jwks"
METADATA_PATH = "/.well-known/oauth-authorization-server"
API_AUDIENCE_PATH = "/api/v1"
GRANT_TYPE = "client_credentials"
AUTH_METHODS = [m.value for m in ClientAuthMethod]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The server's public URLs, all under the issuer (RFC 8414 §2)."""

    issuer: str

    @property
    def token(self) -> str:
        return self.issuer + TOKEN_PATH

    @property
    def jwks(self) -> str:
        return self.issuer + JWKS_PATH

    @property
    def audience(self) -> str:
        """The ``aud`` of every access token: the verification API (RFC 9068 §3)."""
        return self.issuer + API_AUDIENCE_PATH


class PartnerClient(ClientMixin):  # type: ignore[misc]
    """An ``ApiClient`` row as Authlib's client model (RFC 6749 §2)."""

    def __init__(self, row: ApiClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """All the client's scopes when none is asked; refused if any asked is not its own."""
        if not scope:
            return " ".join(self.row.scopes)
        asked = scope_to_list(scope)
        if not set(asked) <= set(self.row.scopes):
            raise InvalidScopeError("the client is not registered for this scope")
        return " ".join(sorted(set(asked)))

    def check_redirect_uri(self, redirect_uri: str) -> bool:  # noqa: ARG002 (no redirects)
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.check_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Only the client's own method, only while it is active (a suspended client gets
        ``invalid_client`` at once)."""
        return (
            endpoint == "token"
            and self.row.status == ClientStatus.ACTIVE.value
            and method == self.row.auth_method
        )

    def check_response_type(self, response_type: str) -> bool:  # noqa: ARG002
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE


class _ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class _PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 §2.2 client authentication with the client's registered public keys."""

    CLIENT_AUTH_METHOD = ClientAuthMethod.PRIVATE_KEY_JWT.value

    def __init__(self, server: AuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=60)
        self.server = server

    def get_audiences(self) -> list[str]:
        return [self.server.endpoints.token, self.server.endpoints.issuer]

    def extract_assertion(self, assertion: str) -> tuple[Any, dict[str, Any]]:
        """Authlib's, with claims nested past Python's recursion limit refused as an invalid
        assertion: authlib reads them with ``json.loads`` before any signature is checked,
        and the ``RecursionError`` it raises (not a ValueError) was a 500 for anyone."""
        try:
            headers, claims = super().extract_assertion(assertion)
        except RecursionError:
            raise InvalidClientError(description="Invalid JWT payload.") from None
        return headers, claims

    def resolve_client_public_key(self, client: PartnerClient) -> KeySet:
        if not client.row.jwks:
            raise InvalidClientError(description="the client has no registered public key")
        return KeySet.import_key_set(client.row.jwks)  # type: ignore[arg-type]

    def validate_jti(self, claims: Mapping[str, Any], jti: str) -> bool:
        """True the first time a (client, jti) is seen; the row lives until ``exp``."""
        session = self.server.session
        now = dt.datetime.now(dt.UTC)
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        session.execute(delete(ClientAssertion).where(ClientAssertion.expires_at < now))
        try:
            with session.begin_nested():
                session.add(
                    ClientAssertion(client_id=str(claims["sub"]), jti=str(jti)[:200],
                                    expires_at=expires)
                )  # fmt: skip
        except IntegrityError:
            return False
        return True


class _TokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens signed with the current ES256 key (``kid`` in the header)."""

    def __init__(self, server: AuthorizationServer, lifetime: int) -> None:
        super().__init__(issuer=server.endpoints.issuer, alg=keys.ALG, expires_generator=lifetime)
        self.server = server

    def get_jwks(self) -> KeySet:
        return KeySet([self.server.signing_key()])

    def get_audiences(self, client: Any, user: Any, scope: Any) -> str:  # noqa: ARG002
        return self.server.endpoints.audience

    def get_extra_claims(
        self,
        client: PartnerClient,
        grant_type: Any,  # noqa: ARG002 (Authlib's signature)
        user: Any,  # noqa: ARG002
        scope: Any,  # noqa: ARG002
    ) -> dict[str, Any]:
        return {"org": self.server.organization_of(client.row)}


@dataclass(slots=True)
class TokenRequest:
    """What the web layer hands over: method, full URL, headers and the parsed form."""

    method: str
    url: str
    headers: Mapping[str, str]
    form: dict[str, str]


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: TokenRequest) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self.payload = BasicOAuth2Payload(request.form)
        self._form = request.form

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class AuthorizationServer(rfc6749.AuthorizationServer):  # type: ignore[misc]
    """Authlib's server bound to dancu's database; one per process, thread-safe (the
    session of the request being served is thread-local)."""

    def __init__(
        self, sessions: sessionmaker[Session], *, issuer: str, secret: str, token_seconds: int
    ) -> None:
        super().__init__(scopes_supported=sorted(clients.SCOPES))
        self.sessions = sessions
        self.endpoints = Endpoints(issuer.rstrip("/"))
        self.token_seconds = token_seconds
        self._secret = secret
        self._local = threading.local()
        self._signing: tuple[str, Any] | None = None
        self.register_grant(_ClientCredentials)
        self.register_client_auth_method(ClientAuthMethod.PRIVATE_KEY_JWT.value,
                                         _PrivateKeyJwt(self))  # fmt: skip
        self.register_token_generator("default", _TokenGenerator(self, token_seconds))

    @property
    def session(self) -> Session:
        session: Session = self._local.session
        return session

    def signing_key(self) -> Any:
        """The current private key, decrypted once per key per process."""
        row = keys.ensure(self.session, secret=self._secret)
        if self._signing is None or self._signing[0] != row.kid:
            self._signing = (row.kid, keys.private_key(row, secret=self._secret))
        return self._signing[1]

    def organization_of(self, row: ApiClient) -> str:
        return clients.organization_name(self.session, row)

    # ------------------------------------------------------------ Authlib's framework hooks

    def query_client(self, client_id: str) -> PartnerClient | None:
        row = clients.get(self.session, client_id)
        return PartnerClient(row) if row is not None else None

    def save_token(self, token: Any, request: Any) -> None:
        """JWT access tokens are self-contained: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system here."""

    def create_oauth2_request(self, request: TokenRequest) -> OAuth2Request:
        return _Request(request)

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    # ------------------------------------------------------------------------ endpoints

    def token_response(self, request: TokenRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        """RFC 6749 §5: (status, JSON body, headers) for a token request, in one transaction
        (a used assertion ``jti`` and a first signing key are committed with it)."""
        session = self.sessions()
        self._local.session = session
        try:
            try:
                status, body, headers = self.create_token_response(request)
            except OAuth2Error as error:  # raised while reading the request (insecure transport)
                status, body, headers = self.handle_error_response(None, error)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            self._local.session = None
            session.close()
        return status, body, headers

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 §2 authorization server metadata."""
        data = AuthorizationServerMetadata(
            issuer=self.endpoints.issuer,
            token_endpoint=self.endpoints.token,
            jwks_uri=self.endpoints.jwks,
            scopes_supported=sorted(clients.SCOPES),
            response_types_supported=[],
            grant_types_supported=[GRANT_TYPE],
            token_endpoint_auth_methods_supported=AUTH_METHODS,
            token_endpoint_auth_signing_alg_values_supported=["ES256", "RS256"],
        )
        return dict(data)

    def jwks(self) -> dict[str, Any]:
        """RFC 7517 §5 JWK Set: the signing key and the retired keys still trusted."""
        with self.sessions() as session:
            found = keys.published(session, token_seconds=self.token_seconds)
            if not found:
                keys.ensure(session, secret=self._secret)
                session.commit()
                found = keys.published(session, token_seconds=self.token_seconds)
        return {"keys": [k.jwk for k in found]}
