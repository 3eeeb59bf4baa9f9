"""What an official's citizen page shows, gathered in one place: the record, the household with
its relationships, the residence history and a timeline of every change, and the field names
each view discloses (for the access log).

The queries are the register's (``dancu.registry.service``); the flows decide who may call
them and log the read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from dancu.registry import service as registry
from dancu.registry.models import Citizen, CivilEvent, DuplicateCandidate, Residence
from dancu.registry.service import Change, HouseholdView
from dancu.vn import dates as vn_dates

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
# Changes shown per page of a person's timeline (newest first).
TIMELINE_PAGE = 50
_PRECISIONS: dict[str, vn_dates.Precision] = {"day": "day", "month": "month", "year": "year"}
RESIDENCE_FIELDS = ("residences",)
TIMELINE_FIELDS = ("history",)


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
    timeline_offset: int = 0
    timeline_more: bool = False  # older changes follow this page of the timeline

    @property
    def fields_read(self) -> list[str]:
        """The field names this view discloses, for the access log."""
        extra = list(RESIDENCE_FIELDS + TIMELINE_FIELDS)
        if self.household is not None:
            extra += HOUSEHOLD_FIELDS
        return [*RECORD_FIELDS, *extra]


def birth_date_text(value: dt.date, precision: str | None) -> str:
    """A birth date as far as it is known: ``1975-03-15``, ``1975-03`` or ``1975`` (the
    register stores the first day of a partial date and its precision apart)."""
    known = _PRECISIONS.get(precision or "day", "day")
    return vn_dates.PartialDate.from_date(value, known).isoformat()


def summary(citizen: Citizen) -> dict[str, Any]:
    """A search result's line; the birth date as far as it is known."""
    found = {name: getattr(citizen, name) for name in SUMMARY_FIELDS}
    found["birth_date"] = birth_date_text(citizen.birth_date, citizen.birth_date_precision)
    return found


def record(citizen: Citizen) -> dict[str, Any]:
    return {name: getattr(citizen, name) for name in RECORD_FIELDS}


def view(
    session: Session,
    citizen: Citizen,
    *,
    merged_into: str | None = None,
    timeline_offset: int = 0,
) -> CitizenView:
    """The citizen page's content, read through the register's services; the timeline one
    page of ``TIMELINE_PAGE`` changes from ``timeline_offset`` on."""
    changes = registry.timeline(
        session, citizen.personal_id, limit=TIMELINE_PAGE + 1, offset=timeline_offset
    )
    return CitizenView(
        citizen=citizen,
        record=record(citizen),
        commune_name=registry.commune_name(citizen.permanent_commune_code),
        household=registry.household(session, citizen.household_code),
        residences=registry.residences(session, citizen.personal_id),
        timeline=changes[:TIMELINE_PAGE],
        events=registry.civil_events(session, citizen.personal_id),
        open_duplicates=registry.open_duplicates(session, citizen.personal_id),
        merged_into=merged_into,
        timeline_offset=timeline_offset,
        timeline_more=len(changes) > TIMELINE_PAGE,
    )
