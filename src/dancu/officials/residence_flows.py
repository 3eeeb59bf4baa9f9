"""Residence and household work behind the pages and the API: a person's permanent move, a
whole household's move, a temporary residence, a household split and a change of head.

Like ``flows``: role and scope checked here, text checked here (the same field names for
pages and API), then ``registry.workflows`` does the change with its history. The household
forms show the members' names, so opening one is a logged read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from dancu.errors import Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.officials import policy
from dancu.officials.flows import (
    Actor,
    clean_text,
    expected_version,
    full_date,
    household,
    log_reads,
    person,
    renamed,
    today,
)
from dancu.officials.policy import Action
from dancu.registry import service as registry
from dancu.registry import workflows

_MOVE_NAMES = {"move_date": "moved_on"}
MEMBER_FIELDS = ("personal_id", "full_name", "birth_date", "relationship_to_head", "status")


@dataclass(frozen=True, slots=True)
class Why:
    """Why a change is made; workflows require a reason, the legal basis is optional."""

    reason: str | None = None
    legal_basis: str | None = None

    def checked(self, problems: list[Problem]) -> tuple[str, str | None]:
        reason = clean_text(self.reason, 300, "reason", problems)
        if not reason:
            problems.append(Problem(None, "reason", "required"))
        return reason or "", clean_text(self.legal_basis, 300, "legal_basis", problems)


def _commune(value: str | None, problems: list[Problem]) -> str:
    code = (value or "").strip()
    if not code:
        problems.append(Problem(None, "commune_code", "required"))
    elif geo.get_index().commune(code) is None:
        problems.append(Problem(None, "commune_code", "is not a commune code of the 2025 units"))
    return code


def _pids(values: Mapping[str, str], problems: list[Problem], name: str) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for pid, relationship in values.items():
        pid = pid.strip()
        if not (len(pid) == 12 and pid.isdigit()):
            problems.append(Problem(None, f"{name}.{pid}", "expected a 12-digit personal ID"))
        else:
            cleaned[pid] = (relationship or "").strip()
    return cleaned


def _versions(values: Mapping[str, str | int], problems: list[Problem]) -> dict[str, int]:
    found: dict[str, int] = {}
    for pid, version in values.items():
        number = expected_version(version, problems)
        if number is not None:
            found[pid] = number
    return found


def _apply(
    workflow: Callable[..., workflows.Changes],
    session: Session,
    command: object,
    actor: Actor,
    why: tuple[str, str | None],
    renames: dict[str, str] | None = None,
) -> workflows.Changes:
    """Run a register workflow for ``actor`` in their scope, with the form's field names."""
    try:
        return workflow(
            session,
            command,
            actor=actor.username,
            reason=why[0],
            legal_basis=why[1],
            scope=actor.scope,
        )
    except ValidationFailed as exc:
        raise renamed(exc, renames or {}) from None


@dataclass(frozen=True, slots=True)
class MoveForm:
    """A person's new permanent residence (leave one household and commune, join another)."""

    commune_code: str | None = None
    address: str | None = None
    household_code: str | None = None
    relationship_to_head: str | None = None
    moved_on: str | None = None
    version: str | int | None = None
    why: Why = Why()


def change_residence(
    session: Session, actor: Actor, personal_id: str, form: MoveForm
) -> workflows.Changes:
    policy.authorize(actor.role, Action.CHANGE_RESIDENCE)
    citizen = person(session, actor, personal_id)
    problems: list[Problem] = []
    commune = _commune(form.commune_code, problems)
    when = full_date(form.moved_on, "moved_on", problems, required=False) or today()
    expected = expected_version(form.version, problems)
    why = form.why.checked(problems)
    address = clean_text(form.address, 300, "address", problems)
    if problems:
        raise ValidationFailed("the residence change has errors", problems)
    command = workflows.PermanentResidenceChange(
        personal_id=citizen.personal_id,
        commune_code=commune,
        move_date=when,
        address=address,
        household_code=(form.household_code or "").strip() or None,
        relationship_to_head=(form.relationship_to_head or "").strip() or None,
        expected_version=expected,
    )
    return _apply(workflows.change_permanent_residence, session, command, actor, why, _MOVE_NAMES)


@dataclass(frozen=True, slots=True)
class HouseholdMoveForm:
    """A whole household moves to a new address."""

    commune_code: str | None = None
    address: str | None = None
    moved_on: str | None = None
    versions: Mapping[str, str | int] = field(default_factory=dict)
    why: Why = Why()


def move_household(
    session: Session, actor: Actor, household_code: str, form: HouseholdMoveForm
) -> workflows.Changes:
    policy.authorize(actor.role, Action.CHANGE_RESIDENCE)
    row = household(session, actor, household_code)
    problems: list[Problem] = []
    commune = _commune(form.commune_code, problems)
    when = full_date(form.moved_on, "moved_on", problems, required=False) or today()
    versions = _versions(form.versions, problems)
    why = form.why.checked(problems)
    address = clean_text(form.address, 300, "address", problems)
    if problems:
        raise ValidationFailed("the household move has errors", problems)
    command = workflows.HouseholdMove(
        household_code=row.code,
        commune_code=commune,
        address=address or "",
        move_date=when,
        expected_versions=versions,
    )
    return _apply(workflows.move_household, session, command, actor, why, _MOVE_NAMES)


