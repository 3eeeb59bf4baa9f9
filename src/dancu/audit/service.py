"""The access log's verbs: append entries to the hash chain, verify it, and read it.

Every read of a person's data is recorded with ``record`` in the reader's own transaction, so
an access that is not logged does not happen (whoever opened the session commits; this module
only flushes). ``verify`` recomputes the chain; ``for_person`` is the citizen's view and
``search`` the auditor's (written in ``dancu.audit.reading``, re-exported here). Bulk writers
(group commit, batches) are in ``dancu.audit.bulk``.

The hash of an entry
--------------------
``entry_hash`` is the lower-case hex SHA-256 of the UTF-8 bytes of a JSON object holding the
entry's stored values under these keys (``HASHED_COLUMNS``)::

    actor, actor_kind, channel, fields, id, occurred_at, organization, personal_id,
    prev_hash, purpose, request_id, result

serialised with the keys in that (sorted) order, no whitespace (``","`` and ``":"`` as
separators), non-ASCII characters written as themselves (not ``\\u`` escapes), ``null`` for
an absent value, ``id`` as a JSON integer, ``fields`` as a JSON array of strings in stored
order, and ``occurred_at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction
digits). In Python::

    json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

A batch entry (``dancu.audit.bulk.append_batch``: many people read in one request) has no
``personal_id`` (``null``) and one more key, ``items`` (between ``id`` and ``occurred_at`` in
the sorted order): a JSON array of its items in item order, each an array ``[item,
personal_id, fields, result, purpose]`` (``fields`` an array of strings, ``purpose`` ``null``
when it is the entry's). An entry without items has no ``items`` key, so every entry written
before batch entries existed keeps its exact bytes.

``prev_hash`` of the first entry (id 1) is 64 zeros (``GENESIS_HASH``); every other entry's
``prev_hash`` is the ``entry_hash`` of the entry whose id is one less. Text values never
contain control characters, line separators or lone surrogates (``record`` refuses them), so
the only JSON escapes that can occur are ``\\"`` and ``\\\\``. docs/audit.md shows a worked
example.

Concurrency
-----------
Appending reads the head of the chain and writes after it, so two writers must not both read
the same head. On PostgreSQL ``record`` takes a transaction-level advisory lock
(``pg_advisory_xact_lock(ADVISORY_LOCK_KEY)``, released at commit or rollback) before reading
the head; under READ COMMITTED the read that follows sees every entry committed before the
lock was granted. SQLite has a single database-wide write lock; ``record`` takes it first with
a write that changes nothing, so that the head is read under it (a plain SELECT in SQLite
takes no write lock, and two writers could otherwise read the same head). The primary key on
the gapless ``id`` refuses a second entry at the same position whatever happens, so a writer
that read a stale head fails with ``ChainConflict`` instead of forking the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Row,
    Select,
    exists,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.audit.exceptions import (
    CHAIN_CONFLICT,
    ChainConflict,
    InvalidAccessEntry,
    InvalidAccessQuery,
    InvalidAnchor,
)
from dancu.audit.models import AccessLog, AccessLogItem
from dancu.audit.reading import MAX_LIMIT as MAX_LIMIT  # re-exported: dancu reads the log here
from dancu.audit.reading import AccessPage as AccessPage
from dancu.audit.reading import AccessView as AccessView
from dancu.audit.reading import for_person as for_person
from dancu.audit.reading import is_personal_id
from dancu.audit.reading import search as search
from dancu.enums import AccessChannel, ActorKind
from dancu.errors import Problem

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# A fixed 64-bit key for pg_advisory_xact_lock: the first 8 bytes of SHA-256("dancu.audit.
# access_log") as a signed integer (1009074448726262832), so it cannot collide by accident
# with another domain's small hand-picked keys.
ADVISORY_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"dancu.audit.access_log").digest()[:8], "big", signed=True
)
HASHED_COLUMNS: tuple[str, ...] = (
    "actor",
    "actor_kind",
    "channel",
    "fields",
    "id",
    "occurred_at",
    "organization",
    "personal_id",
    "prev_hash",
    "purpose",
    "request_id",
    "result",
)
MAX_FIELDS = 100

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_.]{0,59}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A request id that ``_text`` would keep as it is (ASCII letters, digits and ``:._-``, no
# spaces, within the limit): the API's own ids, ``<32 hex digits>[:<item>]``, checked with one
# match instead of normalising and searching each.
_PLAIN_REQUEST_ID = re.compile(r"[0-9A-Za-z:._-]{1,64}")
# Control characters, line or paragraph separators and lone surrogates: refused in every text
# value, so the canonical JSON of an entry is the same whichever JSON library an auditor uses
# (and a lone surrogate could not be written as UTF-8 at all). Every character of the Unicode
# categories Cc, Zl, Zp and Cs (Cc is U+0000-U+001F and U+007F-U+009F; Zl and Zp are one
# character each; Cs is U+D800-U+DFFF; a test checks this against unicodedata): one regex
# search per value instead of a category look-up per character.
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_TEXT_LIMITS = {
    "actor": 100,
    "organization": 200,
    "purpose": 300,
    "request_id": 64,
    "result": 40,
}
_ACTOR_KINDS = frozenset(kind.value for kind in ActorKind)
_CHANNELS = frozenset(channel.value for channel in AccessChannel)
_NEEDS_ORGANIZATION = frozenset({ActorKind.OFFICIAL.value, ActorKind.CLIENT.value})
_COLUMNS = tuple(getattr(AccessLog, name) for name in (*HASHED_COLUMNS, "entry_hash", "item_count"))
_ITEM_COLUMNS: tuple[Any, ...] = (
    AccessLogItem.entry_id,
    AccessLogItem.item,
    AccessLogItem.personal_id,
    AccessLogItem.fields,
    AccessLogItem.result,
    AccessLogItem.purpose,
)
# The most items one batch entry may hold (the verification batch's own limit): ``verify``
# holds one entry's items in memory at a time.
MAX_ITEMS = 10_000


class AccessEntry(NamedTuple):
    """One read of one person's data, to be appended with ``record``.

    ``fields`` names what was read (``["full_name", "birth_date"]``); it is stored sorted and
    without repeats. ``organization`` is required for officials and partner clients.
    ``occurred_at`` defaults to the time of ``record``; give it (time-zone aware) when entries
    are written some time after the read, as a group commit does. Give the values by name.
    (A named tuple rather than a frozen dataclass: a batch builds ten thousand of them, and a
    frozen dataclass costs several times more to build.)
    """

    actor: str
    actor_kind: str
    personal_id: str
    fields: Sequence[str]
    purpose: str
    channel: str
    organization: str | None = None
    request_id: str | None = None
    result: str | None = None
    occurred_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Anchor:
    """An entry id and its ``entry_hash``, published outside the database to pin the chain."""

    entry_id: int
    entry_hash: str


class LinkProblem(StrEnum):
    """What is wrong at the first broken link of the chain."""

    MISSING = "missing"  # a gap in the ids: entries were deleted
    UNLINKED = "unlinked"  # prev_hash is not the previous entry's hash
    ALTERED = "altered"  # the content does not match the entry's own hash
    UNREADABLE = "unreadable"  # a stored value cannot be read back at all
    ANCHOR_MISMATCH = "anchor_mismatch"  # the anchored entry has another hash
    ANCHOR_MISSING = "anchor_missing"  # the log ends before the anchored entry
    STRAY_ITEMS = "stray_items"  # batch items stored under an entry that is not in the log


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first place the chain does not hold, and a message an auditor can act on."""

    entry_id: int
    problem: LinkProblem
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """How many entries were checked and found sound, the last sound one, and the break."""

    entries: int
    last: Anchor | None
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def utc_text(value: dt.datetime) -> str:
    """``occurred_at`` as hashed: UTC, microseconds, ``Z`` (a naive value is taken as UTC)."""
    return _utc_text(value)


