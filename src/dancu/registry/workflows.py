"""What commune police do to the register (issue 3), one function per procedure.

Each takes the session, a typed command, who acts (``actor``), why (``reason``) and on what
legal basis, and an optional ``scope`` (the official's unit, ``registry.scope``): a person or a
commune outside it is refused with 403. Each checks everything first and raises
``ValidationFailed`` naming every bad field before writing anything, so bad input changes
nothing; then it makes the change, writing ``citizen_history`` rows in the same transaction
(through ``registry.service.update`` for record fields, directly for residence notes).

Concurrency: commands carry the ``version`` of each person the official read. A stale version
is refused with ``StaleRecord`` before any write; every workflow also bumps the version of each
person it changes, so of two officials saving at the same moment the second is refused at
flush time (the version counter of ``citizen``), never silently overwritten.

Residence rules (Law on Residence 68/2020): a person has one open permanent residence; a
household has exactly one head, and its head cannot leave it, die or move away while others
remain (change the head or split the household first); a temporary residence lasts at most two
years (art. 27) and a new one replaces the previous one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dancu.enums import ChangeSource, CivilEventKind, Relationship, ResidenceKind
from dancu.errors import Problem, ValidationFailed
from dancu.geo.models import Commune
from dancu.registry import events
from dancu.registry import scope as scopes
from dancu.registry import service as registry
from dancu.registry.models import Citizen, CitizenHistory, CitizenMerge, Household, Residence
from dancu.registry.scope import Scope
from dancu.vn import dates as vn_dates
from dancu.vn.dates import PartialDate

MAX_TEMPORARY_YEARS = 2  # Law on Residence 68/2020, art. 27 §2: renewable, two years at most
MAX_ADDRESS = 300
_MEMBER_RELATIONSHIPS = frozenset(r.value for r in Relationship) - {Relationship.HEAD.value}
_OFFICIAL = ChangeSource.OFFICIAL.value


# ------------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class PermanentResidenceChange:
    """One person leaves their household and commune and joins another household there
    (``household_code``), or founds a new one as its head (``household_code`` None)."""

    personal_id: str
    commune_code: str
    move_date: dt.date
    address: str | None = None  # required to found a household; joining uses the household's
    household_code: str | None = None
    relationship_to_head: str | None = None  # required when joining a household
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class HouseholdMove:
    """A whole household moves to a new address (in the same or another commune)."""

    household_code: str
    commune_code: str
    address: str
    move_date: dt.date
    expected_versions: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class TemporaryResidenceRegistration:
    """A temporary residence (tạm trú) with its validity period."""

    personal_id: str
    commune_code: str
    address: str
    valid_from: dt.date
    valid_until: dt.date
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class HouseholdSplit:
    """Members leave a household to found a new one at the same commune (tách hộ).

    ``members`` maps every leaving member other than the new head to their relationship to
    the new head. The old household keeps its head, who therefore cannot leave.
    """

    household_code: str
    new_head_id: str
    members: Mapping[str, str] = field(default_factory=dict)
    address: str | None = None  # of the new household; the old household's by default
    split_date: dt.date | None = None
    expected_versions: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class HeadChange:
    """A new head for a household; every other living member's relationship is re-stated."""

    household_code: str
    new_head_id: str
    relationships: Mapping[str, str] = field(default_factory=dict)
    expected_versions: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class FieldCorrection:
    """A correction of one civil-status field (cải chính), ``value`` as the official typed it
    (a birth date as ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``, or a ``PartialDate``)."""

    personal_id: str
    field: str
    value: str | PartialDate
    event_date: dt.date | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeathRegistration:
    """A death (khai tử): closes the record and ends the residences."""

    personal_id: str
    death_date: dt.date
    expected_version: int | None = None


@dataclass(slots=True)
class Changes:
    """What a workflow changed: the people, the households, the residences it opened and the
    ones it ended."""

    citizens: list[Citizen] = field(default_factory=list)
    households: list[Household] = field(default_factory=list)
    opened: list[Residence] = field(default_factory=list)
    ended: list[Residence] = field(default_factory=list)


# -------------------------------------------------------------------------------- checks


