"""Population verification (CONTRACTS §4): does what a partner says agree with the register?

Answers say, per given field, whether it agrees, whether the person is deceased, and never a
register value. Every single verification is one access log entry (actor = the client, its
organisation, the person, the fields compared, the stated purpose), and every batch one batch
entry with one item per person, appended in the same transaction that read the register,
before the answer leaves the server.

The verbs: for the single requests that arrived within a few milliseconds, the group commit
calls ``verify_many`` (any backend, in a SQLAlchemy session) or ``commit_group_pg_async``
(PostgreSQL, on a plain psycopg connection, two round trips); for a batch request (a
``Batch``: its items as columns), the batch endpoint calls ``answer_batch`` or
``commit_batch_pg_async`` (three round trips and the items' COPY). The register is read with one
lean query per chunk (a few columns, no ORM objects): by personal ID, then by legacy CMND
number for the numbers not found, as ``registry.service.lookup`` does for one number.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import itertools
import operator
import re
import weakref
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg.pq import Escaping, TransactionStatus
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy import Row, Select, String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from dancu.audit import bulk, generations
from dancu.audit import service as audit
from dancu.audit.exceptions import CHAIN_CONFLICT, ChainConflict
from dancu.db import pg_array_element
from dancu.enums import AccessChannel, ActorKind, ClientStatus, LifeStatus
from dancu.exchange import quota
from dancu.exchange.exceptions import ClientSuspended, QuotaExceeded
from dancu.exchange.models import ApiClient
from dancu.registry.agreement import CLAIM_FIELDS, Agreement, Claim, agreement
from dancu.registry.models import Citizen
from dancu.vn import personal_id as vn_ids

MATCH, MISMATCH, NOT_FOUND = "match", "mismatch", "not_found"
_CLIENT = ActorKind.CLIENT.value
_DECEASED = LifeStatus.DECEASED.value
_NUMBER = operator.attrgetter("number")
_PERSONAL_ID = operator.attrgetter("personal_id")
_CHUNK = 900  # SQLite's default limit on bound parameters is 999
# Numbers per register query on PostgreSQL. At 10,000 the planner judged a scan of the whole
# register cheaper than 10,000 index probes (a parallel scan of 1M people: about 95 ms on
# three processes, against 52 ms on one); at 2,000 the probes cost a fifth of the scan, and
# the margin grows with the register.
_PG_CHUNK = 2_000
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


class Job(NamedTuple):
    """One verification to answer and log (a named tuple: a batch builds ten thousand)."""

    claim: Claim
    client_id: str
    organization: str
    purpose: str
    request_id: str
    channel: str = AccessChannel.VERIFY.value
    # The item's position in a batch request (then ``request_id`` is the batch's); 0 alone.
    item: int = 0


class Batch(NamedTuple):
    """One batch request's verifications, as columns: the client, organisation, purpose and
    request id they share, each item's claim, and each item's own purpose (None: the
    batch's). Item ``i`` is the request's item ``i + 1``."""

    client_id: str
    organization: str
    purpose: str
    request_id: str
    claims: Sequence[Claim]
    purposes: Sequence[str | None]
    channel: str = AccessChannel.VERIFY.value


@dataclass(frozen=True, slots=True, eq=False)
class Answer:
    """The answer of CONTRACTS §4 (without the request id, which the web layer adds).

    There are a few hundred distinct answers (which given fields agree, found or not,
    deceased or not), and :func:`answer` makes each once and shares it: an answer is never
    changed, and compares (and hashes) by identity."""

    result: str
    fields: Mapping[str, bool]
    deceased: bool
    # the fields a verification read, for its access log entry: those given, in answer
    # order, and the deceased flag
    read: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"result": self.result, "fields": dict(self.fields), "deceased": self.deceased}


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
    size = _PG_CHUNK if postgres else _CHUNK
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


_AnswerKey = tuple[bool, Agreement, bool]
_ANSWERS: dict[_AnswerKey, Answer] = {}


def answer(claim: Claim, row: Row[Any] | None) -> Answer:
    """The answer for one claim against its register row (None: not in the register)."""
    if row is None:
        given = (claim.full_name, claim.birth_date, claim.sex, claim.address)
        absent: Agreement = tuple(None if v is None else False for v in given)  # type: ignore[assignment]
        key: _AnswerKey = (False, absent, False)
    else:
        key = (True, agreement(claim, row), row.status == _DECEASED)
    found = _ANSWERS.get(key)
    if found is None:
        found = _ANSWERS[key] = _made(*key)
    return found


def _made(in_register: bool, agrees: Agreement, deceased: bool) -> Answer:
    fields = {f: a for f, a in zip(CLAIM_FIELDS, agrees, strict=True) if a is not None}
    result = (MATCH if all(fields.values()) else MISMATCH) if in_register else NOT_FOUND
    return Answer(result, MappingProxyType(fields), deceased, (*fields, "status"))


def _person_read(job: Job, row: Row[Any] | None) -> str | None:
    """Whose data a verification read: the register's personal ID (also for a legacy number
    found), a 12-digit number not in the register as asked; None for a legacy number not
    found (there is no person to attach a log entry to)."""
    personal_id: str = row.personal_id if row is not None else job.claim.number
    return personal_id if len(personal_id) == 12 else None


def entry_of(job: Job, row: Row[Any] | None, found: Answer) -> audit.AccessEntry | None:
    """The access log entry of one verification; None for a legacy number not found."""
    personal_id = _person_read(job, row)
    if personal_id is None:
        return None
    return audit.AccessEntry(
        actor=job.client_id,
        actor_kind=_CLIENT,
        organization=job.organization,
        personal_id=personal_id,
        fields=found.read,
        purpose=job.purpose,
        channel=job.channel,
        request_id=job.request_id,
        result=found.result,
    )


def _answered(
    jobs: Sequence[Job], rows: Mapping[str, Row[Any]]
) -> tuple[list[Answer], list[audit.AccessEntry]]:
    """Every job's answer against its register row, and the access log entries they make."""
    answers: list[Answer] = []
    entries: list[audit.AccessEntry] = []
    for job in jobs:
        register = rows.get(job.claim.number)
        found = answer(job.claim, register)
        answers.append(found)
        entry = entry_of(job, register, found)
        if entry is not None:
            entries.append(entry)
    return answers, entries


