"""Register workflows: residence changes, household moves, splits and heads, temporary
residence, corrections, births and deaths, with scope, bad input and concurrent edits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dancu.errors import ForbiddenError, ValidationFailed
from dancu.registry import events, scope, workflows
from dancu.registry import service as registry
from dancu.registry.models import (
    Citizen,
    CitizenHistory,
    CivilEvent,
    DuplicateCandidate,
    Household,
    ImportBatch,
    PersonalIdAllocation,
    Residence,
)
from dancu.registry.scope import Scope
from dancu.vn.dates import PartialDate
from tests.registry.world import World, build, citizen, soon

MOVE = dt.date(2025, 10, 1)
WHY = {"actor": "officer-a", "reason": "đăng ký thường trú", "legal_basis": "Luật Cư trú 2020"}


@pytest.fixture
def world(session: Session, tmp_path: Path) -> World:
    return build(session, tmp_path)


def _snapshot(session: Session) -> tuple[int, ...]:
    """Row counts and versions that any change would move."""
    session.flush()
    return (
        *(
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (CitizenHistory, Residence, Household, CivilEvent)
        ),
        int(session.scalar(select(func.sum(Citizen.version))) or 0),
        int(session.scalar(select(func.count()).where(Household.dissolved_at.is_not(None))) or 0),
    )


def _fields(error: pytest.ExceptionInfo[ValidationFailed]) -> set[str]:
    return {str(p.field) for p in error.value.problems}


def _open(session: Session, pid: str, kind: str = "permanent") -> list[Residence]:
    return list(
        session.scalars(
            select(Residence).where(
                Residence.personal_id == pid, Residence.kind == kind, Residence.ended_at.is_(None)
            )
        )
    )


# ------------------------------------------------------------------ permanent residence


def test_joining_another_household_moves_residence_and_writes_history(
    session: Session, world: World
) -> None:
    daughter = citizen(session, world.home[2])
    before = _open(session, daughter.personal_id)
    command = workflows.PermanentResidenceChange(
        personal_id=daughter.personal_id,
        commune_code=world.a2,
        move_date=MOVE,
        household_code="HH-W2",
        relationship_to_head="grandchild",
        expected_version=daughter.version,
    )
    out = workflows.change_permanent_residence(
        session, command, scope=Scope.parse(world.pa), now=soon(), **WHY
    )
    assert out.citizens == [daughter] and [h.code for h in out.households] == ["HH-W2"]
    assert (daughter.household_code, daughter.relationship_to_head) == ("HH-W2", "grandchild")
    assert (daughter.permanent_commune_code, daughter.permanent_address) == (world.a2, "Thôn 3")
    assert before[0].ended_at is not None and before[0].valid_to == MOVE
    (now_open,) = _open(session, daughter.personal_id)
    assert (now_open.commune_code, now_open.household_code, now_open.valid_from) == (
        world.a2,
        "HH-W2",
        MOVE,
    )
    rows = {h.field: h for h in registry.history(session, daughter.personal_id)}
    assert rows["permanent_commune_code"].old_value == world.a1
    assert rows["permanent_commune_code"].new_value == world.a2
    assert rows["household_code"].new_value == "HH-W2"
    assert {(h.actor, h.reason, h.legal_basis, h.source) for h in rows.values()} == {
        ("officer-a", "đăng ký thường trú", "Luật Cư trú 2020", "official")
    }


def test_founding_a_household_makes_the_person_its_head(session: Session, world: World) -> None:
    mother = citizen(session, world.home[1])
    command = workflows.PermanentResidenceChange(
        personal_id=mother.personal_id,
        commune_code=world.b1,
        move_date=MOVE,
        address="  Số 4,   đường Mới ",
    )
    out = workflows.change_permanent_residence(session, command, now=soon(), **WHY)
    household = out.households[0]
    assert household.code == f"HK{mother.personal_id}" and household.head_id == mother.personal_id
    assert (household.commune_code, household.address) == (world.b1, "Số 4, đường Mới")
    assert mother.relationship_to_head == "head" and mother.household_code == household.code
    old = session.get(Household, "HH-W1")
    assert old is not None and old.dissolved_at is None, "father and daughter remain"


def test_the_last_member_leaving_dissolves_the_household(session: Session, world: World) -> None:
    neighbour = citizen(session, world.neighbour)
    command = workflows.PermanentResidenceChange(
        personal_id=neighbour.personal_id,
        commune_code=world.a1,
        move_date=MOVE,
        household_code="HH-W1",
        relationship_to_head="sibling",
    )
    out = workflows.change_permanent_residence(session, command, now=soon(), **WHY)
    dissolved = session.get(Household, "HH-W2")
    assert dissolved is not None and dissolved.dissolved_at is not None
    assert dissolved in out.households
    assert neighbour.permanent_address == "Số 1, ngõ 2", "joining takes the household's address"


def test_a_head_with_members_cannot_move_away(session: Session, world: World) -> None:
    father = citizen(session, world.home[0])
    before = _snapshot(session)
    command = workflows.PermanentResidenceChange(
        personal_id=father.personal_id, commune_code=world.a2, move_date=MOVE, address="Thôn 9"
    )
    with pytest.raises(ValidationFailed) as info:
        workflows.change_permanent_residence(session, command, now=soon(), **WHY)
    assert _fields(info) == {"personal_id"} and "head" in info.value.message + str(
        info.value.problems[0]
    )
    assert _snapshot(session) == before


def test_bad_residence_changes_name_every_field_and_change_nothing(
    session: Session, world: World
) -> None:
    daughter = citizen(session, world.home[2])
    before = _snapshot(session)
    cases = [
        ({"commune_code": "99999", "address": "x"}, {"commune_code"}),
        ({"move_date": dt.date(2099, 1, 1), "address": "x"}, {"move_date"}),
        ({"move_date": dt.date(2000, 1, 1), "address": "x"}, {"move_date"}),
        ({"address": None}, {"address"}),
        ({"address": "x" * 301}, {"address"}),
        ({"address": "x", "relationship_to_head": "child"}, {"relationship_to_head"}),
        ({"household_code": "HH-W3", "relationship_to_head": "other"}, {"household_code"}),
        ({"household_code": "HH-W2", "relationship_to_head": "head"}, {"relationship_to_head"}),
        ({"household_code": "HH-W2", "relationship_to_head": None}, {"relationship_to_head"}),
        ({"household_code": "HH-W1", "relationship_to_head": "child"}, {"household_code"}),
    ]
    for overrides, fields in cases:
        values: dict[str, object] = {
            "personal_id": daughter.personal_id,
            "commune_code": world.a2,
            "move_date": MOVE,
        }
        values.update(overrides)
        if values.get("household_code") == "HH-W1":
            values["commune_code"] = world.a1
        command = workflows.PermanentResidenceChange(**values)  # type: ignore[arg-type]
        with pytest.raises(ValidationFailed) as info:
            workflows.change_permanent_residence(session, command, now=soon(), **WHY)
        assert _fields(info) == fields, overrides
    with pytest.raises(ValidationFailed) as nobody:
        workflows.change_permanent_residence(
            session,
            workflows.PermanentResidenceChange(
                personal_id="001000000000", commune_code=world.a2, move_date=MOVE, address="x"
            ),
            **WHY,
        )
    assert _fields(nobody) == {"personal_id"}
    with pytest.raises(ValidationFailed) as no_reason:
        workflows.change_permanent_residence(
            session,
            workflows.PermanentResidenceChange(
                personal_id=daughter.personal_id, commune_code=world.a2, move_date=MOVE
            ),
            actor="officer-a",
            reason="  ",
        )
    assert _fields(no_reason) == {"reason"}
    assert _snapshot(session) == before


def test_scope_refuses_moves_into_or_of_people_outside_the_unit(
    session: Session, world: World
) -> None:
    daughter = citizen(session, world.home[2])
    before = _snapshot(session)
    into_other = workflows.PermanentResidenceChange(
        personal_id=daughter.personal_id,
        commune_code=world.a2,
        move_date=MOVE,
        household_code="HH-W2",
        relationship_to_head="other",
    )
    with pytest.raises(scope.OutOfScope) as info:
        workflows.change_permanent_residence(
            session, into_other, scope=Scope.parse(world.a1), now=soon(), **WHY
        )
    assert info.value.status == 403 and _fields(info) == {"commune_code"}
    with pytest.raises(ForbiddenError):
        workflows.change_permanent_residence(
            session, into_other, scope=Scope.parse(world.a2), now=soon(), **WHY
        )
    with pytest.raises(scope.OutOfScope):
        workflows.change_permanent_residence(
            session,
            workflows.PermanentResidenceChange(
                personal_id=daughter.personal_id, commune_code=world.b1, move_date=MOVE, address="x"
            ),
            scope=Scope.parse(world.pa),
            now=soon(),
            **WHY,
        )
    assert _snapshot(session) == before


def test_a_deceased_person_cannot_move(session: Session, world: World) -> None:
    neighbour = citizen(session, world.neighbour)
    workflows.record_death(
        session,
        workflows.DeathRegistration(neighbour.personal_id, dt.date(2025, 9, 1)),
        actor="o",
        now=soon(),
    )
    command = workflows.PermanentResidenceChange(
        personal_id=neighbour.personal_id, commune_code=world.a1, move_date=MOVE, address="x"
    )
    with pytest.raises(ValidationFailed, match="deceased"):
        workflows.change_permanent_residence(session, command, now=soon(), **WHY)


def test_a_stale_version_is_refused_before_anything_changes(session: Session, world: World) -> None:
    daughter = citizen(session, world.home[2])
    before = _snapshot(session)
    command = workflows.PermanentResidenceChange(
        personal_id=daughter.personal_id,
        commune_code=world.a1,
        move_date=MOVE,
        address="Số 2",
        expected_version=daughter.version - 1,
    )
    with pytest.raises(registry.StaleRecord, match="changed by someone else"):
        workflows.change_permanent_residence(session, command, now=soon(), **WHY)
    assert _snapshot(session) == before


# --------------------------------------------------------------------------- households


def test_a_household_moves_together(session: Session, world: World) -> None:
    out = workflows.move_household(
        session,
        workflows.HouseholdMove("HH-W1", world.a2, "Số 8, ngõ 1", MOVE),
        scope=Scope.parse(world.pa),
        now=soon(),
        **WHY,
    )
    members = {c.personal_id: c for c in out.citizens}
    assert members.keys() == {r["personal_id"] for r in world.home}
    for person in members.values():
        assert (person.permanent_commune_code, person.permanent_address) == (
            world.a2,
            "Số 8, ngõ 1",
        )
        assert [r.commune_code for r in _open(session, person.personal_id)] == [world.a2]
    assert members[world.home[0]["personal_id"]].relationship_to_head == "head"
    household = session.get(Household, "HH-W1")
    assert household is not None and household.commune_code == world.a2
    assert len(out.ended) == 3 and len(out.opened) == 3


def _read(session: Session, world: World) -> dict[str, int]:
    """The versions of the household HH-W1's members, as the official read them."""
    return {c.personal_id: c.version for c in (citizen(session, r) for r in world.home)}


