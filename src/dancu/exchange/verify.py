"""Population verification (CONTRACTS §4): does what a partner says agree with the register?

Answers say, per given field, whether it agrees, whether the person is deceased, and never a
register value. Every verification is one access log entry (actor = the client, its
organisation, the person, the fields compared, the stated purpose), appended in the same
transaction that read the register, before the answer leaves the server.

``verify_many`` (any backend, in a SQLAlchemy session) and ``commit_group_pg`` (PostgreSQL, on
a plain psycopg connection, three round trips) are the verb: the group committer calls one of
them for the single requests that arrived within a few milliseconds, the batch endpoint for
its items. The register is read with one lean query per chunk (a few columns, no ORM
objects): by personal ID, then by legacy CMND number for the numbers not found, as
``registry.service.lookup`` does for one number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Row, Select, String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from dancu.audit import service as audit
from dancu.audit.exceptions import ChainConflict
from dancu.enums import AccessChannel, ActorKind, ClientStatus, LifeStatus
from dancu.exchange import quota
from dancu.exchange.exceptions import ClientSuspended, QuotaExceeded
from dancu.exchange.models import ApiClient
from dancu.registry.agreement import Claim, compare
from dancu.registry.models import Citizen

MATCH, MISMATCH, NOT_FOUND = "match", "mismatch", "not_found"
_CLIENT = ActorKind.CLIENT.value
_DECEASED = LifeStatus.DECEASED.value
_CHUNK = 900  # SQLite's default limit on bound parameters is 999
_COLUMNS = (
    Citizen.personal_id,
    Citizen.legacy_id_number,
    Citizen.full_name,
    Citizen.name_key,
    Citizen.birth_date,
    Citizen.birth_date_precision,
    Citizen.sex,
    Citizen.status,
    Citizen.permanent_commune_code,
)


@dataclass(frozen=True, slots=True)
class Job:
    """One verification to answer and log."""

    claim: Claim
    client_id: str
    organization: str
    purpose: str
    request_id: str
    channel: str = AccessChannel.VERIFY.value


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer of CONTRACTS §4 (without the request id, which the web layer adds)."""

    result: str
    fields: dict[str, bool]
    deceased: bool

    def as_dict(self) -> dict[str, Any]:
        return {"result": self.result, "fields": self.fields, "deceased": self.deceased}


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def fetch(session: Session, numbers: Iterable[str]) -> dict[str, Row[Any]]:
    """The register row of each number: a 12-digit personal ID, else a legacy CMND number
    (9 or 12 digits; the lowest personal ID if several people share one)."""
    wanted = sorted(set(numbers))
    found: dict[str, Row[Any]] = {}
    connection = session.connection()  # Core: no ORM machinery for plain rows
    postgres = connection.dialect.name == "postgresql"
    size = 10_000 if postgres else _CHUNK
    current = [n for n in wanted if len(n) == 12]
    for chunk in _chunks(current, size):
        for row in connection.execute(_by(Citizen.personal_id, postgres), {"ids": chunk}).all():
            found[row.personal_id] = row
    legacy = [n for n in wanted if n not in found]
    for chunk in _chunks(legacy, size):
        rows = connection.execute(_by(Citizen.legacy_id_number, postgres), {"ids": chunk}).all()
        for row in rows:
            found.setdefault(row.legacy_id_number, row)
    return found


def _by(column: Any, postgres: bool) -> Select[Any]:
    """The lean query by ``column`` for the numbers bound as ``ids``: one array parameter on
    PostgreSQL (``= ANY``), an expanding IN list elsewhere."""
    ids = (
        column == any_(bindparam("ids", type_=postgresql.ARRAY(String)))
        if postgres
        else column.in_(bindparam("ids", expanding=True))
    )
    query: Select[Any] = select(*_COLUMNS).where(ids).order_by(Citizen.personal_id)  # type: ignore[assignment]
    return query


