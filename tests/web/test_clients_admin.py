"""The administrator's pages for partner organisations and their API clients, and the
auditor's access-log page, through HTTP (the routes' place in the authorisation matrix is
checked by tests/web/test_authorisation_matrix.py, which finds them in the route table).

The token endpoint is exercised on the test's transaction: ``token_app`` rebuilds the
exchange's per-process state on the app's savepoint sessions (conftest's app keeps the state
``create_app`` built on its own engine), so it sees the clients the pages add.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from playwright.sync_api import Browser, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.audit import bulk
from dancu.audit import service as audit
from dancu.config import Settings
from dancu.db import make_engine
from dancu.exchange import clients
from dancu.exchange import routes as exchange_routes
from dancu.exchange.models import ApiClient, Organization
from dancu.officials import policy
from dancu.officials.policy import Action
from dancu.web import i18n
from tests.officials.factories import Enrolled, enrolled
from tests.registry.world import World
from tests.web.conftest import ClientFor, Staff
from tests.web.test_browser import CHROMIUM, Site, _signed_in, browser, site  # noqa: F401

BANK = "Ngân hàng Thử Nghiệm Quản Trị"
PURPOSE = "mở tài khoản thanh toán"


@pytest.fixture
def national_admin(session: Session, settings: Settings, world: World) -> Enrolled:
    return enrolled(session, settings, username="quan-tri-tw", role="system_admin", unit_code="VN")


@pytest.fixture
def token_app(app: FastAPI, settings: Settings) -> FastAPI:
    exchange_routes.install(app, settings)
    return app


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def _browser_like(client: TestClient) -> str:
    """Drop the header conftest sets: the forms' own CSRF field must be enough."""
    client.headers.pop("X-CSRF-Token", None)
    page = client.get("/admin/clients")
    assert page.status_code == 200, page.text
    return _csrf(page.text)


def _clients(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiClient)) or 0


def _add_bank(client: TestClient, csrf: str) -> None:
    added = client.post(
        "/admin/clients/organizations", data={"csrf_token": csrf, "org": BANK, "kind": "bank"}
    )
    assert added.status_code == 303 and added.headers["location"].endswith("done=organization")


def _add_client(client: TestClient, csrf: str, **extra: str) -> httpx.Response:
    data = {
        "csrf_token": csrf,
        "organization": BANK,
        "name": "eKYC",
        "scope": "population.verify",
        "purpose": f"{PURPOSE}\nxác minh khách hàng vay vốn",
        "per_minute": "600",
        "per_day": "100000",
        **extra,
    }
    answer: httpx.Response = client.post("/admin/clients", data=data)
    return answer


def _new_client(client: TestClient) -> tuple[str, str, str]:
    """Through the pages: the bank, then a client; the CSRF token, client id and secret."""
    csrf = _browser_like(client)
    _add_bank(client, csrf)
    added = _add_client(client, csrf)
    found = re.search(r'id="client-id">([^<]+)<.*id="client-secret">([^<]+)<', added.text, re.S)
    assert found, added.text
    client_id, secret = found.groups()
    return csrf, client_id, secret


def _token_status(client: TestClient, client_id: str, secret: str) -> int:
    answer: httpx.Response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return answer.status_code


def test_every_form_of_the_page_carries_a_csrf_field(
    national_admin: Enrolled, client_for: ClientFor, session: Session
) -> None:
    clients.add(
        session, organization=BANK, kind="bank", scopes=["population.verify"], purposes=[PURPOSE]
    )
    client = client_for(national_admin)
    html = client.get("/admin/clients").text
    forms = re.findall(r"<form method=\"post\".*?</form>", html, re.S)
    assert len(forms) >= 5  # suspend, rotate, add client, add organisation, sign out...
    assert all('name="csrf_token"' in form for form in forms)
    inputs = set(re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html))
    assert inputs <= set(re.findall(r'<label for="([^"]+)"', html))


