"""The JSON API /api/v1/registry: search, citizen detail, birth, death, the access log."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.audit.models import AccessLog
from dancu.registry.models import Citizen, CivilEvent, Residence
from tests.registry.world import World
from tests.web.conftest import ClientFor, Staff, version_of

API = "/api/v1/registry"


def _log_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AccessLog)) or 0)


def _problem_fields(response: object) -> set[str]:
    body = response.json()  # type: ignore[attr-defined]
    return {p["field"] for p in body["error"].get("problems", [])}


def test_citizen_detail_shows_record_household_residences_and_logs_the_read(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    father = world.home[0]["personal_id"]
    before = _log_count(session)
    response = client.get(f"{API}/citizens/{father}", params={"purpose": "citizen_request"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["record"]["full_name"] == "Trần Văn Bố"
    assert body["household"]["code"] == "HH-W1"
    assert body["household"]["members"][0]["relationship_to_head"] == "head"
    assert len(body["household"]["members"]) == 3
    assert body["residences"][0]["kind"] == "permanent"
    assert body["version"] >= 1
    entries = session.scalars(select(AccessLog).order_by(AccessLog.id.desc())).all()
    assert _log_count(session) == before + 1
    entry = entries[0]
    assert entry.personal_id == father
    assert entry.actor == "xa-a1" and entry.channel == "api"
    assert entry.purpose == "citizen_request"
    assert entry.organization.startswith("Công an")
    assert "full_name" in entry.fields and "household.members" in entry.fields


def test_reading_needs_a_known_purpose(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    father = world.home[0]["personal_id"]
    before = _log_count(session)
    for params in ({}, {"purpose": "curiosity"}):
        response = client.get(f"{API}/citizens/{father}", params=params)
        assert response.status_code == 400
        assert _problem_fields(response) == {"purpose"}
    assert _log_count(session) == before


def test_out_of_scope_person_is_refused_and_not_logged(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    before = _log_count(session)
    far = world.far["personal_id"]
    response = client.get(f"{API}/citizens/{far}", params={"purpose": "citizen_request"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "out_of_scope"
    # An unknown number is refused the same way (no probing of other units).
    unknown = client.get(f"{API}/citizens/001099999999", params={"purpose": "citizen_request"})
    assert unknown.status_code == 403
    assert _log_count(session) == before


def test_national_auditor_reads_anywhere_and_gets_404_for_unknown(
    world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.auditor)
    far = world.far["personal_id"]
    assert client.get(f"{API}/citizens/{far}", params={"purpose": "inspection"}).status_code == 200
    missing = client.get(f"{API}/citizens/001099999999", params={"purpose": "inspection"})
    assert missing.status_code == 404


def test_search_by_name_without_diacritics_is_scoped_paginated_and_logged(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    before = _log_count(session)
    province = client_for(staff.province)
    found = province.get(
        f"{API}/citizens", params={"q": "tran", "purpose": "data_cleaning", "limit": 1}
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert len(body["items"]) == 1 and body["next"] is not None
    assert "offset=1" in body["next"]
    following = province.get(body["next"]).json()
    assert following["items"][0]["personal_id"] != body["items"][0]["personal_id"]
    assert _log_count(session) == before + 2
    # The far woman lives in another province: a province officer of pa does not find her.
    far = province.get(f"{API}/citizens", params={"q": "do thi xa", "purpose": "data_cleaning"})
    assert far.json()["items"] == []


def test_search_by_id_and_legacy_number(world: World, staff: Staff, client_for: ClientFor) -> None:
    client = client_for(staff.commune)
    father = world.home[0]["personal_id"]
    for q in (father, "023456789", "023.456.789"):
        found = client.get(f"{API}/citizens", params={"q": q, "purpose": "citizen_request"})
        assert [i["personal_id"] for i in found.json()["items"]] == [father], q


def test_search_rejects_bad_filters_naming_the_field(
    world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    bad_year = client.get(
        f"{API}/citizens", params={"q": "tran", "birth_year": "85", "purpose": "inspection"}
    )
    assert bad_year.status_code == 400 and _problem_fields(bad_year) == {"birth_year"}
    bad_commune = client.get(
        f"{API}/citizens", params={"commune_code": "ABCDE", "purpose": "inspection"}
    )
    assert bad_commune.status_code == 400 and _problem_fields(bad_commune) == {"commune_code"}
    elsewhere = client.get(
        f"{API}/citizens", params={"commune_code": world.b1, "purpose": "inspection"}
    )
    assert elsewhere.status_code == 403


def _birth(world: World, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "full_name": "Trần Thị Bé",
        "birth_date": "2026-01-15",
        "sex": "F",
        "permanent_commune_code": world.a1,
        "permanent_address": "Số 1, ngõ 2",
        "father_id": world.home[0]["personal_id"],
        "mother_id": world.home[1]["personal_id"],
        "household_code": "HH-W1",
        "relationship_to_head": "child",
        "legal_basis": "Luật Hộ tịch 2014, Điều 16",
    }
    body.update(overrides)
    return body


def test_register_birth_allocates_an_id_and_joins_the_household(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    response = client.post(f"{API}/births", json=_birth(world))
    assert response.status_code == 201, response.text
    body = response.json()
    child = session.get(Citizen, body["personal_id"])
    assert child is not None
    assert child.household_code == "HH-W1" and child.relationship_to_head == "child"
    assert child.father_id == world.home[0]["personal_id"]
    assert child.personal_id[3] == "3"  # a girl born in the 2000s
    residence = session.scalar(select(Residence).where(Residence.personal_id == child.personal_id))
    assert residence is not None and residence.commune_code == world.a1
    assert set(body) == {"personal_id", "household_code", "status", "version"}


def test_bad_birth_input_names_each_field_and_changes_nothing(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    people = session.scalar(select(func.count()).select_from(Citizen))
    cases = {
        "sex": _birth(world, sex=5),  # wrong JSON type
        "birth_date": _birth(world, birth_date="2025-02-30"),  # impossible date
        "permanent_commune_code": _birth(world, permanent_commune_code="99999"),  # unknown
        "father_id": _birth(world, father_id="12345"),
        "extra": {**_birth(world), "extra": "x"},  # unknown field
    }
    for field, body in cases.items():
        response = client.post(f"{API}/births", json=body)
        assert response.status_code == 400, (field, response.text)
        assert field in _problem_fields(response), (field, response.json())
    future = client.post(f"{API}/births", json=_birth(world, birth_date="2999-01-01"))
    assert future.status_code == 400 and _problem_fields(future) == {"birth_date"}
    outside = client.post(f"{API}/births", json=_birth(world, permanent_commune_code=world.b1))
    assert outside.status_code == 403
    assert _problem_fields(outside) == {"permanent_commune_code"}
    assert session.scalar(select(func.count()).select_from(Citizen)) == people


def test_record_death_closes_the_record_and_keeps_the_person_findable(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    mother = world.home[1]["personal_id"]
    response = client.post(
        f"{API}/citizens/{mother}/death",
        json={
            "death_date": "2026-02-01",
            "legal_basis": "Luật Hộ tịch 2014, Điều 33",
            "version": version_of(client, mother),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "deceased"
    open_residences = session.scalar(
        select(func.count())
        .select_from(Residence)
        .where(Residence.personal_id == mother, Residence.ended_at.is_(None))
    )
    assert open_residences == 0
    found = client.get(f"{API}/citizens", params={"q": mother, "purpose": "civil_status"})
    assert found.json()["items"][0]["status"] == "deceased"


def test_death_before_birth_and_head_leaving_members_are_refused(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    client = client_for(staff.commune)
    events = session.scalar(select(func.count()).select_from(CivilEvent))
    mother = world.home[1]["personal_id"]
    early = client.post(
        f"{API}/citizens/{mother}/death",
        json={"death_date": "1900-01-01", "version": version_of(client, mother)},
    )
    assert early.status_code == 400 and _problem_fields(early) == {"death_date"}
    head = world.home[0]["personal_id"]
    orphaned = client.post(
        f"{API}/citizens/{head}/death",
        json={"death_date": "2026-02-01", "version": version_of(client, head)},
    )
    assert orphaned.status_code == 400
    assert orphaned.json()["error"]["problems"][0]["reason"] == (
        "heads a household with other members"
    )
    assert session.scalar(select(func.count()).select_from(CivilEvent)) == events


def test_concurrent_edit_second_official_is_refused(
    session: Session, world: World, staff: Staff, client_for: ClientFor
) -> None:
    """Two officials open the same person; the first saves, the second is refused (409) with
    a clear message and the first change stands (no lost update)."""
    first, second = client_for(staff.commune), client_for(staff.province)
    mother = world.home[1]["personal_id"]
    reads = [
        c.get(f"{API}/citizens/{mother}", params={"purpose": "civil_status"}).json()
        for c in (first, second)
    ]
    assert reads[0]["version"] == reads[1]["version"]

    def correct(client: object, name: str, version: int) -> object:
        return client.post(  # type: ignore[attr-defined]
            f"{API}/citizens/{mother}/corrections",
            json={
                "field": "full_name",
                "value": name,
                "reason": "sai chính tả",
                "legal_basis": "Luật Hộ tịch 2014, Điều 7",
                "version": version,
            },
        )

    ok = correct(first, "Lê Thị Mến", reads[0]["version"])
    assert ok.status_code == 200, ok.text  # type: ignore[attr-defined]
    stale = correct(second, "Lê Thị Mận", reads[1]["version"])
    assert stale.status_code == 409  # type: ignore[attr-defined]
    error = stale.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "stale_record"
    assert "changed by someone else" in error["message"]
    session.expire_all()
    person = session.get(Citizen, mother)
    assert person is not None and person.full_name == "Lê Thị Mến"