def answer(claim: Claim, row: Row[Any] | None) -> Answer:
    """The answer for one claim against its register row (None: not in the register)."""
    if row is None:
        return Answer(NOT_FOUND, dict.fromkeys(claim.given, False), False)
    fields = compare(claim, row)
    result = MATCH if all(fields.values()) else MISMATCH
    return Answer(result, fields, row.status == _DECEASED)


def entry_of(job: Job, row: Row[Any] | None, found: Answer) -> audit.AccessEntry | None:
    """The access log entry of one verification; None for a legacy number not found (there
    is no person to attach it to)."""
    personal_id = row.personal_id if row is not None else job.claim.number
    if len(personal_id) != 12:
        return None
    return audit.AccessEntry(
        actor=job.client_id,
        actor_kind=_CLIENT,
        organization=job.organization,
        personal_id=personal_id,
        fields=[*found.fields, "status"],  # the given fields, in answer order
        purpose=job.purpose,
        channel=job.channel,
        request_id=job.request_id,
        result=found.result,
    )


def verify_many(session: Session, jobs: Sequence[Job]) -> list[Answer]:
    """Answer every job and append their access log entries, in the caller's transaction
    (the caller commits, then sends the answers). The log's append lock is held from the
    append to the commit, after the register was read."""
    rows = fetch(session, (job.claim.number for job in jobs))
    answers: list[Answer] = []
    entries: list[audit.AccessEntry] = []
    for job in jobs:
        row = rows.get(job.claim.number)
        found = answer(job.claim, row)
        answers.append(found)
        entry = entry_of(job, row, found)
        if entry is not None:
            entries.append(entry)
    audit.append(session, entries)
    return answers


