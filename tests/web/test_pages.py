"""The server-rendered pages: sign-in with TOTP, cookies, CSRF, lockout, enrolment, forms that
keep what was typed and show errors beside the field, language toggle, security headers."""

from __future__ import annotations

import datetime as dt
import re

import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.audit.models import AccessLog
from dancu.config import Settings
from dancu.officials import crypto, records
from dancu.officials import service as officials
from dancu.registry import service as registry
from dancu.registry.models import Citizen, CitizenHistory, CivilEvent, Household, Residence
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


def test_partial_birth_dates_are_shown_as_far_as_they_are_known(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    """A birth date known to the year or the month is never shown as a full date: not on the
    record, the household table, the search results, nor in the API."""
    mother = session.get(Citizen, world.home[1]["personal_id"])
    assert mother is not None
    mother.birth_date, mother.birth_date_precision = dt.date(1987, 1, 1), "year"
    session.flush()
    client = client_for(staff.commune)
    father, child = world.home[0]["personal_id"], world.home[2]["personal_id"]
    page = client.get(f"/registry/citizens/{father}?purpose=citizen_request").text
    household = page.split('id="household"', 1)[1].split("</table>", 1)[0]
    assert "<td>1987</td>" in household and "<td>2012-09</td>" in household
    assert "1987-01-01" not in page and "2012-09-01" not in page
    own = client.get(f"/registry/citizens/{child}?purpose=citizen_request").text
    shown = own.split('id="record"', 1)[1].split("</dl>", 1)[0]
    assert "2012-09" in shown and "2012-09-01" not in own
    found = client.get("/registry", params={"q": "le thi me", "purpose": "citizen_request"})
    assert "<td>1987</td>" in found.text and "1987-01-01" not in found.text
    detail = client.get(f"/api/v1/registry/citizens/{father}?purpose=citizen_request").json()
    born = {m["personal_id"]: m["birth_date"] for m in detail["household"]["members"]}
    assert born[mother.personal_id] == "1987" and born[child] == "2012-09"
    listed = client.get(
        "/api/v1/registry/citizens", params={"q": "le thi me", "purpose": "citizen_request"}
    ).json()["items"]
    assert [item["birth_date"] for item in listed] == ["1987"]
    record = client.get(f"/api/v1/registry/citizens/{child}?purpose=citizen_request").json()
    assert record["record"]["birth_date"] == "2012-09"
    assert record["record"]["birth_date_precision"] == "month"


def test_signing_in_again_works_with_the_cookie_of_an_ended_session(
    app: FastAPI, session: Session, staff: Staff, settings: Settings
) -> None:
    """An official whose session ended (idle, revoked) still holds its cookie: the sign-in and
    enrolment forms must not refuse them as a forged form."""
    client = _anonymous(app)
    client.cookies.set(session_cookie(settings), crypto.new_token())  # a session that ended
    again = _sign_in(client, staff.commune)
    assert again.status_code == 303 and again.headers["location"].startswith("/login/totp")
    totp = client.get("/login/totp")
    done = client.post(
        "/login/totp", data={"code": _next_code(staff.commune), "csrf_token": _csrf(totp.text)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/registry"
    assert client.get("/registry").status_code == 200
    # The same browser opens an enrolment link while signed in.
    enrolment = officials.create(
        session,
        settings,
        username="xa-a1-moi",
        role="commune_officer",
        unit_code=staff.commune.official.unit_code,
        actor="test",
    )
    page = client.get(f"/enrol/{enrolment.token}")
    typed = {"password": "ngan", "password_again": "ngan", "code": "1"}
    refused = client.post(
        f"/enrol/{enrolment.token}", data={**typed, "csrf_token": _csrf(page.text)}
    )
    assert refused.status_code == 400 and 'id="e-password"' in refused.text


def _changes(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (CitizenHistory, Residence, CivilEvent, Household)
    )


HIDDEN = re.compile(r'<input type="hidden" name="((?:version|v_\d{12}))" value="(\d*)"')
ACTION_LINK = re.compile(r'href="(/registry/citizens/\d{12}/\w+\?version=\d+)"')


def _opened(client: TestClient, path: str) -> tuple[str, dict[str, str]]:
    """Open an action form as an official does: a person's form through its link on the
    citizen page (which carries the version read), then the form's hidden fields (the
    versions) that the browser sends back with what was typed."""
    if path.startswith("/registry/citizens/"):
        page = client.get(path.rsplit("/", 1)[0], params={"purpose": "civil_status"})
        assert page.status_code == 200, path
        links = [link for link in ACTION_LINK.findall(page.text) if link.startswith(path + "?")]
        assert links, f"no link to {path} on the citizen page"
        path = links[0]
    form = client.get(path)
    assert form.status_code == 200, path
    return form.text, dict(HIDDEN.findall(form.text))


def test_every_kind_of_bad_input_is_shown_beside_its_field_and_changes_nothing(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    """The issue's list through the pages: a wrong type, an impossible date, an unknown code,
    a move into a commune outside the unit, a death before the birth, a household left
    without a head. Each comes back with the reason beside the field, and nothing changes."""
    client = client_for(staff.commune)
    father, mother, child = (p["personal_id"] for p in world.home)
    why = {"reason": "kiểm tra", "legal_basis": "Luật Cư trú 2020"}
    # (page, what was typed, status, the field at fault, the reason shown, in Vietnamese)
    cases: list[tuple[str, dict[str, str | list[str]], int, str | None, str]] = [
        (f"/registry/citizens/{child}/temporary", {"commune_code": world.a1, "address": "x",
         "valid_from": "2026-01-01", "valid_until": "sang năm", **why}, 400, "valid_until",
         "cần ngày dạng năm-tháng-ngày"),
        (f"/registry/citizens/{child}/death", {"death_date": "2025-02-30"}, 400, "death_date",
         "2025-02-30 không phải ngày có thật"),
        (f"/registry/citizens/{child}/move", {"commune_code": "99999", **why}, 400,
         "commune_code", "không phải mã xã/phường"),
        (f"/registry/citizens/{child}/move", {"commune_code": world.b1, **why}, 403,
         "commune_code", "ngoài đơn vị của bạn"),
        (f"/registry/citizens/{mother}/death", {"death_date": "1900-01-01"}, 400, "death_date",
         "trước ngày sinh"),
        ("/registry/households/HH-W1/split", {"new_head_id": father, "leave": [mother, child],
         f"rel_{mother}": "spouse", f"rel_{child}": "child", **why}, 400, "new_head_id",
         "chủ hộ ở lại hộ cũ"),
        (f"/registry/citizens/{father}/death", {"death_date": "2026-02-01"}, 400, None,
         "đang là chủ hộ có thành viên khác"),
    ]  # fmt: skip
    before = _changes(session)
    for path, data, status, field, reason in cases:
        form, hidden = _opened(client, path)
        assert hidden, path
        refused = client.post(path, data={**hidden, **data, "csrf_token": _csrf(form)})
        assert refused.status_code == status, (path, data, refused.text[:500])
        assert 'id="form-errors"' in refused.text, path
        if field is not None:
            assert f'id="e-{field}"' in refused.text, (path, field)
            assert f'aria-describedby="e-{field}"' in refused.text, (path, field)
        assert reason in refused.text, (path, reason)
        assert _changes(session) == before, path


def test_a_refused_household_form_keeps_the_versions_first_read(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    """A household form refused for a mistake still carries the versions read when it was
    opened: a change someone made to a member meanwhile is not overwritten by resubmitting."""
    client = client_for(staff.commune)
    father, mother, child = (p["personal_id"] for p in world.home)
    path = "/registry/households/HH-W1/head"
    versions = re.compile(r'name="v_(\d{12})" value="(\d+)"')
    opened = client.get(path)
    read = dict(versions.findall(opened.text))
    assert set(read) == {father, mother, child}
    # Meanwhile another official corrects the child's record.
    other = client_for(staff.province)
    now = other.get(f"/api/v1/registry/citizens/{child}?purpose=citizen_request").json()
    corrected = other.post(
        f"/api/v1/registry/citizens/{child}/corrections",
        json={"field": "religion", "value": "Phật giáo", "reason": "bổ sung",
              "legal_basis": "Luật Hộ tịch 2014", "version": now["version"]},
    )  # fmt: skip
    assert corrected.status_code == 200, corrected.text
    data = {
        "csrf_token": _csrf(opened.text),
        "new_head_id": mother,
        f"rel_{father}": "spouse",
        f"rel_{child}": "child",
        **{f"v_{pid}": v for pid, v in read.items()},
    }
    refused = client.post(path, data=data)  # no reason given
    assert refused.status_code == 400 and 'id="e-reason"' in refused.text
    kept = dict(versions.findall(refused.text))
    assert kept == read  # not the child's new version
    resent = {**data, **{f"v_{pid}": v for pid, v in kept.items()}, "reason": "chủ hộ mới"}
    again = client.post(path, data=resent)
    assert again.status_code == 409
    household = session.get(Household, "HH-W1")
    assert household is not None and household.head_id == father


def test_a_long_timeline_is_paginated_newest_first(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    child = session.get(Citizen, world.home[2]["personal_id"])
    assert child is not None
    start = dt.datetime.now(dt.UTC)
    for n in range(records.TIMELINE_PAGE + 5):
        registry.update(
            session, child, {"religion": f"tôn giáo {n:02d}"}, actor="xa-a1", source="official",
            now=start + dt.timedelta(minutes=n),
        )  # fmt: skip
    client = client_for(staff.commune)
    base = f"/registry/citizens/{child.personal_id}?purpose=data_cleaning"
    first = client.get(base).text.split('id="timeline"', 1)[1]
    newest = f"tôn giáo {records.TIMELINE_PAGE + 4:02d}"
    assert newest in first and "tôn giáo 03" not in first
    older = re.search(r'<a rel="next" href="([^"]+)">' + i18n.VI["timeline.older"], first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text.split('id="timeline"', 1)[1]
    assert "tôn giáo 03" in second and f"<td>{newest}</td>" not in second
    assert i18n.VI["timeline.newer"] in second and i18n.VI["timeline.older"] not in second
    api = f"/api/v1/registry/citizens/{child.personal_id}?purpose=data_cleaning"
    page = client.get(api).json()
    assert len(page["timeline"]) == records.TIMELINE_PAGE
    assert page["timeline"][0]["new_value"] == newest
    rest = client.get(f"{api}&timeline_offset={page['timeline_next']}").json()
    assert len(rest["timeline"]) == 5 and rest["timeline_next"] is None
    assert client.get(f"{api}&timeline_offset=-1").status_code in (400, 422)


def test_a_household_form_without_a_members_version_is_refused_and_changes_nothing(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    """A member whose version the form does not carry (one who joined the household after
    the form was opened) is not changed blindly: the page names the member and nothing
    changes."""
    client = client_for(staff.commune)
    father, mother, child = (p["personal_id"] for p in world.home)
    path = "/registry/households/HH-W1/head"
    form, hidden = _opened(client, path)
    assert set(hidden) == {f"v_{pid}" for pid in (father, mother, child)}
    del hidden[f"v_{child}"]
    before = _changes(session)
    refused = client.post(
        path,
        data={
            **hidden,
            "new_head_id": mother,
            f"rel_{father}": "spouse",
            f"rel_{child}": "child",
            "reason": "kiểm tra",
            "legal_basis": "Luật Cư trú 2020",
            "csrf_token": _csrf(form),
        },
    )
    assert refused.status_code == 400, refused.text[:500]
    assert 'id="form-errors"' in refused.text
    assert f"thiếu phiên bản hồ sơ {child} bạn đã xem" in refused.text
    assert _changes(session) == before
    session.expire_all()
    household = session.get(Household, "HH-W1")
    assert household is not None and household.head_id == father


def test_a_change_form_opened_without_the_version_read_goes_back_to_the_citizen_page(
    world: World, staff: Staff, client_for: ClientFor
) -> None:
    """A typed or stale address of a change form carries no record version; the form could
    only be refused, so the official is sent to the citizen's page, whose links carry it."""
    client = client_for(staff.commune)
    child = world.home[2]["personal_id"]
    for action in ("move", "temporary", "correct", "death"):
        for query in ("", "?version=", "?version=abc"):
            answer = client.get(
                f"/registry/citizens/{child}/{action}{query}", follow_redirects=False
            )
            assert answer.status_code == 303, (action, query)
            assert answer.headers["location"] == f"/registry/citizens/{child}"
        shown = client.get(f"/registry/citizens/{child}/{action}?version=1", follow_redirects=False)
        assert shown.status_code == 200, (action, shown.text[:300])