@lru_cache(maxsize=64)
def _utc_text(value: dt.datetime) -> str:
    # cached: the entries of one bulk append share one moment
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}Z"


class StoredItem(NamedTuple):
    """One item of a batch entry as stored in ``access_log_item`` (``fields`` joined by
    commas; ``purpose`` None when it is the entry's)."""

    item: int
    personal_id: str
    fields: str
    result: str | None
    purpose: str | None


def canonical_bytes(values: Mapping[Any, Any], items: Sequence[StoredItem] | None = None) -> bytes:
    """The exact bytes whose SHA-256 is an entry's hash (see the module docstring); ``items``
    for a batch entry."""
    document = {name: values[name] for name in HASHED_COLUMNS}
    occurred_at = document["occurred_at"]
    if isinstance(occurred_at, dt.datetime):
        document["occurred_at"] = utc_text(occurred_at)
    if items is not None:
        document["items"] = [
            [i.item, i.personal_id, i.fields.split(","), i.result, i.purpose] for i in items
        ]
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def compute_hash(values: Mapping[Any, Any], items: Sequence[StoredItem] | None = None) -> str:
    """The ``entry_hash`` of an entry with these column values (and items, for a batch)."""
    return hashlib.sha256(canonical_bytes(values, items)).hexdigest()


