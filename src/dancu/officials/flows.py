"""What an official does in the back office, behind both the web pages and the JSON API.

Each flow checks the role (``policy``) and the scope (``dancu.registry.scope``), calls the
register's services, and writes the access log for every person whose data it returns, in
the caller's transaction: a read that is not logged does not happen. Input arrives as text
(what a form posts, what the API's JSON carries) and is checked here, so that the pages and
the API refuse the same things with the same field names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dancu.audit import service as audit
from dancu.audit.service import AccessEntry
from dancu.enums import ActorKind, Relationship
from dancu.errors import ForbiddenError, Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.officials import policy, records
from dancu.officials.policy import Action
from dancu.registry import events, workflows
from dancu.registry import scope as scopes
from dancu.registry import service as registry
from dancu.registry.models import Citizen, Household
from dancu.registry.scope import Scope
from dancu.vn import dates as vn_dates
from dancu.vn import personal_id as vn_ids


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in official on whose behalf a flow runs, and the door they came through."""

    username: str
    role: str
    organization: str
    scope: Scope
    channel: str = "web"
    request_id: str | None = None


class OutOfScopePerson(ForbiddenError):
    code = "out_of_scope"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def log_reads(
    session: Session,
    actor: Actor,
    personal_ids: Iterable[str],
    fields: Sequence[str],
    purpose: str,
) -> None:
    """One access-log entry per person read, in the caller's transaction."""
    entries = [
        AccessEntry(
            actor=actor.username,
            actor_kind=ActorKind.OFFICIAL,
            organization=actor.organization,
            personal_id=pid,
            fields=list(fields),
            purpose=purpose,
            channel=actor.channel,
            request_id=actor.request_id,
        )
        for pid in dict.fromkeys(personal_ids)
    ]
    if entries:
        audit.record(session, entries)


def person(session: Session, actor: Actor, personal_id: str) -> Citizen:
    """The person, if the actor's scope holds them. Outside a national scope, a number that
    is unknown and one that lives elsewhere are refused alike (403), so that probing numbers
    tells a commune officer nothing about other communes."""
    pid = vn_ids.normalise_id(personal_id)
    citizen = registry.get(session, pid) if vn_ids.is_personal_id(pid) else None
    if actor.scope.level == "national":
        if citizen is None:
            raise registry.CitizenNotFound("no citizen with this personal ID number")
        return citizen
    # The record is loaded: its (indexed) permanent commune decides, as in where_in_scope.
    if citizen is None or not scopes.commune_in_scope(actor.scope, citizen.permanent_commune_code):
        raise OutOfScopePerson(
            f"no person with this number lives in your unit ({actor.scope.unit_code})"
        )
    return citizen


def household(session: Session, actor: Actor, code: str) -> Household:
    """The household, if its commune lies in the actor's scope (same refusal as ``person``)."""
    row = session.get(Household, code)
    if actor.scope.level == "national" and row is None:
        raise ValidationFailed("no such household", [Problem(None, "household_code", "unknown")])
    if row is None or not scopes.commune_in_scope(actor.scope, row.commune_code):
        raise OutOfScopePerson(
            f"no household with this code is registered in your unit ({actor.scope.unit_code})"
        )
    return row


def read_citizen(
    session: Session,
    actor: Actor,
    personal_id: str,
    purpose: str,
    *,
    timeline_offset: int = 0,
) -> records.CitizenView:
    """The citizen page: record, household, residences, a page of the timeline (from
    ``timeline_offset``, newest first); logged with its purpose."""
    policy.authorize(actor.role, Action.READ_CITIZEN)
    citizen = person(session, actor, personal_id)
    if timeline_offset < 0:
        raise ValidationFailed(
            "bad timeline page", [Problem(None, "timeline_offset", "must not be negative")]
        )
    kept = registry.resolve(session, citizen)
    view = records.view(
        session,
        citizen,
        merged_into=kept.personal_id if kept.personal_id != citizen.personal_id else None,
        timeline_offset=timeline_offset,
    )
    view.findings = events.consistency_findings(citizen)
    log_reads(session, actor, [citizen.personal_id], view.fields_read, purpose)
    return view


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What an official types: one box (ID number, legacy number or name) and filters."""

    q: str | None = None
    birth_year: str | None = None
    commune_code: str | None = None
    limit: int = 20
    offset: int = 0


def search(session: Session, actor: Actor, query: SearchQuery, purpose: str) -> registry.Page:
    """People in the actor's scope matching the query; each one listed is a logged read."""
    policy.authorize(actor.role, Action.SEARCH)
    problems: list[Problem] = []
    year: int | None = None
    if query.birth_year and query.birth_year.strip():
        text = query.birth_year.strip()
        if not (text.isdigit() and len(text) == 4 and 1800 <= int(text) <= today().year):
            problems.append(Problem(None, "birth_year", "expected a year like 1985"))
        else:
            year = int(text)
    commune = (query.commune_code or "").strip() or None
    if commune is not None and geo.get_index().commune(commune) is None:
        problems.append(Problem(None, "commune_code", "is not a commune code of the 2025 units"))
    if not 1 <= query.limit <= 100:
        problems.append(Problem(None, "limit", "between 1 and 100"))
    if query.offset < 0:
        problems.append(Problem(None, "offset", "must not be negative"))
    if problems:
        raise ValidationFailed("the search has errors", problems)
    page = scopes.search(
        session,
        actor.scope,
        query=query.q,
        birth_year=year,
        commune_code=commune,
        limit=query.limit,
        offset=query.offset,
    )
    log_reads(session, actor, [c.personal_id for c in page.items], records.SUMMARY_FIELDS, purpose)
    return page