def batch_answers(batch: Batch, rows: Mapping[str, Any]) -> tuple[list[Answer], bulk.BatchColumns]:
    """Every item's answer against its register row, and the items of the batch's access log
    entry as columns (a legacy number not found has none: nobody's data was read). The items
    share a few kinds, one per distinct answer and purpose."""
    steps = _batch_answers(batch, rows)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            answered: tuple[list[Answer], bulk.BatchColumns] = done.value
            return answered


# Items compared between two pauses of a batch on the event loop (about 1 ms of Python): the
# single verifications waiting on the loop wait for no more than a slice (docs/exchange.md)
PAUSE_EVERY = 500


def _batch_answers(
    batch: Batch, rows: Mapping[str, Any]
) -> Generator[None, None, tuple[list[Answer], bulk.BatchColumns]]:
    """:func:`batch_answers`, pausing (yielding None) after every :data:`PAUSE_EVERY` items:
    a batch on the event loop lets the loop's other work run between its slices.

    A column at a time: each item's row and answer by ``map`` (the loop in C, a Python call
    per item only for ``answer``), then the log's items from the columns."""
    claims = batch.claims
    numbers = list(map(_NUMBER, claims))
    found = list(map(rows.get, numbers))
    answers: list[Answer] = []
    for start in range(0, len(claims), PAUSE_EVERY):
        if start:
            yield
        end = start + PAUSE_EVERY
        answers += map(answer, claims[start:end], found[start:end])
    return answers, _log_items(answers, numbers, found, batch.purposes)


