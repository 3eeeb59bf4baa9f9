"""Bearer token validation on the hot path (RFC 6750, RFC 9068 §4), and the client cache.

A partner sends the same token with thousands of requests, so a token whose signature and
claims were checked once is remembered (by its exact text) until it expires: the ES256
verification (about 0.1 ms) is paid once per token per process. ``exp`` is checked on every
use. Keys are trusted by ``kid`` from the published set (``keys.published``), refreshed when
an unknown ``kid`` arrives (at most once a second) and every minute.

Client state (status, organisation, purposes, quota) is cached per process for
``DANCU_EXCHANGE_CLIENT_CACHE_SECONDS`` (2 s) and forgotten at once when this process
changes the client. Another process (another worker, the CLI) may change it meanwhile: the
verification's group commit re-reads the status of every client in each batch, in the
transaction that writes the log, so a suspended client is refused at once everywhere;
only the no-op endpoint and the quota figures may lag by the cache's lifetime.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from dancu.exchange import clients, keys
from dancu.exchange.exceptions import InvalidToken

_MAX_CACHED_TOKENS = 100_000
_KEY_REFRESH_SECONDS = 60.0
_UNKNOWN_KID_BACKOFF = 1.0
_LEEWAY = 5


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The checked claims of an access token that this API needs."""

    client_id: str
    scopes: frozenset[str]
    expires_at: int
    jti: str


@dataclass(frozen=True, slots=True)
class ClientState:
    """What the API needs to know about a client on every request."""

    client_id: str
    organization: str
    active: bool
    purposes: frozenset[str]
    per_minute: int
    per_day: int


class TokenValidator:
    """Checks bearer tokens against the published keys; one per process, thread-safe."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        issuer: str,
        audience: str,
        token_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._issuer = issuer
        self._audience = audience
        self._token_seconds = token_seconds
        self._clock = clock
        self._keys: dict[str, ECKey] = {}
        self._keys_at = -1e18
        self._lock = threading.Lock()
        self._cache: dict[str, AccessToken] = {}
        self._registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=_LEEWAY,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            client_id={"essential": True},
            sub={"essential": True},
        )

    def forget(self) -> None:
        """Drop every remembered token and key (after a key is withdrawn)."""
        with self._lock:
            self._cache.clear()
            self._keys = {}
            self._keys_at = -1e18

    def _refresh_keys(self, now: float) -> None:
        with self._sessions() as session:
            found = keys.published(session, token_seconds=self._token_seconds)
        self._keys = {k.kid: ECKey.import_key(k.jwk) for k in found}  # type: ignore[arg-type]
        self._keys_at = now

    def _key(self, kid: str, now: float) -> ECKey:
        with self._lock:
            stale = now - self._keys_at > _KEY_REFRESH_SECONDS
            unknown = kid not in self._keys and now - self._keys_at > _UNKNOWN_KID_BACKOFF
            if stale or unknown:
                self._refresh_keys(now)
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("the token is signed by a key this server does not trust")
        return key

    def validate(self, authorization: str | None) -> AccessToken:
        """The token of an ``Authorization: Bearer`` header, checked; InvalidToken if it is
        missing, malformed, expired, forged or signed by an unknown key."""
        if not authorization:
            raise InvalidToken("send an access token: Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("send an access token: Authorization: Bearer <token>")
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + _LEEWAY < now:
                raise InvalidToken("the access token has expired; get a new one")
            return cached
        checked = self._check(token, now)
        if len(self._cache) >= _MAX_CACHED_TOKENS:
            self._cache.clear()
        self._cache[token] = checked
        return checked

    def _check(self, token: str, now: float) -> AccessToken:
        header = _header(token)
        if header.get("alg") != keys.ALG or header.get("typ", "").lower() not in (
            "at+jwt", "application/at+jwt"
        ):  # fmt: skip
            raise InvalidToken("not an access token of this server (RFC 9068 ES256 JWT)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("the access token names no key (kid)")
        key = self._key(kid, now)
        try:
            decoded = jwt.decode(token, key, algorithms=[keys.ALG])
            self._registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"the access token is not valid: {_reason(exc)}") from None
        claims = decoded.claims
        scope = claims.get("scope") or ""
        return AccessToken(
            client_id=str(claims["client_id"]),
            scopes=frozenset(str(scope).split()),
            expires_at=int(claims["exp"]),
            jti=str(claims.get("jti", "")),
        )


def _header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, or InvalidToken."""
    try:
        obj = jws.extract_compact(token.encode("ascii"))
        return dict(obj.headers())
    except (JoseError, ValueError, UnicodeEncodeError):
        raise InvalidToken("the access token is malformed") from None


def _reason(exc: Exception) -> str:
    description = getattr(exc, "description", None) or getattr(exc, "error", None)
    return str(description or type(exc).__name__)


class ClientCache:
    """Client state by id, kept ``ttl`` seconds; forgotten at once on a change made in this
    process (``clients.on_change``)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._clock = clock
        self._states: dict[str, tuple[float, ClientState]] = {}
        self._loading: dict[str, asyncio.Future[ClientState]] = {}
        clients.on_change(self.forget)

    def forget(self, client_id: str) -> None:
        self._states.pop(client_id, None)

    def cached(self, client_id: str) -> ClientState | None:
        """The state if it is fresh, else None (the caller loads it off the event loop)."""
        found = self._states.get(client_id)
        if found is not None and self._clock() - found[0] <= self._ttl:
            return found[1]
        return None

    async def get(self, client_id: str) -> ClientState:
        """The client's state: from the cache, else read off the event loop, once.

        When the cached state expires, every request of that client in flight misses at the
        same moment; they all wait for one read instead of each taking a pooled connection
        (64 concurrent reads opened connections beyond the pool every two seconds).
        """
        state = self.cached(client_id)
        if state is not None:
            return state
        loop = asyncio.get_running_loop()
        pending = self._loading.get(client_id)
        if pending is not None and pending.get_loop() is loop:
            return await asyncio.shield(pending)
        future: asyncio.Future[ClientState] = loop.create_future()
        self._loading[client_id] = future
        try:
            state = await run_in_threadpool(self.load, client_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            future.set_result(state)
        finally:
            if self._loading.get(client_id) is future:
                del self._loading[client_id]
        return state

    def load(self, client_id: str) -> ClientState:
        """Read the client from the database (blocking) and remember it."""
        with self._sessions() as session:
            row = clients.get(session, client_id)
            if row is None:
                raise InvalidToken("the token's client does not exist")
            state = ClientState(
                client_id=row.client_id,
                organization=clients.organization_name(session, row),
                active=row.status == "active",
                purposes=frozenset(row.purposes),
                per_minute=row.per_minute,
                per_day=row.per_day,
            )
        self._states[client_id] = (self._clock(), state)
        return state
