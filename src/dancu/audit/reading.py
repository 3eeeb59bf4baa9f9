"""Reading the access log: the citizen's view (``for_person``) and the auditor's search
(``search``), one ``AccessView`` per person read, newest first, paginated.

An entry that names one person is one view; a batch entry is one view per item. A person's
views are a union of the entries naming them and the batch items naming them, each side on
its own index; a search by organisation or actor joins each entry to its items. Both are
re-exported by ``dancu.audit.service``, through which the rest of dancu reads the log.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Integer, Row, Select, Text, cast, func, null, select, union_all
from sqlalchemy.orm import Session

from dancu.audit.exceptions import InvalidAccessQuery
from dancu.audit.models import AccessLog, AccessLogItem
from dancu.errors import Problem

MAX_LIMIT = 500


def is_personal_id(value: object) -> bool:
    """``value`` is a 12-digit personal ID number: a ``str`` itself (a subclass could write
    itself differently into the hashed text and the stored row) of ASCII digits only (a
    regular expression's ``\\d`` also takes other scripts' digits), checked without a regular
    expression (a batch checks ten thousand; the audit domain does not import ``dancu.vn``)."""
    return type(value) is str and len(value) == 12 and value.isascii() and value.isdigit()


class AccessView(NamedTuple):
    """One read of one person as the citizen and the auditor see it: an entry that names
    one person, or one item of a batch entry (``item`` its position in the batch; then
    ``fields``, ``result`` and ``purpose`` are the item's, and ``request_id`` is the batch's
    followed by ``:`` and the position, as the partner's batch answered it)."""

    id: int
    item: int | None
    occurred_at: dt.datetime
    actor: str
    actor_kind: str
    organization: str | None
    personal_id: str
    fields: list[str]
    purpose: str
    channel: str
    request_id: str | None
    result: str | None


@dataclass(slots=True)
class AccessPage:
    """One page of the log's reads of people (``AccessView``), newest first, and whether
    more follow."""

    items: list[AccessView]
    limit: int
    offset: int
    has_more: bool


def _page_args(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidAccessQuery(
            f"limit must be between 1 and {MAX_LIMIT}",
            [Problem(None, "limit", f"must be between 1 and {MAX_LIMIT}")],
        )
    if offset < 0:
        raise InvalidAccessQuery(
            "offset must not be negative", [Problem(None, "offset", "must not be negative")]
        )


def _check_personal_id(personal_id: str) -> None:
    if not is_personal_id(personal_id):
        raise InvalidAccessQuery(
            "personal_id must be a 12-digit personal ID number",
            [Problem(None, "personal_id", "must be 12 digits")],
        )


def _view_columns(items: bool) -> tuple[Any, ...]:
    """The columns of ``AccessView``: of an entry alone, or of an entry joined to its items
    (outer: an entry without items keeps its own person, fields and result)."""
    item = AccessLogItem
    return (
        AccessLog.id,
        (item.item if items else cast(null(), Integer)).label("item"),
        AccessLog.occurred_at,
        AccessLog.actor,
        AccessLog.actor_kind,
        AccessLog.organization,
        (
            func.coalesce(item.personal_id, AccessLog.personal_id)
            if items
            else AccessLog.personal_id
        ).label("personal_id"),
        AccessLog.fields,
        (item.fields if items else cast(null(), Text)).label("item_fields"),
        (func.coalesce(item.purpose, AccessLog.purpose) if items else AccessLog.purpose).label(
            "purpose"
        ),
        AccessLog.channel,
        AccessLog.request_id,
        (func.coalesce(item.result, AccessLog.result) if items else AccessLog.result).label(
            "result"
        ),
    )


def _view(row: Row[Any]) -> AccessView:
    if row.item is None:
        return AccessView(
            row.id, None, row.occurred_at, row.actor, row.actor_kind, row.organization,
            row.personal_id, row.fields, row.purpose, row.channel, row.request_id, row.result,
        )  # fmt: skip
    request_id = f"{row.request_id}:{row.item}" if row.request_id is not None else None
    return AccessView(
        row.id, row.item, row.occurred_at, row.actor, row.actor_kind, row.organization,
        row.personal_id, row.item_fields.split(","), row.purpose, row.channel, request_id,
        row.result,
    )  # fmt: skip


def _views(
    session: Session, personal_id: str | None, where: list[Any], limit: int, offset: int
) -> AccessPage:
    """One page of views of the entries matching ``where`` (conditions on ``access_log``),
    newest first; with ``personal_id``, only that person's: the entries naming them and the
    batch items naming them (a union, each side on its own index)."""
    query: Select[Any]
    if personal_id is None:
        query = (
            select(*_view_columns(True))
            .select_from(AccessLog)
            .outerjoin(AccessLogItem, AccessLogItem.entry_id == AccessLog.id)
            .where(*where)
            .order_by(AccessLog.occurred_at.desc(), AccessLog.id.desc(), AccessLogItem.item)
        )
    else:
        alone = select(*_view_columns(False)).where(AccessLog.personal_id == personal_id, *where)
        in_batches = (
            select(*_view_columns(True))
            .select_from(AccessLogItem)
            .join(AccessLog, AccessLog.id == AccessLogItem.entry_id)
            .where(AccessLogItem.personal_id == personal_id, *where)
        )
        both = union_all(alone, in_batches).subquery()
        query = select(both).order_by(both.c.occurred_at.desc(), both.c.id.desc(), both.c.item)
    rows = session.execute(query.limit(limit + 1).offset(offset)).all()
    return AccessPage(
        items=[_view(row) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        has_more=len(rows) > limit,
    )


def for_person(
    session: Session, personal_id: str, *, limit: int = 20, offset: int = 0
) -> AccessPage:
    """Who read this person's data, newest first: the citizen's own view (e-ID portal),
    with the person's items of batch entries among the rest."""
    _page_args(limit, offset)
    _check_personal_id(personal_id)
    return _views(session, personal_id, [], limit, offset)


def search(
    session: Session,
    *,
    personal_id: str | None = None,
    organization: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> AccessPage:
    """The auditor's query, newest first: by person, organisation or actor (a partner's
    client id, an official's username), within ``since`` (inclusive) to ``until``
    (exclusive). At least one of person, organisation or actor is required, so that every
    query uses one of the log's indexes."""
    _page_args(limit, offset)
    where: list[Any] = []
    if personal_id is not None:
        _check_personal_id(personal_id)
    for name, value, column in (
        ("organization", organization, AccessLog.organization),
        ("actor", actor, AccessLog.actor),
    ):
        if value is None:
            continue
        if not value.strip():
            raise InvalidAccessQuery(
                f"{name} must not be empty", [Problem(None, name, "must not be empty")]
            )
        where.append(column == unicodedata.normalize("NFC", value).strip())
    if personal_id is None and organization is None and actor is None:
        raise InvalidAccessQuery(
            "give a personal ID, an organisation or an actor",
            [Problem(None, None, "no person, organisation or actor given")],
        )
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidAccessQuery(
                f"{name} must include a time zone", [Problem(None, name, "no time zone")]
            )
    if since is not None and until is not None and since > until:
        raise InvalidAccessQuery(
            "since must not be later than until", [Problem(None, "since", "later than until")]
        )
    if since is not None:
        where.append(AccessLog.occurred_at >= since)
    if until is not None:
        where.append(AccessLog.occurred_at < until)
    return _views(session, personal_id, where, limit, offset)