def _log_items(
    answers: list[Answer],
    numbers: list[str],
    found: list[Any],
    purposes: Sequence[str | None],
) -> bulk.BatchColumns:
    """A batch's access log items as columns: one per item whose person has a personal ID
    (the register's, else the 12-digit number asked; a legacy number not found has none:
    nobody's data was read), each of a kind per distinct answer and purpose."""
    people = numbers
    # a row found by a legacy number is another number's person: only then item by item
    if list(map(_PERSONAL_ID, filter(None, found))) != list(itertools.compress(numbers, found)):
        people = [
            number if row is None else row.personal_id
            for number, row in zip(numbers, found, strict=True)
        ]
    keys: list[Any] = answers
    if purposes.count(None) != len(purposes):  # an item with a purpose of its own
        keys = [a if p is None else (a, p) for a, p in zip(answers, purposes, strict=True)]
    positions: list[int] = list(range(1, len(numbers) + 1))
    if set(map(len, people)) != {12}:  # a legacy number not found: no item
        kept = [len(person) == 12 for person in people]
        positions = list(itertools.compress(positions, kept))
        people = list(itertools.compress(people, kept))
        keys = list(itertools.compress(keys, kept))
    numbered = dict(zip(dict.fromkeys(keys), itertools.count()))
    kinds = [
        bulk.ItemKind(key.read, key.result)
        if isinstance(key, Answer)
        else bulk.ItemKind(key[0].read, key[0].result, key[1])
        for key in numbered
    ]
    return bulk.BatchColumns(positions, people, list(map(numbered.__getitem__, keys)), kinds)


def batch_entry(batch: Batch, items: bulk.BatchColumns) -> bulk.BatchEntry:
    """The one access log entry of a batch request (an item with a purpose of its own names
    it)."""
    return bulk.BatchEntry(
        actor=batch.client_id,
        actor_kind=_CLIENT,
        organization=batch.organization,
        purpose=batch.purpose,
        channel=batch.channel,
        request_id=batch.request_id,
        items=items,
    )


def verify_many(session: Session, jobs: Sequence[Job]) -> list[Answer]:
    """Answer every job and append their access log entries (one per job), in the caller's
    transaction (the caller commits, then sends the answers). The log's append lock is held
    from the append to the commit, after the register was read."""
    rows = fetch(session, (job.claim.number for job in jobs))
    answers, entries = _answered(jobs, rows)
    bulk.append(session, entries)
    return answers


def answer_batch(session: Session, batch: Batch) -> list[Answer]:
    """:func:`verify_many` for a batch request: one batch entry whose items are its items."""
    rows = fetch(session, map(_NUMBER, batch.claims))
    answers, items = batch_answers(batch, rows)
    if items.positions:
        bulk.append_batch(session, batch_entry(batch, items))
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
# or more through the ORM: (1) BEGIN, every client's status and quota count in one statement,
# the register read (``= ANY``), the append lock and the chain's head (two statements: under
# READ COMMITTED the head is read after the lock is granted); (2) the entries (one INSERT, the
# varying values as arrays) and COMMIT. Each round trip is one query string (``_trip_sql``). A
# batch takes the lock in a round trip of its own, after comparing its items. The steps are
# written once (``_group_steps``, ``_batch_steps``: no I/O) and sent by one asynchronous driver
# (``_drive``).

_PG_COLUMNS = ", ".join(column.name for column in _COLUMNS)
_PG_BY_ID = f"SELECT {_PG_COLUMNS} FROM citizen WHERE personal_id = ANY(%s::text[])"
_PG_BY_LEGACY = (
    f"SELECT {_PG_COLUMNS} FROM citizen WHERE legacy_id_number = ANY(%s::text[]) "
    "ORDER BY personal_id"
)

Outcome = Answer | ClientSuspended | QuotaExceeded