def active_clients(session: Session, client_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """The quota (per minute, per day) of each of these clients that is active now, read in
    the caller's transaction; a suspended or unknown client is absent."""
    wanted = sorted(set(client_ids))
    rows = session.execute(
        select(ApiClient.client_id, ApiClient.per_minute, ApiClient.per_day).where(
            ApiClient.client_id.in_(wanted), ApiClient.status == ClientStatus.ACTIVE.value
        )
    )
    return {row.client_id: (row.per_minute, row.per_day) for row in rows}


# ------------------------------------------------------------------ PostgreSQL, lean
# The group commit's transaction on its own psycopg connection in three round trips instead
# of seven or more through the ORM: (1) every client's status and quota count in one
# statement, pipelined with the register read (``= ANY``); (2) the append lock and the chain's
# head, pipelined (two statements: under READ COMMITTED the head is read after the lock is
# granted); (3) the entries (one INSERT from one JSON parameter) and COMMIT, pipelined.

_PG_COLUMNS = ", ".join(column.name for column in _COLUMNS)
_PG_BY_ID = f"SELECT {_PG_COLUMNS} FROM citizen WHERE personal_id = ANY(%s::text[])"
_PG_BY_LEGACY = (
    f"SELECT {_PG_COLUMNS} FROM citizen WHERE legacy_id_number = ANY(%s::text[]) "
    "ORDER BY personal_id"
)

Outcome = Answer | ClientSuspended | QuotaExceeded


def _pg_array(numbers: list[str]) -> str:
    """Digit strings (``parse_claim`` keeps only digits) as a PostgreSQL array literal: one
    text parameter instead of psycopg's per-element adaptation."""
    if not all(n.isdigit() and n.isascii() for n in numbers):
        raise ValueError("personal ID numbers are digits")
    return "{" + ",".join(numbers) + "}"


def commit_group_pg(
    conn: psycopg.Connection[Any],
    jobs: Sequence[Job],
    *,
    now: float,
    whole: bool = False,
    purge: bool = False,
) -> list[Outcome]:
    """Answer ``jobs`` (of any clients) on PostgreSQL and commit their entries, in a
    transaction of its own on ``conn`` (a plain psycopg connection, idle, not autocommit).

    Each job's outcome, in order: its answer, or ``ClientSuspended`` / ``QuotaExceeded`` for
    the jobs of a client suspended or past its quota (not counted, not logged). With
    ``whole`` (a batch) those are raised instead and nothing is counted or written. ``purge``
    also deletes ended quota windows. Any other error propagates; the caller rolls back.
    """
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.client_id] = counts.get(job.client_id, 0) + 1
    numbers = sorted({job.claim.number for job in jobs})
    current = [n for n in numbers if len(n) == 12]
    old = [n for n in numbers if len(n) != 12]
    admit = conn.cursor()
    by_id: psycopg.Cursor[Any] = conn.cursor(row_factory=namedtuple_row)
    by_legacy: psycopg.Cursor[Any] = conn.cursor(row_factory=namedtuple_row)
    with conn.pipeline():
        if purge:
            conn.execute(quota.PG_PURGE_SQL, [dt.datetime.fromtimestamp(now, dt.UTC)])
        admit.execute(quota.PG_ADMIT_SQL, quota.pg_admit_params(counts, now), prepare=True)
        by_id.execute(_PG_BY_ID, [_pg_array(current)], prepare=True)
        if old:
            by_legacy.execute(_PG_BY_LEGACY, [_pg_array(old)], prepare=True)
    active = {usage[0]: usage for usage in admit.fetchall()}
    rows: dict[str, Any] = {row.personal_id: row for row in by_id.fetchall()}
    legacy_rows = by_legacy.fetchall() if old else []
    missing = [n for n in current if n not in rows]
    if missing:  # a 12-digit number not in the register: maybe a 12-digit CMND
        by_legacy.execute(_PG_BY_LEGACY, [_pg_array(missing)], prepare=True)
        legacy_rows += by_legacy.fetchall()
    for row in legacy_rows:
        rows.setdefault(row.legacy_id_number, row)
    refusals: dict[str, ClientSuspended | QuotaExceeded] = {}
    room: dict[str, int] = {}
    give_back: list[dict[str, object]] = []
    for client_id, count in counts.items():
        usage = active.get(client_id)
        if usage is None:
            refusals[client_id] = ClientSuspended("this client is suspended")
            room[client_id] = 0
            continue
        allowed, retry, back = quota.pg_admitted(usage, count, now)
        room[client_id] = allowed
        if back is not None:
            give_back.append(back)
            message = (
                f"this batch of {count:,} would pass the quota; retry in {retry} s"
                if whole
                else f"quota reached; retry in {retry} s"
            )
            refusals[client_id] = QuotaExceeded(message, retry)
    if whole and refusals:
        conn.rollback()
        raise next(iter(refusals.values()))
    outcomes: list[Outcome] = []
    entries: list[audit.AccessEntry] = []
    for job in jobs:
        if room[job.client_id] <= 0:
            outcomes.append(refusals[job.client_id])
            continue
        room[job.client_id] -= 1
        register = rows.get(job.claim.number)
        found = answer(job.claim, register)
        outcomes.append(found)
        entry = entry_of(job, register, found)
        if entry is not None:
            entries.append(entry)
    values = audit.prepare(entries)
    if values:
        with conn.pipeline():
            conn.execute(audit.PG_LOCK_SQL, prepare=True)
            head = conn.execute(audit.PG_HEAD_SQL, prepare=True)
        last = head.fetchone()
        audit.link(values, audit.Anchor(last[0], last[1]) if last is not None else None)
    try:
        with conn.pipeline():
            if give_back:
                conn.cursor().executemany(quota.PG_GIVE_BACK_SQL, give_back)
            if values:
                conn.execute(audit.PG_INSERT_SQL, [audit.pg_insert_param(values)], prepare=True)
            conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        raise ChainConflict(
            "another writer appended to the access log at the same position; nothing was "
            "written, roll back and try again"
        ) from exc
    return outcomes
