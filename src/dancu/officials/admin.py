"""What an administrator does to accounts: list, add, deactivate, reset enrolment.

An administrator manages only officials whose unit lies within their own (a province's
administrator: that province and its communes), and can create no account wider than
theirs, so no one can grant more than they hold.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dancu.config import Settings
from dancu.errors import Problem, ValidationFailed
from dancu.geo.models import Commune
from dancu.officials import policy
from dancu.officials import service as officials
from dancu.officials.flows import Actor
from dancu.officials.models import Official
from dancu.officials.policy import Action
from dancu.registry.scope import OutOfScope, Scope


def list_managed(
    session: Session, admin: Actor, *, limit: int = 50, offset: int = 0
) -> tuple[list[Official], bool]:
    """The officials this administrator manages, by username, and whether more follow."""
    policy.authorize(admin.role, Action.MANAGE_OFFICIALS)
    query = select(Official).order_by(Official.username)
    if admin.scope.level == "province":
        communes = select(Commune.code).where(Commune.province_code == admin.scope.code)
        query = query.where(
            or_(Official.unit_code == admin.scope.code, Official.unit_code.in_(communes))
        )
    elif admin.scope.level == "commune":
        query = query.where(Official.unit_code == admin.scope.code)
    rows = list(session.scalars(query.limit(limit + 1).offset(offset)))
    return rows[:limit], len(rows) > limit


def add(
    session: Session,
    settings: Settings,
    admin: Actor,
    *,
    username: str,
    role: str,
    unit_code: str,
    full_name: str | None = None,
) -> officials.Enrolment:
    """A new official within the administrator's unit, and their one-time enrolment link."""
    policy.authorize(admin.role, Action.MANAGE_OFFICIALS)
    try:
        # Blank is not "national" here: create() reports the missing unit.
        unit = Scope.parse(unit_code) if unit_code.strip() else None
    except ValidationFailed:
        unit = None
    if unit is not None and not admin.scope.covers(unit):
        reason = f"is outside your unit ({admin.scope.unit_code})"
        raise OutOfScope(f"unit {reason}", [Problem(None, "unit", reason)])
    return officials.create(
        session,
        settings,
        username=username,
        role=role,
        unit_code=unit_code,
        full_name=full_name,
        actor=admin.username,
    )


def deactivate(session: Session, admin: Actor, official_id: str | int) -> Official:
    policy.authorize(admin.role, Action.MANAGE_OFFICIALS)
    official = officials.managed(session, admin.scope, official_id)
    if official.username == admin.username:
        raise ValidationFailed(
            "you cannot deactivate your own account",
            [Problem(None, "official_id", "is your own account")],
        )
    officials.deactivate(session, official)
    return official


def reset(
    session: Session, settings: Settings, admin: Actor, official_id: str | int
) -> officials.Enrolment:
    """New password and second factor for an official (a lost phone): a new link."""
    policy.authorize(admin.role, Action.MANAGE_OFFICIALS)
    official = officials.managed(session, admin.scope, official_id)
    return officials.reset_enrolment(session, settings, official)
