"""The server-rendered pages: sign-in with TOTP, cookies, CSRF, lockout, enrolment, forms that
keep what was typed and show errors beside the field, language toggle, security headers."""

from __future__ import annotations

import re

import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.audit.models import AccessLog
from dancu.config import Settings
from dancu.officials import crypto
from dancu.officials import service as officials
from dancu.registry.models import Citizen
from dancu.web import i18n
from dancu.web.deps import session_cookie
from tests.officials.factories import PASSWORD, Enrolled
from tests.registry.world import World
from tests.web.conftest import ClientFor, Staff

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _anonymous(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def _next_code(who: Enrolled) -> str:
    """A code not used yet: enrolment used a step ten minutes ago, so now's is fresh."""
    return pyotp.TOTP(who.secret).now()


def _sign_in(client: TestClient, who: Enrolled, password: str = PASSWORD) -> object:
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": who.official.username,
            "password": password,
            "csrf_token": _csrf(page.text),
        },
    )


def test_sign_in_with_password_then_totp_sets_a_hardened_cookie(
    app: FastAPI, staff: Staff, settings: Settings
) -> None:
    client = _anonymous(app)
    assert client.get("/registry").headers["location"] == "/login?next=%2Fregistry"
    first = _sign_in(client, staff.commune)
    assert first.status_code == 303 and first.headers["location"].startswith("/login/totp")
    # After the password alone, the register is still closed.
    assert client.get("/registry").status_code == 303
    totp = client.get("/login/totp")
    assert totp.status_code == 200
    second = client.post(
        "/login/totp", data={"code": _next_code(staff.commune), "csrf_token": _csrf(totp.text)}
    )
    assert second.status_code == 303 and second.headers["location"] == "/registry"
    cookie = next(
        h for h in second.headers.get_list("set-cookie") if h.startswith(session_cookie(settings))
    )
    assert session_cookie(settings).startswith("__Host-")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags
    home = client.get("/registry")
    assert home.status_code == 200 and "xa-a1" in home.text


def test_wrong_code_and_wrong_password_are_refused(app: FastAPI, staff: Staff) -> None:
    client = _anonymous(app)
    refused = _sign_in(client, staff.commune, password="not the password")
    assert refused.status_code == 401
    assert i18n.VI["login.failed"] in refused.text
    _sign_in(client, staff.commune)
    totp = client.get("/login/totp")
    wrong = client.post("/login/totp", data={"code": "000000", "csrf_token": _csrf(totp.text)})
    assert wrong.status_code == 401 and i18n.VI["login.failed"] in wrong.text
    assert client.get("/registry").status_code == 303


def test_lockout_after_repeated_failures_with_retry_after(
    app: FastAPI, staff: Staff, settings: Settings
) -> None:
    client = _anonymous(app)
    for _ in range(settings.login_max_failures):
        assert _sign_in(client, staff.province, password="wrong").status_code == 401
    locked = _sign_in(client, staff.province)  # even the right password
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "15" in locked.text  # "try again in 15 minutes"


def test_login_without_csrf_token_is_refused(app: FastAPI, staff: Staff) -> None:
    client = _anonymous(app)
    client.get("/login")
    response = client.post(
        "/login", data={"username": staff.commune.official.username, "password": PASSWORD}
    )
    assert response.status_code == 403 and "csrf_failed" in response.text


def test_sign_out_everywhere_ends_every_session(
    app: FastAPI, staff: Staff, client_for: ClientFor
) -> None:
    phone, desk = client_for(staff.commune), client_for(staff.commune)
    assert desk.get("/registry").status_code == 200
    page = phone.get("/registry")
    out = phone.post("/logout/all", data={"csrf_token": _csrf(page.text)})
    assert out.status_code == 303
    assert desk.get("/registry").status_code == 303
    assert phone.get("/registry").status_code == 303


