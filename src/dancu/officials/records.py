"""What an official's citizen page shows, gathered in one place: the record, the household with
its relationships, the residence history and a timeline of every change.

Read-only queries over the register; the flows decide who may call them and log the read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.geo import service as geo
from dancu.registry import service as registry
from dancu.registry.models import Citizen, CivilEvent, DuplicateCandidate, Household, Residence

# The fields of a person shown on the citizen page (and so written to the access log).
RECORD_FIELDS: tuple[str, ...] = (
    "personal_id",
    "legacy_id_number",
    "full_name",
    "other_names",
    "birth_date",
    "birth_date_precision",
    "sex",
    "status",
    "death_date",
    "ethnicity",
    "religion",
    "nationality",
    "place_of_origin",
    "marital_status",
    "phone",
    "father_id",
    "mother_id",
    "spouse_id",
    "household_code",
    "relationship_to_head",
    "permanent_commune_code",
    "permanent_address",
)
# What a search result shows of each person found.
SUMMARY_FIELDS: tuple[str, ...] = (
    "personal_id",
    "full_name",
    "birth_date",
    "sex",
    "status",
    "permanent_commune_code",
)
HOUSEHOLD_FIELDS = ("household.members",)
RESIDENCE_FIELDS = ("residences",)
TIMELINE_FIELDS = ("history",)


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a household, as the household table of the citizen page shows it."""

    personal_id: str
    full_name: str
    birth_date: dt.date
    relationship_to_head: str | None
    status: str
    version: int


@dataclass(frozen=True, slots=True)
class HouseholdView:
    code: str
    head_id: str | None
    commune_code: str | None
    commune_name: str | None
    address: str | None
    members: list[Member]


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the timeline: a changed field, or a civil event without field changes."""

    at: dt.datetime
    actor: str
    source: str
    field: str
    old_value: str | None
    new_value: str | None
    reason: str | None
    legal_basis: str | None


@dataclass(slots=True)
class CitizenView:
    """Everything the citizen page and the API's citizen detail show."""

    citizen: Citizen
    record: dict[str, Any]
    commune_name: str | None
    household: HouseholdView | None
    residences: list[Residence]
    timeline: list[Change]
    events: list[CivilEvent]
    open_duplicates: list[DuplicateCandidate]
    merged_into: str | None = None
    findings: list[str] = field(default_factory=list)

    @property
    def fields_read(self) -> list[str]:
        """The field names this view discloses, for the access log."""
        extra = list(RESIDENCE_FIELDS + TIMELINE_FIELDS)
        if self.household is not None:
            extra += HOUSEHOLD_FIELDS
        return [*RECORD_FIELDS, *extra]


def summary(citizen: Citizen) -> dict[str, Any]:
    return {name: getattr(citizen, name) for name in SUMMARY_FIELDS}


def record(citizen: Citizen) -> dict[str, Any]:
    return {name: getattr(citizen, name) for name in RECORD_FIELDS}


def commune_name(code: str | None) -> str | None:
    """The 2025 commune's name, from the in-memory units (no query)."""
    info = geo.get_index().commune(code) if code else None
    return info.name if info else None


def household(session: Session, code: str | None) -> HouseholdView | None:
    """A household and its living and deceased members, head first."""
    if not code:
        return None
    row = session.get(Household, code)
    members = [
        Member(
            c.personal_id, c.full_name, c.birth_date, c.relationship_to_head, c.status, c.version
        )
        for c in session.scalars(
            select(Citizen)
            .where(Citizen.household_code == code, registry.not_merged())
            .order_by(Citizen.birth_date, Citizen.personal_id)
        )
    ]
    members.sort(key=lambda m: m.relationship_to_head != "head")
    return HouseholdView(
        code=code,
        head_id=row.head_id if row else None,
        commune_code=row.commune_code if row else None,
        commune_name=commune_name(row.commune_code if row else None),
        address=row.address if row else None,
        members=members,
    )


def residences(session: Session, personal_id: str) -> list[Residence]:
    """Every residence record of a person, newest first (open ones have no ``ended_at``)."""
    return list(
        session.scalars(
            select(Residence)
            .where(Residence.personal_id == personal_id)
            .order_by(Residence.created_at.desc(), Residence.id.desc())
        )
    )


def events(session: Session, personal_id: str) -> list[CivilEvent]:
    return list(
        session.scalars(
            select(CivilEvent)
            .where(
                (CivilEvent.personal_id == personal_id)
                | (CivilEvent.other_personal_id == personal_id)
            )
            .order_by(CivilEvent.recorded_at.desc(), CivilEvent.id.desc())
        )
    )


def timeline(session: Session, personal_id: str) -> list[Change]:
    """Every recorded change, newest first: who, when, why, old and new value."""
    return [
        Change(
            h.changed_at,
            h.actor,
            h.source,
            h.field,
            h.old_value,
            h.new_value,
            h.reason,
            h.legal_basis,
        )
        for h in reversed(registry.history(session, personal_id))
    ]


def open_duplicates(session: Session, personal_id: str) -> list[DuplicateCandidate]:
    return list(
        session.scalars(
            select(DuplicateCandidate).where(
                (DuplicateCandidate.personal_id_a == personal_id)
                | (DuplicateCandidate.personal_id_b == personal_id),
                DuplicateCandidate.status == "open",
            )
        )
    )


def view(session: Session, citizen: Citizen, *, merged_into: str | None = None) -> CitizenView:
    return CitizenView(
        citizen=citizen,
        record=record(citizen),
        commune_name=commune_name(citizen.permanent_commune_code),
        household=household(session, citizen.household_code),
        residences=residences(session, citizen.personal_id),
        timeline=timeline(session, citizen.personal_id),
        events=events(session, citizen.personal_id),
        open_duplicates=open_duplicates(session, citizen.personal_id),
        merged_into=merged_into,
    )
