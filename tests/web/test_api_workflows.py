"""The JSON API's register workflows: moves, temporary residence, household split and head,
corrections, duplicate review, data quality and the access log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.audit.models import AccessLog
from dancu.registry.models import (
    Citizen,
    CitizenHistory,
    DuplicateCandidate,
    Household,
    Residence,
)
from tests.registry.world import World
from tests.web.conftest import ClientFor, Staff, member_versions, version_of

API = "/api/v1/registry"
WHY = {"reason": "công dân đề nghị", "legal_basis": "Luật Cư trú 2020"}


def _fields(response: object) -> set[str]:
    return {p["field"] for p in response.json()["error"].get("problems", [])}  # type: ignore[attr-defined]


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_move_a_person_to_a_new_household_in_the_same_commune(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    mother = world.home[1]["personal_id"]
    response = client.post(
        f"{API}/citizens/{mother}/permanent-residence",
        json={
            "commune_code": world.a1,
            "address": "Số 5, ngõ 7",
            "version": version_of(client, mother),
            **WHY,
        },
    )
    assert response.status_code == 200, response.text
    session.expire_all()
    person = session.get(Citizen, mother)
    assert person is not None and person.household_code != "HH-W1"
    assert person.relationship_to_head == "head" and person.permanent_address == "Số 5, ngõ 7"
    assert [
        h.field
        for h in session.scalars(select(CitizenHistory).where(CitizenHistory.personal_id == mother))
    ]


def test_a_move_into_a_commune_outside_the_unit_is_refused_and_changes_nothing(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    mother = world.home[1]["personal_id"]
    residences = _count(session, Residence)
    response = client.post(
        f"{API}/citizens/{mother}/permanent-residence",
        json={
            "commune_code": world.b1,
            "address": "Số 1",
            "version": version_of(client, mother),
            **WHY,
        },
    )
    assert response.status_code == 403
    assert _fields(response) == {"commune_code"}
    assert _count(session, Residence) == residences


def test_bad_move_input_names_the_field(world: World, staff: Staff, client_for: ClientFor) -> None:
    client = client_for(staff.commune)
    mother = world.home[1]["personal_id"]
    url = f"{API}/citizens/{mother}/permanent-residence"
    read = version_of(client, mother)
    cases = {
        "commune_code": {"commune_code": "ABCDE", "address": "x", "version": read, **WHY},
        "moved_on": {
            "commune_code": world.a1,
            "address": "x",
            "moved_on": "2026-13-01",
            "version": read,
            **WHY,
        },
        "reason": {"commune_code": world.a1, "address": "x", "reason": " ", "version": read},
        "version": {"commune_code": world.a1, "address": "x", "version": "one", **WHY},
    }
    for field, body in cases.items():
        response = client.post(url, json=body)
        assert response.status_code == 400, (field, response.text)
        assert field in _fields(response), (field, response.json())


def test_move_a_whole_household(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.province)
    versions = member_versions(client, world.neighbour["personal_id"])
    response = client.post(
        f"{API}/households/HH-W2/move",
        json={"commune_code": world.a1, "address": "Số 12, phố Mới", "versions": versions, **WHY},
    )
    assert response.status_code == 200, response.text
    session.expire_all()
    neighbour = session.get(Citizen, world.neighbour["personal_id"])
    assert neighbour is not None and neighbour.permanent_commune_code == world.a1
    # The commune officer of a1 now sees him; the far officer never could move him.
    far = client_for(staff.far_commune).post(
        f"{API}/households/HH-W2/move",
        json={"commune_code": world.b1, "address": "x", "versions": versions, **WHY},
    )
    assert far.status_code == 403


def test_temporary_residence_with_its_validity_period(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    child = world.home[2]["personal_id"]
    today = dt.date.today()
    body = {
        "commune_code": world.a1,
        "address": "Ký túc xá B",
        "valid_from": today.isoformat(),
        "valid_until": (today + dt.timedelta(days=300)).isoformat(),
        "version": version_of(client, child),
        **WHY,
    }
    ok = client.post(f"{API}/citizens/{child}/temporary-residence", json=body)
    assert ok.status_code == 200, ok.text
    stay = session.scalar(
        select(Residence).where(Residence.personal_id == child, Residence.kind == "temporary")
    )
    assert stay is not None and stay.valid_to == today + dt.timedelta(days=300)
    body["version"] = version_of(client, child)
    too_long = client.post(
        f"{API}/citizens/{child}/temporary-residence",
        json={**body, "valid_until": (today + dt.timedelta(days=3 * 365)).isoformat()},
    )
    assert too_long.status_code == 400 and "valid_until" in _fields(too_long)
    backwards = client.post(
        f"{API}/citizens/{child}/temporary-residence",
        json={**body, "valid_until": (today - dt.timedelta(days=1)).isoformat()},
    )
    assert backwards.status_code == 400 and "valid_until" in _fields(backwards)


def test_split_a_household_and_refuse_one_left_without_a_head(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    father, mother, child = (p["personal_id"] for p in world.home)
    households = _count(session, Household)
    versions = member_versions(client, father)
    headless = client.post(
        f"{API}/households/HH-W1/split",
        json={
            "new_head_id": father,
            "members": {mother: "spouse", child: "child"},
            "versions": versions,
            **WHY,
        },
    )
    assert headless.status_code == 400, headless.text
    assert _count(session, Household) == households
    ok = client.post(
        f"{API}/households/HH-W1/split",
        json={"new_head_id": mother, "members": {child: "child"}, "versions": versions, **WHY},
    )
    assert ok.status_code == 200, ok.text
    session.expire_all()
    moved = session.get(Citizen, child)
    assert moved is not None and moved.household_code not in (None, "HH-W1")
    assert _count(session, Household) == households + 1


def test_change_the_head_of_household(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    father, mother, child = (p["personal_id"] for p in world.home)
    versions = member_versions(client, father)
    missing = client.post(
        f"{API}/households/HH-W1/head",
        json={"new_head_id": mother, "versions": versions, **WHY},
    )
    assert missing.status_code == 400  # the others' relationships to the new head are due
    assert _fields(missing) == {f"relationships.{father}", f"relationships.{child}"}
    ok = client.post(
        f"{API}/households/HH-W1/head",
        json={
            "new_head_id": mother,
            "relationships": {father: "spouse", child: "child"},
            "versions": versions,
            **WHY,
        },
    )
    assert ok.status_code == 200, ok.text
    household = session.get(Household, "HH-W1")
    assert household is not None and household.head_id == mother


def test_correct_a_field_needs_reason_and_legal_basis(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    child = world.home[2]["personal_id"]
    url = f"{API}/citizens/{child}/corrections"
    read = version_of(client, child)
    refused = client.post(
        url,
        json={
            "field": "full_name",
            "value": "Trần Thị Cỏn",
            "reason": "",
            "legal_basis": "",
            "version": read,
        },
    )
    assert refused.status_code == 400 and _fields(refused) == {"reason", "legal_basis"}
    unknown = client.post(
        url,
        json={
            "field": "status",
            "value": "deceased",
            "reason": "x",
            "legal_basis": "y",
            "version": read,
        },
    )
    assert unknown.status_code == 400 and _fields(unknown) == {"field"}
    bad_date = client.post(
        url,
        json={
            "field": "birth_date",
            "value": "2012-02-30",
            "reason": "x",
            "legal_basis": "y",
            "version": read,
        },
    )
    assert bad_date.status_code == 400 and _fields(bad_date) == {"value"}
    ok = client.post(
        url,
        json={
            "field": "full_name",
            "value": "Trần Thị Cỏn",
            "reason": "sai chính tả",
            "legal_basis": "Luật Hộ tịch 2014, Điều 7",
            "version": read,
        },
    )
    assert ok.status_code == 200, ok.text
    change = session.scalars(
        select(CitizenHistory).where(
            CitizenHistory.personal_id == child, CitizenHistory.field == "full_name"
        )
    ).one()
    assert (change.old_value, change.new_value) == ("Trần Thị Con", "Trần Thị Cỏn")
    assert change.reason == "sai chính tả" and change.actor == "xa-a1"
    detail = client.get(f"{API}/citizens/{child}", params={"purpose": "civil_status"}).json()
    assert detail["timeline"][0]["new_value"] == "Trần Thị Cỏn"


def _pair(session: Session, a: str, b: str) -> int:
    low, high = sorted((a, b))
    row = DuplicateCandidate(
        personal_id_a=low,
        personal_id_b=high,
        reason="same name and birth date; same permanent commune",
        status="open",
        found_at=dt.datetime.now(dt.UTC),
    )
    session.add(row)
    session.flush()
    return row.id


def test_duplicate_review_compare_dismiss_and_merge(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.province)
    father, mother, child = (p["personal_id"] for p in world.home)
    neighbour = world.neighbour["personal_id"]
    first = _pair(session, mother, child)
    listed = client.get(f"{API}/duplicates").json()
    assert first in [item["id"] for item in listed["items"]]
    before = _count(session, AccessLog)
    compared = client.get(f"{API}/duplicates/{first}")
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert {row["field"] for row in body["fields"]} >= {"full_name", "birth_date"}
    assert _count(session, AccessLog) == before + 2  # both records were read
    dismissed = client.post(f"{API}/duplicates/{first}/dismiss", json={"reason": "hai người"})
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "not_same"
    again = client.post(f"{API}/duplicates/{first}/dismiss", json={"reason": "hai người"})
    assert again.status_code == 409

    second = _pair(session, neighbour, father)
    versions = client.get(f"{API}/duplicates/{second}").json()["versions"]
    merged = client.post(
        f"{API}/duplicates/{second}/merge",
        json={"keep_id": father, "reason": "cùng một người", "versions": versions},
    )
    assert merged.status_code == 200, merged.text
    # Both numbers still find the kept person.
    for number in (father, neighbour):
        found = client.get(f"{API}/citizens", params={"q": number, "purpose": "data_cleaning"})
        assert [i["personal_id"] for i in found.json()["items"]] == [father]


def test_merge_input_is_checked(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    mother, child = world.home[1]["personal_id"], world.home[2]["personal_id"]
    pair = _pair(session, mother, child)
    versions = client.get(f"{API}/duplicates/{pair}").json()["versions"]
    wrong = client.post(
        f"{API}/duplicates/{pair}/merge",
        json={"keep_id": world.far["personal_id"], "reason": "x", "versions": versions},
    )
    assert wrong.status_code == 400 and _fields(wrong) == {"keep_id"}
    typed = client.post(
        f"{API}/duplicates/{pair}/merge", json={"keep_id": 5, "reason": "x", "versions": versions}
    )
    assert typed.status_code == 400 and _fields(typed) == {"keep_id"}


def test_quality_overview_and_findings_link_to_the_people(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.province)
    overview = client.get(f"{API}/quality")
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["unit"] == world.pa
    communes = {c["commune_code"]: c for c in body["communes"]}
    assert world.a1 in communes and world.b1 not in communes
    assert communes[world.a1]["people"] == 3
    incomplete = communes[world.a1]["counts"]["incomplete"]
    before = _count(session, AccessLog)
    listed = client.get(
        f"{API}/quality/findings", params={"kind": "incomplete", "commune_code": world.a1}
    )
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == incomplete
    assert _count(session, AccessLog) == before + incomplete
    unknown = client.get(f"{API}/quality/findings", params={"kind": "nonsense"})
    assert unknown.status_code == 400 and _fields(unknown) == {"kind"}
    outside = client.get(
        f"{API}/quality/findings", params={"kind": "incomplete", "commune_code": world.b1}
    )
    assert outside.status_code == 403


def test_the_auditor_reads_the_access_log(
    world: World, staff: Staff, client_for: ClientFor
) -> None:
    officer = client_for(staff.commune)
    father = world.home[0]["personal_id"]
    officer.get(f"{API}/citizens/{father}", params={"purpose": "citizen_request"})
    auditor = client_for(staff.auditor)
    found = auditor.get(f"{API}/access-log", params={"personal_id": father})
    assert found.status_code == 200, found.text
    entry = found.json()["items"][0]
    assert entry["actor"] == "xa-a1" and entry["purpose"] == "citizen_request"
    bad = auditor.get(f"{API}/access-log", params={"personal_id": father, "since": "yesterday"})
    assert bad.status_code == 400 and _fields(bad) == {"since"}
    assert officer.get(f"{API}/access-log", params={"personal_id": father}).status_code == 403


def test_a_change_without_the_version_read_is_refused_and_changes_nothing(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    """No blind overwrite: a change to one person, to a household (one member's version
    left out) or a merge made without the versions read is refused, naming the field."""
    client = client_for(staff.commune)
    father, mother, child = (p["personal_id"] for p in world.home)
    read = member_versions(client, father)
    without_child = {pid: v for pid, v in read.items() if pid != child}
    pair = _pair(session, mother, child)
    pair_versions = client.get(f"{API}/duplicates/{pair}").json()["versions"]
    without_one = {pid: v for pid, v in pair_versions.items() if pid != child}

    def state() -> tuple[object, ...]:
        session.expire_all()
        people = [session.get(Citizen, pid) for pid in (father, mother, child)]
        candidate = session.get(DuplicateCandidate, pair)
        return (
            tuple((p.version, p.household_code, p.full_name) for p in people if p is not None),
            _count(session, CitizenHistory),
            _count(session, Residence),
            _count(session, Household),
            candidate.status if candidate is not None else None,
        )

    cases: list[tuple[str, dict[str, object], str]] = [
        (
            f"{API}/citizens/{child}/corrections",
            {"field": "full_name", "value": "Trần Thị Cỏn", **WHY},
            "version",
        ),
        (
            f"{API}/citizens/{mother}/permanent-residence",
            {"commune_code": world.a1, "address": "Số 5, ngõ 7", **WHY},
            "version",
        ),
        (f"{API}/citizens/{child}/death", {"death_date": "2026-02-01"}, "version"),
        (
            f"{API}/households/HH-W1/move",
            {"commune_code": world.a1, "address": "Số 9", "versions": without_child, **WHY},
            "versions",
        ),
        (
            f"{API}/households/HH-W1/split",
            {"new_head_id": mother, "members": {child: "child"}, "versions": without_child, **WHY},
            "versions",
        ),
        (
            f"{API}/households/HH-W1/head",
            {
                "new_head_id": mother,
                "relationships": {father: "spouse", child: "child"},
                "versions": without_child,
                **WHY,
            },
            "versions",
        ),
        (f"{API}/households/HH-W1/move", {"commune_code": world.a1, "address": "x"}, "versions"),
        (f"{API}/duplicates/{pair}/merge", {"keep_id": mother, "reason": "x"}, "versions"),
        (
            f"{API}/duplicates/{pair}/merge",
            {"keep_id": mother, "reason": "x", "versions": without_one},
            "versions",
        ),
    ]
    before = state()
    for url, body, field in cases:
        response = client.post(url, json=body)
        assert response.status_code == 400, (url, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_input", (url, error)
        assert field in _fields(response), (url, error)
        if "versions" in body:  # the member whose version is missing is named
            assert any(child in p["reason"] for p in error["problems"]), (url, error)
        assert state() == before, url
    # With the versions read, the same household change goes through.
    ok = client.post(
        f"{API}/households/HH-W1/move",
        json={"commune_code": world.a1, "address": "Số 9", "versions": read, **WHY},
    )
    assert ok.status_code == 200, ok.text