_encode_text = json.encoder.encode_basestring  # what json.dumps uses with ensure_ascii=False


def _json_text(value: str | None) -> str:
    return "null" if value is None else _encode_text(value)


def json_names(names: Iterable[str]) -> str:
    """A list of field names as the canonical text writes it (a compact JSON array)."""
    return "[" + ",".join(map(_encode_text, names)) + "]"


def items_text(items: Iterable[Sequence[Any]]) -> str:
    """The ``items`` array of a batch entry's canonical text, from stored items (each
    ``item, personal_id, fields, result, purpose``): the bytes ``canonical_bytes`` makes
    with ``json.dumps`` (the tests compare them), several times faster, each distinct field
    list encoded once. Raises ``TypeError`` for a value of the wrong type (altered by hand)."""
    encoded: dict[str, str] = {}
    parts = []
    for number, person, fields, result, purpose in items:
        if type(number) is not int or type(fields) is not str:
            raise TypeError("an item's number or fields have the wrong type")
        names = encoded.get(fields)
        if names is None:
            names = encoded[fields] = json_names(fields.split(","))
        parts.append(
            f"[{number},{_encode_text(person)},{names},{_json_text(result)},{_json_text(purpose)}]"
        )
    return "[" + ",".join(parts) + "]"


_BEFORE_ITEMS = ("actor", "actor_kind", "channel", "fields", "id")
_AFTER_ITEMS = (
    "occurred_at", "organization", "personal_id", "prev_hash", "purpose", "request_id", "result",
)  # fmt: skip


def batch_text(values: Mapping[Any, Any], items_json: str) -> str:
    """The canonical text of a batch entry from its column values and its ``items`` array's
    text: the entry's JSON object with ``items`` between ``id`` and ``occurred_at`` (the
    sorted order), as ``canonical_bytes`` makes it."""
    return "".join(_batch_parts(values, items_json))


def batch_hash(values: Mapping[Any, Any], items_json: str) -> str:
    """The SHA-256 of :func:`batch_text`'s UTF-8, fed to the hash a part at a time: the
    items' text (a megabyte for 10,000 items, nearly always ASCII) is never joined to the
    entry's own values, whose Vietnamese would widen the whole text to two bytes a
    character and make its encoding a conversion instead of a copy."""
    digest = hashlib.sha256()
    for part in _batch_parts(values, items_json):
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _batch_parts(values: Mapping[Any, Any], items_json: str) -> tuple[str, str, str]:
    before = {name: values[name] for name in _BEFORE_ITEMS}
    after = {name: values[name] for name in _AFTER_ITEMS}
    if isinstance(after["occurred_at"], dt.datetime):
        after["occurred_at"] = utc_text(after["occurred_at"])
    return (
        json.dumps(before, separators=(",", ":"), ensure_ascii=False)[:-1] + ',"items":',
        items_json,
        "," + json.dumps(after, separators=(",", ":"), ensure_ascii=False)[1:],
    )


