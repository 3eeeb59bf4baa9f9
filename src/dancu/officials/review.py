"""Cleaning the register and watching it: duplicate review, data quality, the access log.

Reviewing a pair and listing the people behind a quality count are reads with a purpose of
their own (``duplicate_review``, ``data_cleaning``), logged like any other read. The quality
overview holds counts only, and the access log holds who read whom, not what: neither is
logged as a read of a person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dancu.audit import service as audit
from dancu.errors import Problem, ValidationFailed
from dancu.officials import policy, records
from dancu.officials.flows import Actor, OutOfScopePerson, expected_version, log_reads
from dancu.officials.policy import Action
from dancu.registry import merge, quality
from dancu.registry import scope as scopes
from dancu.registry import service as registry
from dancu.registry.models import Citizen, DuplicateCandidate

DUPLICATE_PURPOSE = "duplicate_review"
QUALITY_PURPOSE = "data_cleaning"


def candidate(session: Session, actor: Actor, candidate_id: str | int) -> DuplicateCandidate:
    """The pair, if both people are in the actor's unit (403 otherwise; 404 nationally)."""
    try:
        number = int(candidate_id)
    except (TypeError, ValueError):
        number = 0
    row = session.get(DuplicateCandidate, number)
    if row is None and actor.scope.level == "national":
        raise merge.CandidateNotFound("no such duplicate candidate")
    if row is None or not all(
        scopes.person_in_scope(session, actor.scope, pid)
        for pid in (row.personal_id_a, row.personal_id_b)
    ):
        raise OutOfScopePerson(
            f"no duplicate pair with this number lies in your unit ({actor.scope.unit_code})"
        )
    return row


@dataclass(frozen=True, slots=True)
class CandidatePage:
    items: list[DuplicateCandidate]
    limit: int
    offset: int
    has_more: bool


def list_duplicates(
    session: Session, actor: Actor, *, limit: int = 50, offset: int = 0
) -> CandidatePage:
    """Open pairs of the actor's unit (numbers and reasons only: not a read of a record)."""
    policy.authorize(actor.role, Action.READ_DUPLICATES)
    if not 1 <= limit <= 200 or offset < 0:
        raise ValidationFailed(
            "bad page", [Problem(None, "limit", "1 to 200, and offset not negative")]
        )
    rows = merge.list_open(session, actor.scope, limit=limit + 1, offset=offset)
    return CandidatePage(rows[:limit], limit, offset, len(rows) > limit)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two records side by side, with the versions read (for the merge's concurrency check)."""

    candidate: DuplicateCandidate
    rows: list[merge.FieldComparison]
    left: Citizen
    right: Citizen


def compare(session: Session, actor: Actor, candidate_id: str | int) -> Comparison:
    policy.authorize(actor.role, Action.READ_DUPLICATES)
    row = candidate(session, actor, candidate_id)
    rows = merge.compare(session, row.id, scope=actor.scope)
    left = registry.get_or_raise(session, row.personal_id_a)
    right = registry.get_or_raise(session, row.personal_id_b)
    log_reads(
        session,
        actor,
        [left.personal_id, right.personal_id],
        merge.COMPARED,
        DUPLICATE_PURPOSE,
    )
    return Comparison(row, rows, left, right)


def dismiss(
    session: Session, actor: Actor, candidate_id: str | int, *, reason: str | None
) -> DuplicateCandidate:
    """ "Not the same person": the pair is closed and never flagged again."""
    policy.authorize(actor.role, Action.RESOLVE_DUPLICATE)
    row = candidate(session, actor, candidate_id)
    return merge.dismiss(session, row.id, actor.username, reason or "", scope=actor.scope)


def merge_pair(
    session: Session,
    actor: Actor,
    candidate_id: str | int,
    *,
    keep_id: str | None,
    reason: str | None,
    versions: dict[str, str | int] | None = None,
) -> Citizen:
    """Merge the other record into ``keep_id``; both numbers stay findable."""
    policy.authorize(actor.role, Action.RESOLVE_DUPLICATE)
    row = candidate(session, actor, candidate_id)
    problems: list[Problem] = []
    if not (keep_id or "").strip():
        problems.append(Problem(None, "keep_id", "required"))
    expected: dict[str, int] = {}
    for pid, version in (versions or {}).items():
        number = expected_version(version, problems)
        if number is not None:
            expected[pid] = number
    if problems:
        raise ValidationFailed("the merge has errors", problems)
    return merge.merge(
        session,
        row.id,
        str(keep_id).strip(),
        actor.username,
        reason or "",
        scope=actor.scope,
        expected_versions=expected,
    )


def quality_overview(session: Session, actor: Actor) -> quality.QualityOverview:
    """Counts per commune of the actor's unit (pre-aggregated; no personal data)."""
    policy.authorize(actor.role, Action.READ_QUALITY)
    return quality.overview(session, actor.scope)


def quality_findings(
    session: Session,
    actor: Actor,
    kind: str,
    commune_code: str | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> quality.FindingPage:
    """The people behind one count; each listed person is a logged read."""
    policy.authorize(actor.role, Action.READ_QUALITY)
    page = quality.findings(
        session, actor.scope, kind, commune_code or None, limit=limit, offset=offset
    )
    log_reads(
        session,
        actor,
        [f.person.personal_id for f in page.items],
        [*records.SUMMARY_FIELDS, f"quality.{kind}"],
        QUALITY_PURPOSE,
    )
    return page


@dataclass(frozen=True, slots=True)
class AccessQuery:
    personal_id: str | None = None
    organization: str | None = None
    actor: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 50
    offset: int = 0


def _moment(value: str | None, name: str, problems: list[Problem]) -> dt.datetime | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        problems.append(Problem(None, name, "expected a date YYYY-MM-DD"))
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def access_log(session: Session, actor: Actor, query: AccessQuery) -> audit.AccessPage:
    """The auditor's view of who read whom: by person, organisation or reader, in a period
    (``until`` is the day after the last day shown)."""
    policy.authorize(actor.role, Action.READ_ACCESS_LOG)
    problems: list[Problem] = []
    since = _moment(query.since, "since", problems)
    until = _moment(query.until, "until", problems)
    if problems:
        raise ValidationFailed("the access-log query has errors", problems)
    return audit.search(
        session,
        personal_id=(query.personal_id or "").strip() or None,
        organization=(query.organization or "").strip() or None,
        actor=(query.actor or "").strip() or None,
        since=since,
        until=until + dt.timedelta(days=1) if until else None,
        limit=query.limit,
        offset=query.offset,
    )