def test_household_changes_missing_a_members_version_are_refused(
    session: Session, world: World
) -> None:
    """A caller that checks versions must give one for every member the change touches: a
    member left out could otherwise be overwritten unseen."""
    father, mother, daughter = (r["personal_id"] for r in world.home)
    read = _read(session, world)
    partial = {father: read[father], mother: read[mother]}  # the daughter's is missing
    before = _snapshot(session)
    commands = [
        lambda: workflows.move_household(
            session,
            workflows.HouseholdMove("HH-W1", world.a2, "x", MOVE, expected_versions=partial),
            now=soon(),
            **WHY,
        ),
        lambda: workflows.split_household(
            session,
            workflows.HouseholdSplit(
                "HH-W1", mother, {daughter: "child"}, expected_versions=partial
            ),
            now=soon(),
            **WHY,
        ),
        lambda: workflows.change_household_head(
            session,
            workflows.HeadChange(
                "HH-W1", mother, {father: "spouse", daughter: "child"}, expected_versions=partial
            ),
            now=soon(),
            **WHY,
        ),
    ]
    for run in commands:
        with pytest.raises(ValidationFailed) as info:
            run()
        assert _fields(info) == {"versions"}
        assert daughter in info.value.problems[0].reason
    assert _snapshot(session) == before


