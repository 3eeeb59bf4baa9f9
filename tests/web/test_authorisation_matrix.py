"""The authorisation matrix, generated from the app's route table: every back-office route ×
every role × a target in and out of the official's unit; anonymous callers refused
everywhere but the public pages; CSRF required on every unsafe route.

A route that declares neither an ``Authorize`` dependency nor a place in ``PUBLIC_PATHS``
fails ``test_every_route_has_a_policy``, so a new route cannot ship without a policy.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dancu.config import Settings
from dancu.enums import OfficialRole
from dancu.officials import policy
from dancu.officials.models import Official
from dancu.officials.policy import Action
from dancu.registry.models import DuplicateCandidate
from dancu.web.backoffice import PUBLIC_PATHS
from dancu.web.deps import Authorize
from tests.officials.factories import Enrolled, enrolled
from tests.registry.world import World
from tests.web.conftest import ClientFor, Staff

SAFE = {"GET", "HEAD", "OPTIONS"}
# Routes of other domains, with their own authority (the partner API's OAuth bearer tokens,
# tested in tests/exchange): not part of the officials' matrix.
# Partner routes (bearer tokens, scopes) are tested by their own domains:
# tests/exchange and tests/reconcile.
OTHER_DOMAINS = ("dancu.exchange", "dancu.reconcile")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    action: Action | None
    module: str

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values[m.group(1)], self.path)

    @property
    def targets(self) -> list[str]:
        return re.findall(r"\{(\w+)", self.path)


def _authorize_of(route: APIRoute) -> Authorize | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Authorize):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def routes(app: FastAPI) -> Iterator[Route]:
    """Every (method, full path) of the app, with the action its Authorize declares."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        guard = _authorize_of(route)
        for method in sorted(context.methods or ()):
            yield Route(
                method, context.path, guard.action if guard else None, route.endpoint.__module__
            )


def _ours(route: Route) -> bool:
    return not route.module.startswith(OTHER_DOMAINS)


def test_every_route_has_a_policy(app: FastAPI) -> None:
    missing = [
        f"{r.method} {r.path}"
        for r in routes(app)
        if _ours(r) and r.action is None and r.path not in PUBLIC_PATHS
    ]
    assert not missing, f"routes without an Authorize(action) or a public reason: {missing}"


def test_every_action_is_in_the_policy_table() -> None:
    for action in Action:
        assert any(action in allowed for allowed in policy.RULES.values()), action


def test_the_matrix_covers_every_action_with_a_route(app: FastAPI) -> None:
    declared = {r.action for r in routes(app) if r.action is not None}
    assert declared == set(Action), set(Action) - declared


@dataclass
class Targets:
    """For each path parameter: a value inside the unit of the matrix's officials (commune
    a1, province pa) and one outside (commune b1 of province pb)."""

    inside: dict[str, str]
    outside: dict[str, str]


@pytest.fixture
def targets(session: Session, settings: Settings, world: World) -> Targets:
    now = dt.datetime.now(dt.UTC)

    def pair(a: str, b: str) -> str:
        low, high = sorted((a, b))
        row = DuplicateCandidate(
            personal_id_a=low, personal_id_b=high, reason="test", status="open", found_at=now
        )
        session.add(row)
        session.flush()
        return str(row.id)

    def official(name: str, unit: str) -> str:
        made: Enrolled = enrolled(
            session, settings, username=name, role="commune_officer", unit_code=unit
        )
        return str(made.official.id)

    home, far = world.home, world.far
    return Targets(
        inside={
            "personal_id": home[1]["personal_id"],
            "household_code": "HH-W1",
            "candidate_id": pair(home[0]["personal_id"], home[1]["personal_id"]),
            "official_id": official("dich-a1", world.a1),
            "token": "not-a-token",
            "locale": "en",
        },
        outside={
            "personal_id": far["personal_id"],
            "household_code": "HH-W3",
            "candidate_id": pair(far["personal_id"], world.neighbour["personal_id"]),
            "official_id": official("dich-b1", world.b1),
            "token": "not-a-token",
            "locale": "en",
        },
    )


def _order(route: Route) -> tuple[bool, str]:
    # Signing out everywhere ends the matrix client's session: run those last.
    return ("logout" in route.path or "revoke" in route.path, route.path)


def _send(client: TestClient, route: Route, url: str) -> int:
    if route.method in SAFE:
        return client.request(route.method, url).status_code
    return client.request(route.method, url, data={}).status_code


@pytest.mark.parametrize("role", [r.value for r in OfficialRole])
def test_matrix_role_scope_route(
    role: str,
    app: FastAPI,
    staff: Staff,
    targets: Targets,
    client_for: ClientFor,
    session: Session,
) -> None:
    who = staff.by_role()[role]
    national = who.official.unit_code == "VN"
    client = client_for(who)
    failures = []
    guarded = sorted((r for r in routes(app) if r.action is not None), key=_order)
    for route in guarded:
        for where, values in (("inside", targets.inside), ("outside", targets.outside)):
            if where == "outside" and not route.targets:
                continue  # nothing in the path to be out of scope
            status = _send(client, route, route.url(values))
            level = "national" if national else "local"
            allowed = policy.allowed_at(role, route.action, level)  # type: ignore[arg-type]
            # A national official has no "outside": every target is theirs.
            if not allowed or (where == "outside" and not national):
                ok = status == 403
            else:
                ok = status not in (401, 403) and status < 500
            if not ok:
                failures.append(f"{role} {where}: {route.method} {route.path} -> {status}")
    assert not failures, "\n".join(failures)
    session.expire_all()
    assert session.get(Official, who.official.id) is not None


def test_anonymous_is_refused_everywhere_but_the_public_pages(
    app: FastAPI, targets: Targets, client_for: ClientFor
) -> None:
    client = client_for(None)
    failures = []
    for route in routes(app):
        if not _ours(route) or route.path in PUBLIC_PATHS:
            continue
        response = client.request(route.method, route.url(targets.inside))
        api = route.path.startswith("/api/")
        refused = (
            response.status_code == 401
            if api
            else (response.status_code == 303 and response.headers["location"].startswith("/login"))
        )
        if not refused:
            failures.append(f"{route.method} {route.path} -> {response.status_code}")
    assert not failures, "\n".join(failures)


def test_unsafe_routes_refuse_a_missing_or_wrong_csrf_token(
    app: FastAPI, staff: Staff, targets: Targets, client_for: ClientFor
) -> None:
    failures = []
    for route in sorted(routes(app), key=_order):
        if route.method in SAFE or route.action is None:
            continue
        who = next((w for r, w in staff.by_role().items() if policy.allowed(r, route.action)), None)
        assert who is not None
        client = client_for(who)
        url = route.url(targets.inside)
        for token in (None, "0" * 64):
            headers = {"X-CSRF-Token": token} if token else {}
            client.headers.pop("X-CSRF-Token", None)
            response = client.request(route.method, url, data={}, headers=headers)
            if response.status_code != 403 or "csrf" not in response.text:
                failures.append(
                    f"{route.method} {route.path} token={token} -> {response.status_code}"
                )
    assert not failures, "\n".join(failures)
