"""Officials' scopes: parsing unit codes, who is in scope, and the scoped search."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.enums import CivilEventKind
from dancu.errors import DancuError, ForbiddenError, ValidationFailed
from dancu.registry import events, scope
from dancu.registry.models import Citizen
from dancu.registry.scope import Scope
from tests.registry.world import World, build, pick_communes, soon


@pytest.fixture
def world(session: Session, tmp_path: Path) -> World:
    return build(session, tmp_path)


def test_parse_reads_national_province_and_commune_codes(session: Session) -> None:
    pa, _pb, a1, _a2, _b1 = pick_communes(session)
    assert Scope.parse(None) == Scope.parse("") == Scope.parse(" vn ") == scope.NATIONAL
    assert Scope.parse("01") == Scope.parse(" 01 ") == Scope("province", "01")
    commune = Scope.parse(a1)
    assert commune.level == "commune" and commune.code == a1
    assert commune.province_code == pa and Scope.parse(pa).province_code == pa
    assert scope.NATIONAL.province_code is None and scope.NATIONAL.unit_code == "VN"


@pytest.mark.parametrize("code", ["99", "1", "001", "0000", "99999", "abcde", "VNM"])
def test_parse_refuses_unknown_or_malformed_codes(code: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Scope.parse(code)
    assert [p.field for p in info.value.problems] == ["unit"]


@given(st.text(max_size=8))
def test_parse_either_refuses_or_round_trips(text: str) -> None:
    try:
        parsed = Scope.parse(text)
    except ValidationFailed:
        return
    assert Scope.parse(parsed.unit_code) == parsed
    assert parsed.level in ("national", "province", "commune")


def test_covers_follows_the_unit_tree(session: Session) -> None:
    pa, pb, a1, a2, b1 = pick_communes(session)
    province, commune = Scope.parse(pa), Scope.parse(a1)
    assert scope.NATIONAL.covers(province) and scope.NATIONAL.covers(scope.NATIONAL)
    assert province.covers(commune) and province.covers(Scope.parse(a2))
    assert province.covers(province) and not province.covers(Scope.parse(pb))
    assert not province.covers(Scope.parse(b1)) and not province.covers(scope.NATIONAL)
    assert commune.covers(commune) and not commune.covers(Scope.parse(a2))
    assert not commune.covers(province)


def test_people_in_scope_follow_their_permanent_commune(session: Session, world: World) -> None:
    father, neighbour, far = world.home[0], world.neighbour, world.far
    everyone = {r["personal_id"] for r in (*world.home, neighbour, far)}

    def ids(s: Scope) -> set[str]:
        found = session.scalars(select(Citizen.personal_id).where(scope.where_in_scope(s)))
        return set(found) & everyone

    assert ids(Scope.parse(world.a1)) == {r["personal_id"] for r in world.home}
    assert ids(Scope.parse(world.pa)) == everyone - {far["personal_id"]}
    assert ids(Scope.parse(world.pb)) == {far["personal_id"]}
    assert ids(scope.NATIONAL) == everyone
    assert scope.person_in_scope(session, Scope.parse(world.a1), father["personal_id"])
    assert not scope.person_in_scope(session, Scope.parse(world.a1), neighbour["personal_id"])
    assert not scope.person_in_scope(session, scope.NATIONAL, "001000000000")


def test_a_deceased_person_stays_in_the_commune_that_recorded_the_death(
    session: Session, world: World
) -> None:
    neighbour = world.neighbour["personal_id"]
    events.apply(
        session,
        events.Event(CivilEventKind.DEATH, soon().date(), actor="t", personal_id=neighbour),
        now=soon(),
    )
    assert scope.person_in_scope(session, Scope.parse(world.a2), neighbour)
    page = scope.search(session, Scope.parse(world.a2), query=neighbour)
    assert [c.status for c in page.items] == ["deceased"]


def test_commune_in_scope_and_refusals_name_the_field(session: Session) -> None:
    pa, _pb, a1, a2, b1 = pick_communes(session)
    assert scope.commune_in_scope(scope.NATIONAL, b1)
    assert scope.commune_in_scope(Scope.parse(pa), a2)
    assert not scope.commune_in_scope(Scope.parse(pa), b1)
    assert not scope.commune_in_scope(Scope.parse(a1), a2)
    assert not scope.commune_in_scope(scope.NATIONAL, "99999")
    assert not scope.commune_in_scope(scope.NATIONAL, None)
    scope.require_commune(None, b1)  # no scope: the CLI acts for the whole register
    with pytest.raises(scope.OutOfScope) as info:
        scope.require_commune(Scope.parse(a1), a2, "permanent_commune_code")
    assert info.value.status == 403
    assert [p.field for p in info.value.problems] == ["permanent_commune_code"]


def test_require_person_refuses_out_of_scope_people(session: Session, world: World) -> None:
    scope.require_person(session, Scope.parse(world.pa), world.neighbour["personal_id"])
    with pytest.raises(ForbiddenError) as info:
        scope.require_person(session, Scope.parse(world.a1), world.far["personal_id"])
    assert info.value.status == 403 and world.a1 in info.value.message


def test_search_by_name_and_number_stays_in_scope(session: Session, world: World) -> None:
    a1, pa = Scope.parse(world.a1), Scope.parse(world.pa)
    father = world.home[0]
    assert [c.personal_id for c in scope.search(session, a1, query="tran van bo").items] == [
        father["personal_id"]
    ]
    # The same name searched from a commune where they do not live finds nobody.
    assert scope.search(session, Scope.parse(world.a2), query="Trần Văn Bố").items == []
    spaced = f"{father['personal_id'][:3]} {father['personal_id'][3:6]}.{father['personal_id'][6:]}"
    assert [c.personal_id for c in scope.search(session, pa, query=spaced).items] == [
        father["personal_id"]
    ]
    assert [c.personal_id for c in scope.search(session, pa, query="023 456 789").items] == [
        father["personal_id"]
    ]
    assert scope.search(session, a1, query=world.far["personal_id"]).items == []
    page = scope.search(session, pa, birth_year=1985, commune_code=world.a2)
    assert [c.personal_id for c in page.items] == [world.neighbour["personal_id"]]


def test_search_without_criteria_lists_a_unit_but_not_the_country(
    session: Session, world: World
) -> None:
    page = scope.search(session, Scope.parse(world.a1), limit=2)
    assert len(page.items) == 2 and page.has_more
    rest = scope.search(session, Scope.parse(world.a1), limit=2, offset=2)
    assert len(rest.items) == 1 and not rest.has_more
    listed = {c.personal_id for c in [*page.items, *rest.items]}
    assert listed == {r["personal_id"] for r in world.home}
    with pytest.raises(DancuError) as info:
        scope.search(session, scope.NATIONAL)
    assert info.value.code == "empty_search"


def test_search_refuses_a_commune_outside_scope(session: Session, world: World) -> None:
    with pytest.raises(scope.OutOfScope):
        scope.search(session, Scope.parse(world.pa), commune_code=world.b1)