class _Checks:
    """Collects every problem of a command, so one answer names every bad field."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field_name: str, reason: str) -> None:
        self.problems.append(Problem(None, field_name, reason))

    def raise_if_any(self, what: str) -> None:
        if self.problems:
            fields = ", ".join(dict.fromkeys(str(p.field) for p in self.problems))
            raise ValidationFailed(f"{what}: check {fields}", self.problems)


def _fail(field_name: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{field_name} {reason}", [Problem(None, field_name, reason)])


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _person(
    session: Session,
    scope: Scope | None,
    personal_id: str,
    field_name: str = "personal_id",
    *,
    alive: bool = True,
) -> Citizen:
    """The person a command names: in scope (403 otherwise), not merged away, alive."""
    person = registry.get(session, personal_id) if personal_id else None
    if person is None:
        raise _fail(field_name, "points to nobody in the register")
    scopes.require_person(session, scope, personal_id)
    merged_into = session.scalar(
        select(CitizenMerge.kept_id).where(CitizenMerge.merged_id == personal_id)
    )
    if merged_into:
        raise _fail(field_name, f"was merged into {merged_into}; use that record")
    if alive and person.status != "alive":
        raise _fail(field_name, "the person is recorded as deceased")
    return person


def _commune(session: Session, checks: _Checks, scope: Scope | None, code: str) -> None:
    scopes.require_commune(scope, code)
    if session.get(Commune, code) is None:
        checks.add("commune_code", "is not a commune code of the 2025 units")


def _address(checks: _Checks, value: str | None, field_name: str = "address") -> str | None:
    text = " ".join((value or "").split())
    if len(text) > MAX_ADDRESS:
        checks.add(field_name, f"is longer than {MAX_ADDRESS} characters")
    return text or None


def _relationship(checks: _Checks, field_name: str, value: str | None) -> None:
    if value not in _MEMBER_RELATIONSHIPS:
        checks.add(field_name, f"expected one of {', '.join(sorted(_MEMBER_RELATIONSHIPS))}")


def _household(session: Session, code: str | None, field_name: str) -> Household:
    household = session.get(Household, code) if code else None
    if household is None or household.dissolved_at is not None:
        raise _fail(field_name, "no such household")
    return household


def _members(session: Session, household_code: str) -> list[Citizen]:
    """The living members of a household (merged records have left their households)."""
    return list(
        session.scalars(
            select(Citizen)
            .where(Citizen.household_code == household_code, Citizen.status == "alive")
            .order_by(Citizen.personal_id)
        )
    )


def _open_permanent(session: Session, personal_id: str) -> list[Residence]:
    return _open(session, personal_id, ResidenceKind.PERMANENT)


def _open(session: Session, personal_id: str, kind: str) -> list[Residence]:
    return list(
        session.scalars(
            select(Residence).where(
                Residence.personal_id == personal_id,
                Residence.kind == kind,
                Residence.ended_at.is_(None),
            )
        )
    )


def _move_date(
    checks: _Checks, session: Session, person: Citizen, when: dt.date, today: dt.date, name: str
) -> None:
    if when > today:
        checks.add(name, "is in the future")
    elif when < person.birth_date:
        checks.add(name, "is before the birth date")
    else:
        for residence in _open_permanent(session, person.personal_id):
            if residence.valid_from and when < residence.valid_from:
                checks.add(name, f"is before the current residence began ({residence.valid_from})")


# ------------------------------------------------------------------------------- writing


@dataclass(slots=True)
class _Why:
    actor: str
    reason: str
    legal_basis: str | None
    now: dt.datetime

    def update(self, session: Session, person: Citizen, changes: dict[str, Any]) -> None:
        registry.update(
            session,
            person,
            changes,
            actor=self.actor,
            source=_OFFICIAL,
            reason=self.reason,
            legal_basis=self.legal_basis,
            now=self.now,
        )

    def note(self, session: Session, person: Citizen, what: str, old: str | None, new: str) -> None:
        """A history row for something that is not a field of the record (a residence)."""
        session.add(
            CitizenHistory(
                personal_id=person.personal_id,
                changed_at=self.now,
                field=what,
                old_value=old,
                new_value=new,
                source=_OFFICIAL,
                actor=self.actor,
                reason=self.reason,
                legal_basis=self.legal_basis,
            )
        )

    def touch(self, session: Session, person: Citizen) -> None:
        """Bump the person's version, so that a concurrent change of theirs is refused."""
        person.updated_at = self.now
        try:
            session.flush()
        except StaleDataError:
            raise registry.StaleRecord(
                "this person was changed by someone else at the same moment; reload and retry"
            ) from None


def _why(actor: str, reason: str, legal_basis: str | None, now: dt.datetime | None) -> _Why:
    checks = _Checks()
    if not actor.strip():
        checks.add("actor", "required")
    if not reason.strip():
        checks.add("reason", "required")
    checks.raise_if_any("the change needs an author and a reason")
    return _Why(actor, reason.strip(), (legal_basis or "").strip() or None, _now(now))


