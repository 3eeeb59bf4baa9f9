"""Bulk appends to the access log: many people's reads in one transaction.

Three writers, all under the chain's append lock and all or nothing like
``service.record``:

- ``append``: many entries of one person each (the group commit of single verifications,
  reconciliation jobs), checked once per distinct combination of who, why and which fields,
  hashed from a template, and written with one INSERT (``PG_INSERT_SQL`` on PostgreSQL).
- ``append_batch``: one *batch entry* for many people (partner batch verification): one
  chain entry and one narrow ``access_log_item`` row per person, instead of one full entry
  per person. Its hash covers its items (service module docstring, docs/audit.md).
- the same statements as plain SQL (``PG_LOCK_SQL``, ``PG_HEAD_SQL``, ``PG_INSERT_SQL``,
  ``PG_INSERT_BATCH_SQL``, ``PG_COPY_ITEMS_SQL``) for a writer holding its own psycopg
  connection (``dancu.exchange.verify``'s group commit and batch transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import operator
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.audit.exceptions import CHAIN_CONFLICT, ChainConflict, InvalidAccessEntry
from dancu.audit.generations import PG_CURRENT_SQL
from dancu.audit.models import AccessLog
from dancu.audit.reading import is_personal_id
from dancu.audit.service import (
    _PLAIN_REQUEST_ID,
    ADVISORY_LOCK_KEY,
    GENESIS_HASH,
    MAX_FIELDS,
    MAX_ITEMS,
    AccessEntry,
    Anchor,
    _field_names,
    _json_text,
    _lock,
    _text,
    _validated,
    batch_hash,
    head,
    json_names,
    utc_text,
)
from dancu.db import pg_array_element
from dancu.errors import Problem

log = logging.getLogger(__name__)


# the values many entries share (who, kind, channel, organisation, purpose, result)
_shared_text = lru_cache(maxsize=4096)(_json_text)


def fast_hash(values: Mapping[str, Any]) -> str:
    """``compute_hash`` of values validated by this module, without building a dictionary
    for ``json.dumps``: the same bytes (the tests compare them), several times faster."""
    return hashlib.sha256(canonical_text(values).encode("utf-8")).hexdigest()


def canonical_text(values: Mapping[str, Any]) -> str:
    """``canonical_bytes`` (decoded) of values validated by this module, from its shape."""
    return _fill(_shape(values), values["id"], values)


def _fill(shape: tuple[str, ...], entry_id: int, values: Mapping[str, Any]) -> str:
    """The canonical text of an entry of this ``shape`` (see :func:`_shape`)."""
    return (
        f"{shape[0]}{entry_id}{shape[1]}{_json_text(values['personal_id'])}{shape[2]}"
        f"{values['prev_hash']}{shape[3]}{_json_text(values['request_id'])}{shape[4]}"
    )


def _shape(values: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """``canonical_text`` cut around what differs from entry to entry (id, person, previous
    hash, request id): the five pieces around them, for the entries that share the rest."""
    return (
        f'{{"actor":{_shared_text(values["actor"])},'
        f'"actor_kind":{_shared_text(values["actor_kind"])},'
        f'"channel":{_shared_text(values["channel"])},'
        f'"fields":{json_names(values["fields"])},"id":',
        f',"occurred_at":"{utc_text(values["occurred_at"])}",'
        f'"organization":{_shared_text(values["organization"])},"personal_id":',
        ',"prev_hash":"',
        f'","purpose":{_shared_text(values["purpose"])},"request_id":',
        f',"result":{_shared_text(values["result"])}}}',
    )


def _template_key(entry: AccessEntry) -> tuple[Any, ...] | None:
    """What many entries of one batch share (who, why, which fields); None if the fields
    are not a list (such an entry is checked on its own, and refused)."""
    fields = entry.fields
    if type(fields) is not tuple:
        if not isinstance(fields, list | tuple):
            return None
        fields = tuple(fields)
    return (
        entry.actor, entry.actor_kind, entry.organization, fields, entry.purpose,
        entry.channel, entry.result, entry.occurred_at,
    )  # fmt: skip


def prepare(entries: Sequence[AccessEntry]) -> list[dict[str, Any]]:
    """The checked column values of ``entries`` (no id or hashes yet), for :func:`link`.

    Entries of a batch mostly share who read, why and which fields (one client, one
    purpose): those values are checked once per distinct combination, and each entry's
    person and request id on their own. Raises ``InvalidAccessEntry`` naming every problem.
    """
    now = dt.datetime.now(dt.UTC)
    problems: list[Problem] = []
    checked: dict[tuple[Any, ...], dict[str, Any]] = {}
    values: list[dict[str, Any]] = []
    for position, entry in enumerate(entries, start=1):
        key = _template_key(entry)
        try:
            base = checked.get(key) if key is not None else None
        except TypeError:  # unhashable values: checked on their own (and refused)
            key = base = None
        if base is None:
            row_values = _validated(position, entry, now, problems)
            if key is not None:
                checked[key] = row_values
            values.append(row_values)
            continue
        if not is_personal_id(entry.personal_id):
            problems.append(
                Problem(position, "personal_id", "must be a 12-digit personal ID number")
            )
        request_id = entry.request_id
        if request_id is not None and (
            type(request_id) is not str or not _PLAIN_REQUEST_ID.fullmatch(request_id)
        ):
            request_id = _text(position, "request_id", request_id, problems, required=False)
        values.append({**base, "personal_id": entry.personal_id, "request_id": request_id})
    if problems:
        raise InvalidAccessEntry(
            f"{len(problems)} problem(s) in the access log entries; nothing was written",
            problems,
        )
    return values


class PgRows:
    """The rows :func:`link` chained, as the parameters of ``PG_INSERT_SQL``.

    The rows travel as arrays of what differs from entry to entry (person, request id, hash,
    and the number of the entry's *shape*) plus one small JSON list of the shapes, the values
    many entries share (who, why, which fields, when, the result). PostgreSQL then parses a
    few short values per row instead of a JSON object of every column: measured on a log of
    1.5 million entries, 15.5 instead of 23.6 µs per row for 10,000 rows. ``id`` is the first
    id plus the row's position and ``prev_hash`` the previous row's ``entry_hash`` (the first
    row's is given), exactly as :func:`link` chained them.
    """

    __slots__ = ("_first", "_hashes", "_people", "_requests", "_shape_of", "_shapes")

    def __init__(self) -> None:
        self._first: tuple[int, str] | None = None
        self._shapes: list[str] = []
        self._shape_of: list[str] = []
        self._people: list[str] = []
        self._requests: list[str] = []
        self._hashes: list[str] = []

    def _add_shape(self, values: Mapping[str, Any]) -> str:
        shape = {name: values[name] for name in _SHAPE_COLUMNS}
        shape["occurred_at"] = utc_text(shape["occurred_at"])
        self._shapes.append(json.dumps(shape, ensure_ascii=False))
        return str(len(self._shapes))

    def params(self) -> list[Any]:
        """The parameters of ``PG_INSERT_SQL``."""
        if self._first is None:
            raise ValueError("no rows were linked")
        return [
            self._first[0],
            self._first[1],
            "{" + ",".join(self._shape_of) + "}",
            "{" + ",".join(self._people) + "}",
            "{" + ",".join(self._requests) + "}",
            "{" + ",".join(self._hashes) + "}",
            "[" + ",".join(self._shapes) + "]",
        ]


def _array_item(value: str | None) -> str:
    """One element of a PostgreSQL array literal: NULL, or the text quoted and escaped."""
    if value is None:
        return "NULL"
    if _PLAIN_REQUEST_ID.fullmatch(value):
        return value if value.upper() != "NULL" else f'"{value}"'
    return pg_array_element(value)


def link(values: list[dict[str, Any]], last: Anchor | None, rows: PgRows | None = None) -> Anchor:
    """Chain ``values`` (from :func:`prepare`, at least one) after ``last``, the head read
    under the append lock: sets each one's ``id``, ``prev_hash`` and ``entry_hash``; with
    ``rows``, also collects them for ``PG_INSERT_SQL``.

    The canonical text is the documented template with the values shared by many entries
    (who, why, which fields, when, the result) filled in once per distinct combination:
    each entry then only adds its id, person, request id and previous hash.
    """
    next_id, prev_hash = (last.entry_id + 1, last.entry_hash) if last else (1, GENESIS_HASH)
    if rows is not None and rows._first is None:
        rows._first = (next_id, prev_hash)
    sha256 = hashlib.sha256
    shapes: dict[tuple[Any, ...], tuple[str, str, str, str, str, str]] = {}
    for row_values in values:
        fields = row_values["fields"]
        # ``id(fields)``: the entries of one template share one list (see ``prepare``), and
        # while ``values`` holds it no other list can have its id: equal keys, equal fields
        key = (
            id(fields), row_values["actor"], row_values["actor_kind"], row_values["channel"],
            row_values["occurred_at"], row_values["organization"], row_values["purpose"],
            row_values["result"],
        )  # fmt: skip
        shape = shapes.get(key)
        if shape is None:
            number = rows._add_shape(row_values) if rows is not None else ""
            shape = shapes[key] = (*_shape(row_values), number)
        row_values["id"] = next_id
        row_values["prev_hash"] = prev_hash
        text = _fill(shape, next_id, row_values)
        prev_hash = row_values["entry_hash"] = sha256(text.encode("utf-8")).hexdigest()
        if rows is not None:
            rows._shape_of.append(shape[5])
            rows._people.append(row_values["personal_id"])
            rows._requests.append(_array_item(row_values["request_id"]))
            rows._hashes.append(prev_hash)
        next_id += 1
    return Anchor(next_id - 1, prev_hash)


# PostgreSQL, for a writer holding its own psycopg connection (the verification group
# commit): the same lock, head and rows as ``append``, as plain statements it can send
# together in one round trip.
PG_LOCK_SQL = f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})"
PG_HEAD_SQL = "SELECT id, entry_hash FROM access_log ORDER BY id DESC LIMIT 1"
_SHAPE_COLUMNS = (
    "occurred_at", "actor", "actor_kind", "organization", "fields", "purpose", "channel", "result",
)  # fmt: skip
_SHAPE_TYPES = {"occurred_at": "timestamptz", "fields": "json"}
# The parameters are ``PgRows.params()``: first id, first prev_hash, the shapes (JSON), then
# one array literal each (built as text: psycopg adapts a Python list element by element in
# Python, several times slower) of shape numbers, people, request ids and hashes.
PG_INSERT_SQL = (
    "INSERT INTO access_log (id, occurred_at, actor, actor_kind, organization, personal_id, "
    "fields, purpose, channel, request_id, result, prev_hash, entry_hash) "
    "SELECT %s::bigint + t.n - 1, s.occurred_at, s.actor, s.actor_kind, s.organization, "
    "t.personal_id, s.fields, s.purpose, s.channel, t.request_id, s.result, "
    "coalesce(lag(t.entry_hash) OVER (ORDER BY t.n), %s::text), t.entry_hash "
    "FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
    "AS t(shape, personal_id, request_id, entry_hash, n) "
    "JOIN ROWS FROM (json_to_recordset(%s::json) AS ("
    + ", ".join(f"{c} {_SHAPE_TYPES.get(c, 'text')}" for c in _SHAPE_COLUMNS)
    + f")) WITH ORDINALITY AS s({', '.join(_SHAPE_COLUMNS)}, k) ON s.k = t.shape"
)


def append(session: Session, entries: Sequence[AccessEntry]) -> Anchor | None:
    """``record`` for many entries at once: the same checks, chain and lock, written with one
    INSERT (``PG_INSERT_SQL`` on PostgreSQL, multi-row on SQLite) instead of ORM objects,
    returning the new head (None if no entries).

    Values shared by many entries are checked once (:func:`prepare`). All or nothing, like
    ``record``.
    """
    values = prepare(entries)
    if not values:
        return None
    _lock(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    rows = PgRows() if postgres else None
    anchor = link(values, head(session), rows)
    try:
        if rows is not None:
            session.connection().exec_driver_sql(PG_INSERT_SQL, tuple(rows.params()))
        else:
            session.connection().execute(insert(AccessLog), values)
    except IntegrityError as exc:
        raise ChainConflict(CHAIN_CONFLICT) from exc
    log.debug("access log: appended entries %d to %d", values[0]["id"], anchor.entry_id)
    return anchor


# --------------------------------------------------------------------------------------------
# Batch entries: one chain entry for many people
# --------------------------------------------------------------------------------------------


class BatchItem(NamedTuple):
    """One person of a batch: ``item`` its position in the request (1, 2, 3 …, increasing;
    positions may be skipped), the fields read, the result, and ``purpose`` if it is not
    the batch's."""

    item: int
    personal_id: str
    fields: Sequence[str]
    result: str | None = None
    purpose: str | None = None


# The largest item number a batch entry stores (``access_log_item.item`` is an integer).
MAX_ITEM_NUMBER = 2**31 - 1


class ItemKind(NamedTuple):
    """What many items of a batch share: the fields read, the result, and ``purpose`` if it
    is not the batch's."""

    fields: Sequence[str]
    result: str | None = None
    purpose: str | None = None


class BatchColumns(NamedTuple):
    """A batch entry's items as columns: item ``i`` is number ``positions[i]`` (increasing),
    person ``people[i]``, and what ``kinds[kind_of[i]]`` says. The same items as a list of
    ``BatchItem``, without an object per item: a writer that knows its items share a few
    kinds (the verification's answers) gives them so, and they are checked and encoded once
    per kind and in bulk per column."""

    positions: Sequence[int]
    people: Sequence[str]
    kind_of: Sequence[int]
    kinds: Sequence[ItemKind]

    def as_items(self) -> list[BatchItem]:
        """The same items one by one (``kind_of`` must index ``kinds``)."""
        kinds = self.kinds
        return [
            BatchItem(number, person, *kinds[kind])
            for number, person, kind in zip(self.positions, self.people, self.kind_of, strict=True)
        ]


class BatchEntry(NamedTuple):
    """Many people read in one request by one actor (a partner's batch verification), to be
    appended with :func:`append_batch` as one entry. Give the values by name."""

    actor: str
    actor_kind: str
    purpose: str
    channel: str
    items: Sequence[BatchItem] | BatchColumns
    organization: str | None = None
    request_id: str | None = None
    occurred_at: dt.datetime | None = None


class _Fields(NamedTuple):
    """A distinct list of field names as each writer needs it, made once per batch."""

    names: list[str]  # sorted, without repeats
    stored: str  # joined by commas (``access_log_item.fields``)
    canonical: str  # the JSON array in the hashed text
    copy_item: str  # ``stored`` as a field of COPY's text format


class PreparedBatch(NamedTuple):
    """A checked batch entry: its column values (``id`` and hashes once linked), its items'
    canonical text, and its items in the form its writer needs: rows for SQLite
    (``rows``) or, for PostgreSQL's ``PG_COPY_ITEMS_SQL``, one line of COPY's text format
    per item without its last two fields (``copy_lines``: the entry's id and the
    generation, known once the entry is linked under the append lock, end each line, so
    that :func:`pg_batch_params` joins them in with one ``str.join``)."""

    values: dict[str, Any]
    items_text: str
    rows: list[tuple[int, str, str, str | None, str | None]]
    copy_lines: list[str]


def _fields_of(
    position: int | None, fields: Sequence[str], seen: dict[Any, _Fields], problems: list[Problem]
) -> _Fields | None:
    key = tuple(fields) if isinstance(fields, list | tuple) else None
    try:
        known = seen.get(key) if key is not None else None
    except TypeError:  # unhashable names: checked on their own, and refused
        key = known = None
    if known is not None:
        return known
    count = len(problems)
    names = _field_names(position, fields, problems)
    if len(problems) > count:
        return None
    stored = ",".join(names)
    made = _Fields(names, stored, json_names(names), copy_field(stored))
    if key is not None:
        seen[key] = made
    return made


class _Text(NamedTuple):
    """A checked optional text value as each writer needs it, made once per batch."""

    value: str | None
    canonical: str  # JSON (``null`` for None)
    copy_item: str  # a field of COPY's text format (``\\N`` for None)


_NO_TEXT = _Text(None, "null", "\\N")
# COPY's text format: a backslash starts an escape; tab, newline and carriage return end a
# field or a line (the checked texts hold no control characters, but the format is kept
# whole here rather than leaning on that)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: str | None) -> str:
    """``value`` as one field of PostgreSQL's COPY text format (``\\N``: NULL)."""
    if value is None:
        return "\\N"
    if "\0" in value:
        raise ValueError("text sent to the database cannot hold a NUL character")
    return value.translate(_COPY_ESCAPES)


_UNREAD = object()  # no value read yet (or a bad one, read again each time)


def prepare_batch(entry: BatchEntry, *, postgres: bool = True) -> PreparedBatch:
    """Check a batch entry and its items and make what :func:`link_batch` and the writer
    need (COPY lines for PostgreSQL, else rows). Raises ``InvalidAccessEntry`` naming
    every problem (``row``: the item's position in ``entry.items``; None for the entry).

    Values repeated across items (field lists, results, purposes) are checked and encoded
    once per batch; each item adds its number and person. Items given as ``BatchColumns``
    are checked column by column; if any is wrong, they are checked again one by one, so
    that the problems are named as for a list of items."""
    given = entry.items
    items: Sequence[BatchItem]
    if isinstance(given, BatchColumns):
        prepared = _prepare_columns(entry, given, postgres)
        if prepared is not None:
            return prepared
        items = given.as_items()
    else:
        items = given
    problems: list[Problem] = []
    if not isinstance(items, Sequence) or not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidAccessEntry(
            f"a batch entry holds 1 to {MAX_ITEMS:,} items; nothing was written",
            [Problem(None, "items", f"give 1 to {MAX_ITEMS:,} items")],
        )
    # the entry's purpose, as ``_validated`` will check it (and report it) below
    purpose = _text(None, "purpose", entry.purpose, [], required=True)
    seen_fields: dict[Any, _Fields] = {}
    seen_text: dict[tuple[str, Any], _Text] = {}
    texts: list[str] = []
    rows: list[tuple[int, str, str, str | None, str | None]] = []
    lines: list[str] = []
    union: set[str] = set()
    last_fields: _Fields | None = None
    # the last item's field list and result as given, and what they were read as: items of
    # one answer share the very objects (the verification's answers are shared), and are
    # read again only when they differ (a bad value is never remembered, so that each item
    # naming it is reported)
    given_fields: object = _UNREAD
    given_result: object = _UNREAD
    fields: _Fields | None = None
    result = _NO_TEXT
    previous = 0
    for position, item in enumerate(items, start=1):
        try:
            number, person, item_fields, item_result, item_purpose = item
        except (TypeError, ValueError):
            problems.append(Problem(position, "item", "must be a BatchItem (five values)"))
            continue
        if type(number) is not int or not previous < number <= MAX_ITEM_NUMBER:
            problems.append(
                Problem(
                    position,
                    "item",
                    f"must be a whole number larger than the one before, at most "
                    f"{MAX_ITEM_NUMBER:,}",
                )
            )
        else:
            previous = number
        good_person = is_personal_id(person)
        if not good_person:
            problems.append(
                Problem(position, "personal_id", "must be a 12-digit personal ID number")
            )
        if item_fields is given_fields and last_fields is not None:
            fields = last_fields
        else:
            fields = _fields_of(position, item_fields, seen_fields, problems)
        if item_result is not given_result:
            count = len(problems)
            result = _text_of(position, "result", item_result, None, seen_text, problems)
            given_result = item_result if len(problems) == count else _UNREAD
        own = _text_of(position, "purpose", item_purpose, purpose, seen_text, problems)
        if fields is None or not good_person or problems:
            continue  # refused: only the problems matter from here
        if fields is not last_fields:
            union.update(fields.names)
            last_fields = fields
        given_fields = item_fields
        texts.append(f'[{number},"{person}",{fields.canonical},{result.canonical},{own.canonical}]')
        if postgres:
            lines.append(
                f"{number}\t{person}\t{fields.copy_item}\t{result.copy_item}\t{own.copy_item}\t"
            )
        else:
            rows.append((number, person, fields.stored, result.value, own.value))
    return _prepared(entry, union, len(texts), "[" + ",".join(texts) + "]", rows, lines, problems)


def _text_of(
    position: int | None,
    name: str,
    value: Any,
    purpose: str | None,
    seen: dict[tuple[str, Any], _Text],
    problems: list[Problem],
) -> _Text:
    """An item's optional text checked and encoded, once per distinct value (``seen``); an
    item's purpose equal to the entry's ``purpose`` is stored as none."""
    if value is None:
        return _NO_TEXT
    try:
        return seen[name, value]
    except KeyError:
        count = len(problems)
        cleaned = _text(position, name, value, problems, required=False)
        made = (
            _NO_TEXT
            if name == "purpose" and cleaned == purpose
            else _Text(cleaned, _json_text(cleaned), copy_field(cleaned))
        )
        if len(problems) == count:
            seen[name, value] = made
        return made
    except TypeError:  # unhashable: checked on its own, and refused
        _text(position, name, value, problems, required=False)
        return _NO_TEXT


def _prepare_columns(
    entry: BatchEntry, columns: BatchColumns, postgres: bool
) -> PreparedBatch | None:
    """:func:`prepare_batch` of items given as columns: each column checked in bulk and
    each kind once, the items' text and COPY lines joined from per-kind pieces. None if
    any item is wrong (the caller checks them one by one to name the problems)."""
    if not all(isinstance(c, Sequence) and not isinstance(c, str | Mapping) for c in columns):
        raise _misfit("give each column as a list")
    positions, people, kind_of, kinds = columns
    count = len(positions)
    if not len(people) == count == len(kind_of) or not (
        set(map(type, kind_of)) <= {int} and min(kind_of, default=0) >= 0
        and max(kind_of, default=-1) < len(kinds)
    ):  # fmt: skip
        raise _misfit("give as many positions, people and kinds, each kind known")
    for kind in kinds:
        if isinstance(kind, str) or not isinstance(kind, Sequence) or len(kind) != 3:
            raise _misfit("each kind must be an ItemKind (three values)")
    if not (
        1 <= count <= MAX_ITEMS
        and set(map(type, positions)) == {int}
        and 0 < positions[0] and positions[-1] <= MAX_ITEM_NUMBER
        and all(map(operator.lt, positions, positions[1:]))
        and set(map(type, people)) == {str}
        and set(map(len, people)) == {12}
    ):  # fmt: skip
        return None
    digits = "".join(people)
    if not (digits.isascii() and digits.encode("ascii").isdigit()):  # bytes: fast in bulk
        return None
    purpose = _text(None, "purpose", entry.purpose, [], required=True)
    problems: list[Problem] = []
    seen_fields: dict[Any, _Fields] = {}
    seen_text: dict[tuple[str, Any], _Text] = {}
    used = set(kind_of)
    unused = (_Fields([], "", "", ""), _NO_TEXT, _NO_TEXT)  # a kind no item is: not read
    read: list[tuple[_Fields, _Text, _Text]] = []
    for number, (kind_fields, kind_result, kind_purpose) in enumerate(kinds):
        if number not in used:
            read.append(unused)
            continue
        fields = _fields_of(None, kind_fields, seen_fields, problems)
        result = _text_of(None, "result", kind_result, None, seen_text, problems)
        own = _text_of(None, "purpose", kind_purpose, purpose, seen_text, problems)
        if fields is None or problems:
            return None
        read.append((fields, result, own))
    union = set().union(*(read[k][0].names for k in used))

    def per_item(piece: list[Any]) -> tuple[Any, ...]:
        """``piece[kind]`` of each item (in C: one ``itemgetter`` call)."""
        found = operator.itemgetter(*kind_of)(piece)
        return found if count > 1 else (found,)

    tails = [f"{f.canonical},{r.canonical},{o.canonical}]" for f, r, o in read]
    each = zip(positions, people, per_item(tails), strict=True)
    texts = [f'[{n},"{p}",{tail}' for n, p, tail in each]
    text = "[" + ",".join(texts) + "]"
    rows: list[tuple[int, str, str, str | None, str | None]] = []
    lines: list[str] = []
    if postgres:
        copy_tails = [f"\t{f.copy_item}\t{r.copy_item}\t{o.copy_item}\t" for f, r, o in read]
        each = zip(positions, people, per_item(copy_tails), strict=True)
        lines = [f"{n}\t{p}{tail}" for n, p, tail in each]
    else:
        rows = list(
            zip(
                positions,
                people,
                per_item([f.stored for f, _, _ in read]),
                per_item([r.value for _, r, _ in read]),
                per_item([o.value for _, _, o in read]),
                strict=True,
            )
        )
    return _prepared(entry, union, count, text, rows, lines, problems)


def _misfit(why: str) -> InvalidAccessEntry:
    """The error for item columns that do not fit together (refused whole)."""
    return InvalidAccessEntry(
        "the batch's item columns do not fit together; nothing was written",
        [Problem(None, "items", why)],
    )


def _prepared(
    entry: BatchEntry,
    union: set[str],
    count: int,
    items_text: str,
    rows: list[tuple[int, str, str, str | None, str | None]],
    copy_lines: list[str],
    problems: list[Problem],
) -> PreparedBatch:
    """The checked batch entry from its checked items: the entry's own values checked (the
    fields it names are the ``union`` of its items'); ``InvalidAccessEntry`` naming every
    problem, the items' included."""
    if len(union) > MAX_FIELDS:
        problems.append(
            Problem(None, "fields", f"the items name more than {MAX_FIELDS} fields in all")
        )
    head_entry = AccessEntry(
        actor=entry.actor,
        actor_kind=entry.actor_kind,
        personal_id="",
        fields=["status"],  # each item's names are checked above; the union is set below
        purpose=entry.purpose,
        channel=entry.channel,
        organization=entry.organization,
        request_id=entry.request_id,
        occurred_at=entry.occurred_at,
    )
    values = _validated(None, head_entry, dt.datetime.now(dt.UTC), problems, batch=True)
    if problems:
        raise InvalidAccessEntry(
            f"{len(problems)} problem(s) in the batch entry; nothing was written", problems
        )
    values["fields"] = sorted(union)
    values["item_count"] = count
    return PreparedBatch(values, items_text, rows, copy_lines)


def link_batch(batch: PreparedBatch, last: Anchor | None) -> Anchor:
    """Chain a prepared batch entry after ``last`` (the head read under the append lock):
    sets its ``id``, ``prev_hash`` and ``entry_hash``; returns the new head."""
    values = batch.values
    values["id"], values["prev_hash"] = (
        (last.entry_id + 1, last.entry_hash) if last else (1, GENESIS_HASH)
    )
    values["entry_hash"] = batch_hash(values, batch.items_text)
    return Anchor(values["id"], values["entry_hash"])


# ``pg_batch_params(batch, generation)`` gives the entry's parameters and the items' COPY
# data. The items go by COPY, not by an INSERT from arrays: COPY writes the heap a page of
# rows at a time (one WAL record each) where the INSERT writes them one by one, about a
# third less of PostgreSQL's CPU per item (docs/benchmarks.md, "A batch entry's items by
# COPY").
PG_INSERT_BATCH_SQL = (
    "INSERT INTO access_log (id, occurred_at, actor, actor_kind, organization, personal_id, "
    "fields, purpose, channel, request_id, result, prev_hash, entry_hash, item_count) "
    "VALUES (%s, %s::timestamptz, %s, %s, %s, NULL, %s::json, %s, %s, %s, NULL, %s, %s, %s)"
)
# the entry's id and the generation last: each line of ``PreparedBatch.copy_lines`` ends
# where they begin
PG_COPY_ITEMS_SQL = (
    "COPY access_log_item (item, personal_id, fields, result, purpose, entry_id, generation) "
    "FROM STDIN"
)


def pg_batch_params(batch: PreparedBatch, generation: int) -> tuple[list[Any], str]:
    """The parameters of ``PG_INSERT_BATCH_SQL`` and the data of ``PG_COPY_ITEMS_SQL`` (COPY's
    text format) for a linked batch entry whose items go to ``generation`` (read under the
    append lock: ``generations.PG_CURRENT_SQL``)."""
    if not batch.copy_lines:
        raise ValueError("this batch was prepared for SQLite (prepare_batch(postgres=False))")
    v = batch.values
    entry = [
        v["id"], v["occurred_at"], v["actor"], v["actor_kind"], v["organization"],
        json.dumps(v["fields"]), v["purpose"], v["channel"], v["request_id"], v["prev_hash"],
        v["entry_hash"], v["item_count"],
    ]  # fmt: skip
    end = f"{int(v['id'])}\t{int(generation)}\n"
    return entry, end.join(batch.copy_lines) + end


_SQLITE_INSERT_ITEMS = (
    "INSERT INTO access_log_item (entry_id, item, personal_id, fields, result, purpose) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def append_batch(session: Session, entry: BatchEntry) -> Anchor:
    """Append one batch entry and its items in the caller's transaction (the caller
    commits), under the append lock; returns the new head. All or nothing: a bad entry or
    item raises ``InvalidAccessEntry`` before anything is written."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    batch = prepare_batch(entry, postgres=postgres)
    _lock(session)
    anchor = link_batch(batch, head(session))
    try:
        if postgres:
            generation = connection.exec_driver_sql(PG_CURRENT_SQL).scalar_one()
            entry_params, item_data = pg_batch_params(batch, generation)
            connection.exec_driver_sql(PG_INSERT_BATCH_SQL, tuple(entry_params))
            driver: Any = connection.connection.driver_connection  # psycopg, in this transaction
            with driver.cursor() as cursor, cursor.copy(PG_COPY_ITEMS_SQL) as copy:
                copy.write(item_data)
        else:
            connection.execute(insert(AccessLog), [batch.values])
            entry_id = anchor.entry_id
            connection.exec_driver_sql(
                _SQLITE_INSERT_ITEMS, [(entry_id, *row) for row in batch.rows]
            )
    except (IntegrityError, psycopg.errors.UniqueViolation) as exc:  # the COPY is psycopg's own
        raise ChainConflict(CHAIN_CONFLICT) from exc
    log.debug(
        "access log: appended batch entry %d (%d items)",
        anchor.entry_id,
        batch.values["item_count"],
    )
    return anchor