def test_admin_adds_a_client_and_sees_the_secret_once(
    national_admin: Enrolled,
    client_for: ClientFor,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_for(national_admin)
    csrf = _browser_like(client)
    _add_bank(client, csrf)
    with caplog.at_level(logging.INFO, logger="dancu.web.ui_clients"):
        added = _add_client(client, csrf)
    assert added.status_code == 200, added.text
    assert added.headers["cache-control"] == "no-store"
    client_id = re.search(r'id="client-id">([^<]+)<', added.text)
    secret = re.search(r'id="client-secret">([^<]+)<', added.text)
    assert client_id and secret
    row = clients.get_or_raise(session, client_id.group(1))
    assert clients.check_secret(row, secret.group(1))
    assert row.per_minute == 600 and row.per_day == 100_000
    assert row.purposes == sorted([PURPOSE, "xác minh khách hàng vay vốn"])
    assert clients.organization_name(session, row) == BANK
    # Listed afterwards, the secret never again.
    listed = client.get("/admin/clients")
    assert client_id.group(1) in listed.text and PURPOSE in listed.text
    assert secret.group(1) not in listed.text
    # Who did it is recorded; the secret is not.
    logged = caplog.text
    assert f"added client {client_id.group(1)} by quan-tri-tw" in logged
    assert secret.group(1) not in logged


def test_bad_input_is_shown_beside_each_field_and_changes_nothing(
    national_admin: Enrolled, client_for: ClientFor, session: Session
) -> None:
    client = client_for(national_admin)
    csrf = _browser_like(client)
    _add_bank(client, csrf)
    before = _clients(session)
    refused = _add_client(client, csrf, organization="Không Có", per_minute="nhiều", jwks="{")
    assert refused.status_code == 400
    for name in ("organization", "per_minute", "jwks"):
        assert f'id="e-{name}"' in refused.text, name
    assert i18n.REASONS_VI["not valid JSON"] in refused.text
    assert 'value="nhiều"' in refused.text  # what was typed is kept
    deep = _add_client(client, csrf, organization=BANK, jwks="[" * 5_000)  # past any recursion
    assert deep.status_code == 400 and i18n.REASONS_VI["not valid JSON"] in deep.text
    # The service's own checks, beside their fields too.
    no_scope = client.post(
        "/admin/clients",
        data={"csrf_token": csrf, "organization": BANK, "per_minute": "1", "per_day": "1"},
    )
    assert no_scope.status_code == 400 and 'id="e-scope"' in no_scope.text
    assert 'id="e-purpose"' in no_scope.text
    private = ECKey.generate_key("P-256").as_dict(private=True)
    with_private_key = _add_client(client, csrf, jwks=json.dumps({"keys": [private]}))
    assert with_private_key.status_code == 400 and 'id="e-jwks"' in with_private_key.text
    assert "client-secret" not in with_private_key.text
    assert _clients(session) == before
    again = client.post(
        "/admin/clients/organizations", data={"csrf_token": csrf, "org": BANK, "kind": "bank"}
    )
    assert again.status_code == 400 and 'id="e-org"' in again.text
    assert session.scalar(select(func.count()).select_from(Organization)) == 1


def test_a_client_with_public_keys_gets_no_secret(
    national_admin: Enrolled, client_for: ClientFor, session: Session
) -> None:
    client = client_for(national_admin)
    csrf = _browser_like(client)
    _add_bank(client, csrf)
    public = ECKey.generate_key("P-256", parameters={"kid": "k1"}).as_dict(private=False)
    added = _add_client(client, csrf, jwks=json.dumps({"keys": [public]}))
    assert added.status_code == 200, added.text
    assert 'id="client-secret"' not in added.text
    found = re.search(r'id="client-id">([^<]+)<', added.text)
    assert found
    row = clients.get_or_raise(session, found.group(1))
    assert row.auth_method == "private_key_jwt" and row.secret_hash is None
    # No secret to rotate: refused with a message, nothing shown.
    rotated = client.post(
        "/admin/clients/rotate", data={"csrf_token": csrf, "client_id": row.client_id}
    )
    assert rotated.status_code == 400 and "private_key_jwt" in rotated.text
    assert 'id="client-secret"' not in rotated.text


def test_suspended_client_is_refused_at_the_token_endpoint_until_reactivated(
    national_admin: Enrolled, client_for: ClientFor, token_app: FastAPI, session: Session
) -> None:
    client = client_for(national_admin)
    csrf, cid, sec = _new_client(client)
    assert _token_status(client, cid, sec) == 200
    suspended = client.post("/admin/clients/suspend", data={"csrf_token": csrf, "client_id": cid})
    assert suspended.status_code == 303
    page = client.get(suspended.headers["location"])
    assert i18n.VI["clients.suspended_done"] in page.text
    assert clients.get_or_raise(session, cid).status == "suspended"
    assert _token_status(client, cid, sec) == 401
    back = client.post("/admin/clients/reactivate", data={"csrf_token": csrf, "client_id": cid})
    assert back.status_code == 303
    assert _token_status(client, cid, sec) == 200


def test_rotating_shows_a_new_secret_once_and_the_old_one_stops_working(
    national_admin: Enrolled, client_for: ClientFor, token_app: FastAPI, session: Session
) -> None:
    client = client_for(national_admin)
    csrf, cid, old = _new_client(client)
    rotated = client.post("/admin/clients/rotate", data={"csrf_token": csrf, "client_id": cid})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = re.search(r'id="client-secret">([^<]+)<', rotated.text)
    assert new and new.group(1) != old
    assert _token_status(client, cid, old) == 401
    assert _token_status(client, cid, new.group(1)) == 200
    row = clients.get_or_raise(session, cid)
    assert row.secret_rotated_at is not None and row.secret_rotated_at >= row.created_at
    assert new.group(1) not in client.get("/admin/clients").text


def test_unknown_client_is_a_404_page(national_admin: Enrolled, client_for: ClientFor) -> None:
    client = client_for(national_admin)
    answer = client.post("/admin/clients/suspend", data={"client_id": "dc_nobody"})
    assert answer.status_code == 404 and "<html" in answer.text


def test_only_a_national_administrator_sees_partners(
    national_admin: Enrolled, staff: Staff, client_for: ClientFor
) -> None:
    province_admin = client_for(staff.admin)
    refused = province_admin.get("/admin/clients")
    assert refused.status_code == 403 and "national_only" in refused.text
    assert 'href="/admin/clients"' not in province_admin.get("/admin/officials").text
    national = client_for(national_admin)
    assert 'href="/admin/clients"' in national.get("/admin/officials").text
    for role, who in staff.by_role().items():
        if role != "system_admin":
            assert client_for(who).get("/admin/clients").status_code == 403, role
    assert policy.allowed_at("system_admin", Action.MANAGE_CLIENTS, "national")
    assert not policy.allowed_at("system_admin", Action.MANAGE_CLIENTS, "province")
    assert not policy.allowed_at("ministry_auditor", Action.MANAGE_CLIENTS, "national")


def test_organisations_are_paginated(
    national_admin: Enrolled, client_for: ClientFor, session: Session
) -> None:
    for n in range(25):
        clients.create_organization(session, name=f"Tổ chức Thử {n:02d}", kind="other")
    client = client_for(national_admin)
    first = client.get("/admin/clients")
    shown = _headings(first.text)
    assert shown[0] == "Tổ chức Thử 00" and len(shown) == 20 and "Tổ chức Thử 24" not in shown
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = client.get("/admin/clients?offset=20")
    assert _headings(second.text) == [f"Tổ chức Thử {n}" for n in range(20, 25)]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text


def _headings(html: str) -> list[str]:
    """The organisations listed on a page (their headings; the add form lists them all)."""
    return re.findall(r'<h2 id="org-\d+">([^<]+?) <small>', html)


def _read_by_client(session: Session, world: World, client_id: str, when: dt.datetime) -> None:
    entry = audit.AccessEntry(
        actor=client_id,
        actor_kind="client",
        organization=BANK,
        personal_id=world.home[0]["personal_id"],
        fields=["full_name"],
        purpose=PURPOSE,
        channel="api",
        occurred_at=when,
    )
    audit.record(session, [entry])


def test_auditor_filters_the_access_log_by_client_organisation_person_and_time(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    day = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    _read_by_client(session, world, "dc_bank_one", day)
    _read_by_client(session, world, "dc_bank_one", day + dt.timedelta(days=5))
    _read_by_client(session, world, "dc_bank_two", day)
    client = client_for(staff.auditor)
    by_client = client.get("/audit", params={"actor": "dc_bank_one"})
    assert by_client.status_code == 200
    assert by_client.text.count("dc_bank_one") >= 3 and "dc_bank_two" not in by_client.text
    in_range = client.get(
        "/audit", params={"actor": "dc_bank_one", "since": "2026-03-10", "until": "2026-03-10"}
    )
    assert in_range.text.count("2026-03-10 09:00:00") == 1
    assert "2026-03-15" not in in_range.text
    by_org = client.get("/audit", params={"organization": BANK})
    assert "dc_bank_one" in by_org.text and "dc_bank_two" in by_org.text
    person = world.home[0]["personal_id"]
    by_person = client.get("/audit", params={"personal_id": person, "actor": "dc_bank_two"})
    assert "dc_bank_two" in by_person.text and "dc_bank_one" not in by_person.text


def test_auditor_sees_each_person_of_a_batch_verification(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    people = [member["personal_id"] for member in world.home[:3]]
    bulk.append_batch(
        session,
        bulk.BatchEntry(
            actor="dc_bank_batch",
            actor_kind="client",
            organization=BANK,
            purpose=PURPOSE,
            channel="verify",
            request_id="ab" * 16,
            items=[bulk.BatchItem(n, person, ["sex", "status"], "match") for n, person in
                   enumerate(people, start=1)],
        ),
    )  # fmt: skip
    client = client_for(staff.auditor)
    page = client.get("/audit", params={"actor": "dc_bank_batch"})
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>(\d+)\.(\d+)</td>", page.text)
    assert [item for _, item in rows] == ["1", "2", "3"] and len({e for e, _ in rows}) == 1
    for person in people:
        assert person in page.text
    api = client.get("/api/v1/registry/access-log", params={"personal_id": people[1]})
    assert api.status_code == 200, api.text
    (view,) = api.json()["items"]
    assert (view["item"], view["personal_id"], view["fields"]) == (2, people[1], ["sex", "status"])


def test_an_access_log_query_without_person_organisation_or_client_says_so_beside_them(
    staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.auditor)
    assert client.get("/audit").status_code == 200  # the empty form, nothing refused
    refused = client.get("/audit", params={"personal_id": "", "since": "2026-01-01"})
    assert refused.status_code == 400
    for name in ("personal_id", "actor", "organization"):
        assert f'id="e-{name}"' in refused.text, name
    assert i18n.REASONS_VI["give a personal ID, an organisation or a reader"] in refused.text
    assert client_for(staff.commune).get("/audit").status_code == 403


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_in_a_browser_admin_adds_a_client_sees_the_secret_once_and_suspends_it(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    site: Site,  # noqa: F811
) -> None:
    engine = make_engine(site.database_url)
    with Session(engine, expire_on_commit=False) as db:
        admin = enrolled(
            db, site.settings, username="quan-tri-doi-tac", role="system_admin", unit_code="VN"
        )
        db.commit()
    engine.dispose()
    page = _signed_in(browser, site, admin)  # lands on /registry, which is not theirs
    page.goto(f"{site.base}/admin/officials")
    page.get_by_role("link", name="Đối tác khai thác").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cơ quan, tổ chức khai thác")
    page.get_by_label("Tên cơ quan, tổ chức").fill(BANK)
    page.get_by_label("Loại (bắt buộc)", exact=True).select_option("bank")
    page.get_by_role("button", name="Thêm cơ quan, tổ chức").click()
    expect(page.get_by_role("status")).to_contain_text("Đã thêm cơ quan, tổ chức")
    # A mistake first: no purpose, shown beside the field; nothing is added.
    page.get_by_label("Cơ quan, tổ chức (bắt buộc)", exact=True).select_option(BANK)
    page.get_by_role("button", name="Thêm ứng dụng").click()
    expect(page.locator("#e-purpose")).to_be_visible()
    page.get_by_label("Mục đích khai thác").fill(PURPOSE)
    page.get_by_role("button", name="Thêm ứng dụng").click()
    client_id = page.locator("#client-id").inner_text()
    secret = page.locator("#client-secret").inner_text()
    assert client_id.startswith("dc_") and len(secret) >= 40
    with httpx.Client(base_url=site.base) as partner:
        token = {"grant_type": "client_credentials"}
        assert partner.post("/oauth/token", data=token, auth=(client_id, secret)).status_code == 200
        page.get_by_role("link", name="Đối tác khai thác").click()
        assert secret not in page.content()  # shown once, never again
        page.get_by_role("button", name=f"Tạm dừng {client_id}").click()
        expect(page.get_by_role("status")).to_contain_text("Đã tạm dừng ứng dụng")
        refused = partner.post("/oauth/token", data=token, auth=(client_id, secret))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    page.context.close()
