"""The register's verbs: look up, search, change with history, read a record as of a date, and
the reads behind a person's page (household with relationships, residences, civil events,
timeline of changes, open duplicate candidates).

Every change to a person goes through ``update``, which writes one ``citizen_history`` row per
changed field in the same transaction, so nothing about a person is overwritten without
trace. Services only flush; whoever opened the session commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dancu.errors import ConflictError, DancuError, NotFoundError, Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.registry.models import (
    Citizen,
    CitizenHistory,
    CitizenMerge,
    CivilEvent,
    DuplicateCandidate,
    Household,
    ImportBatch,
    Residence,
)
from dancu.vn import names as vn_names
from dancu.vn import personal_id as vn_ids

# Fields a change may touch, and how they are rendered in history rows.
TRACKED_FIELDS: tuple[str, ...] = (
    "full_name",
    "other_names",
    "birth_registration_place",
    "marital_status",
    "blood_type",
    "representative_id",
    "birth_date",
    "birth_date_precision",
    "sex",
    "status",
    "death_date",
    "legacy_id_number",
    "ethnicity",
    "religion",
    "nationality",
    "place_of_origin",
    "phone",
    "father_id",
    "mother_id",
    "spouse_id",
    "household_code",
    "relationship_to_head",
    "permanent_commune_code",
    "permanent_address",
)
_DATE_FIELDS = frozenset({"birth_date", "death_date"})
_DERIVED_FROM_NAME = ("family_name", "middle_name", "given_name", "name_key")


class CitizenNotFound(NotFoundError):
    code = "citizen_not_found"


class StaleRecord(ConflictError):
    code = "stale_record"


STALE = (
    "this person was changed by someone else since you opened the record; "
    "reload it and make your change again"
)


def check_version(citizen: Citizen, expected: int | None, *, stale: str = STALE) -> None:
    """Refuse a change made on an out-of-date read (no lost update); ``expected`` None checks
    nothing."""
    if expected is not None and citizen.version != expected:
        raise StaleRecord(stale)


def check_versions(
    people: Iterable[Citizen], expected: Mapping[str, int] | None, *, stale: str = STALE
) -> None:
    """``expected`` None: the caller checks nothing (imports, events); otherwise every person
    the change touches needs the version the caller read, so that no change is overwritten."""
    if expected is None:
        return
    for person in people:
        version = expected.get(person.personal_id)
        if version is None:
            reason = (
                f"the version you read of {person.personal_id} is missing: every member the "
                "change touches needs one"
            )
            raise ValidationFailed(f"versions {reason}", [Problem(None, "versions", reason)])
        check_version(person, version, stale=stale)


@dataclass(slots=True)
class Page:
    """One page of search results and whether more follow."""

    items: list[Citizen]
    limit: int
    offset: int
    has_more: bool


def get(session: Session, personal_id: str) -> Citizen | None:
    """The citizen with this personal ID number, or None."""
    return session.get(Citizen, personal_id)


def get_or_raise(session: Session, personal_id: str) -> Citizen:
    citizen = get(session, personal_id)
    if citizen is None:
        raise CitizenNotFound("no citizen with this personal ID number")
    return citizen


def lookup(session: Session, number: str) -> Citizen | None:
    """Find a person by a current 12-digit number or a legacy CMND number (9 or 12 digits).

    A number of a record merged into another (duplicate review) finds the kept person.
    """
    number = vn_ids.normalise_id(number)
    found: Citizen | None = None
    if vn_ids.is_personal_id(number):
        found = get(session, number)
    if found is None and vn_ids.is_legacy_id(number):
        found = session.scalars(
            select(Citizen).where(Citizen.legacy_id_number == number).limit(1)
        ).first()
    return resolve(session, found) if found is not None else None


def resolve(session: Session, citizen: Citizen) -> Citizen:
    """The person a record stands for: itself, or the record it was merged into."""
    kept_id = session.scalar(
        select(CitizenMerge.kept_id).where(CitizenMerge.merged_id == citizen.personal_id)
    )
    return get_or_raise(session, kept_id) if kept_id else citizen


def not_merged() -> ColumnElement[bool]:
    """Citizens that were not merged into another record (lists and searches show these)."""
    return ~exists().where(CitizenMerge.merged_id == Citizen.personal_id)


def search(
    session: Session,
    *,
    name: str | None = None,
    birth_year: int | None = None,
    commune_code: str | None = None,
    limit: int = 20,
    offset: int = 0,
    where: Sequence[ColumnElement[bool]] = (),
) -> Page:
    """Search by name (with or without diacritics; a prefix of the full name matches), birth
    year and permanent commune. Uses the (name_key, birth_year) index. ``where`` adds
    conditions (an official's scope); with them, no other criterion is needed."""
    if limit < 1 or limit > 200:
        raise DancuError("limit must be between 1 and 200", code="invalid_limit")
    if offset < 0:
        raise DancuError("offset must not be negative", code="invalid_offset")
    query = select(Citizen).where(*where)
    if name:
        key = vn_names.fold(vn_names.canonical_name(name))
        if not key:
            raise DancuError("the name has no letters", code="invalid_name")
        # The whole name, or its first words: "tran thi" finds "tran thi con". A range on
        # the byte-ordered key (space is 0x20, "!" 0x21) keeps it an index range scan.
        query = query.where(Citizen.name_key >= key, Citizen.name_key < key + "!")
    if birth_year is not None:
        query = query.where(Citizen.birth_year == birth_year)
    if commune_code:
        query = query.where(Citizen.permanent_commune_code == commune_code)
    if not (name or birth_year is not None or commune_code or where):
        raise DancuError("give a name, a birth year or a commune", code="empty_search")
    rows = list(
        session.scalars(
            query.order_by(Citizen.name_key, Citizen.personal_id).limit(limit + 1).offset(offset)
        )
    )
    return Page(items=rows[:limit], limit=limit, offset=offset, has_more=len(rows) > limit)


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _parse(field: str, value: str | None) -> Any:
    if value is None:
        return None
    if field in _DATE_FIELDS:
        return dt.date.fromisoformat(value)
    return value


def update(
    session: Session,
    citizen: Citizen,
    changes: dict[str, Any],
    *,
    actor: str,
    source: str,
    reason: str | None = None,
    legal_basis: str | None = None,
    civil_event_id: int | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> list[CitizenHistory]:
    """Apply ``changes`` to ``citizen`` and write one history row per field that changed.

    ``expected_version`` is the version the caller read: if someone changed the person since,
    the change is refused (no lost update).
    """
    unknown = set(changes) - set(TRACKED_FIELDS)
    if unknown:
        raise DancuError(f"cannot change {', '.join(sorted(unknown))}", code="unknown_field")
    check_version(citizen, expected_version)
    now = now or dt.datetime.now(dt.UTC)
    if "full_name" in changes and changes["full_name"] is not None:
        changes = {**changes, "full_name": vn_names.canonical_name(changes["full_name"])}
    written: list[CitizenHistory] = []
    for field, new in changes.items():
        old = getattr(citizen, field)
        if old == new:
            continue
        setattr(citizen, field, new)
        entry = CitizenHistory(
            personal_id=citizen.personal_id,
            changed_at=now,
            field=field,
            old_value=_render(old),
            new_value=_render(new),
            source=source,
            actor=actor,
            reason=reason,
            legal_basis=legal_basis,
            civil_event_id=civil_event_id,
        )
        session.add(entry)
        written.append(entry)
    if not written:
        return written
    if "full_name" in changes:
        family, middle, given = vn_names.split_name(citizen.full_name)
        citizen.family_name, citizen.middle_name, citizen.given_name = family, middle, given
        citizen.name_key = vn_names.fold(citizen.full_name)
    if "birth_date" in changes:
        citizen.birth_year = citizen.birth_date.year
    citizen.updated_at = now
    try:
        session.flush()
    except StaleDataError:
        raise StaleRecord(
            "this person was changed by someone else at the same moment; reload and retry"
        ) from None
    return written


def history(session: Session, personal_id: str) -> list[CitizenHistory]:
    """Every recorded change of a person and of the records merged into them, oldest first."""
    merged = session.scalars(
        select(CitizenMerge.merged_id).where(CitizenMerge.kept_id == personal_id)
    )
    return list(
        session.scalars(
            select(CitizenHistory)
            .where(CitizenHistory.personal_id.in_([personal_id, *merged]))
            .order_by(CitizenHistory.changed_at, CitizenHistory.id)
        )
    )


def as_of(session: Session, personal_id: str, when: dt.datetime) -> dict[str, Any] | None:
    """The person's record as it stood at ``when``: the current record with every later
    change undone. None if the person was not yet in the register."""
    citizen = get(session, personal_id)
    if citizen is None:
        return None
    created = _aware(citizen.created_at)
    if created > when:
        return None
    record: dict[str, Any] = {f: getattr(citizen, f) for f in ("personal_id", *TRACKED_FIELDS)}
    later = session.scalars(
        select(CitizenHistory)
        .where(CitizenHistory.personal_id == personal_id, CitizenHistory.changed_at > when)
        .order_by(CitizenHistory.changed_at.desc(), CitizenHistory.id.desc())
    )
    for change in later:
        if change.field in record:  # residence and merge notes are not record fields
            record[change.field] = _parse(change.field, change.old_value)
    if record["full_name"]:
        family, middle, given = vn_names.split_name(record["full_name"])
        record.update(family_name=family, middle_name=middle, given_name=given)
    return record


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Citizen)) or 0)