def test_household_moves_refuse_bad_input_and_other_units(session: Session, world: World) -> None:
    before = _snapshot(session)
    same = workflows.HouseholdMove("HH-W1", world.a1, "Số 1, ngõ 2", MOVE)
    with pytest.raises(ValidationFailed) as info:
        workflows.move_household(session, same, now=soon(), **WHY)
    assert _fields(info) == {"address"}
    with pytest.raises(ValidationFailed) as unknown:
        workflows.move_household(
            session, workflows.HouseholdMove("HH-NONE", world.a1, "x", MOVE), **WHY
        )
    assert _fields(unknown) == {"household_code"}
    with pytest.raises(scope.OutOfScope):
        workflows.move_household(
            session,
            workflows.HouseholdMove("HH-W1", world.a2, "x", MOVE),
            scope=Scope.parse(world.a1),
            **WHY,
        )
    with pytest.raises(registry.StaleRecord):
        workflows.move_household(
            session,
            workflows.HouseholdMove(
                "HH-W1",
                world.a2,
                "x",
                MOVE,
                expected_versions={**_read(session, world), world.home[1]["personal_id"]: 99},
            ),
            now=soon(),
            **WHY,
        )
    assert _snapshot(session) == before


def test_a_split_founds_a_household_and_keeps_the_old_head(session: Session, world: World) -> None:
    father, mother, daughter = (citizen(session, r) for r in world.home)
    out = workflows.split_household(
        session,
        workflows.HouseholdSplit(
            household_code="HH-W1",
            new_head_id=mother.personal_id,
            members={daughter.personal_id: "child"},
            address="Số 1A, ngõ 2",
        ),
        scope=Scope.parse(world.a1),
        now=soon(),
        **WHY,
    )
    old, new = out.households
    assert old.code == "HH-W1" and old.head_id == father.personal_id
    assert new.head_id == mother.personal_id and new.commune_code == world.a1
    assert (mother.household_code, mother.relationship_to_head) == (new.code, "head")
    assert (daughter.household_code, daughter.relationship_to_head) == (new.code, "child")
    assert father.household_code == "HH-W1"
    assert [r.household_code for r in _open(session, daughter.personal_id)] == [new.code]
    assert daughter.permanent_address == "Số 1A, ngõ 2"


