"""Request plumbing of the back office: the unit of work, the signed-in official, CSRF.

Every back-office route depends on ``Authorize(action)``, which (in this order) finds the
session behind the cookie (401 without one), checks the CSRF token on unsafe methods (403),
checks the role against ``officials.policy`` (403) and, when the path names a person, a
household, a duplicate pair or an official, checks that it lies in the official's unit
(403). The authorisation-matrix test reads these dependencies off the app's route table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from dancu.config import Settings
from dancu.db import unit_of_work
from dancu.errors import ForbiddenError, UnauthorizedError
from dancu.officials import crypto, flows, policy, review
from dancu.officials import service as officials
from dancu.officials.flows import Actor
from dancu.officials.models import Official
from dancu.officials.policy import Action
from dancu.registry.scope import Scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_cookie(settings: Settings) -> str:
    """``__Host-`` cookies are only accepted over HTTPS, for the whole site, from this host."""
    return "__Host-dancu_session" if settings.cookie_secure else "dancu_session"


def pre_cookie(settings: Settings) -> str:
    """The anonymous pre-session cookie that binds the sign-in forms' CSRF token."""
    return "__Host-dancu_pre" if settings.cookie_secure else "dancu_pre"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def db(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response leaves (so an access-log
    entry is durable before the data it records is sent), rolled back on any error."""
    with unit_of_work(request.app.state.sessions) as session:
        yield session


DbSession = Annotated[Session, Depends(db, scope="function")]


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a request carries: the header (API, scripts) or the form field."""
    if request.method in SAFE_METHODS:
        return None
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in official of this request."""

    official_id: int
    username: str
    full_name: str | None
    role: str
    unit_code: str
    organization: str
    scope: Scope
    csrf_token: str
    request_id: str | None

    def actor(self, channel: str) -> Actor:
        return Actor(
            username=self.username,
            role=self.role,
            organization=self.organization,
            scope=self.scope,
            channel=channel,
            request_id=self.request_id,
        )

    def may(self, action: Action) -> bool:
        return policy.allowed(self.role, action)


def principal_from(request: Request, official: Official, token: str) -> Principal:
    settings = settings_of(request)
    return Principal(
        official_id=official.id,
        username=official.username,
        full_name=official.full_name,
        role=official.role,
        unit_code=official.unit_code,
        organization=official.organization,
        scope=Scope.parse(official.unit_code),
        csrf_token=crypto.csrf_token(settings, token),
        request_id=getattr(request.state, "request_id", None),
    )


def signed_in(request: Request, session: Session) -> tuple[Principal, str] | None:
    """The full (two-factor) session behind the cookie and its token, or None."""
    settings = settings_of(request)
    token = request.cookies.get(session_cookie(settings))
    if not token:
        return None
    found = officials.resolve(session, settings, token)
    if found is None or found[0].stage != "full":
        return None
    return principal_from(request, found[1], token), token


def _person(session: Session, principal: Principal, value: str) -> None:
    flows.person(session, principal.actor("web"), value)


def _household(session: Session, principal: Principal, value: str) -> None:
    flows.household(session, principal.actor("web"), value)


def _candidate(session: Session, principal: Principal, value: str) -> None:
    review.candidate(session, principal.actor("web"), value)


def _official(session: Session, principal: Principal, value: str) -> None:
    officials.managed(session, principal.scope, value)


# A path parameter that names something scoped, and how to check that it lies in the
# official's unit before the route runs (so an out-of-scope target is refused whatever the
# body says). A route with such a parameter is checked whichever action it declares.
ScopeCheck = Callable[[Session, Principal, str], None]
TARGET_CHECKS: dict[str, ScopeCheck] = {
    "personal_id": _person,
    "household_code": _household,
    "candidate_id": _candidate,
    "official_id": _official,
}


class Authorize:
    """The dependency every back-office route declares: signed in, CSRF, role, scope."""

    def __init__(self, action: Action) -> None:
        self.action = action

    def __call__(
        self,
        request: Request,
        session: DbSession,
        csrf: Annotated[str | None, Depends(submitted_csrf)],
    ) -> Principal:
        found = signed_in(request, session)
        if found is None:
            raise UnauthorizedError("sign in first", code="not_signed_in")
        principal, token = found
        if request.method not in SAFE_METHODS and not crypto.csrf_valid(
            settings_of(request), token, csrf
        ):
            raise ForbiddenError(
                "the form is out of date or was not sent by this site; reload and try again",
                code="csrf_failed",
            )
        policy.authorize(principal.role, self.action)
        for name, value in request.path_params.items():
            check = TARGET_CHECKS.get(name)
            if check is not None:
                check(session, principal, str(value))
        return principal


def authorize(action: Action) -> Authorize:
    return Authorize(action)