def batches(session: Session, *, limit: int = 20) -> list[ImportBatch]:
    """The latest imports and seeds."""
    return list(session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)))


# The reads behind a person's page (the back office's citizen page and its API twin). They
# check nothing: the caller decides who may read and writes the access log.


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a household, as a household table shows them. ``birth_date`` is the
    first day the known part of the date stands for; ``birth_date_precision`` says how much
    of it is known (``day``, ``month`` or ``year``)."""

    personal_id: str
    full_name: str
    birth_date: dt.date
    birth_date_precision: str
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
    """One line of a person's timeline: a changed field, who, when, why, old and new value."""

    at: dt.datetime
    actor: str
    source: str
    field: str
    old_value: str | None
    new_value: str | None
    reason: str | None
    legal_basis: str | None


def commune_name(code: str | None) -> str | None:
    """The 2025 commune's name, from the in-memory units (no query)."""
    info = geo.get_index().commune(code) if code else None
    return info.name if info else None


def household(session: Session, code: str | None) -> HouseholdView | None:
    """A household and its living and deceased members (merged records aside), head first,
    then by birth date."""
    if not code:
        return None
    row = session.get(Household, code)
    members = [
        Member(
            c.personal_id,
            c.full_name,
            c.birth_date,
            c.birth_date_precision,
            c.relationship_to_head,
            c.status,
            c.version,
        )
        for c in session.scalars(
            select(Citizen)
            .where(Citizen.household_code == code, not_merged())
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


def civil_events(session: Session, personal_id: str) -> list[CivilEvent]:
    """The civil events a person took part in (as the subject or the other party), newest
    first."""
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


def timeline(
    session: Session, personal_id: str, *, limit: int | None = None, offset: int = 0
) -> list[Change]:
    """The recorded changes of a person (and of records merged into them), newest first;
    ``limit`` and ``offset`` page through them (all of them without a limit)."""
    merged = session.scalars(
        select(CitizenMerge.merged_id).where(CitizenMerge.kept_id == personal_id)
    )
    query = (
        select(CitizenHistory)
        .where(CitizenHistory.personal_id.in_([personal_id, *merged]))
        .order_by(CitizenHistory.changed_at.desc(), CitizenHistory.id.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
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
        for h in session.scalars(query)
    ]


def open_duplicates(session: Session, personal_id: str) -> list[DuplicateCandidate]:
    """The duplicate candidates naming this person that nobody has decided yet."""
    return list(
        session.scalars(
            select(DuplicateCandidate).where(
                (DuplicateCandidate.personal_id_a == personal_id)
                | (DuplicateCandidate.personal_id_b == personal_id),
                DuplicateCandidate.status == "open",
            )
        )
    )