def partial_date(
    value: str | None, field: str, problems: list[Problem], *, required: bool = True
) -> vn_dates.PartialDate | None:
    text = (value or "").strip()
    if not text:
        if required:
            problems.append(Problem(None, field, "required"))
        return None
    try:
        parsed = vn_dates.parse_iso_partial(text)
    except ValueError:
        try:
            parsed = vn_dates.parse_lenient_date(text)
        except ValueError as exc:
            problems.append(Problem(None, field, str(exc)))
            return None
    if parsed.first_day() > today():
        problems.append(Problem(None, field, "is in the future"))
        return None
    return parsed


def full_date(
    value: str | None, field: str, problems: list[Problem], *, required: bool = True
) -> dt.date | None:
    parsed = partial_date(value, field, problems, required=required)
    if parsed is not None and parsed.precision != "day":
        problems.append(Problem(None, field, "give the full date (YYYY-MM-DD)"))
        return None
    return parsed.first_day() if parsed is not None else None


def personal_id_of(value: str | None, field: str, problems: list[Problem]) -> str | None:
    text = vn_ids.normalise_id(value or "")
    if not text:
        return None
    if not vn_ids.is_personal_id(text):
        problems.append(Problem(None, field, "expected a 12-digit personal ID number"))
        return None
    return text


def clean_text(value: str | None, limit: int, field: str, problems: list[Problem]) -> str | None:
    text = " ".join((value or "").split())
    if len(text) > limit:
        problems.append(Problem(None, field, f"at most {limit} characters"))
        return None
    return text or None


def renamed(exc: ValidationFailed, names: dict[str, str]) -> ValidationFailed:
    """The same refusal with the register's field names turned into the form's."""
    exc.problems = [
        Problem(p.row, names.get(p.field or "", p.field), p.reason) for p in exc.problems
    ]
    return exc


@dataclass(frozen=True, slots=True)
class BirthForm:
    """A birth registration as typed (every value text; checked by ``register_birth``)."""

    full_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    permanent_commune_code: str | None = None
    permanent_address: str | None = None
    father_id: str | None = None
    mother_id: str | None = None
    household_code: str | None = None
    relationship_to_head: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    nationality: str | None = None
    place_of_origin: str | None = None
    birth_place_code: str | None = None
    registered_on: str | None = None
    legal_basis: str | None = None