def test_sign_out_ends_this_session_only(app: FastAPI, staff: Staff, client_for: ClientFor) -> None:
    phone, desk = client_for(staff.commune), client_for(staff.commune)
    page = phone.get("/registry")
    assert phone.post("/logout", data={"csrf_token": _csrf(page.text)}).status_code == 303
    assert phone.get("/registry").status_code == 303
    assert desk.get("/registry").status_code == 200


def test_enrolment_page_shows_the_qr_and_sets_password_and_factor(
    app: FastAPI, session: Session, settings: Settings
) -> None:
    enrolment = officials.create(
        session, settings, username="moi-vao", role="system_admin", unit_code="VN", actor="t"
    )
    client = _anonymous(app)
    page = client.get(f"/enrol/{enrolment.token}")
    assert page.status_code == 200
    assert "<svg" in page.text and 'role="img"' in page.text
    secret = crypto.decrypt_secret(settings, enrolment.official.totp_secret_encrypted or "")
    assert secret is not None and secret in page.text
    bad = client.post(
        f"/enrol/{enrolment.token}",
        data={
            "password": "short",
            "password_again": "short",
            "code": "123",
            "csrf_token": _csrf(page.text),
        },
    )
    assert bad.status_code == 400
    assert 'id="e-password"' in bad.text and 'id="e-code"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    good = client.post(
        f"/enrol/{enrolment.token}",
        data={
            "password": PASSWORD,
            "password_again": PASSWORD,
            "code": pyotp.TOTP(secret).now(),
            "csrf_token": _csrf(bad.text),
        },
    )
    assert good.status_code == 303 and good.headers["location"] == "/login?notice=enrolled"
    assert client.get(f"/enrol/{enrolment.token}").status_code == 404