def _register_reads(sql: str, numbers: list[str]) -> list[_Statement]:
    """The register queries for ``numbers``, :data:`_PG_CHUNK` a statement (none for none)."""
    return [
        _Statement(sql, [_pg_array(numbers[start : start + _PG_CHUNK])], "named")
        for start in range(0, len(numbers), _PG_CHUNK)
    ]


def _pg_array(numbers: list[str]) -> str:
    """Digit strings (``parse_claim`` keeps only digits) as a PostgreSQL array literal: one
    text parameter instead of psycopg's per-element adaptation."""
    digits = "".join(numbers)  # checked whole, in C: each number is ASCII digits, none empty
    if "" in numbers or (digits and not vn_ids.all_digits(digits)):
        raise ValueError("personal ID numbers are digits")
    return "{" + ",".join(numbers) + "}"


@dataclass(frozen=True, slots=True)
class _Statement:
    """One statement of a round trip: ``rows`` says how its rows are read back (None: not
    read; ``"named"``: attribute access, for ``compare``); ``many`` runs ``params`` as a
    sequence of parameter sets; ``copy``: a ``COPY … FROM STDIN`` whose data is ``params``
    (sent on its own, :func:`_run_trip`); ``sql`` None is the COMMIT."""

    sql: str | None
    params: Any = None
    rows: str | None = None
    many: bool = False
    copy: bool = False


_COMMIT = _Statement(None)
_IDLE = TransactionStatus.IDLE
# The statements prepared on each of the group committers' connections (a connection that
# failed is closed and replaced, so a failed PREPARE is never taken for a prepared one).
_PREPARED: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[str]] = (
    weakref.WeakKeyDictionary()
)
# One round trip: statements sent together as one query string; the answer is each one's rows.
_Trip = list[_Statement]
_Steps = Generator[_Trip, list[list[Any] | None], list["Outcome"]]
_BatchSteps = Generator[_Trip, list[list[Any] | None], list[Answer]]


async def commit_batch_pg_async(
    conn: psycopg.AsyncConnection[Any], batch: Batch, *, now: float
) -> list[Answer]:
    """Answer a batch request on PostgreSQL and commit its access log entry, in a
    transaction of its own on ``conn``, an asynchronous connection in autocommit mode with no
    transaction open (the round trips carry their own BEGIN and COMMIT): three round trips
    and the COPY of the log entry's items (:func:`_batch_steps`), a round trip more when a
    12-digit number is no personal ID (it is looked up as a CMND number).

    On the event loop rather than on a thread: the batch's Python work (reading the rows,
    comparing, encoding the log entry) runs between its round trips, and other batches'
    while it waits, one at a time (docs/benchmarks.md, "Batches on the event loop").

    Each item's answer, in order; ``ClientSuspended`` or ``QuotaExceeded`` raised for a
    client suspended or past its quota, with nothing counted or written. Any error rolls the
    transaction back (where the connection still can) and propagates."""
    if not conn.autocommit:
        raise ValueError("a batch's connection must be in autocommit mode")
    try:
        answers: list[Answer] = await _drive(conn, _batch_steps(batch, now=now))
    except BaseException:
        await _roll_back(conn)
        raise
    return answers


async def commit_group_pg_async(
    conn: psycopg.AsyncConnection[Any],
    jobs: Sequence[Job],
    *,
    now: float,
    purge: bool = False,
) -> list[Outcome]:
    """Answer a group of single verifications (of any clients) on PostgreSQL and commit
    their entries, on an asynchronous connection in autocommit mode (the group committer's
    own, on the event loop): :func:`_group_steps`'s transaction, driven as
    :func:`commit_batch_pg_async` drives a batch's, its statements prepared once per
    connection. Each job's outcome, in order: its answer, or ``ClientSuspended`` /
    ``QuotaExceeded`` for the jobs of a client suspended or past its quota (not counted, not
    logged). ``purge`` also deletes ended quota windows."""
    if not conn.autocommit:
        raise ValueError("the group commit's connection must be in autocommit mode")
    prepared = _PREPARED.setdefault(conn, set())
    try:
        outcomes: list[Outcome] = await _drive(
            conn, _group_steps(jobs, now=now, purge=purge), prepared
        )
    except BaseException:
        # what this call prepared may or may not exist now: start again from none
        del _PREPARED[conn]
        await _roll_back(conn, deallocate=True)
        raise
    return outcomes


