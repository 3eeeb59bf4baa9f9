"""The back office through HTTP: the real app on the test's transaction, a small world of
synthetic people in three communes, and one signed-in official per role.

The app's sessions join the test's connection with savepoints, so each request commits only
to the test's transaction, which is rolled back at the end like every other test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dancu.app import create_app
from dancu.config import Settings
from dancu.web.deps import session_cookie
from tests.officials.factories import Enrolled, enrolled, settings_for, sign_in
from tests.registry import world as worlds

ClientFor = Callable[[Enrolled | None], TestClient]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
def app(settings: Settings, session: Session) -> Iterator[FastAPI]:
    application = create_app(settings)
    application.state.engine.dispose()
    application.state.sessions = sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield application


@pytest.fixture
def world(session: Session, tmp_path: Path) -> worlds.World:
    return worlds.build(session, tmp_path)


@dataclass
class Staff:
    """One enrolled official per role: commune ``a1``, province ``pa``, national auditor,
    administrator of province ``pa``; and an officer of commune ``b1`` (another province)."""

    commune: Enrolled
    province: Enrolled
    auditor: Enrolled
    admin: Enrolled
    far_commune: Enrolled

    def by_role(self) -> dict[str, Enrolled]:
        return {
            "commune_officer": self.commune,
            "province_officer": self.province,
            "ministry_auditor": self.auditor,
            "system_admin": self.admin,
        }


@pytest.fixture
def staff(session: Session, settings: Settings, world: worlds.World) -> Staff:
    def make(username: str, role: str, unit: str) -> Enrolled:
        return enrolled(session, settings, username=username, role=role, unit_code=unit)

    return Staff(
        commune=make("xa-a1", "commune_officer", world.a1),
        province=make("tinh-pa", "province_officer", world.pa),
        auditor=make("thanh-tra", "ministry_auditor", "VN"),
        admin=make("quan-tri", "system_admin", world.pa),
        far_commune=make("xa-b1", "commune_officer", world.b1),
    )


@pytest.fixture
def client_for(app: FastAPI, session: Session, settings: Settings) -> Iterator[ClientFor]:
    """``client_for(official)``: a TestClient with that official's session cookie (or none
    for ``None``: anonymous) and its CSRF token in ``client.csrf``."""
    clients: list[TestClient] = []

    def make(who: Enrolled | None) -> TestClient:
        client = TestClient(app, base_url="https://testserver", follow_redirects=False)
        clients.append(client)
        client.csrf = None  # type: ignore[attr-defined]
        if who is not None:
            token = sign_in(session, settings, who)
            client.cookies.set(session_cookie(settings), token)
            me = client.get("/api/v1/registry/session")
            assert me.status_code == 200, me.text
            client.csrf = me.json()["csrf_token"]  # type: ignore[attr-defined]
            client.headers["X-CSRF-Token"] = client.csrf  # type: ignore[attr-defined]
        return client

    yield make
    for client in clients:
        client.close()


def version_of(client: TestClient, personal_id: str) -> int:
    """The record version a client reads before changing the person, as a real client does
    (``GET /citizens/{id}`` → ``version``)."""
    response = client.get(
        f"/api/v1/registry/citizens/{personal_id}", params={"purpose": "civil_status"}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def member_versions(client: TestClient, personal_id: str) -> dict[str, int]:
    """The versions of every member of the person's household, read the same way
    (``GET /citizens/{id}`` → ``household.members[].version``)."""
    response = client.get(
        f"/api/v1/registry/citizens/{personal_id}", params={"purpose": "civil_status"}
    )
    assert response.status_code == 200, response.text
    members = response.json()["household"]["members"]
    return {m["personal_id"]: int(m["version"]) for m in members}