def test_citizen_page_asks_for_a_purpose_before_showing_anything(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    father = world.home[0]
    before = session.scalar(select(func.count()).select_from(AccessLog))
    ask = client.get(f"/registry/citizens/{father['personal_id']}")
    assert ask.status_code == 200
    assert father["full_name"] not in ask.text and 'name="purpose"' in ask.text
    assert session.scalar(select(func.count()).select_from(AccessLog)) == before
    shown = client.get(f"/registry/citizens/{father['personal_id']}?purpose=citizen_request")
    assert shown.status_code == 200 and father["full_name"] in shown.text
    assert "HH-W1" in shown.text  # the household with its members
    assert session.scalar(select(func.count()).select_from(AccessLog)) == before + 1


def test_out_of_scope_citizen_page_is_refused(
    world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    page = client.get(f"/registry/citizens/{world.far['personal_id']}?purpose=citizen_request")
    assert page.status_code == 403
    assert i18n.VI["error.out_of_scope"] in page.text
    assert world.far["full_name"] not in page.text


def test_search_page_finds_without_diacritics(
    world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    page = client.get("/registry", params={"q": "tran van bo", "purpose": "citizen_request"})
    assert page.status_code == 200 and "Trần Văn Bố" in page.text
    missing_purpose = client.get("/registry", params={"q": "tran van bo"})
    assert missing_purpose.status_code == 400 and 'id="e-purpose"' in missing_purpose.text
    assert "Trần Văn Bố" not in missing_purpose.text


def test_birth_form_keeps_what_was_typed_and_shows_errors_beside_fields(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    form = client.get("/registry/births/new")
    people = session.scalar(select(func.count()).select_from(Citizen))
    refused = client.post(
        "/registry/births/new",
        data={
            "csrf_token": _csrf(form.text),
            "full_name": "Trần Thị Bé",
            "birth_date": "2025-02-30",
            "sex": "F",
            "permanent_commune_code": world.b1,
        },
    )
    assert refused.status_code in (400, 403)
    assert 'id="e-birth_date"' in refused.text
    assert 'value="Trần Thị Bé"' in refused.text
    assert session.scalar(select(func.count()).select_from(Citizen)) == people
    done = client.post(
        "/registry/births/new",
        data={
            "csrf_token": _csrf(form.text),
            "full_name": "Trần Thị Bé",
            "birth_date": "2026-01-15",
            "sex": "F",
            "permanent_commune_code": world.a1,
            "household_code": "HH-W1",
            "relationship_to_head": "child",
            "father_id": world.home[0]["personal_id"],
            "mother_id": world.home[1]["personal_id"],
        },
    )
    assert done.status_code == 303, done.text
    page = client.get(done.headers["location"])
    assert page.status_code == 200 and "Trần Thị Bé" in page.text
    assert i18n.VI["birth.done"] in page.text


def test_a_stale_form_is_refused_with_a_clear_message(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    child = world.home[2]["personal_id"]
    person = session.get(Citizen, child)
    assert person is not None
    stale_version = person.version
    form = client.get(f"/registry/citizens/{child}/correct?version={stale_version}")
    data = {
        "csrf_token": _csrf(form.text),
        "version": str(stale_version),
        "field": "religion",
        "value": "Phật giáo",
        "reason": "bổ sung",
        "legal_basis": "Luật Hộ tịch 2014",
    }
    assert client.post(f"/registry/citizens/{child}/correct", data=data).status_code == 303
    again = client.post(f"/registry/citizens/{child}/correct", data={**data, "value": "Không"})
    assert again.status_code == 409
    assert "changed by someone else" in again.text


def test_language_toggle_switches_to_english(staff: Staff, client_for: ClientFor) -> None:
    client = client_for(staff.commune)
    assert i18n.VI["search.title"] in client.get("/registry").text
    switched = client.get("/lang/en?next=/registry")
    assert switched.status_code == 303 and switched.headers["location"] == "/registry"
    page = client.get("/registry")
    assert i18n.EN["search.title"] in page.text and '<html lang="en">' in page.text
    # Never a redirect to another site.
    assert client.get("/lang/en?next=//evil.example").headers["location"] == "/login"


def test_pages_are_accessible_and_carry_security_headers(
    staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    page = client.get("/registry/births/new")
    html = page.text
    assert 'href="#main"' in html and '<main id="main"' in html and "<nav" in html
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    # Every input has a label tied to it.
    inputs = set(re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html))
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    assert inputs and inputs <= labels


def test_catalogues_hold_the_same_keys() -> None:
    assert set(i18n.VI) == set(i18n.EN)


def test_admin_adds_an_official_and_sees_the_link_once(
    session: Session, staff: Staff, world: World, client_for: ClientFor
) -> None:
    client = client_for(staff.admin)
    page = client.get("/admin/officials")
    assert page.status_code == 200
    outside = client.post(
        "/admin/officials",
        data={
            "csrf_token": _csrf(page.text),
            "username": "xa-ngoai",
            "role": "commune_officer",
            "unit": world.b1,
        },
    )
    assert outside.status_code == 403 and 'id="e-unit"' in outside.text
    added = client.post(
        "/admin/officials",
        data={
            "csrf_token": _csrf(page.text),
            "username": "xa-moi",
            "role": "commune_officer",
            "unit": world.a2,
        },
    )
    assert added.status_code == 200
    link = re.search(r'id="enrolment-link">([^<]+)<', added.text)
    assert link and link.group(1).startswith("https://testserver/enrol/")
    token = link.group(1).rsplit("/", 1)[1]
    assert officials.by_enrolment_token(session, token).username == "xa-moi"
    assert token not in client.get("/admin/officials").text


def test_action_forms_show_only_the_number_and_carry_the_version_read(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    child = world.home[2]
    before = session.scalar(select(func.count()).select_from(AccessLog))
    for action, title in (
        ("move", "move.title"),
        ("temporary", "temporary.title"),
        ("correct", "correct.title"),
        ("death", "death.title"),
    ):
        page = client.get(f"/registry/citizens/{child['personal_id']}/{action}?version=7")
        assert page.status_code == 200, action
        assert f"<h1>{i18n.VI[title]}</h1>" in page.text
        assert 'name="version" value="7"' in page.text
        assert child["full_name"] not in page.text  # opening a form is not a read
    assert session.scalar(select(func.count()).select_from(AccessLog)) == before