async def _roll_back(conn: psycopg.AsyncConnection[Any], *, deallocate: bool = False) -> None:
    """After a failed transaction: roll it back (and forget the prepared statements). A
    connection that cannot is closed, never reused mid-transaction; the error that failed
    the transaction is the one that propagates, not this one's."""
    if conn.closed:
        return
    try:
        if conn.info.transaction_status != _IDLE:
            await conn.execute("ROLLBACK")
        if deallocate:
            await conn.execute("DEALLOCATE ALL")
    except Exception:
        conn.pgconn.finish()


async def _drive(
    conn: psycopg.AsyncConnection[Any],
    steps: Generator[_Trip, list[list[Any] | None], Any],
    prepared: set[str] | None = None,
) -> Any:
    """Send each round trip ``steps`` yields and give it back its rows, until the steps
    return (their value is returned); an error of a round trip is thrown into the steps,
    which translate what they expect and let the rest propagate."""
    cursor = psycopg.AsyncClientCursor(conn)
    literals = PgLiterals(conn.pgconn)
    begin = True
    try:
        trip = next(steps)
        while True:
            if not trip:  # a pause between slices of the steps' own work
                await asyncio.sleep(0)
                trip = steps.send([])
                continue
            try:
                results = await _run_trip(cursor, literals, trip, begin, prepared)
            except Exception as exc:
                trip = steps.throw(exc)
            else:
                trip = steps.send(results)
            begin = False
    except StopIteration as done:
        return done.value
    finally:
        await cursor.close()


class PgLiterals:
    """A statement's parameters written into it as SQL literals, for a query string that
    carries several statements (the simple query protocol takes no parameters).

    Text is quoted by libpq (``PQescapeLiteral``, with the connection's encoding and quoting
    rules); numbers are written by Python; lists become array literals of quoted elements,
    themselves quoted. About 1 µs a value, against about 6 µs for psycopg's client-side
    ``mogrify``. The statements' own SQL holds no ``%`` but their placeholders (``%s``,
    ``%(name)s``), which Python's ``%`` fills."""

    __slots__ = ("_escape",)

    def __init__(self, pgconn: psycopg.pq.abc.PGconn) -> None:
        self._escape = Escaping(pgconn).escape_literal

    def statement(self, sql: str, params: Any) -> str:
        if params is None:
            return sql
        if isinstance(params, dict):
            return sql % {key: self.literal(value) for key, value in params.items()}
        return sql % tuple(self.literal(value) for value in params)

    def execute(self, name: str, order: tuple[str, ...] | int, params: Any) -> str:
        """``EXECUTE`` of the prepared statement ``name`` with ``params`` in ``order``."""
        if not order:
            return f"EXECUTE {name}"
        values = (params[key] for key in order) if isinstance(order, tuple) else params
        return f"EXECUTE {name}({', '.join(map(self.literal, values))})"

    def literal(self, value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):  # parenthesised: ``-x::bigint`` casts before negating
            return str(value) if value >= 0 else f"({value})"
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise ValueError("times sent to the database must be time-zone aware")
            return self._text(value.isoformat())
        if isinstance(value, list | tuple):
            return self._text("{" + ",".join(map(_array_element, value)) + "}")
        raise TypeError(f"no SQL literal for a {type(value).__name__}")

    def _text(self, value: str) -> str:
        if "\0" in value:
            raise ValueError("text sent to the database cannot hold a NUL character")
        return self._escape(value.encode()).decode()