def _new_household_code(session: Session, personal_id: str) -> str:
    """``HK`` + the founder's number, with a suffix if they founded one before."""
    code, n = f"HK{personal_id}", 1
    while session.get(Household, code) is not None:
        n += 1
        code = f"HK{personal_id}-{n}"
    return code


def _rehouse(
    session: Session,
    why: _Why,
    out: Changes,
    person: Citizen,
    *,
    commune_code: str,
    address: str | None,
    household_code: str,
    relationship: str,
    since: dt.date,
) -> None:
    """End the person's open permanent residence and open a new one; update the record."""
    for residence in _open_permanent(session, person.personal_id):
        residence.ended_at = why.now
        residence.valid_to = max(since, residence.valid_from or since)
        out.ended.append(residence)
    residence = Residence(
        personal_id=person.personal_id,
        kind=ResidenceKind.PERMANENT.value,
        commune_code=commune_code,
        address=address,
        household_code=household_code,
        valid_from=since,
        created_at=why.now,
    )
    session.add(residence)
    out.opened.append(residence)
    why.update(
        session,
        person,
        {
            "household_code": household_code,
            "relationship_to_head": relationship,
            "permanent_commune_code": commune_code,
            "permanent_address": address,
        },
    )
    why.touch(session, person)
    out.citizens.append(person)


def _dissolve_if_empty(session: Session, code: str | None, why: _Why, out: Changes) -> None:
    if not code:
        return
    household = session.get(Household, code)
    if household is not None and household.dissolved_at is None and not _members(session, code):
        household.dissolved_at = why.now
        out.households.append(household)


def _heads_others(session: Session, person: Citizen) -> bool:
    """Whether the person heads a household in which other living people remain."""
    if not person.household_code:
        return False
    household = session.get(Household, person.household_code)
    if household is None or household.head_id != person.personal_id:
        return False
    return any(m.personal_id != person.personal_id for m in _members(session, household.code))


# ----------------------------------------------------------------------------- workflows


