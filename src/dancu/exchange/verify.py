"""Population verification (CONTRACTS §4): does what a partner says agree with the register?

Answers say, per given field, whether it agrees, whether the person is deceased, and never a
register value. Every verification is one access log entry (actor = the client, its
organisation, the person, the fields compared, the stated purpose), appended in the same
transaction that read the register, before the answer leaves the server.

``verify_many`` is the one verb: the group committer calls it for the single requests that
arrived within a few milliseconds, the batch endpoint for its items. The register is read
with one lean query per chunk (a few columns, no ORM objects): by personal ID, then by legacy
CMND number for the numbers not found, as ``registry.service.lookup`` does for one number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from dancu.audit import service as audit
from dancu.enums import AccessChannel, ActorKind, ClientStatus, LifeStatus
from dancu.exchange.models import ApiClient
from dancu.registry.agreement import Claim, compare
from dancu.registry.models import Citizen

MATCH, MISMATCH, NOT_FOUND = "match", "mismatch", "not_found"
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
    return Answer(result, fields, row.status == LifeStatus.DECEASED.value)


def _entry(job: Job, row: Row[Any] | None, result: str) -> audit.AccessEntry | None:
    """The access log entry of one verification; None for a legacy number not found (there
    is no person to attach it to)."""
    personal_id = row.personal_id if row is not None else job.claim.number
    if len(personal_id) != 12:
        return None
    return audit.AccessEntry(
        actor=job.client_id,
        actor_kind=ActorKind.CLIENT.value,
        organization=job.organization,
        personal_id=personal_id,
        fields=[*job.claim.given, "status"],
        purpose=job.purpose,
        channel=job.channel,
        request_id=job.request_id,
        result=result,
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
        entry = _entry(job, row, found.result)
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