def _array_element(value: object) -> str:
    """One element of an array literal: a number as is, text quoted (``db.pg_array_element``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"no array element for a {type(value).__name__}")
    return pg_array_element(value)


def _trip_sql(
    literals: PgLiterals, trip: _Trip, begin: bool, prepared: set[str] | None = None
) -> tuple[str, int]:
    """One round trip as one simple-protocol query: the statements with their parameters
    written in as literals, separated by semicolons, after a BEGIN on the first round trip;
    and how many results come before the statements' own (the BEGIN's, the PREPAREs').

    With ``prepared`` (the names of the statements already prepared on this connection, kept
    by the caller for as long as the connection lives), each statement runs as ``EXECUTE`` of
    a server-side prepared statement, prepared in the same query the first time: the server
    then plans it once per connection instead of on every round trip.

    Why not libpq's pipeline mode with prepared statements: psycopg drives a pipeline from
    Python (entering and leaving it, a generator step per message), which cost about
    250-400 µs of client CPU per round trip here, against about 60-150 µs for one query string
    with several statements."""
    head: list[str] = []
    parts = ["BEGIN"] if begin else []
    for statement in trip:
        if statement.copy:
            raise ValueError("a COPY cannot share a query string: send it with _run_trip")
        if statement.sql is None:
            parts.append("COMMIT")
            continue
        runs = statement.params if statement.many else [statement.params]
        if prepared is None:
            parts.extend(literals.statement(statement.sql, params) for params in runs)
            continue
        name, text, order = _prepared_form(statement.sql)
        if name not in prepared:
            head.append(f"PREPARE {name} AS {text}")
            prepared.add(name)
        parts.extend(literals.execute(name, order, params) for params in runs)
    return ";\n".join(head + parts), len(head) + begin


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s")


@functools.lru_cache(maxsize=64)
def _prepared_form(sql: str) -> tuple[str, str, tuple[str, ...] | int]:
    """A statement's server-side form: its name (from its text), its text with ``$n``
    placeholders, and the order of its parameters (their names, or how many)."""
    names: list[str] = []
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1) is None:
            count += 1
            return f"${count}"
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    name = "dancu_" + hashlib.sha256(sql.encode()).hexdigest()[:16]
    return name, text, tuple(names) if names else count


def _named_rows(cursor: Any) -> Any:
    """psycopg's ``namedtuple_row``, each row made by ``tuple.__new__`` in C instead of the
    named tuple's ``_make`` (a Python call per row: 10,000 a batch)."""
    make = namedtuple_row(cursor)
    kind = getattr(make, "__self__", None)  # ``_make`` is bound to the row's class
    return functools.partial(tuple.__new__, kind) if isinstance(kind, type) else make


_ROW_FACTORIES: dict[str, Any] = {"named": _named_rows, "tuple": tuple_row}


def _results(
    cursor: psycopg.AsyncClientCursor[Any], trip: _Trip, skip: int
) -> Iterator[str | None]:
    """Walk a round trip's results (all arrived with ``execute``), after the first ``skip``:
    the cursor is set on each statement's result in turn, with its row factory, and how its
    rows are read is yielded (None: not read). A statement run for several parameter sets
    gave one result each."""
    for _ in range(skip):
        cursor.nextset()
    for statement in trip:
        if statement.rows is not None:
            cursor.row_factory = _ROW_FACTORIES[statement.rows]
        yield statement.rows
        for _ in range(len(statement.params) if statement.many else 1):
            cursor.nextset()


async def _trip_rows(
    cursor: psycopg.AsyncClientCursor[Any], trip: _Trip, skip: int
) -> list[list[Any] | None]:
    """Each statement's rows, None where not read."""
    return [await cursor.fetchall() if rows else None for rows in _results(cursor, trip, skip)]