def test_bad_splits_are_refused(session: Session, world: World) -> None:
    father, mother, daughter = (r["personal_id"] for r in world.home)
    before = _snapshot(session)
    cases = [
        (workflows.HouseholdSplit("HH-W1", father), {"new_head_id"}),
        (workflows.HouseholdSplit("HH-W1", mother, {father: "spouse"}), {f"members.{father}"}),
        (
            workflows.HouseholdSplit("HH-W1", mother, {world.far["personal_id"]: "child"}),
            {f"members.{world.far['personal_id']}"},
        ),
        (workflows.HouseholdSplit("HH-W1", mother, {daughter: "head"}), {f"members.{daughter}"}),
        (workflows.HouseholdSplit("HH-W1", mother, {mother: "child"}), {f"members.{mother}"}),
        (
            workflows.HouseholdSplit("HH-W1", mother, split_date=dt.date(2099, 1, 1)),
            {"split_date"},
        ),
        (workflows.HouseholdSplit("HH-NONE", mother), {"household_code"}),
    ]
    for command, fields in cases:
        with pytest.raises(ValidationFailed) as info:
            workflows.split_household(session, command, now=soon(), **WHY)
        assert _fields(info) == fields, command
    with pytest.raises(scope.OutOfScope):
        workflows.split_household(
            session,
            workflows.HouseholdSplit("HH-W1", mother),
            scope=Scope.parse(world.a2),
            **WHY,
        )
    assert _snapshot(session) == before


def test_changing_the_head_restates_every_relationship(session: Session, world: World) -> None:
    father, mother, daughter = (citizen(session, r) for r in world.home)
    out = workflows.change_household_head(
        session,
        workflows.HeadChange(
            household_code="HH-W1",
            new_head_id=mother.personal_id,
            relationships={father.personal_id: "spouse", daughter.personal_id: "child"},
            expected_versions=_read(session, world),
        ),
        now=soon(),
        **WHY,
    )
    assert out.households[0].head_id == mother.personal_id
    assert [mother.relationship_to_head, father.relationship_to_head] == ["head", "spouse"]
    changes = [h for h in registry.history(session, father.personal_id) if h.actor == "officer-a"]
    assert [(h.field, h.old_value, h.new_value) for h in changes] == [
        ("relationship_to_head", "head", "spouse")
    ]
    # The former head may now move away; the household keeps its new head.
    workflows.change_permanent_residence(
        session,
        workflows.PermanentResidenceChange(
            personal_id=father.personal_id, commune_code=world.a2, move_date=MOVE, address="x"
        ),
        now=soon(),
        **WHY,
    )


