"""The bulk append used by group commit and batches: the same chain as ``record``."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.audit import bulk
from dancu.audit import service as audit
from dancu.audit.exceptions import InvalidAccessEntry
from dancu.audit.models import AccessLog
from dancu.audit.service import AccessEntry
from tests.audit.factories import PERSON_A, PERSON_B, entry

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")


_FIELD = st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True)


@given(
    actor=_TEXT, organization=st.none() | _TEXT, purpose=_TEXT, request_id=st.none() | _TEXT,
    result=st.none() | _TEXT, fields=st.lists(_FIELD, min_size=1, max_size=4),
    micro=st.integers(0, 999_999),
)  # fmt: skip
def test_the_fast_hash_is_the_documented_hash(
    actor: str, organization: str | None, purpose: str, request_id: str | None,
    result: str | None, fields: list[str], micro: int,
) -> None:  # fmt: skip
    values = {
        "actor": actor, "actor_kind": "client", "channel": "verify", "fields": fields, "id": 42,
        "occurred_at": dt.datetime(2026, 3, 1, 8, 0, 0, micro, tzinfo=dt.UTC),
        "organization": organization, "personal_id": PERSON_A, "prev_hash": "a" * 64,
        "purpose": purpose, "request_id": request_id, "result": result,
    }  # fmt: skip
    assert bulk.fast_hash(values) == audit.compute_hash(values)


def test_append_continues_the_chain_that_verify_checks(session: Session) -> None:
    audit.record(session, [entry()])
    head = bulk.append(
        session,
        [
            entry(personal_id=PERSON_B, request_id=f"r{i}", purpose='có "dấu" \\ ở đây')
            for i in range(50)
        ]
        + [entry(actor="other", fields=["sex"])],
    )  # fmt: skip
    assert head is not None and head == audit.head(session)
    assert head.entry_id == 52
    assert audit.verify(session).intact
    assert audit.for_person(session, PERSON_B, limit=100).items[0].purpose == 'có "dấu" \\ ở đây'


def test_append_checks_every_entry_like_record(session: Session) -> None:
    with pytest.raises(InvalidAccessEntry) as caught:
        bulk.append(session, [entry(), entry(personal_id="123"), entry(request_id="\x00")])
    assert [(p.row, p.field) for p in caught.value.problems] == [
        (2, "personal_id"), (3, "request_id"),
    ]  # fmt: skip
    assert audit.head(session) is None
    assert bulk.append(session, []) is None


def test_exactly_the_control_and_separator_characters_and_lone_surrogates_are_refused() -> None:
    """Categories Cc, Zl, Zp and Cs are refused in any text, every other character
    accepted."""
    forbidden = {
        chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in {"Cc", "Zl", "Zp", "Cs"}
    }
    for ch in sorted(forbidden):
        with pytest.raises(InvalidAccessEntry):
            bulk.prepare([entry(purpose=f"a{ch}b")])
    allowed = [chr(c) for c in range(0x110000) if chr(c) not in forbidden]
    chunks = ["a" + "".join(allowed[i : i + 250]) + "b" for i in range(0, len(allowed), 250)]
    assert len(bulk.prepare([entry(purpose=chunk) for chunk in chunks])) == len(chunks)


@given(
    actor=_TEXT, organization=_TEXT, purpose=_TEXT,
    request_ids=st.lists(st.none() | _TEXT, min_size=1, max_size=5),
    fields=st.lists(_FIELD, min_size=1, max_size=4), result=st.none() | _TEXT,
)  # fmt: skip
def test_link_hashes_each_entry_as_documented(
    actor: str, organization: str, purpose: str, request_ids: list[str | None],
    fields: list[str], result: str | None,
) -> None:  # fmt: skip
    """``link`` fills the shared part of the canonical text once per shape: every hash is
    still the documented one, and every entry chains to the one before."""
    values = bulk.prepare(
        [
            entry(actor=actor, organization=organization, purpose=purpose,
                  fields=fields if i % 2 else ["sex"], request_id=request_id, result=result,
                  actor_kind="client", channel="verify")
            for i, request_id in enumerate(request_ids)
        ]
    )  # fmt: skip
    head = bulk.link(values, audit.Anchor(41, "b" * 64), bulk.PgRows())
    assert head.entry_id == 41 + len(request_ids)
    previous = "b" * 64
    for row in values:
        assert row["prev_hash"] == previous
        assert row["entry_hash"] == audit.compute_hash(row)
        previous = row["entry_hash"]


# request ids and texts that an array literal or a JSON document must quote or escape
_AWKWARD = [None, "r-1", "NULL", "null", "a,b", "{x}", 'có "dấu" \\ ở đây', "a b", "'", "Ω:1"]


def test_the_rows_written_are_the_values_linked(session: Session, is_postgres: bool) -> None:
    """PostgreSQL: the arrays and shapes ``PG_INSERT_SQL`` is given store exactly the values
    that were hashed, and the chain verifies."""
    if not is_postgres:
        pytest.skip("PG_INSERT_SQL is PostgreSQL's")
    audit.record(session, [entry()])
    values = bulk.prepare(
        [
            entry(personal_id=PERSON_B if i % 3 else PERSON_A, request_id=request_id,
                  purpose=_AWKWARD[-1 - i] or "p", result=None if i % 2 else "match",
                  fields=["sex"] if i % 2 else ["full_name", "birth_date"])
            for i, request_id in enumerate(_AWKWARD)
        ]
    )  # fmt: skip
    rows = bulk.PgRows()
    head = bulk.link(values, audit.head(session), rows)
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(bulk.PG_INSERT_SQL, rows.params())
    assert audit.head(session) == head
    stored = session.execute(
        select(*(getattr(AccessLog, c) for c in values[0])).where(AccessLog.id > 1)
        .order_by(AccessLog.id)
    ).all()  # fmt: skip
    assert [dict(row._mapping) for row in stored] == values
    assert audit.verify(session).intact


@given(request_id=st.text(max_size=70) | st.from_regex(r"[0-9A-Za-z:._ -]{0,70}", fullmatch=True))
def test_a_request_id_is_checked_alike_first_or_later_in_a_batch(request_id: str) -> None:
    """Later entries of a batch take a short path for plain request ids; the result is the
    same as the full check of the first entry (kept as is, cleaned, or refused)."""

    def checked(entries: list[AccessEntry], position: int) -> str | InvalidAccessEntry | None:
        try:
            return bulk.prepare(entries)[position]["request_id"]  # type: ignore[no-any-return]
        except InvalidAccessEntry as exc:
            return exc

    alone = checked([entry(request_id=request_id)], 0)
    later = checked([entry(request_id="r0"), entry(request_id=request_id)], 1)
    if isinstance(alone, InvalidAccessEntry):
        assert isinstance(later, InvalidAccessEntry)
        assert [(p.field, p.reason) for p in alone.problems] == [
            (p.field, p.reason) for p in later.problems
        ]
    else:
        assert later == alone