def register_birth(session: Session, actor: Actor, form: BirthForm) -> Citizen:
    """Khai sinh: a new person with a new ID number, linked to the parents, in a household
    (an existing one, or a new one they head) with a permanent residence in the actor's
    scope. Every problem is reported by field and nothing is written."""
    policy.authorize(actor.role, Action.REGISTER_BIRTH)
    problems: list[Problem] = []
    if not (form.full_name or "").strip():
        problems.append(Problem(None, "full_name", "required"))
    birth_date = partial_date(form.birth_date, "birth_date", problems)
    sex = (form.sex or "").strip().upper()
    if sex not in ("M", "F"):
        problems.append(Problem(None, "sex", "expected M or F"))
    commune = (form.permanent_commune_code or "").strip()
    info = geo.get_index().commune(commune) if commune else None
    if not commune:
        problems.append(Problem(None, "permanent_commune_code", "required"))
    elif info is None:
        problems.append(
            Problem(None, "permanent_commune_code", "is not a commune code of the 2025 units")
        )
    father = personal_id_of(form.father_id, "father_id", problems)
    mother = personal_id_of(form.mother_id, "mother_id", problems)
    relationship = (form.relationship_to_head or "").strip() or Relationship.CHILD.value
    if relationship not in {r.value for r in Relationship} - {Relationship.HEAD.value}:
        problems.append(Problem(None, "relationship_to_head", "not a relationship to the head"))
    registered = full_date(form.registered_on, "registered_on", problems, required=False)
    place = (form.birth_place_code or "").strip() or (
        f"0{info.province_code}" if info is not None else ""
    )
    texts = {
        name: clean_text(getattr(form, name), limit, name, problems)
        for name, limit in (
            ("permanent_address", 300),
            ("household_code", 64),
            ("ethnicity", 60),
            ("religion", 60),
            ("nationality", 60),
            ("place_of_origin", 200),
            ("legal_basis", 300),
        )
    }
    if problems or birth_date is None or info is None:
        raise ValidationFailed("the birth registration has errors", problems)
    registered_on = registered or today()
    if registered_on < birth_date.first_day():
        raise ValidationFailed(
            "the registration is dated before the birth",
            [Problem(None, "registered_on", "is before the birth date")],
        )
    birth = events.Birth(
        full_name=str(form.full_name),
        birth_date=birth_date,
        sex=sex,
        birth_place_code=place,
        permanent_commune_code=commune,
        permanent_address=texts["permanent_address"],
        father_id=father,
        mother_id=mother,
        household_code=texts["household_code"],
        relationship_to_head=relationship,
        ethnicity=texts["ethnicity"],
        religion=texts["religion"],
        nationality=texts["nationality"] or "Việt Nam",
        place_of_origin=texts["place_of_origin"],
    )
    try:
        return workflows.register_birth(
            session,
            birth,
            event_date=registered_on,
            actor=actor.username,
            legal_basis=texts["legal_basis"],
            scope=actor.scope,
        )
    except ValidationFailed as exc:
        raise renamed(exc, {"event_date": "registered_on"}) from None


def expected_version(version: str | int | None, problems: list[Problem]) -> int | None:
    """The record version the official read (required: a change made without it could
    overwrite someone else's change unseen)."""
    if version is None or version == "":
        problems.append(Problem(None, "version", "required: the version of the record you read"))
        return None
    try:
        return int(version)
    except (TypeError, ValueError):
        problems.append(Problem(None, "version", "expected a whole number"))
        return None


def record_death(
    session: Session,
    actor: Actor,
    personal_id: str,
    *,
    death_date: str | None,
    legal_basis: str | None = None,
    version: str | int | None = None,
) -> Citizen:
    """Khai tử: the record is closed and every residence ended; the person stays findable."""
    policy.authorize(actor.role, Action.RECORD_DEATH)
    citizen = person(session, actor, personal_id)
    problems: list[Problem] = []
    when = full_date(death_date, "death_date", problems)
    expected = expected_version(version, problems)
    basis = clean_text(legal_basis, 300, "legal_basis", problems)
    if problems or when is None:
        raise ValidationFailed("the death registration has errors", problems)
    return workflows.record_death(
        session,
        workflows.DeathRegistration(citizen.personal_id, when, expected),
        actor=actor.username,
        legal_basis=basis,
        scope=actor.scope,
    )


# The fields a civil-status correction may change (registry.events, cải chính hộ tịch).
CORRECTABLE = ("full_name", "birth_date", "sex", "ethnicity", "religion", "nationality",
               "place_of_origin")  # fmt: skip


def correct_field(
    session: Session,
    actor: Actor,
    personal_id: str,
    *,
    field: str | None,
    value: str | None,
    reason: str | None,
    legal_basis: str | None,
    version: str | int | None = None,
) -> Citizen:
    """Cải chính: one field changed with its reason and legal basis, old and new value in
    the history."""
    policy.authorize(actor.role, Action.CORRECT_FIELD)
    citizen = person(session, actor, personal_id)
    problems: list[Problem] = []
    name = (field or "").strip()
    if name not in CORRECTABLE:
        problems.append(Problem(None, "field", f"expected one of {', '.join(CORRECTABLE)}"))
    text = (value or "").strip()
    new: str | vn_dates.PartialDate = text.upper() if name == "sex" else text
    if not text:
        problems.append(Problem(None, "value", "required"))
    elif name == "sex" and new not in ("M", "F"):
        problems.append(Problem(None, "value", "expected M or F"))
    elif name == "birth_date":
        new = partial_date(text, "value", problems) or text
    for label, given, limit in (("reason", reason, 300), ("legal_basis", legal_basis, 300)):
        if not (given or "").strip():
            problems.append(Problem(None, label, "required"))
        else:
            clean_text(given, limit, label, problems)
    expected = expected_version(version, problems)
    if problems:
        raise ValidationFailed("the correction has errors", problems)
    return workflows.correct_field(
        session,
        workflows.FieldCorrection(
            citizen.personal_id,
            name,
            new,
            expected_version=expected,
        ),
        actor=actor.username,
        reason=" ".join(str(reason).split()),
        legal_basis=" ".join(str(legal_basis).split()),
        scope=actor.scope,
    )
