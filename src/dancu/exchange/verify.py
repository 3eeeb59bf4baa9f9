"""Population verification (CONTRACTS §4): does what a partner says agree with the register?

Answers say, per given field, whether it agrees, whether the person is deceased, and never a
register value. Every verification is one access log entry (actor = the client, its
organisation, the person, the fields compared, the stated purpose), appended in the same
transaction that read the register, before the answer leaves the server.

``verify_many`` (any backend, in a SQLAlchemy session) and ``commit_group_pg`` /
``commit_group_pg_async`` (PostgreSQL, on a plain psycopg connection, two or three round
trips) are the verb: the group commit calls one of them for the single requests that arrived
within a few milliseconds, the batch endpoint for its items. The register is read with one
lean query per chunk (a few columns, no ORM objects): by personal ID, then by legacy CMND
number for the numbers not found, as ``registry.service.lookup`` does for one number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable, Sequence
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
# The group commit's transaction on a psycopg connection in two round trips instead of seven
# or more through the ORM: (1) every client's status and quota count in one statement, the
# register read (``= ANY``), the append lock and the chain's head (two statements: under READ
# COMMITTED the head is read after the lock is granted), pipelined; (2) the entries (one
# INSERT from one JSON parameter) and COMMIT, pipelined. A batch takes the lock in a round
# trip of its own, after comparing its items. The steps are written once (``_group_steps``,
# no I/O) and sent by a synchronous or an asynchronous driver.

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


@dataclass(frozen=True, slots=True)
class _Statement:
    """One statement of a round trip: ``rows`` says how its rows are read back (None: not
    read; ``"named"``: attribute access, for ``compare``); ``many`` runs ``params`` as a
    sequence of parameter sets; ``sql`` None is the COMMIT."""

    sql: str | None
    params: Any = None
    rows: str | None = None
    many: bool = False


_COMMIT = _Statement(None)
# One round trip: statements sent together (pipeline mode); the answer is each one's rows.
_Trip = list[_Statement]
_Steps = Generator[_Trip, list[list[Any] | None], list["Outcome"]]


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
    also deletes ended quota windows. Any error rolls the transaction back and propagates.
    """
    steps = _group_steps(jobs, now=now, whole=whole, purge=purge)
    try:
        trip = next(steps)
        while True:
            try:
                results = _round_trip(conn, trip)
            except Exception as exc:  # the steps translate what they expect
                trip = steps.throw(exc)
            else:
                trip = steps.send(results)
    except StopIteration as done:
        outcomes: list[Outcome] = done.value
        return outcomes
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise


async def commit_group_pg_async(
    conn: psycopg.AsyncConnection[Any],
    jobs: Sequence[Job],
    *,
    now: float,
    purge: bool = False,
) -> list[Outcome]:
    """:func:`commit_group_pg` on an asynchronous connection, for the group committer that
    runs on the event loop: the same transaction, the same round trips."""
    steps = _group_steps(jobs, now=now, whole=False, purge=purge)
    try:
        trip = next(steps)
        while True:
            try:
                results = await _round_trip_async(conn, trip)
            except Exception as exc:
                trip = steps.throw(exc)
            else:
                trip = steps.send(results)
    except StopIteration as done:
        outcomes: list[Outcome] = done.value
        return outcomes
    except BaseException:
        if not conn.closed:
            await conn.rollback()
        raise


def _round_trip(conn: psycopg.Connection[Any], trip: _Trip) -> list[list[Any] | None]:
    cursors: list[psycopg.Cursor[Any] | None] = []
    with conn.pipeline():
        for statement in trip:
            if statement.sql is None:
                conn.commit()
                cursors.append(None)
                continue
            cursor: psycopg.Cursor[Any] = (
                conn.cursor(row_factory=namedtuple_row)
                if statement.rows == "named"
                else conn.cursor()
            )
            if statement.many:
                cursor.executemany(statement.sql, statement.params)
            else:
                cursor.execute(statement.sql, statement.params, prepare=True)
            cursors.append(cursor if statement.rows is not None else None)
    return [c.fetchall() if c is not None else None for c in cursors]