def change_permanent_residence(
    session: Session,
    command: PermanentResidenceChange,
    *,
    actor: str,
    reason: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Changes:
    """Register a permanent residence change (đăng ký thường trú at a new place): the old
    permanent residence ends on ``move_date``, the new one begins, the person leaves their
    household (dissolved if nobody remains) and joins or founds another."""
    why = _why(actor, reason, legal_basis, now)
    person = _person(session, scope, command.personal_id)
    checks = _Checks()
    _commune(session, checks, scope, command.commune_code)
    address = _address(checks, command.address)
    _move_date(checks, session, person, command.move_date, why.now.date(), "move_date")
    household: Household | None = None
    if command.household_code:
        household = _household(session, command.household_code, "household_code")
        if household.commune_code != command.commune_code:
            checks.add("household_code", "is registered in another commune")
        if household.code == person.household_code:
            checks.add("household_code", "the person already belongs to this household")
        _relationship(checks, "relationship_to_head", command.relationship_to_head)
        address = address or household.address
    else:
        if command.relationship_to_head not in (None, Relationship.HEAD.value):
            checks.add("relationship_to_head", "who founds a household is its head")
        if not address:
            checks.add("address", "required to found a household")
    if _heads_others(session, person):
        checks.add("personal_id", "heads a household with other members: change the head first")
    checks.raise_if_any("the residence change has errors")
    registry.check_version(person, command.expected_version)

    out = Changes()
    old_household = person.household_code
    if household is None:
        household = Household(
            code=_new_household_code(session, person.personal_id),
            head_id=person.personal_id,
            commune_code=command.commune_code,
            address=address,
            created_at=why.now,
        )
        session.add(household)
    out.households.append(household)
    _rehouse(
        session,
        why,
        out,
        person,
        commune_code=command.commune_code,
        address=address,
        household_code=household.code,
        relationship=command.relationship_to_head or Relationship.HEAD.value,
        since=command.move_date,
    )
    _dissolve_if_empty(session, old_household, why, out)
    return out


def move_household(
    session: Session,
    command: HouseholdMove,
    *,
    actor: str,
    reason: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Changes:
    """A whole household moves: every living member's permanent residence ends and a new one
    begins at the new address, relationships unchanged."""
    why = _why(actor, reason, legal_basis, now)
    household = _household(session, command.household_code, "household_code")
    members = _members(session, household.code)
    for member in members:
        scopes.require_person(session, scope, member.personal_id)
    checks = _Checks()
    _commune(session, checks, scope, command.commune_code)
    address = _address(checks, command.address)
    if not address:
        checks.add("address", "required")
    if not members:
        checks.add("household_code", "has no living members")
    for member in members[:1]:
        _move_date(checks, session, member, command.move_date, why.now.date(), "move_date")
    if (command.commune_code, address) == (household.commune_code, household.address):
        checks.add("address", "is the household's current address")
    checks.raise_if_any("the household move has errors")
    registry.check_versions(members, command.expected_versions)

    out = Changes(households=[household])
    household.commune_code, household.address = command.commune_code, address
    for member in members:
        _rehouse(
            session,
            why,
            out,
            member,
            commune_code=command.commune_code,
            address=address,
            household_code=household.code,
            relationship=member.relationship_to_head or Relationship.OTHER.value,
            since=command.move_date,
        )
    return out


def _describe(residence: Residence) -> str:
    period = f"{residence.valid_from} – {residence.valid_to}"
    return f"{residence.commune_code} {residence.address or ''} ({period})".replace("  ", " ")


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def register_temporary_residence(
    session: Session,
    command: TemporaryResidenceRegistration,
    *,
    actor: str,
    reason: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Changes:
    """Register a temporary residence (đăng ký tạm trú) for at most two years; an open
    temporary residence of the person ends (one at a time)."""
    why = _why(actor, reason, legal_basis, now)
    person = _person(session, scope, command.personal_id)
    checks = _Checks()
    _commune(session, checks, scope, command.commune_code)
    address = _address(checks, command.address)
    if not address:
        checks.add("address", "required")
    today = why.now.date()
    if command.valid_from < person.birth_date:
        checks.add("valid_from", "is before the birth date")
    if command.valid_until < command.valid_from:
        checks.add("valid_until", "is before valid_from")
    elif command.valid_until > _add_years(command.valid_from, MAX_TEMPORARY_YEARS):
        checks.add(
            "valid_until", f"a temporary residence lasts at most {MAX_TEMPORARY_YEARS} years"
        )
    if command.valid_until < today:
        checks.add("valid_until", "is in the past")
    if (command.commune_code, address) == (person.permanent_commune_code, person.permanent_address):
        checks.add("address", "is the person's permanent residence")
    checks.raise_if_any("the temporary residence has errors")
    registry.check_version(person, command.expected_version)

    out = Changes(citizens=[person])
    previous = _open(session, person.personal_id, ResidenceKind.TEMPORARY)
    for residence in previous:
        residence.ended_at = why.now
        out.ended.append(residence)
    residence = Residence(
        personal_id=person.personal_id,
        kind=ResidenceKind.TEMPORARY.value,
        commune_code=command.commune_code,
        address=address,
        valid_from=command.valid_from,
        valid_to=command.valid_until,
        created_at=why.now,
    )
    session.add(residence)
    out.opened.append(residence)
    old = "; ".join(_describe(r) for r in previous) or None
    why.note(session, person, "temporary_residence", old, _describe(residence))
    why.touch(session, person)
    return out


def split_household(
    session: Session,
    command: HouseholdSplit,
    *,
    actor: str,
    reason: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Changes:
    """Split a household (tách hộ): the new head and ``members`` found a new household at the
    same commune; the old household keeps its head and everyone else."""
    why = _why(actor, reason, legal_basis, now)
    household = _household(session, command.household_code, "household_code")
    if household.commune_code:
        scopes.require_commune(scope, household.commune_code, "household_code")
    members = {m.personal_id: m for m in _members(session, household.code)}
    checks = _Checks()
    leaving = [command.new_head_id, *command.members]
    for pid in leaving:
        name = "new_head_id" if pid == command.new_head_id else f"members.{pid}"
        if pid not in members:
            checks.add(name, "is not a living member of the household")
        elif pid == household.head_id:
            checks.add(name, "the head stays with the household; change the head first")
        else:
            scopes.require_person(session, scope, pid)
    if command.new_head_id in command.members:
        checks.add(f"members.{command.new_head_id}", "is the new head")
    for pid, relationship in command.members.items():
        _relationship(checks, f"members.{pid}", relationship)
    address = _address(checks, command.address) or household.address
    today = why.now.date()
    since = command.split_date or today
    if since > today:
        checks.add("split_date", "is in the future")
    checks.raise_if_any("the household split has errors")
    movers = [members[pid] for pid in leaving]
    registry.check_versions(movers, command.expected_versions)

    new = Household(
        code=_new_household_code(session, command.new_head_id),
        head_id=command.new_head_id,
        commune_code=household.commune_code,
        address=address,
        created_at=why.now,
    )
    session.add(new)
    out = Changes(households=[household, new])
    for person in movers:
        relationship = command.members.get(person.personal_id, Relationship.HEAD.value)
        _rehouse(
            session,
            why,
            out,
            person,
            commune_code=str(household.commune_code),
            address=address,
            household_code=new.code,
            relationship=relationship,
            since=since,
        )
    return out


def change_household_head(
    session: Session,
    command: HeadChange,
    *,
    actor: str,
    reason: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Changes:
    """Change the head of a household (thay đổi chủ hộ): the new head must be a living member,
    and every other living member's relationship to the new head must be given."""
    why = _why(actor, reason, legal_basis, now)
    household = _household(session, command.household_code, "household_code")
    members = {m.personal_id: m for m in _members(session, household.code)}
    for pid in members:
        scopes.require_person(session, scope, pid)
    checks = _Checks()
    if command.new_head_id not in members:
        checks.add("new_head_id", "is not a living member of the household")
    elif command.new_head_id == household.head_id:
        checks.add("new_head_id", "is already the head")
    for pid in members.keys() - {command.new_head_id} - command.relationships.keys():
        checks.add(f"relationships.{pid}", "required: the relationship to the new head")
    for pid, relationship in command.relationships.items():
        if pid not in members or pid == command.new_head_id:
            checks.add(f"relationships.{pid}", "is not another living member of the household")
        else:
            _relationship(checks, f"relationships.{pid}", relationship)
    checks.raise_if_any("the change of head has errors")
    registry.check_versions(members.values(), command.expected_versions)

    household.head_id = command.new_head_id
    out = Changes(households=[household])
    for pid, person in members.items():
        relationship = (
            Relationship.HEAD.value if pid == command.new_head_id else command.relationships[pid]
        )
        why.update(session, person, {"relationship_to_head": relationship})
        why.touch(session, person)
        out.citizens.append(person)
    return out


def correct_field(
    session: Session,
    command: FieldCorrection,
    *,
    actor: str,
    reason: str,
    legal_basis: str,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Citizen:
    """Correct one civil-status field (cải chính hộ tịch) with a reason and a legal basis,
    through the correction event (``registry.events``), which writes the history."""
    checks = _Checks()
    if not reason.strip():
        checks.add("reason", "required")
    if not legal_basis.strip():
        checks.add("legal_basis", "required")
    checks.raise_if_any("a correction needs a reason and a legal basis")
    when = _now(now)
    person = _person(session, scope, command.personal_id, alive=False)
    value: object = command.value
    if command.field == "birth_date" and isinstance(value, str):
        try:
            value = vn_dates.parse_iso_partial(value.strip())
        except ValueError as exc:
            raise _fail("value", str(exc)) from None
    if isinstance(value, PartialDate) and value.first_day() > when.date():
        raise _fail("value", "is in the future")
    event_date = command.event_date or when.date()
    if event_date > when.date():
        raise _fail("event_date", "is in the future")
    registry.check_version(person, command.expected_version)
    event = events.Event(
        CivilEventKind.CORRECTION,
        event_date,
        actor=actor,
        legal_basis=legal_basis.strip(),
        personal_id=person.personal_id,
        details={
            "field": command.field,
            "value": value,
            "reason": reason.strip(),
            "expected_version": command.expected_version,
        },
    )
    return events.apply(session, event, now=when)


def register_birth(
    session: Session,
    birth: events.Birth,
    *,
    event_date: dt.date,
    actor: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Citizen:
    """Register a birth (``registry.events``) into a commune of the official's scope; the
    household joined, if any, must be registered in that commune."""
    scopes.require_commune(scope, birth.permanent_commune_code, "permanent_commune_code")
    if birth.household_code:
        household = _household(session, birth.household_code, "household_code")
        if household.commune_code != birth.permanent_commune_code:
            raise _fail("household_code", "is registered in another commune")
    event = events.Event(
        CivilEventKind.BIRTH, event_date, actor=actor, legal_basis=legal_basis, birth=birth
    )
    return events.apply(session, event, now=now)


def record_death(
    session: Session,
    command: DeathRegistration,
    *,
    actor: str,
    legal_basis: str | None = None,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> Citizen:
    """Record a death (``registry.events``): the record is closed, the residences end, the
    person stays findable as deceased."""
    when = _now(now)
    person = _person(session, scope, command.personal_id)
    if command.death_date > when.date():
        raise _fail("death_date", "is in the future")
    if command.death_date < person.birth_date:
        raise _fail("death_date", "is before the birth date")
    registry.check_version(person, command.expected_version)
    event = events.Event(
        CivilEventKind.DEATH,
        command.death_date,
        actor=actor,
        legal_basis=legal_basis,
        personal_id=person.personal_id,
    )
    return events.apply(session, event, now=when)