async def _run_trip(
    cursor: psycopg.AsyncClientCursor[Any],
    literals: PgLiterals,
    trip: _Trip,
    begin: bool,
    prepared: set[str] | None = None,
) -> list[list[Any] | None]:
    """Send one round trip's statements and read their rows (None where not read). A COPY
    among them is an exchange of its own (the protocol's copy mode): the statements before
    it go as one query string, then the COPY with its data, then the statements after it
    as another query string."""
    results: list[list[Any] | None] = []
    start = 0
    for end in [*(i for i, statement in enumerate(trip) if statement.copy), len(trip)]:
        part = trip[start:end]
        if part or begin:
            sql, skip = _trip_sql(literals, part, begin, prepared)
            await cursor.execute(sql)
            results += await _trip_rows(cursor, part, skip)
            begin = False
        if end < len(trip):
            statement = trip[end]
            async with cursor.copy(statement.sql) as copy:  # type: ignore[arg-type]
                await copy.write(statement.params)
            results.append(None)
        start = end + 1
    return results


_T = TypeVar("_T")
_PAUSE: _Trip = []  # a round trip of no statements: the driver lets the event loop run


def _paused(steps: Generator[None, None, _T]) -> Generator[_Trip, Any, _T]:
    """``steps``' pauses as empty round trips, and their result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _T = done.value
            return result
        yield _PAUSE


def _written(final: _Trip) -> Generator[_Trip, Any, None]:
    """Send the round trip that writes the log rows and commits; a second writer at the
    same chain position (the primary key refuses it) is a ``ChainConflict``."""
    try:
        yield final
    except psycopg.errors.UniqueViolation as exc:
        raise ChainConflict(CHAIN_CONFLICT) from exc


def _admission(
    counts: dict[str, int], admitted: list[Any] | None, now: float, *, whole: bool
) -> tuple[dict[str, ClientSuspended | QuotaExceeded], dict[str, int], list[dict[str, object]]]:
    """From the quota upsert's rows: each refused client's refusal, how many of its jobs
    each client may have answered, and the counts to give back for the refused ones."""
    active = {usage[0]: usage for usage in admitted or ()}
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
    return refusals, room, give_back


# the append lock, then the chain's head read once the lock is granted
_LOCK = (_Statement(bulk.PG_LOCK_SQL), _Statement(bulk.PG_HEAD_SQL, None, "tuple"))
# the items' generation, read under the append lock (rotation changes it under the lock)
_GENERATION = _Statement(generations.PG_CURRENT_SQL, None, "tuple")


def _register_trip(numbers: Iterable[str]) -> tuple[list[str], _Trip, int]:
    """The register reads for ``numbers``: the 12-digit ones (personal IDs, maybe CMND
    numbers), the statements (by personal ID first, then by legacy number for the shorter
    ones), and how many of them read by personal ID."""
    # sorted: each statement's 2,000 numbers then span a fifth of the key range, not all of
    # it, and PostgreSQL's probes find the index pages warm (3.2-4.3 µs a row against
    # 4.2-6.0 unsorted: docs/benchmarks.md, "Bodies by msgspec")
    wanted = sorted(set(numbers))
    current = [n for n in wanted if len(n) == 12]
    by_id = _register_reads(_PG_BY_ID, current)
    by_legacy = _register_reads(_PG_BY_LEGACY, [n for n in wanted if len(n) != 12])
    return current, by_id + by_legacy, len(by_id)


def _found(
    current: list[str], results: list[list[Any] | None], by_id: int
) -> Generator[_Trip, list[list[Any] | None], dict[str, Any]]:
    """The register row of each number from the reads' ``results`` (:func:`_register_trip`),
    asking again by legacy number for a 12-digit number no personal ID matched (maybe a
    12-digit CMND), as :func:`fetch` does."""
    by_person = list(itertools.chain.from_iterable(filter(None, results[:by_id])))
    # a loop in C
    rows: dict[str, Any] = dict(zip(map(_PERSONAL_ID, by_person), by_person, strict=True))
    legacy_rows: list[Any] = [row for found in results[by_id:] for row in found or ()]
    missing = [n for n in current if n not in rows]
    if missing:
        more = yield _register_reads(_PG_BY_LEGACY, missing)
        legacy_rows += [row for found in more for row in found or ()]
    for row in legacy_rows:
        rows.setdefault(row.legacy_id_number, row)
    return rows


def _group_steps(jobs: Sequence[Job], *, now: float, purge: bool) -> _Steps:
    """A group of single verifications' transaction as round trips, whoever sends them (sans
    I/O: yields each round trip's statements, receives their rows, returns the outcomes).

    The first round trip counts the clients' quotas, reads the register, takes the append
    lock and reads the chain's head (the lock and head as two statements, so that under READ
    COMMITTED the head is read once the lock is granted): one round trip fewer, for a lock
    held a little longer while its few items are compared. The quota upsert (which locks the
    client's usage row) and the append lock are held to the commit."""
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.client_id] = counts.get(job.client_id, 0) + 1
    current, reads, by_id = _register_trip(job.claim.number for job in jobs)
    first: _Trip = []
    if purge:
        first.append(_Statement(quota.PG_PURGE_SQL, [dt.datetime.fromtimestamp(now, dt.UTC)]))
    first.append(_Statement(quota.PG_ADMIT_SQL, quota.pg_admit_params(counts, now), "tuple"))
    skip = len(first)
    first += [*reads, *_LOCK]
    results = yield first
    rows = yield from _found(current, results[skip : skip + len(reads)], by_id)
    admitted, last = results[skip - 1], results[-1] or []
    refusals, room, give_back = _admission(counts, admitted, now, whole=False)
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
    final: _Trip = []
    if give_back:
        final.append(_Statement(quota.PG_GIVE_BACK_SQL, give_back, many=True))
    if values := bulk.prepare(entries):
        log_rows = bulk.PgRows()
        bulk.link(values, audit.Anchor(last[0][0], last[0][1]) if last else None, log_rows)
        final.append(_Statement(bulk.PG_INSERT_SQL, log_rows.params()))
    final.append(_COMMIT)
    yield from _written(final)
    return outcomes