def test_bad_head_changes_are_refused(session: Session, world: World) -> None:
    father, mother, daughter = (r["personal_id"] for r in world.home)
    before = _snapshot(session)
    cases = [
        (workflows.HeadChange("HH-W1", mother, {father: "spouse"}), {f"relationships.{daughter}"}),
        (
            workflows.HeadChange("HH-W1", world.far["personal_id"], {}),
            {"new_head_id", *(f"relationships.{p}" for p in (father, mother, daughter))},
        ),
        (
            workflows.HeadChange("HH-W1", father, {mother: "spouse", daughter: "child"}),
            {"new_head_id"},
        ),
        (
            workflows.HeadChange("HH-W1", mother, {father: "boss", daughter: "child"}),
            {f"relationships.{father}"},
        ),
        (
            workflows.HeadChange(
                "HH-W1", mother, {father: "spouse", daughter: "child", mother: "head"}
            ),
            {f"relationships.{mother}"},
        ),
    ]
    for command, fields in cases:
        with pytest.raises(ValidationFailed) as info:
            workflows.change_household_head(session, command, now=soon(), **WHY)
        assert _fields(info) == fields, command
    assert _snapshot(session) == before


# ---------------------------------------------------------------- temporary residence


def test_temporary_residence_replaces_the_previous_one(session: Session, world: World) -> None:
    father = citizen(session, world.home[0])
    today = soon().date()
    first = workflows.TemporaryResidenceRegistration(
        father.personal_id, world.a2, "Phòng 3, nhà trọ 5", today, today + dt.timedelta(days=365)
    )
    version = father.version
    before = soon() - dt.timedelta(seconds=1)
    out = workflows.register_temporary_residence(session, first, now=soon(), **WHY)
    past = registry.as_of(session, father.personal_id, before)
    assert past is not None and "temporary_residence" not in past, "notes are not fields"
    assert father.version == version + 1, "the version moves so concurrent edits are seen"
    (opened,) = out.opened
    assert (opened.kind, opened.valid_to) == ("temporary", today + dt.timedelta(days=365))
    second = workflows.TemporaryResidenceRegistration(
        father.personal_id, world.b1, "Phòng 1", today, today + dt.timedelta(days=30)
    )
    out = workflows.register_temporary_residence(session, second, now=soon(), **WHY)
    assert out.ended == [opened] and opened.ended_at is not None
    assert [r.commune_code for r in _open(session, father.personal_id, "temporary")] == [world.b1]
    notes = [h for h in registry.history(session, father.personal_id) if h.field.startswith("temp")]
    assert notes[0].old_value is None and world.a2 in str(notes[0].new_value)
    assert world.a2 in str(notes[1].old_value) and world.b1 in str(notes[1].new_value)


def test_bad_temporary_residences_are_refused(session: Session, world: World) -> None:
    father = world.home[0]["personal_id"]
    today = soon().date()
    before = _snapshot(session)
    year = dt.timedelta(days=365)
    cases = [
        ((world.a2, "x", today, today - dt.timedelta(days=1)), {"valid_until"}),
        ((world.a2, "x", today, today + 3 * year), {"valid_until"}),
        ((world.a2, "x", today - 3 * year, today - 2 * year), {"valid_until"}),
        ((world.a2, "x", dt.date(1950, 1, 1), today), {"valid_from", "valid_until"}),
        (("99999", "", today, today + year), {"commune_code", "address"}),
        ((world.a1, "Số 1, ngõ 2", today, today + year), {"address"}),
    ]
    for (commune, address, start, until), fields in cases:
        command = workflows.TemporaryResidenceRegistration(father, commune, address, start, until)
        with pytest.raises(ValidationFailed) as info:
            workflows.register_temporary_residence(session, command, now=soon(), **WHY)
        assert _fields(info) == fields, (commune, start, until)
    with pytest.raises(scope.OutOfScope):
        workflows.register_temporary_residence(
            session,
            workflows.TemporaryResidenceRegistration(father, world.b1, "x", today, today + year),
            scope=Scope.parse(world.pa),
            **WHY,
        )
    assert _snapshot(session) == before


# ------------------------------------------------------------------------- corrections