async def _round_trip_async(
    conn: psycopg.AsyncConnection[Any], trip: _Trip
) -> list[list[Any] | None]:
    cursors: list[psycopg.AsyncCursor[Any] | None] = []
    async with conn.pipeline():
        for statement in trip:
            if statement.sql is None:
                await conn.commit()
                cursors.append(None)
                continue
            cursor: psycopg.AsyncCursor[Any] = (
                conn.cursor(row_factory=namedtuple_row)
                if statement.rows == "named"
                else conn.cursor()
            )
            if statement.many:
                await cursor.executemany(statement.sql, statement.params)
            else:
                await cursor.execute(statement.sql, statement.params, prepare=True)
            cursors.append(cursor if statement.rows is not None else None)
    return [await c.fetchall() if c is not None else None for c in cursors]


def _group_steps(jobs: Sequence[Job], *, now: float, whole: bool, purge: bool) -> _Steps:
    """The group's transaction as round trips, whoever sends them (sans I/O: yields each
    round trip's statements, receives their rows, returns the outcomes)."""
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.client_id] = counts.get(job.client_id, 0) + 1
    numbers = sorted({job.claim.number for job in jobs})
    current = [n for n in numbers if len(n) == 12]
    old = [n for n in numbers if len(n) != 12]
    first: _Trip = []
    if purge:
        first.append(_Statement(quota.PG_PURGE_SQL, [dt.datetime.fromtimestamp(now, dt.UTC)]))
    first.append(_Statement(quota.PG_ADMIT_SQL, quota.pg_admit_params(counts, now), "tuple"))
    first.append(_Statement(_PG_BY_ID, [_pg_array(current)], "named"))
    if old:
        first.append(_Statement(_PG_BY_LEGACY, [_pg_array(old)], "named"))
    # A group of single verifications takes the append lock and reads the chain's head in
    # this same round trip, after the rest (two statements, so that under READ COMMITTED the
    # head is read once the lock is granted): one round trip fewer, for a lock held a little
    # longer, while its few items are compared (the quota upsert above holds its clients'
    # usage rows to the commit anyway). A batch compares thousands: it locks after that.
    lock = [_Statement(audit.PG_LOCK_SQL), _Statement(audit.PG_HEAD_SQL, None, "tuple")]
    if not whole:
        first += lock
    results = yield first
    last: list[Any] = []
    if not whole:
        last = results.pop() or []
        results.pop()
    admitted, by_id = results[-3:-1] if old else results[-2:]
    legacy_rows: list[Any] = list(results[-1] or []) if old else []
    active = {usage[0]: usage for usage in admitted or ()}
    rows: dict[str, Any] = {row.personal_id: row for row in by_id or ()}
    missing = [n for n in current if n not in rows]
    if missing:  # a 12-digit number not in the register: maybe a 12-digit CMND
        (more,) = yield [_Statement(_PG_BY_LEGACY, [_pg_array(missing)], "named")]
        legacy_rows += more or ()
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
        raise next(iter(refusals.values()))  # the driver rolls back: nothing counted
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
    if whole and values:
        last = (yield lock)[1] or []
    final: _Trip = []
    if give_back:
        final.append(_Statement(quota.PG_GIVE_BACK_SQL, give_back, many=True))
    if values:
        texts: list[str] = []
        audit.link(values, audit.Anchor(last[0][0], last[0][1]) if last else None, texts)
        final.append(_Statement(audit.PG_INSERT_SQL, [audit.pg_insert_rows(texts)]))
    final.append(_COMMIT)
    try:
        yield final
    except psycopg.errors.UniqueViolation as exc:
        raise ChainConflict(
            "another writer appended to the access log at the same position; nothing was "
            "written, roll back and try again"
        ) from exc
    return outcomes