def _text(
    position: int | None,
    name: str,
    value: str | None,
    problems: list[Problem],
    *,
    required: bool,
) -> str | None:
    if value is None:
        if required:
            problems.append(Problem(position, name, "is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(position, name, "must be text"))
        return None
    cleaned = unicodedata.normalize("NFC", value).strip()
    if not cleaned:
        problems.append(Problem(position, name, "must not be empty"))
        return None
    if _FORBIDDEN_CHARACTERS.search(cleaned):
        problems.append(Problem(position, name, "must not contain control characters"))
        return None
    limit = _TEXT_LIMITS[name]
    if len(cleaned) > limit:
        problems.append(Problem(position, name, f"is longer than {limit} characters"))
        return None
    return cleaned


def _field_names(position: int | None, fields: Sequence[str], problems: list[Problem]) -> list[str]:
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        problems.append(Problem(position, "fields", "must be a list of field names"))
        return []
    if not fields:
        problems.append(Problem(position, "fields", "name at least one field that was read"))
        return []
    if len(fields) > MAX_FIELDS:
        problems.append(Problem(position, "fields", f"names more than {MAX_FIELDS} fields"))
        return []
    bad = [name for name in fields if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name)]
    if bad:
        problems.append(
            Problem(position, "fields", f"{bad[0]!r} is not a field name (a-z, 0-9, _ and .)")
        )
        return []
    return sorted(set(fields))


def _validated(
    position: int | None,
    entry: AccessEntry,
    now: dt.datetime,
    problems: list[Problem],
    *,
    batch: bool = False,
) -> dict[str, Any]:
    """The column values of one entry, or problems appended (then the values are unusable).
    A ``batch`` entry's ``personal_id`` is ignored and stored as None: its items name its
    people."""
    kind = str(entry.actor_kind)
    if kind not in _ACTOR_KINDS:
        problems.append(
            Problem(position, "actor_kind", f"must be one of {', '.join(sorted(_ACTOR_KINDS))}")
        )
    channel = str(entry.channel)
    if channel not in _CHANNELS:
        problems.append(
            Problem(position, "channel", f"must be one of {', '.join(sorted(_CHANNELS))}")
        )
    if not batch and not is_personal_id(entry.personal_id):
        problems.append(Problem(position, "personal_id", "must be a 12-digit personal ID number"))
    organization = _text(
        position,
        "organization",
        entry.organization,
        problems,
        required=kind in _NEEDS_ORGANIZATION,
    )
    occurred_at = entry.occurred_at or now
    if not isinstance(occurred_at, dt.datetime):
        problems.append(Problem(position, "occurred_at", "must be a date and time"))
        occurred_at = now
    elif occurred_at.tzinfo is None:
        problems.append(Problem(position, "occurred_at", "must include a time zone"))
    else:
        occurred_at = occurred_at.astimezone(dt.UTC)
    return {
        "occurred_at": occurred_at,
        "actor": _text(position, "actor", entry.actor, problems, required=True),
        "actor_kind": kind,
        "organization": organization,
        "personal_id": None if batch else entry.personal_id,
        "fields": _field_names(position, entry.fields, problems),
        "purpose": _text(position, "purpose", entry.purpose, problems, required=True),
        "channel": channel,
        "request_id": _text(position, "request_id", entry.request_id, problems, required=False),
        "result": _text(position, "result", entry.result, problems, required=False),
    }


def _lock(session: Session) -> None:
    """Serialise appenders until this transaction ends (see "Concurrency" above)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
    else:
        # SQLite: the first write of a transaction takes the database write lock and waits
        # for it (busy_timeout); this one matches no row, so it changes nothing.
        session.execute(text("UPDATE access_log SET id = id WHERE 0 = 1"))


def head(session: Session) -> Anchor | None:
    """The last entry's id and hash (publish it daily to anchor the chain), or None if empty."""
    row = session.execute(
        select(AccessLog.id, AccessLog.entry_hash).order_by(AccessLog.id.desc()).limit(1)
    ).first()
    return Anchor(row.id, row.entry_hash) if row is not None else None


def record(session: Session, entries: Sequence[AccessEntry]) -> list[AccessLog]:
    """Append ``entries`` to the chain in the caller's transaction, in the order given.

    All or nothing: any bad entry raises ``InvalidAccessEntry`` naming every problem, before
    anything is written. Holds the append lock until the caller commits or rolls back, so a
    caller batching many requests' entries (group commit) should call this once per batch.
    """
    now = dt.datetime.now(dt.UTC)
    problems: list[Problem] = []
    values = [
        _validated(position, entry, now, problems)
        for position, entry in enumerate(entries, start=1)
    ]
    if problems:
        raise InvalidAccessEntry(
            f"{len(problems)} problem(s) in the access log entries; nothing was written",
            problems,
        )
    if not values:
        return []
    _lock(session)
    last = head(session)
    next_id, prev_hash = (last.entry_id + 1, last.entry_hash) if last else (1, GENESIS_HASH)
    rows: list[AccessLog] = []
    for row_values in values:
        row_values["id"] = next_id
        row_values["prev_hash"] = prev_hash
        prev_hash = compute_hash(row_values)
        rows.append(AccessLog(**row_values, entry_hash=prev_hash))
        next_id += 1
    session.add_all(rows)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ChainConflict(CHAIN_CONFLICT) from exc
    log.debug("access log: appended entries %d to %d", rows[0].id, rows[-1].id)
    return rows


def _check_anchor(anchor: Anchor | None) -> None:
    if anchor is None:
        return
    if anchor.entry_id < 1:
        raise InvalidAnchor("anchor entry id must be 1 or more", [Problem(None, "anchor", "id")])
    if not _SHA256_HEX.fullmatch(anchor.entry_hash):
        raise InvalidAnchor(
            "anchor hash must be 64 lower-case hexadecimal digits",
            [Problem(None, "anchor", "hash")],
        )


def _batch_query(after_id: int, size: int) -> Select[Any]:
    return select(*_COLUMNS).where(AccessLog.id > after_id).order_by(AccessLog.id).limit(size)


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """An entry whose stored values cannot even be read back (altered with raw SQL)."""

    id: int
    error: str


def _items_query(after_id: int, until_id: int) -> Select[Any]:
    """The items stored under entries ``after_id`` (excluded) to ``until_id``, in order,
    streamed (a window of batch entries can hold millions)."""
    query: Select[Any] = (
        select(*_ITEM_COLUMNS)
        .where(AccessLogItem.entry_id > after_id, AccessLogItem.entry_id <= until_id)
        .order_by(AccessLogItem.entry_id, AccessLogItem.item)
        .execution_options(yield_per=10_000)
    )
    return query


def _with_items(
    session: Session, rows: Sequence[Row[Any]], after_id: int
) -> Iterator[tuple[Row[Any], list[Sequence[Any]]]]:
    """Each row with the items stored under its id (any entry: items under an entry that has
    none are tampering too), merged from one ordered query over the window. Items under an
    id missing from the window go with the next row, whose gap ``verify`` reports first. At
    most ``MAX_ITEMS + 1`` items are kept per entry: enough to tell that there are too many."""
    result = session.connection().execute(_items_query(after_id, rows[-1].id))
    try:
        stored = iter(result)
        pending = next(stored, None)
        for row in rows:
            items: list[Sequence[Any]] = []
            while pending is not None and pending[0] <= row.id:
                if len(items) <= MAX_ITEMS:
                    items.append(pending[1:])
                pending = next(stored, None)
            yield row, items
    finally:
        result.close()


def _stream(
    session: Session, batch_size: int
) -> Iterator[tuple[Row[Any] | _Unreadable, list[Sequence[Any]]]]:
    """Every entry in id order with its items, ``batch_size`` entries at a time; stops after
    an unreadable one.

    Plain rows, not ORM objects, so the session's identity map does not grow with the log.
    When a batch cannot be read, it is read again one entry at a time to find the culprit and
    still check the entries before it.
    """
    after_id = 0
    while True:
        try:
            rows = session.execute(_batch_query(after_id, batch_size)).all()
        except (ValueError, TypeError):
            ids = session.scalars(
                select(AccessLog.id)
                .where(AccessLog.id > after_id)
                .order_by(AccessLog.id)
                .limit(batch_size)
            ).all()
            for entry_id in ids:
                try:
                    row = session.execute(_batch_query(entry_id - 1, 1)).one()
                except (ValueError, TypeError) as exc:
                    yield _Unreadable(entry_id, type(exc).__name__), []
                    return
                yield from _with_items(session, [row], entry_id - 1)
            rows = []
            after_id = ids[-1] if ids else after_id
            if len(ids) < batch_size:
                return
            continue
        if rows:
            yield from _with_items(session, rows, after_id)
        if len(rows) < batch_size:
            return
        after_id = rows[-1].id


def _items_problem(row: Row[Any], items: list[Sequence[Any]]) -> str | None:
    """What is wrong with the items stored under an entry, before its hash is checked."""
    if row.item_count is not None and type(row.item_count) is not int:
        return f"entry {row.id} has an item count that is not a whole number: it was altered"
    if row.item_count is None:
        if items:
            return (
                f"entry {row.id} names one person but items are stored under it: they were "
                "added outside dancu"
            )
        return None
    if len(items) != row.item_count:
        stored = f"more than {MAX_ITEMS:,}" if len(items) > MAX_ITEMS else f"{len(items):,}"
        return (
            f"entry {row.id} lists {row.item_count:,} items but {stored} are stored under it: "
            "items were deleted or added"
        )
    return None


def _hash_of(row: Row[Any], items: list[Sequence[Any]]) -> str | None:
    """The hash of a stored entry; None if its stored values cannot be serialised (altered
    with raw SQL)."""
    try:
        if row.item_count is None:
            return compute_hash(row._mapping)
        return batch_hash(row._mapping, items_text(items))
    except (AttributeError, TypeError, ValueError):
        return None


def _stray_items(session: Session, last_id: int) -> Any:
    """An entry id with items stored under it but no entry: before entry 1 or after
    ``last_id`` (the last entry checked), or None.

    Each look-up is one statement, which sees an entry and its items together or neither
    (they commit in one transaction): a batch appended while ``verify`` ran is not stray."""
    orphan = ~exists().where(AccessLog.id == AccessLogItem.entry_id)
    after = session.scalar(
        select(AccessLogItem.entry_id)
        .where(AccessLogItem.entry_id > last_id, orphan)
        .order_by(AccessLogItem.entry_id)
        .limit(1)
    )
    if after is not None:
        return after
    return session.scalar(
        select(AccessLogItem.entry_id).where(AccessLogItem.entry_id < 1, orphan).limit(1)
    )


def verify(
    session: Session, *, batch_size: int = 10_000, anchor: Anchor | None = None
) -> VerifyResult:
    """Recompute the chain in id order, ``batch_size`` entries at a time (bounded memory),
    and report the first broken link: a gap in the ids (deleted entries), a ``prev_hash``
    that is not the previous entry's hash (deleted, inserted or rehashed entries), or a
    content that does not match its own hash (a changed entry, or a batch entry's item
    changed, deleted or added), and items stored under no entry of the chain.

    ``anchor``, an entry id and hash published earlier, also catches what the chain alone
    cannot: a rewrite of the whole chain up to that entry, and entries deleted from the end.
    """
    if not 1 <= batch_size <= 1_000_000:
        raise InvalidAccessQuery(
            "batch_size must be between 1 and 1,000,000",
            [Problem(None, "batch_size", "out of range")],
        )
    _check_anchor(anchor)
    count = 0
    last: Anchor | None = None

    def broken(entry_id: int, problem: LinkProblem, detail: str) -> VerifyResult:
        log.warning("access log broken at entry %s: %s", entry_id, problem.value)
        return VerifyResult(count, last, BrokenLink(entry_id, problem, detail))

    for row, items in _stream(session, batch_size):
        expected_id = last.entry_id + 1 if last else 1
        if row.id != expected_id:
            missing = (
                f"entry {expected_id} is"
                if row.id == expected_id + 1
                else f"entries {expected_id} to {row.id - 1} are"
            )
            return broken(row.id, LinkProblem.MISSING, f"{missing} missing before entry {row.id}")
        if isinstance(row, _Unreadable):
            return broken(
                row.id,
                LinkProblem.UNREADABLE,
                f"entry {row.id} has a stored value that cannot be read ({row.error}): it was "
                "altered outside dancu",
            )
        expected_prev = last.entry_hash if last else GENESIS_HASH
        if row.prev_hash != expected_prev:
            before = f"entry {last.entry_id}" if last else "the start of the log"
            return broken(
                row.id,
                LinkProblem.UNLINKED,
                f"entry {row.id} does not chain to {before} (prev_hash {row.prev_hash}, "
                f"expected {expected_prev}): an entry was changed and rehashed, deleted or "
                "inserted here",
            )
        problem = _items_problem(row, items)
        if problem is not None:
            return broken(row.id, LinkProblem.ALTERED, problem)
        if _hash_of(row, items) != row.entry_hash:
            return broken(
                row.id,
                LinkProblem.ALTERED,
                f"entry {row.id} does not match its own hash: its content was changed",
            )
        if anchor is not None and row.id == anchor.entry_id and row.entry_hash != anchor.entry_hash:
            return broken(
                row.id,
                LinkProblem.ANCHOR_MISMATCH,
                f"entry {row.id} has hash {row.entry_hash}, not the anchored "
                f"{anchor.entry_hash}: the chain up to it was rewritten",
            )
        count += 1
        last = Anchor(row.id, row.entry_hash)
    if anchor is not None and (last is None or last.entry_id < anchor.entry_id):
        end = last.entry_id if last else 0
        return broken(
            anchor.entry_id,
            LinkProblem.ANCHOR_MISSING,
            f"the log ends at entry {end} but entry {anchor.entry_id} was anchored: "
            "entries were deleted from the end",
        )
    stray = _stray_items(session, last.entry_id if last else 0)
    if stray is not None:
        return broken(
            stray,
            LinkProblem.STRAY_ITEMS,
            f"items are stored under entry {stray}, which is not in the log: they were added "
            "outside dancu, or their entry was deleted from the end",
        )
    log.info("access log intact: %d entries", count)
    return VerifyResult(count, last, None)
