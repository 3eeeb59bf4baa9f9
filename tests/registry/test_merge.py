"""Duplicate review: side-by-side comparison, "not the same person", and merges that keep
every number findable and both histories visible."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.errors import ForbiddenError, ValidationFailed
from dancu.registry import duplicates, merge, scope, workflows
from dancu.registry import service as registry
from dancu.registry.models import (
    Citizen,
    CitizenMerge,
    DuplicateCandidate,
    Household,
    Residence,
)
from dancu.registry.scope import Scope
from tests.registry.factories import person
from tests.registry.world import World, build, citizen, load, soon

NAME = "Ngô Văn Trùng"


@pytest.fixture
def world(session: Session, tmp_path: Path) -> World:
    return build(session, tmp_path)


def _twins(
    session: Session, tmp_path: Path, world: World, n: int = 2, **first: str
) -> list[dict[str, str]]:
    """``n`` records of one man (same name, birth date and commune); the first heads a
    household alone and has a legacy number, the second has a phone and a son."""
    rows = [
        person(
            full_name=NAME,
            birth_date="1970-05-05",
            permanent_commune_code=world.a1,
            permanent_address="Xóm 2",
            household_id="HH-D1",
            relationship_to_head="head",
            legacy_id_number="034567891",
            **first,
        ),
        person(
            full_name=NAME,
            birth_date="1970-05-05",
            permanent_commune_code=world.a1,
            phone="0912000111",
            ethnicity="Kinh",
        ),
    ]
    rows += [
        person(full_name=NAME, birth_date="1970-05-05", permanent_commune_code=world.a1)
        for _ in range(n - 2)
    ]
    son = person(
        personal_id=f"001200{rows[1]['personal_id'][6:]}",
        full_name="Ngô Văn Con",
        birth_date="2000-01-01",
        father_id=rows[1]["personal_id"],
        permanent_commune_code=world.a1,
        household_id="HH-D2",
        relationship_to_head="head",
    )
    load(session, tmp_path / "twins.csv", [*rows, son])
    return [*rows, son]


def _pair(session: Session, a: str, b: str) -> DuplicateCandidate:
    low, high = sorted((a, b))
    found = session.scalars(
        select(DuplicateCandidate).where(
            DuplicateCandidate.personal_id_a == low, DuplicateCandidate.personal_id_b == high
        )
    ).one()
    return found


def test_compare_shows_both_records_field_by_field(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])
    rows = {r.field: r for r in merge.compare(session, candidate.id, scope=Scope.parse(world.a1))}
    assert list(rows) == list(merge.COMPARED)
    assert rows["full_name"] == merge.FieldComparison("full_name", NAME, NAME, True)
    assert rows["birth_date"].same and rows["birth_date"].left == "1970-05-05"
    assert not rows["personal_id"].same
    left_is_one = candidate.personal_id_a == one["personal_id"]
    phone = rows["phone"]
    assert (phone.left, phone.right) == (
        (None, "0912000111") if left_is_one else ("0912000111", None)
    )
    with pytest.raises(ForbiddenError):
        merge.compare(session, candidate.id, scope=Scope.parse(world.a2))
    with pytest.raises(merge.CandidateNotFound):
        merge.compare(session, 10**9)


def test_open_pairs_are_listed_where_both_people_live(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])
    for unit in (world.a1, world.pa, "VN"):
        assert candidate in merge.list_open(session, Scope.parse(unit)), unit
    for unit in (world.a2, world.pb):
        assert candidate not in merge.list_open(session, Scope.parse(unit)), unit


def test_not_the_same_person_closes_the_pair_for_good(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])
    with pytest.raises(ValidationFailed) as info:
        merge.dismiss(session, candidate.id, "officer-a", " ")
    assert {p.field for p in info.value.problems} == {"reason"}
    merge.dismiss(session, candidate.id, "officer-a", "hai anh em sinh đôi", now=soon())
    assert (candidate.status, candidate.reviewed_by, candidate.review_note) == (
        "not_same",
        "officer-a",
        "hai anh em sinh đôi",
    )
    assert candidate not in merge.list_open(session, Scope.parse(world.a1))
    assert duplicates.flag_for(session, one["personal_id"]) == 0, "never flagged again"
    with pytest.raises(merge.AlreadyReviewed):
        merge.dismiss(session, candidate.id, "officer-b", "again")
    with pytest.raises(merge.AlreadyReviewed):
        merge.merge(session, candidate.id, one["personal_id"], "officer-b", "same")


def test_merge_keeps_every_number_and_both_histories(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, son = _twins(session, tmp_path, world)
    keep, gone = one["personal_id"], two["personal_id"]
    candidate = _pair(session, keep, gone)
    workflows.correct_field(
        session,
        workflows.FieldCorrection(gone, "religion", "Phật giáo"),
        actor="officer-0",
        reason="khai bổ sung",
        legal_basis="Nghị định 123/2015/NĐ-CP",
        now=soon(),
    )
    kept = merge.merge(
        session,
        candidate.id,
        keep,
        "officer-a",
        "cùng một người, đăng ký hai lần",
        scope=Scope.parse(world.a1),
        now=soon() + dt.timedelta(seconds=1),
    )
    assert kept.personal_id == keep
    for number in (keep, gone, "034567891"):
        found = registry.lookup(session, number)
        assert found is not None and found.personal_id == keep, number
    assert registry.get(session, gone) is not None, "the merged record is never deleted"
    # Missing values come from the merged record; the kept record's own values stay.
    assert (kept.phone, kept.ethnicity, kept.religion) == ("0912000111", "Kinh", "Phật giáo")
    assert kept.household_code == "HH-D1" and kept.legacy_id_number == "034567891"
    # The son now points at the kept record, with a history row saying why.
    boy = citizen(session, son)
    assert boy.father_id == keep
    assert any(
        h.field == "father_id" and h.old_value == gone and "merge" in str(h.reason)
        for h in registry.history(session, boy.personal_id)
    )
    # Both histories are visible from the kept person, and the merge is noted on both.
    fields = [(h.personal_id, h.field) for h in registry.history(session, keep)]
    assert (gone, "religion") in fields and (keep, "merged_from") in fields
    assert (gone, "merged_into") in fields
    row = session.get(CitizenMerge, gone)
    assert row is not None and (row.kept_id, row.candidate_id) == (keep, candidate.id)
    assert (candidate.status, candidate.review_note) == (
        "merged",
        "cùng một người, đăng ký hai lần",
    )
    # Searches show one person; residences moved, never two open permanent ones.
    found = scope.search(session, Scope.parse(world.a1), query="ngo van trung").items
    assert [c.personal_id for c in found] == [keep]
    by_number = scope.search(session, Scope.parse(world.a1), query=gone).items
    assert [c.personal_id for c in by_number] == [keep]
    residences = list(session.scalars(select(Residence).where(Residence.personal_id == keep)))
    assert len(residences) == 2
    assert [r.kind for r in residences if r.ended_at is None] == ["permanent"]
    assert session.scalars(select(Residence).where(Residence.personal_id == gone)).all() == []
    merged = citizen(session, two)
    assert merged.household_code is None


def test_a_kept_record_without_household_takes_the_other_ones_place(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])
    kept = merge.merge(session, candidate.id, two["personal_id"], "officer-a", "trùng", now=soon())
    household = session.get(Household, "HH-D1")
    assert household is not None and household.head_id == kept.personal_id
    assert household.dissolved_at is None
    assert (kept.household_code, kept.relationship_to_head) == ("HH-D1", "head")
    assert kept.legacy_id_number == "034567891"
    open_ = session.scalars(
        select(Residence).where(
            Residence.personal_id == kept.personal_id, Residence.ended_at.is_(None)
        )
    ).all()
    assert [(r.kind, r.household_code) for r in open_] == [("permanent", "HH-D1")]


def test_merges_chain_to_the_last_kept_record(
    session: Session, tmp_path: Path, world: World
) -> None:
    a, b, c = (r["personal_id"] for r in _twins(session, tmp_path, world, n=3)[:3])
    merge.merge(session, _pair(session, a, b).id, b, "o", "trùng", now=soon())
    # The pair (a, c) became (b, c), which already existed: it is closed, not duplicated.
    assert _pair(session, a, c).status == "merged"
    merge.merge(session, _pair(session, b, c).id, c, "o", "trùng", now=soon())
    for number in (a, b, c, "034567891"):
        found = registry.lookup(session, number)
        assert found is not None and found.personal_id == c, number
    assert session.get_one(CitizenMerge, a).kept_id == c
    merged = {
        (h.personal_id, h.new_value)
        for h in registry.history(session, c)
        if h.field == "merged_from"
    }
    assert merged == {(b, a), (c, b)}, "the whole chain's history is visible from the end"


def test_merges_that_would_lose_facts_are_refused(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])

    def refused(keep: str) -> set[str]:
        with pytest.raises(ValidationFailed) as info:
            merge.merge(session, candidate.id, keep, "o", "r")
        return {str(p.field) for p in info.value.problems}

    assert refused(world.far["personal_id"]) == {"keep_id"}
    # The first record heads a household with a member, the second has a household of its own.
    workflows.change_permanent_residence(
        session,
        workflows.PermanentResidenceChange(
            world.neighbour["personal_id"],
            world.a1,
            dt.date(2025, 1, 1),
            household_code="HH-D1",
            relationship_to_head="sibling",
        ),
        actor="o",
        reason="r",
        now=soon(),
    )
    workflows.change_permanent_residence(
        session,
        workflows.PermanentResidenceChange(
            two["personal_id"], world.a1, dt.date(2025, 1, 1), address="Xóm 5"
        ),
        actor="o",
        reason="r",
        now=soon(),
    )
    assert refused(two["personal_id"]) == {"keep_id"}
    one_version = citizen(session, one).version
    with pytest.raises(ForbiddenError):
        merge.merge(
            session, candidate.id, one["personal_id"], "o", "r", scope=Scope.parse(world.a2)
        )
    with pytest.raises(registry.StaleRecord):
        merge.merge(
            session,
            candidate.id,
            one["personal_id"],
            "o",
            "r",
            expected_versions={one["personal_id"]: one_version, two["personal_id"]: 0},
        )
    with pytest.raises(ValidationFailed) as missing:
        merge.merge(
            session,
            candidate.id,
            one["personal_id"],
            "o",
            "r",
            expected_versions={one["personal_id"]: one_version},
        )
    assert [(p.field, two["personal_id"] in p.reason) for p in missing.value.problems] == [
        ("versions", True)
    ]
    assert candidate.status == "open"
    assert session.get(CitizenMerge, two["personal_id"]) is None


def test_a_living_and_a_deceased_record_are_not_merged(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])
    workflows.record_death(
        session,
        workflows.DeathRegistration(two["personal_id"], dt.date(2025, 1, 1)),
        actor="o",
        now=soon(),
    )
    with pytest.raises(ValidationFailed, match="cannot be merged"):
        merge.merge(session, candidate.id, one["personal_id"], "o", "r")


def test_records_married_to_different_people_are_not_merged(
    session: Session, tmp_path: Path, world: World
) -> None:
    one, two, _son = _twins(session, tmp_path, world)
    candidate = _pair(session, one["personal_id"], two["personal_id"])
    a, b = (
        session.get_one(Citizen, one["personal_id"]),
        session.get_one(Citizen, two["personal_id"]),
    )
    a.spouse_id, b.spouse_id = world.far["personal_id"], world.home[1]["personal_id"]
    with pytest.raises(ValidationFailed, match="cannot be merged") as info:
        merge.merge(session, candidate.id, one["personal_id"], "o", "r")
    assert "married" in str(info.value.problems[0])