def test_correct_field_goes_through_the_correction_event(session: Session, world: World) -> None:
    daughter = citizen(session, world.home[2])
    corrected = workflows.correct_field(
        session,
        workflows.FieldCorrection(
            daughter.personal_id, "birth_date", "2012-09-14", expected_version=daughter.version
        ),
        actor="officer-a",
        reason="giấy khai sinh ghi đủ ngày",
        legal_basis="Nghị định 123/2015/NĐ-CP",
        scope=Scope.parse(world.a1),
        now=soon(),
    )
    assert (corrected.birth_date, corrected.birth_date_precision) == (dt.date(2012, 9, 14), "day")
    event = session.scalars(
        select(CivilEvent).where(CivilEvent.personal_id == daughter.personal_id)
    ).one()
    assert event.kind == "correction" and event.legal_basis == "Nghị định 123/2015/NĐ-CP"
    rows = [h for h in registry.history(session, daughter.personal_id) if h.civil_event_id]
    assert {h.field for h in rows} == {"birth_date", "birth_date_precision"}
    assert {h.reason for h in rows} == {"giấy khai sinh ghi đủ ngày"}


def test_bad_corrections_are_refused_and_change_nothing(session: Session, world: World) -> None:
    daughter = citizen(session, world.home[2])
    before = _snapshot(session)

    def correct(field: str, value: str, **kw: object) -> pytest.ExceptionInfo[ValidationFailed]:
        args: dict[str, object] = {"reason": "r", "legal_basis": "b", **kw}
        with pytest.raises(ValidationFailed) as info:
            workflows.correct_field(
                session,
                workflows.FieldCorrection(daughter.personal_id, field, value),
                actor="officer-a",
                now=soon(),
                **args,  # type: ignore[arg-type]
            )
        return info

    assert _fields(correct("full_name", "x", reason="", legal_basis=" ")) == {
        "reason",
        "legal_basis",
    }
    assert _fields(correct("birth_date", "2012-02-30")) == {"value"}
    assert _fields(correct("birth_date", "2099-01-01")) == {"value"}
    assert _fields(correct("sex", "X")) == {"value"}
    assert _fields(correct("phone", "0900000000")) == {"field"}
    with pytest.raises(ForbiddenError):
        workflows.correct_field(
            session,
            workflows.FieldCorrection(daughter.personal_id, "full_name", "Trần Thị Mới"),
            actor="o",
            reason="r",
            legal_basis="b",
            scope=Scope.parse(world.b1),
        )
    with pytest.raises(registry.StaleRecord):
        workflows.correct_field(
            session,
            workflows.FieldCorrection(
                daughter.personal_id, "full_name", "Trần Thị Mới", expected_version=0
            ),
            actor="o",
            reason="r",
            legal_basis="b",
        )
    assert _snapshot(session) == before


# --------------------------------------------------------------------- births and deaths


def test_register_birth_stays_in_scope_and_in_the_household_commune(
    session: Session, world: World
) -> None:
    father, mother = world.home[0]["personal_id"], world.home[1]["personal_id"]

    def birth(commune: str, household: str | None) -> events.Birth:
        return events.Birth(
            full_name="Trần Văn Út",
            birth_date=PartialDate(2025, 9, 9),
            sex="M",
            birth_place_code="001",
            permanent_commune_code=commune,
            father_id=father,
            mother_id=mother,
            household_code=household,
        )

    before = _snapshot(session)
    with pytest.raises(scope.OutOfScope) as out:
        workflows.register_birth(
            session,
            birth(world.a2, None),
            event_date=MOVE,
            actor="o",
            scope=Scope.parse(world.a1),
        )
    assert _fields(out) == {"permanent_commune_code"}
    with pytest.raises(ValidationFailed) as elsewhere:
        workflows.register_birth(session, birth(world.a2, "HH-W1"), event_date=MOVE, actor="o")
    assert _fields(elsewhere) == {"household_code"}
    assert _snapshot(session) == before
    child = workflows.register_birth(
        session, birth(world.a1, "HH-W1"), event_date=MOVE, actor="o", scope=Scope.parse(world.a1)
    )
    assert child.household_code == "HH-W1" and child.father_id == father