def _batch_steps(batch: Batch, *, now: float) -> _BatchSteps:
    """A batch request's transaction as round trips, as :func:`_group_steps`: it reads the
    register first, compares its thousands of items, and only then counts its quota and
    takes the append lock, in one round trip just before writing the batch entry and its
    items: two batches of one client overlap everything but their writing. A batch over its
    quota is refused all the same (raised, rolled back, nothing counted)."""
    current, reads, by_id = _register_trip(map(_NUMBER, batch.claims))
    results = yield reads
    rows = yield from _found(current, results, by_id)
    answers, items = yield from _paused(_batch_answers(batch, rows))
    prepared = bulk.prepare_batch(batch_entry(batch, items)) if items.positions else None
    counts = {batch.client_id: len(batch.claims)}
    admit = _Statement(quota.PG_ADMIT_SQL, quota.pg_admit_params(counts, now), "tuple")
    admitted, _, last, generation_row = yield [admit, *_LOCK, _GENERATION]
    refusals, _, _ = _admission(counts, admitted, now, whole=True)
    if refusals:
        raise next(iter(refusals.values()))  # the driver rolls back: nothing counted
    final: _Trip = []
    if prepared is not None:
        head = last[0] if last else None
        bulk.link_batch(prepared, audit.Anchor(head[0], head[1]) if head else None)
        if not generation_row:
            raise RuntimeError(generations.NO_ROW)
        generation: int = generation_row[0][0]
        entry_params, item_data = bulk.pg_batch_params(prepared, generation)
        # the items first: then the entry and the COMMIT go as one query string
        final.append(_Statement(bulk.PG_COPY_ITEMS_SQL, item_data, copy=True))
        final.append(_Statement(bulk.PG_INSERT_BATCH_SQL, entry_params))
    final.append(_COMMIT)
    yield from _written(final)
    return answers