@dataclass(frozen=True, slots=True)
class TemporaryForm:
    commune_code: str | None = None
    address: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    version: str | int | None = None
    why: Why = Why()


def register_temporary_residence(
    session: Session, actor: Actor, personal_id: str, form: TemporaryForm
) -> workflows.Changes:
    policy.authorize(actor.role, Action.TEMPORARY_RESIDENCE)
    citizen = person(session, actor, personal_id)
    problems: list[Problem] = []
    commune = _commune(form.commune_code, problems)
    start = full_date(form.valid_from, "valid_from", problems)
    # The end of a stay lies ahead: only its form is checked here, the workflow its length.
    end = _until(form.valid_until, problems)
    expected = expected_version(form.version, problems)
    why = form.why.checked(problems)
    address = clean_text(form.address, 300, "address", problems)
    if problems or start is None or end is None:
        raise ValidationFailed("the temporary residence has errors", problems)
    command = workflows.TemporaryResidenceRegistration(
        personal_id=citizen.personal_id,
        commune_code=commune,
        address=address or "",
        valid_from=start,
        valid_until=end,
        expected_version=expected,
    )
    return _apply(workflows.register_temporary_residence, session, command, actor, why)


def _until(value: str | None, problems: list[Problem]) -> dt.date | None:
    text = (value or "").strip()
    if not text:
        problems.append(Problem(None, "valid_until", "required"))
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(Problem(None, "valid_until", "expected a date YYYY-MM-DD"))
        return None


def household_members(
    session: Session, actor: Actor, household_code: str, purpose: str
) -> registry.HouseholdView:
    """The household with its members, for the split and change-of-head forms (a read)."""
    policy.authorize(actor.role, Action.READ_CITIZEN)
    household(session, actor, household_code)
    view = registry.household(session, household_code)
    assert view is not None
    log_reads(
        session,
        actor,
        [m.personal_id for m in view.members],
        ["household.members", *MEMBER_FIELDS],
        purpose,
    )
    return view


@dataclass(frozen=True, slots=True)
class SplitForm:
    """Members leave to found a new household; ``members`` maps each leaving member (the new
    head aside) to their relationship to the new head."""

    new_head_id: str | None = None
    members: Mapping[str, str] = field(default_factory=dict)
    address: str | None = None
    split_on: str | None = None
    versions: Mapping[str, str | int] = field(default_factory=dict)
    why: Why = Why()


def split_household(
    session: Session, actor: Actor, household_code: str, form: SplitForm
) -> workflows.Changes:
    policy.authorize(actor.role, Action.SPLIT_HOUSEHOLD)
    row = household(session, actor, household_code)
    problems: list[Problem] = []
    head = (form.new_head_id or "").strip()
    if not head:
        problems.append(Problem(None, "new_head_id", "required"))
    members = _pids(form.members, problems, "members")
    members.pop(head, None)
    when = full_date(form.split_on, "split_on", problems, required=False)
    versions = _versions(form.versions, problems)
    why = form.why.checked(problems)
    address = clean_text(form.address, 300, "address", problems)
    if problems:
        raise ValidationFailed("the household split has errors", problems)
    command = workflows.HouseholdSplit(
        household_code=row.code,
        new_head_id=head,
        members=members,
        address=address,
        split_date=when,
        expected_versions=versions,
    )
    return _apply(
        workflows.split_household, session, command, actor, why, {"split_date": "split_on"}
    )


@dataclass(frozen=True, slots=True)
class HeadForm:
    new_head_id: str | None = None
    relationships: Mapping[str, str] = field(default_factory=dict)
    versions: Mapping[str, str | int] = field(default_factory=dict)
    why: Why = Why()


def change_head(
    session: Session, actor: Actor, household_code: str, form: HeadForm
) -> workflows.Changes:
    policy.authorize(actor.role, Action.CHANGE_HEAD)
    row = household(session, actor, household_code)
    problems: list[Problem] = []
    head = (form.new_head_id or "").strip()
    if not head:
        problems.append(Problem(None, "new_head_id", "required"))
    relationships = _pids(form.relationships, problems, "relationships")
    relationships.pop(head, None)
    versions = _versions(form.versions, problems)
    why = form.why.checked(problems)
    if problems:
        raise ValidationFailed("the change of head has errors", problems)
    command = workflows.HeadChange(
        household_code=row.code,
        new_head_id=head,
        relationships=relationships,
        expected_versions=versions,
    )
    return _apply(workflows.change_household_head, session, command, actor, why)