def test_record_death_checks_dates_and_keeps_the_person_findable(
    session: Session, world: World
) -> None:
    mother = citizen(session, world.home[1])
    before = _snapshot(session)
    for day, reason in ((dt.date(1980, 1, 1), "before the birth"), (dt.date(2099, 1, 1), "future")):
        with pytest.raises(ValidationFailed, match=reason) as info:
            workflows.record_death(
                session, workflows.DeathRegistration(mother.personal_id, day), actor="o"
            )
        assert _fields(info) == {"death_date"}
    with pytest.raises(ValidationFailed) as head:
        workflows.record_death(
            session, workflows.DeathRegistration(world.home[0]["personal_id"], MOVE), actor="o"
        )
    assert _fields(head) == {"personal_id"}
    with pytest.raises(ForbiddenError):
        workflows.record_death(
            session,
            workflows.DeathRegistration(mother.personal_id, MOVE),
            actor="o",
            scope=Scope.parse(world.b1),
        )
    assert _snapshot(session) == before
    workflows.record_death(
        session,
        workflows.DeathRegistration(mother.personal_id, MOVE, expected_version=mother.version),
        actor="o",
        scope=Scope.parse(world.a1),
        now=soon(),
    )
    assert mother.status == "deceased" and _open(session, mother.personal_id) == []
    found = scope.search(session, Scope.parse(world.a1), query="Lê Thị Mẹ").items
    assert found == [mother]


# ------------------------------------------------------------------ concurrent officials


@pytest.fixture
def committed(engine: Engine, tmp_path: Path) -> Iterator[World]:
    """A world committed for real, so that two sessions (two officials) can see it."""
    with Session(engine) as s:
        world = build(s, tmp_path)
        s.commit()
    ids = [r["personal_id"] for r in (*world.home, world.neighbour, world.far)]
    try:
        yield world
    finally:
        with Session(engine) as s:
            households = list(s.scalars(select(Household.code).where(Household.head_id.in_(ids))))
            batches = list(
                s.scalars(
                    select(Citizen.import_batch_id).where(Citizen.personal_id.in_(ids)).distinct()
                )
            )
            s.execute(delete(CitizenHistory).where(CitizenHistory.personal_id.in_(ids)))
            s.execute(delete(CivilEvent).where(CivilEvent.personal_id.in_(ids)))
            s.execute(delete(Residence).where(Residence.personal_id.in_(ids)))
            s.execute(
                delete(DuplicateCandidate).where(
                    DuplicateCandidate.personal_id_a.in_(ids)
                    | DuplicateCandidate.personal_id_b.in_(ids)
                )
            )
            s.execute(delete(Citizen).where(Citizen.personal_id.in_(ids)))
            s.execute(delete(Household).where(Household.code.in_(households)))
            s.execute(delete(ImportBatch).where(ImportBatch.id.in_(batches)))
            s.execute(delete(PersonalIdAllocation).where(PersonalIdAllocation.actor == "test"))
            s.commit()


def test_two_officials_editing_the_same_person_the_second_is_refused(
    engine: Engine, committed: World
) -> None:
    pid = committed.home[2]["personal_id"]
    today = soon().date()
    with Session(engine) as first, Session(engine) as second:
        one, two = first.get_one(Citizen, pid), second.get_one(Citizen, pid)
        assert one.version == two.version
        read = two.version
        workflows.change_permanent_residence(
            first,
            workflows.PermanentResidenceChange(
                pid, committed.a2, MOVE, household_code="HH-W2", relationship_to_head="other"
            ),
            now=soon(),
            **WHY,
        )
        first.commit()
        # The second official saves a change made from what they read before: refused at
        # flush by the version counter, although their own copy still says ``read``.
        assert two.version == read
        with pytest.raises(registry.StaleRecord, match="someone else"):
            workflows.register_temporary_residence(
                second,
                workflows.TemporaryResidenceRegistration(
                    pid, committed.b1, "Phòng 2", today, today + dt.timedelta(days=90), read
                ),
                now=soon(),
                **WHY,
            )
        second.rollback()
    with Session(engine) as third:
        # A later request carrying the version of the old form is refused before any write.
        with pytest.raises(registry.StaleRecord):
            workflows.register_temporary_residence(
                third,
                workflows.TemporaryResidenceRegistration(
                    pid, committed.b1, "Phòng 2", today, today + dt.timedelta(days=90), read
                ),
                now=soon(),
                **WHY,
            )
        person = third.get_one(Citizen, pid)
        assert person.household_code == "HH-W2", "the first official's change was kept"
        assert _open(third, pid, "temporary") == []
