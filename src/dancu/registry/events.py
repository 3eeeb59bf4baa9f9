"""Civil-status events (hộ tịch) applied to the register through one service.

``apply`` records the event and makes its changes to the people concerned in one transaction:
a birth creates a person with a newly allocated ID number, a household membership and a
permanent residence; a death closes the record and ends residences; a marriage or divorce sets
or clears both spouse links; a correction changes one field with its legal basis. Every
change writes history rows that point at the event.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.enums import CivilEventKind, Relationship
from dancu.errors import ConflictError, DancuError, Problem, ValidationFailed
from dancu.geo.models import Commune
from dancu.registry import duplicates
from dancu.registry import service as registry
from dancu.registry.models import (
    Citizen,
    CivilEvent,
    Household,
    PersonalIdAllocation,
    Residence,
)
from dancu.vn import names as vn_names
from dancu.vn import personal_id as vn_ids
from dancu.vn.dates import PartialDate


@dataclass(slots=True)
class Birth:
    """A birth registration (khai sinh)."""

    full_name: str
    birth_date: PartialDate
    sex: str
    birth_place_code: str  # 3-digit ID prefix of the province registering the birth
    permanent_commune_code: str
    permanent_address: str | None = None
    father_id: str | None = None
    mother_id: str | None = None
    household_code: str | None = None  # join this household; None founds a new one
    relationship_to_head: str = Relationship.CHILD
    ethnicity: str | None = None
    religion: str | None = None
    nationality: str = "Việt Nam"
    place_of_origin: str | None = None


@dataclass(slots=True)
class Event:
    """What an official records; ``details`` carries the kind-specific fields."""

    kind: CivilEventKind
    event_date: dt.date
    actor: str
    legal_basis: str | None = None
    personal_id: str | None = None
    other_personal_id: str | None = None
    birth: Birth | None = None
    details: dict[str, Any] = field(default_factory=dict)


_MAX_ALLOCATION_TRIES = 50


def allocate_personal_id(
    session: Session, *, place_code: str, birth_year: int, sex: str, actor: str
) -> str:
    """A new, never-used personal ID number: the PPPGYY prefix of DOMAIN.md and a random
    6-digit serial. Safe under concurrency: the allocation table's primary key arbitrates,
    and a clash retries with another serial inside a savepoint."""
    prefix = vn_ids.prefix_for(place_code, birth_year, sex)
    for _ in range(_MAX_ALLOCATION_TRIES):
        candidate = f"{prefix}{secrets.randbelow(1_000_000):06d}"
        if session.get(Citizen, candidate) is not None:
            continue
        try:
            with session.begin_nested():
                session.add(PersonalIdAllocation(personal_id=candidate, actor=actor))
        except IntegrityError:
            continue
        return candidate
    raise ConflictError(f"no free personal ID number found for prefix {prefix}; try again")


def _require_person(session: Session, personal_id: str | None, field_name: str) -> Citizen:
    if not personal_id:
        raise ValidationFailed(f"{field_name} is required", [Problem(None, field_name, "required")])
    person = registry.get(session, personal_id)
    if person is None:
        raise ValidationFailed(
            f"{field_name}: no citizen with this personal ID number",
            [Problem(None, field_name, "points to nobody in the register")],
        )
    return person


def _require_alive(person: Citizen, field_name: str) -> None:
    if person.status == "deceased":
        raise ValidationFailed(
            f"{field_name}: the person is recorded as deceased",
            [Problem(None, field_name, "the person is deceased")],
        )


def _record(session: Session, event: Event, personal_id: str, now: dt.datetime) -> CivilEvent:
    row = CivilEvent(
        kind=str(event.kind),
        personal_id=personal_id,
        other_personal_id=event.other_personal_id,
        event_date=event.event_date,
        recorded_at=now,
        actor=event.actor,
        legal_basis=event.legal_basis,
        details={
            k: v.isoformat() if isinstance(v, PartialDate) else v for k, v in event.details.items()
        },
    )
    session.add(row)
    session.flush()
    return row


def apply(session: Session, event: Event, *, now: dt.datetime | None = None) -> Citizen:
    """Record ``event`` and apply it to the register; returns the (main) person concerned."""
    now = now or dt.datetime.now(dt.UTC)
    if event.event_date > now.date():
        raise ValidationFailed(
            "the event date is in the future", [Problem(None, "event_date", "is in the future")]
        )
    handler = {
        CivilEventKind.BIRTH: _birth,
        CivilEventKind.DEATH: _death,
        CivilEventKind.MARRIAGE: _marriage,
        CivilEventKind.DIVORCE: _divorce,
        CivilEventKind.CORRECTION: _correction,
    }[CivilEventKind(event.kind)]
    return handler(session, event, now)


def _birth(session: Session, event: Event, now: dt.datetime) -> Citizen:
    birth = event.birth
    if birth is None:
        raise ValidationFailed("a birth needs the child's details")
    problems: list[Problem] = []
    name = vn_names.canonical_name(birth.full_name)
    if not name:
        problems.append(Problem(None, "full_name", "required"))
    if birth.sex not in ("M", "F"):
        problems.append(Problem(None, "sex", "expected M or F"))
    if birth.birth_date.first_day() > now.date():
        problems.append(Problem(None, "birth_date", "is in the future"))
    if session.get(Commune, birth.permanent_commune_code) is None:
        problems.append(
            Problem(None, "permanent_commune_code", "is not a commune code of the 2025 units")
        )
    parents = {}
    for column in ("father_id", "mother_id"):
        pid = getattr(birth, column)
        if pid:
            parent = registry.get(session, pid)
            if parent is None:
                problems.append(Problem(None, column, "points to nobody in the register"))
            elif parent.birth_date >= birth.birth_date.first_day():
                problems.append(Problem(None, column, "is not older than the child"))
            else:
                parents[column] = parent
    household = None
    if birth.household_code:
        household = session.get(Household, birth.household_code)
        if household is None:
            problems.append(Problem(None, "household_code", "no such household"))
    try:
        vn_ids.prefix_for(birth.birth_place_code, birth.birth_date.year, birth.sex or "M")
    except ValueError as exc:
        problems.append(Problem(None, "birth_place_code", str(exc)))
    if problems:
        raise ValidationFailed("the birth registration has errors", problems)

    pid = allocate_personal_id(
        session,
        place_code=birth.birth_place_code,
        birth_year=birth.birth_date.year,
        sex=birth.sex,
        actor=event.actor,
    )
    family, middle, given = vn_names.split_name(name)
    relationship = str(birth.relationship_to_head) if household else str(Relationship.HEAD)
    household_code = household.code if household else f"HK{pid}"
    child = Citizen(
        personal_id=pid,
        full_name=name,
        family_name=family,
        middle_name=middle,
        given_name=given,
        name_key=vn_names.fold(name),
        birth_date=birth.birth_date.first_day(),
        birth_date_precision=birth.birth_date.precision,
        birth_year=birth.birth_date.year,
        sex=birth.sex,
        status="alive",
        ethnicity=birth.ethnicity,
        religion=birth.religion,
        nationality=birth.nationality,
        place_of_origin=birth.place_of_origin,
        father_id=birth.father_id,
        mother_id=birth.mother_id,
        household_code=household_code,
        relationship_to_head=relationship,
        permanent_commune_code=birth.permanent_commune_code,
        permanent_address=birth.permanent_address,
        created_at=now,
        updated_at=now,
    )
    session.add(child)
    if household is None:
        session.add(
            Household(
                code=household_code,
                head_id=pid,
                commune_code=birth.permanent_commune_code,
                address=birth.permanent_address,
                created_at=now,
            )
        )
    session.add(
        Residence(
            personal_id=pid,
            kind="permanent",
            commune_code=birth.permanent_commune_code,
            address=birth.permanent_address,
            household_code=household_code,
            valid_from=birth.birth_date.first_day(),
            created_at=now,
        )
    )
    session.flush()
    event.details.setdefault("birth_place_code", birth.birth_place_code)
    _record(session, event, pid, now)
    duplicates.flag_for(session, pid, now)
    return child


def _death(session: Session, event: Event, now: dt.datetime) -> Citizen:
    person = _require_person(session, event.personal_id, "personal_id")
    _require_alive(person, "personal_id")
    if event.event_date < person.birth_date:
        raise ValidationFailed(
            "the death date is before the birth date",
            [Problem(None, "event_date", "is before the birth date")],
        )
    if person.relationship_to_head == "head" and _household_has_others(session, person):
        raise ValidationFailed(
            "the person heads a household with other members: change the head first",
            [Problem(None, "personal_id", "heads a household with other members")],
        )
    record = _record(session, event, person.personal_id, now)
    registry.update(
        session,
        person,
        {"status": "deceased", "death_date": event.event_date},
        actor=event.actor,
        source="event",
        reason="death registration",
        legal_basis=event.legal_basis,
        civil_event_id=record.id,
        now=now,
    )
    session.execute(
        update(Residence)
        .where(Residence.personal_id == person.personal_id, Residence.ended_at.is_(None))
        .values(ended_at=now, valid_to=event.event_date)
    )
    return person


def _household_has_others(session: Session, person: Citizen) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Citizen.household_code == person.household_code,
                    Citizen.personal_id != person.personal_id,
                    Citizen.status == "alive",
                )
            )
        )
    )


def _marriage(session: Session, event: Event, now: dt.datetime) -> Citizen:
    a = _require_person(session, event.personal_id, "personal_id")
    b = _require_person(session, event.other_personal_id, "other_personal_id")
    if a.personal_id == b.personal_id:
        raise ValidationFailed("a person cannot marry themself")
    for person, name in ((a, "personal_id"), (b, "other_personal_id")):
        _require_alive(person, name)
        if person.spouse_id:
            raise ValidationFailed(
                f"{name}: already married", [Problem(None, name, "is already married")]
            )
    record = _record(session, event, a.personal_id, now)
    for person, other in ((a, b), (b, a)):
        registry.update(
            session,
            person,
            {"spouse_id": other.personal_id},
            actor=event.actor,
            source="event",
            reason="marriage registration",
            legal_basis=event.legal_basis,
            civil_event_id=record.id,
            now=now,
        )
    return a


def _divorce(session: Session, event: Event, now: dt.datetime) -> Citizen:
    a = _require_person(session, event.personal_id, "personal_id")
    b = _require_person(session, event.other_personal_id, "other_personal_id")
    if a.spouse_id != b.personal_id or b.spouse_id != a.personal_id:
        raise ValidationFailed(
            "the two people are not married to each other",
            [Problem(None, "other_personal_id", "is not the person's spouse")],
        )
    record = _record(session, event, a.personal_id, now)
    for person in (a, b):
        registry.update(
            session,
            person,
            {"spouse_id": None},
            actor=event.actor,
            source="event",
            reason="divorce",
            legal_basis=event.legal_basis,
            civil_event_id=record.id,
            now=now,
        )
    return a


_CORRECTABLE = frozenset(
    {"full_name", "birth_date", "sex", "ethnicity", "religion", "nationality", "place_of_origin"}
)


def _correction(session: Session, event: Event, now: dt.datetime) -> Citizen:
    person = _require_person(session, event.personal_id, "personal_id")
    field_name = event.details.get("field")
    if field_name not in _CORRECTABLE:
        raise ValidationFailed(
            f"field {field_name!r} cannot be corrected by a civil-status correction",
            [Problem(None, "field", f"expected one of {', '.join(sorted(_CORRECTABLE))}")],
        )
    if not event.legal_basis or not event.details.get("reason"):
        raise ValidationFailed(
            "a correction needs a reason and a legal basis",
            [Problem(None, "legal_basis", "required"), Problem(None, "reason", "required")],
        )
    value = event.details.get("value")
    changes: dict[str, Any] = {field_name: value}
    if field_name == "birth_date":
        if not isinstance(value, PartialDate):
            raise ValidationFailed(
                "birth_date must be a date", [Problem(None, "value", "not a date")]
            )
        changes = {"birth_date": value.first_day(), "birth_date_precision": value.precision}
        if person.death_date and person.death_date < value.first_day():
            raise ValidationFailed(
                "the corrected birth date is after the death date",
                [Problem(None, "value", "is after the death date")],
            )
    elif field_name == "sex" and value not in ("M", "F"):
        raise ValidationFailed("sex must be M or F", [Problem(None, "value", "expected M or F")])
    elif field_name == "full_name" and not vn_names.canonical_name(str(value or "")):
        raise ValidationFailed("the name is empty", [Problem(None, "value", "required")])
    event.details["old_value"] = str(getattr(person, field_name))
    record = _record(session, event, person.personal_id, now)
    registry.update(
        session,
        person,
        changes,
        actor=event.actor,
        source="event",
        reason=str(event.details["reason"]),
        legal_basis=event.legal_basis,
        civil_event_id=record.id,
        expected_version=event.details.get("expected_version"),
        now=now,
    )
    if field_name in ("full_name", "birth_date"):
        duplicates.flag_for(session, person.personal_id, now)
    return person


def consistency_findings(person: Citizen) -> list[str]:
    """Data-quality findings for a person's ID number against birth year and sex (not refusals)."""
    try:
        return vn_ids.check_consistency(person.personal_id, person.birth_year, person.sex)
    except ValueError as exc:  # a malformed number imported from an old source
        return [str(exc)]


__all__ = ["Birth", "DancuError", "Event", "allocate_personal_id", "apply", "consistency_findings"]
