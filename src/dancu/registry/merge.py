"""Duplicate review (làm sạch dữ liệu): compare two records side by side, then either mark them
"not the same person" or merge one into the other.

Nothing is ever merged automatically (``registry.duplicates`` only flags), and nothing is
deleted by a merge:

* the merged record stays in ``citizen``, and ``citizen_merge`` sends its personal ID (and,
  through it, its legacy number) to the kept person: ``service.lookup`` of either number finds
  the kept person; searches and quality counts leave the merged record out;
* the kept record keeps its own values; a field it lacks is filled from the merged record
  (a history row each); differing values stay visible on the merged record and in
  ``compare``;
* children, spouse, legal representatives and household heads pointing at the merged record
  are re-pointed to the kept one, each change with a history row;
* the merged record's residences move to the kept person; one that would give the kept person
  a second open residence of the same kind is ended first; if the kept person had no
  household, they take the merged record's place in its household;
* ``service.history`` of the kept person shows both records' history, and each record gets a
  ``merged_from`` / ``merged_into`` row.

Refused: a pair with one person alive and the other deceased, two records married to
different people, and a merged record that heads a household with other members while the
kept person has a household of their own (change the head first).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from dancu.enums import ChangeSource, DuplicateStatus, Relationship, ResidenceKind
from dancu.errors import ConflictError, NotFoundError, Problem, ValidationFailed
from dancu.registry import scope as scopes
from dancu.registry import service as registry
from dancu.registry.models import (
    Citizen,
    CitizenHistory,
    CitizenMerge,
    DuplicateCandidate,
    Household,
    Residence,
)
from dancu.registry.scope import Scope

# Shown side by side: the number, then every field a change may touch.
COMPARED: tuple[str, ...] = ("personal_id", *registry.TRACKED_FIELDS)
# Taken from the merged record when the kept one has no value: not the identity (name, birth,
# sex, life status, decided by the kept record), nor the household and residence, which
# follow their own rule below.
_NOT_FILLED = frozenset(
    {
        "full_name",
        "birth_date",
        "birth_date_precision",
        "sex",
        "status",
        "death_date",
        "household_code",
        "relationship_to_head",
        "permanent_commune_code",
        "permanent_address",
    }
)
FILLED: tuple[str, ...] = tuple(f for f in registry.TRACKED_FIELDS if f not in _NOT_FILLED)
_OFFICIAL = ChangeSource.OFFICIAL.value


class CandidateNotFound(NotFoundError):
    code = "candidate_not_found"


class AlreadyReviewed(ConflictError):
    code = "candidate_reviewed"


@dataclass(frozen=True, slots=True)
class FieldComparison:
    """One line of the side-by-side view: a field, both values, and whether they agree."""

    field: str
    left: str | None
    right: str | None
    same: bool


def get_candidate(
    session: Session, candidate_id: int, *, scope: Scope | None = None
) -> DuplicateCandidate:
    """The candidate pair, if both people are in ``scope`` (403 otherwise)."""
    candidate = session.get(DuplicateCandidate, candidate_id)
    if candidate is None:
        raise CandidateNotFound("no such duplicate candidate")
    scopes.require_person(session, scope, candidate.personal_id_a)
    scopes.require_person(session, scope, candidate.personal_id_b)
    return candidate


def list_open(
    session: Session, scope: Scope, *, limit: int = 50, offset: int = 0
) -> list[DuplicateCandidate]:
    """Open candidates whose two people both live in ``scope``, oldest first. A pair that
    spans two communes is reviewed by the province (or nationally) that covers both."""
    both = [
        exists().where(Citizen.personal_id == column, scopes.where_in_scope(scope))
        for column in (DuplicateCandidate.personal_id_a, DuplicateCandidate.personal_id_b)
    ]
    return list(
        session.scalars(
            select(DuplicateCandidate)
            .where(DuplicateCandidate.status == DuplicateStatus.OPEN.value, *both)
            .order_by(DuplicateCandidate.id)
            .limit(limit)
            .offset(offset)
        )
    )


def _render(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def compare(
    session: Session, candidate_id: int, *, scope: Scope | None = None
) -> list[FieldComparison]:
    """The two records side by side (``left`` is ``personal_id_a``), field by field."""
    candidate = get_candidate(session, candidate_id, scope=scope)
    left = registry.get_or_raise(session, candidate.personal_id_a)
    right = registry.get_or_raise(session, candidate.personal_id_b)
    rows = []
    for name in COMPARED:
        a, b = _render(getattr(left, name)), _render(getattr(right, name))
        rows.append(FieldComparison(name, a, b, a == b))
    return rows


def _open_candidate(session: Session, candidate_id: int, scope: Scope | None) -> DuplicateCandidate:
    candidate = get_candidate(session, candidate_id, scope=scope)
    if candidate.status != DuplicateStatus.OPEN.value:
        raise AlreadyReviewed(
            f"this pair was already reviewed ({candidate.status}) by {candidate.reviewed_by}"
        )
    return candidate


def _require_reason(actor: str, reason: str) -> str:
    problems = [
        Problem(None, name, "required")
        for name, v in (("actor", actor), ("reason", reason))
        if not v.strip()
    ]
    if problems:
        raise ValidationFailed("a review needs an author and a reason", problems)
    return reason.strip()


def dismiss(
    session: Session,
    candidate_id: int,
    actor: str,
    reason: str,
    *,
    scope: Scope | None = None,
    now: dt.datetime | None = None,
) -> DuplicateCandidate:
    """Mark the pair "not the same person"; it is never flagged again."""
    note = _require_reason(actor, reason)
    candidate = _open_candidate(session, candidate_id, scope)
    _close(candidate, DuplicateStatus.NOT_SAME, actor, note, now or dt.datetime.now(dt.UTC))
    session.flush()
    return candidate


def _close(
    candidate: DuplicateCandidate,
    status: DuplicateStatus,
    actor: str,
    note: str,
    now: dt.datetime,
) -> None:
    candidate.status = status.value
    candidate.reviewed_by = actor
    candidate.reviewed_at = now
    candidate.review_note = note


@dataclass(slots=True)
class _Merge:
    session: Session
    kept: Citizen
    merged: Citizen
    actor: str
    reason: str
    now: dt.datetime

    def set(self, person: Citizen, changes: dict[str, object]) -> None:
        registry.update(
            self.session,
            person,
            changes,
            actor=self.actor,
            source=_OFFICIAL,
            reason=self.reason,
            now=self.now,
        )

    def note(self, person: Citizen, what: str, value: str) -> None:
        self.session.add(
            CitizenHistory(
                personal_id=person.personal_id,
                changed_at=self.now,
                field=what,
                old_value=None,
                new_value=value,
                source=_OFFICIAL,
                actor=self.actor,
                reason=self.reason,
            )
        )


def _refusals(session: Session, kept: Citizen, merged: Citizen) -> list[Problem]:
    problems = []
    if kept.status != merged.status:
        problems.append(
            Problem(None, "keep_id", "one record is deceased and the other alive: correct first")
        )
    if kept.spouse_id and merged.spouse_id and kept.spouse_id != merged.spouse_id:
        problems.append(Problem(None, "keep_id", "the two records are married to different people"))
    household = session.get(Household, merged.household_code) if merged.household_code else None
    if (
        household is not None
        and kept.household_code
        and kept.household_code != household.code
        and household.head_id == merged.personal_id
        and session.scalar(
            select(
                exists().where(
                    Citizen.household_code == household.code,
                    Citizen.personal_id != merged.personal_id,
                    Citizen.status == "alive",
                )
            )
        )
    ):
        problems.append(
            Problem(
                None,
                "keep_id",
                f"the other record heads household {household.code} with other members: "
                "change its head first",
            )
        )
    return problems


def merge(
    session: Session,
    candidate_id: int,
    keep_id: str,
    actor: str,
    reason: str,
    *,
    scope: Scope | None = None,
    expected_versions: dict[str, int] | None = None,
    now: dt.datetime | None = None,
) -> Citizen:
    """Merge the other record of the pair into ``keep_id`` (rules in the module docstring);
    returns the kept person."""
    note = _require_reason(actor, reason)
    candidate = _open_candidate(session, candidate_id, scope)
    pair = (candidate.personal_id_a, candidate.personal_id_b)
    if keep_id not in pair:
        raise ValidationFailed(
            "keep_id must be one of the two records",
            [Problem(None, "keep_id", "is not one of the two records")],
        )
    kept = registry.get_or_raise(session, keep_id)
    merged = registry.get_or_raise(session, pair[1] if keep_id == pair[0] else pair[0])
    problems = _refusals(session, kept, merged)
    if problems:
        raise ValidationFailed("these records cannot be merged as they are", problems)
    registry.check_versions(
        (kept, merged),
        expected_versions,
        stale="one of the records was changed by someone else since you opened the pair; "
        "reload it and review again",
    )
    job = _Merge(
        session,
        kept,
        merged,
        actor,
        f"merge of {merged.personal_id}: {note}",
        now or dt.datetime.now(dt.UTC),
    )
    _fill(job)
    _repoint_people(job)
    _take_household_and_residences(job)
    _repoint_candidates(job, candidate)
    session.execute(
        update(CitizenMerge)
        .where(CitizenMerge.kept_id == merged.personal_id)
        .values(kept_id=kept.personal_id)
    )
    session.add(
        CitizenMerge(
            merged_id=merged.personal_id,
            kept_id=kept.personal_id,
            candidate_id=candidate.id,
            merged_at=job.now,
            actor=actor,
            reason=note,
        )
    )
    job.note(kept, "merged_from", merged.personal_id)
    job.note(merged, "merged_into", kept.personal_id)
    _close(candidate, DuplicateStatus.MERGED, actor, note, job.now)
    for person in (kept, merged):
        person.updated_at = job.now  # moves the version: a concurrent edit is refused
    session.flush()
    return kept


def _fill(job: _Merge) -> None:
    fills = {
        name: getattr(job.merged, name)
        for name in FILLED
        if getattr(job.kept, name) in (None, "") and getattr(job.merged, name) not in (None, "")
    }
    if fills.get("spouse_id") == job.kept.personal_id:
        del fills["spouse_id"]
    if fills:
        job.set(job.kept, fills)


def _repoint_people(job: _Merge) -> None:
    """Children, spouse and represented people of the merged record now point at the kept."""
    session, old, new = job.session, job.merged.personal_id, job.kept.personal_id
    for column in ("father_id", "mother_id", "representative_id", "spouse_id"):
        attribute = getattr(Citizen, column)
        for person in session.scalars(select(Citizen).where(attribute == old)):
            if person.personal_id != new:
                job.set(person, {column: new})


def _take_household_and_residences(job: _Merge) -> None:
    """The kept person takes the merged record's place in its household if they had none;
    otherwise the merged record leaves it (a household it was alone in is dissolved). Its
    residences move to the kept person, ending any that would be a second open one."""
    session, kept, merged = job.session, job.kept, job.merged
    household = session.get(Household, merged.household_code) if merged.household_code else None
    if household is not None and not kept.household_code:
        job.set(
            kept,
            {
                "household_code": household.code,
                "relationship_to_head": merged.relationship_to_head,
                "permanent_commune_code": merged.permanent_commune_code,
                "permanent_address": merged.permanent_address,
            },
        )
        if household.head_id == merged.personal_id:
            household.head_id = kept.personal_id
        # The merged record's permanent residence (with the household) becomes the kept one's.
        session.execute(
            update(Residence)
            .where(
                Residence.personal_id == kept.personal_id,
                Residence.kind == ResidenceKind.PERMANENT.value,
                Residence.ended_at.is_(None),
            )
            .values(ended_at=job.now)
        )
    elif household is not None and household.head_id == merged.personal_id:
        if kept.household_code == household.code:  # both records lived there
            household.head_id = kept.personal_id
            job.set(kept, {"relationship_to_head": Relationship.HEAD.value})
        else:  # alone there (a head with others is refused)
            household.dissolved_at = job.now
    kept_open = set(
        session.scalars(
            select(Residence.kind).where(
                Residence.personal_id == kept.personal_id, Residence.ended_at.is_(None)
            )
        )
    )
    for residence in session.scalars(
        select(Residence).where(Residence.personal_id == merged.personal_id)
    ):
        if residence.ended_at is None and residence.kind in kept_open:
            residence.ended_at = job.now
        residence.personal_id = kept.personal_id
    job.set(merged, {"household_code": None, "relationship_to_head": None})
    if kept.permanent_commune_code is None and merged.permanent_commune_code:
        job.set(
            kept,
            {
                "permanent_commune_code": merged.permanent_commune_code,
                "permanent_address": merged.permanent_address,
            },
        )


def _repoint_candidates(job: _Merge, reviewed: DuplicateCandidate) -> None:
    """Other open pairs of the merged record become pairs of the kept one (or close, when
    the kept one already has that pair)."""
    session, old, new = job.session, job.merged.personal_id, job.kept.personal_id
    others = session.scalars(
        select(DuplicateCandidate).where(
            DuplicateCandidate.id != reviewed.id,
            DuplicateCandidate.status == DuplicateStatus.OPEN.value,
            (DuplicateCandidate.personal_id_a == old) | (DuplicateCandidate.personal_id_b == old),
        )
    )
    for candidate in list(others):
        partner = (
            candidate.personal_id_b if candidate.personal_id_a == old else candidate.personal_id_a
        )
        a, b = sorted((new, partner))
        taken = session.scalar(
            select(
                exists().where(
                    DuplicateCandidate.personal_id_a == a, DuplicateCandidate.personal_id_b == b
                )
            )
        )
        if partner == new or taken:
            _close(
                candidate, DuplicateStatus.MERGED, job.actor, f"{old} merged into {new}", job.now
            )
        else:
            candidate.personal_id_a, candidate.personal_id_b = a, b
        session.flush()
