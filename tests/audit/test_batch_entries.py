"""Batch entries: one chain entry for many people, its items hashed with it, read back as
one view per person, and every change to an item caught by ``verify``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from dancu.audit import bulk
from dancu.audit import service as audit
from dancu.audit.exceptions import InvalidAccessEntry
from dancu.audit.models import AccessLog, AccessLogItem
from dancu.audit.service import Anchor, LinkProblem
from tests.audit.factories import PERSON_A, PERSON_B, T0, entry

BANK = "Ngân hàng Thử Nghiệm"
PURPOSE = "xác thực khách hàng mở tài khoản"
PEOPLE = [f"0010860{n:05d}" for n in range(1, 8)]


def batch(**overrides: Any) -> bulk.BatchEntry:
    """A synthetic bank's batch verification of seven synthetic people (item 4 skipped, as a
    legacy number not in the register would be)."""
    values: dict[str, Any] = {
        "actor": "dc_bank_7",
        "actor_kind": "client",
        "organization": BANK,
        "purpose": PURPOSE,
        "channel": "verify",
        "request_id": "9f" * 16,
        "occurred_at": T0 + dt.timedelta(hours=5),
        "items": [
            bulk.BatchItem(
                n if n < 4 else n + 1,
                person,
                ["full_name", "status", "birth_date"] if n % 2 else ["status", "sex"],
                "match" if n != 3 else "mismatch",
                "thẩm định khoản vay" if n == 6 else None,
            )
            for n, person in enumerate(PEOPLE, start=1)
        ],
    }
    values.update(overrides)
    return bulk.BatchEntry(**values)


def _mixed_log(session: Session) -> Anchor:
    """Two single entries, a batch entry, then one more single entry."""
    audit.record(session, [entry(occurred_at=T0 + dt.timedelta(hours=h)) for h in (1, 2)])
    bulk.append_batch(session, batch())
    (last,) = audit.record(
        session, [entry(personal_id=PERSON_B, occurred_at=T0 + dt.timedelta(hours=6))]
    )
    return Anchor(last.id, last.entry_hash)


def _expected_hash(row: AccessLog, items: list[list[Any]]) -> str:
    """Recomputed from docs/audit.md's description, not with the service's code."""
    document = {
        "actor": row.actor,
        "actor_kind": row.actor_kind,
        "channel": row.channel,
        "fields": row.fields,
        "id": row.id,
        "items": items,
        "occurred_at": row.occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "organization": row.organization,
        "personal_id": None,
        "prev_hash": row.prev_hash,
        "purpose": row.purpose,
        "request_id": row.request_id,
        "result": None,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_batch_is_one_entry_and_one_row_per_person(session: Session) -> None:
    audit.record(session, [entry()])
    head = bulk.append_batch(session, batch())
    assert head.entry_id == 2
    row = session.get(AccessLog, 2)
    assert row is not None
    assert (row.personal_id, row.item_count, row.result) == (None, 7, None)
    assert row.fields == ["birth_date", "full_name", "sex", "status"], "every item's fields"
    stored = session.execute(
        select(AccessLogItem).where(AccessLogItem.entry_id == 2).order_by(AccessLogItem.item)
    ).scalars()
    items = [(i.item, i.personal_id, i.fields, i.result, i.purpose) for i in stored]
    assert [i[0] for i in items] == [1, 2, 3, 5, 6, 7, 8]
    assert items[0] == (1, PEOPLE[0], "birth_date,full_name,status", "match", None)
    assert items[2][3] == "mismatch"
    assert items[5][4] == "thẩm định khoản vay", "only a purpose unlike the batch's is stored"
    documented = [[n, p, f.split(","), r, u] for n, p, f, r, u in items]
    assert row.entry_hash == _expected_hash(row, documented) == head.entry_hash
    assert audit.head(session) == head


def test_a_log_of_single_and_batch_entries_verifies(session: Session) -> None:
    anchor = _mixed_log(session)
    result = audit.verify(session, batch_size=2, anchor=anchor)
    assert result.intact and result.entries == 4
    assert audit.verify(session).last == anchor


def _break(session: Session, problem: LinkProblem, reported: int, words: str) -> None:
    result = audit.verify(session, batch_size=3)
    assert result.broken is not None, "the change was not caught"
    assert (result.broken.problem, result.broken.entry_id) == (problem, reported)
    assert words in result.broken.detail
    assert result.entries == reported - 1


def test_a_changed_item_is_caught_at_its_entry(session: Session) -> None:
    _mixed_log(session)
    session.execute(
        update(AccessLogItem)
        .where(AccessLogItem.entry_id == 3, AccessLogItem.item == 3)
        .values(result="match")
    )
    _break(session, LinkProblem.ALTERED, 3, "does not match its own hash")


@pytest.mark.parametrize(
    "change",
    ["delete an item", "add an item", "renumber an item", "move an item to another person"],
)
def test_items_deleted_added_or_moved_are_caught(session: Session, change: str) -> None:
    _mixed_log(session)
    item = AccessLogItem.__table__
    if change == "delete an item":
        session.execute(delete(item).where(item.c.entry_id == 3, item.c.item == 8))
        words = "lists 7 items but 6 are stored"
    elif change == "add an item":
        session.execute(
            insert(item).values(entry_id=3, item=9, personal_id=PERSON_B, fields="status")
        )
        words = "lists 7 items but 8 are stored"
    elif change == "renumber an item":
        session.execute(update(item).where(item.c.entry_id == 3, item.c.item == 8).values(item=4))
        words = "does not match its own hash"
    else:
        session.execute(
            update(item).where(item.c.entry_id == 3, item.c.item == 1).values(personal_id=PERSON_B)
        )
        words = "does not match its own hash"
    _break(session, LinkProblem.ALTERED, 3, words)


def test_a_changed_item_count_is_caught(session: Session) -> None:
    _mixed_log(session)
    session.execute(update(AccessLog).where(AccessLog.id == 3).values(item_count=6))
    _break(session, LinkProblem.ALTERED, 3, "lists 6 items but 7 are stored")


def test_items_under_a_single_entry_are_caught(session: Session) -> None:
    _mixed_log(session)
    session.execute(
        insert(AccessLogItem).values(entry_id=2, item=1, personal_id=PERSON_B, fields="status")
    )
    _break(session, LinkProblem.ALTERED, 2, "names one person but items are stored")


def test_a_batch_appended_while_verify_runs_is_not_stray(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partner's batch that commits after ``verify`` has read the last entry (its items
    then lie beyond the entries checked) is not reported as items outside the chain."""
    _mixed_log(session)
    read_all = audit._stream

    def then_a_batch_commits(*args: Any) -> Any:
        yield from read_all(*args)
        bulk.append_batch(session, batch())

    monkeypatch.setattr(audit, "_stream", then_a_batch_commits)
    result = audit.verify(session)
    assert result.intact and result.entries == 4
    monkeypatch.undo()
    assert audit.verify(session).entries == 5


def test_an_item_count_that_is_not_a_number_is_reported_not_raised(
    session: Session, is_postgres: bool
) -> None:
    if is_postgres:
        pytest.skip("PostgreSQL's integer column cannot hold text")
    _mixed_log(session)
    session.execute(text("UPDATE access_log SET item_count = 'abc' WHERE id = 3"))
    _break(session, LinkProblem.ALTERED, 3, "not a whole number")


@pytest.mark.parametrize("entry_id", [5, 0])
def test_items_outside_the_chain_are_caught(session: Session, entry_id: int) -> None:
    _mixed_log(session)
    session.execute(
        insert(AccessLogItem).values(
            entry_id=entry_id, item=1, personal_id=PERSON_B, fields="status"
        )
    )
    result = audit.verify(session)
    assert result.broken is not None
    assert (result.broken.problem, result.broken.entry_id) == (LinkProblem.STRAY_ITEMS, entry_id)
    assert result.entries == 4


def test_a_batch_entry_with_items_removed_and_count_cleared_is_caught(session: Session) -> None:
    """Turning a batch into a single entry by hand breaks its hash."""
    _mixed_log(session)
    session.execute(delete(AccessLogItem).where(AccessLogItem.entry_id == 3))
    session.execute(
        update(AccessLog).where(AccessLog.id == 3).values(item_count=None, personal_id=PERSON_A)
    )
    _break(session, LinkProblem.ALTERED, 3, "does not match its own hash")


def test_a_person_sees_their_reads_in_batches_among_the_rest(session: Session) -> None:
    _mixed_log(session)
    audit.record(session, [entry(personal_id=PEOPLE[5], occurred_at=T0)])
    page = audit.for_person(session, PEOPLE[5])
    assert [(v.id, v.item) for v in page.items] == [(3, 7), (5, None)], "newest first"
    read = page.items[0]
    assert read.personal_id == PEOPLE[5]
    assert read.fields == ["sex", "status"]
    assert (read.purpose, read.result) == ("thẩm định khoản vay", "match")
    assert read.request_id == "9f" * 16 + ":7", "as the partner's batch answered it"
    assert (read.actor, read.organization, read.channel) == ("dc_bank_7", BANK, "verify")
    assert read.occurred_at == T0 + dt.timedelta(hours=5)
    first = audit.for_person(session, PEOPLE[0]).items
    assert [(v.item, v.purpose, v.fields) for v in first] == [
        (1, PURPOSE, ["birth_date", "full_name", "status"])
    ]


def test_auditors_see_one_row_per_person_of_a_batch(session: Session) -> None:
    _mixed_log(session)
    by_bank = audit.search(session, organization=BANK, limit=5)
    assert [(v.id, v.item) for v in by_bank.items] == [(3, 1), (3, 2), (3, 3), (3, 5), (3, 6)]
    assert by_bank.has_more
    rest = audit.search(session, organization=BANK, limit=5, offset=5)
    assert [v.item for v in rest.items] == [7, 8] and not rest.has_more
    assert [v.personal_id for v in [*by_bank.items, *rest.items]] == PEOPLE
    by_actor = audit.search(session, actor="dc_bank_7", personal_id=PEOPLE[2])
    assert [(v.item, v.result) for v in by_actor.items] == [(3, "mismatch")]
    later = audit.search(session, organization=BANK, since=T0 + dt.timedelta(hours=6))
    assert later.items == []
    everyone = audit.search(session, personal_id=PERSON_A)
    assert [v.item for v in everyone.items] == [None, None], "single entries are unchanged"


# a bad batch's items, each wrong in its own way
_BAD_ITEMS: list[Any] = [
    bulk.BatchItem(1, PEOPLE[0], ["status"], "match"),
    bulk.BatchItem(1, PEOPLE[1], ["status"], "match"),  # not after the one before
    bulk.BatchItem(3, "12345", ["status"], "match"),
    bulk.BatchItem(4, PEOPLE[3], ["Full Name"], "match"),
    bulk.BatchItem(5, PEOPLE[4], ["status"], "ma\x00tch"),
    bulk.BatchItem(6, PEOPLE[5], ["status"], "match", "x" * 301),
    (7, PEOPLE[6], ["status"]),  # not an item's five values
    bulk.BatchItem(8, "bad", ["Bad"], "match"),  # both problems named
    bulk.BatchItem(2**31, PEOPLE[0], ["status"], "match"),  # beyond an integer column
    bulk.BatchItem(2**31 + 1, PEOPLE[0], [["unhashable"]], "ma\ud800tch"),
    bulk.BatchItem(2**31 + 2, "٠٠١٠٨٥٠٠٠٠٠١", ["status"], "match"),  # Arabic-Indic digits
]


def test_bad_batches_are_refused_naming_each_item_and_nothing_is_written(
    session: Session,
) -> None:
    items = _BAD_ITEMS
    with pytest.raises(InvalidAccessEntry) as caught:
        bulk.append_batch(session, batch(items=items, actor="  ", occurred_at="yesterday"))
    found = [(p.row, p.field) for p in caught.value.problems]
    assert sorted(found, key=str) == sorted(
        [
            (2, "item"),
            (3, "personal_id"),
            (4, "fields"),
            (5, "result"),
            (6, "purpose"),
            (7, "item"),
            (8, "personal_id"),
            (8, "fields"),
            (9, "item"),
            (10, "item"),
            (10, "fields"),
            (10, "result"),
            (11, "item"),
            (11, "personal_id"),
            (None, "actor"),
            (None, "occurred_at"),
        ],
        key=str,
    ), "every problem once, none of the entry's invented"
    assert session.scalar(select(func.count()).select_from(AccessLog)) == 0
    assert session.scalar(select(func.count()).select_from(AccessLogItem)) == 0


@pytest.mark.parametrize("count", [0, audit.MAX_ITEMS + 1])
def test_a_batch_holds_one_to_the_limit_of_items(session: Session, count: int) -> None:
    items = [bulk.BatchItem(n, PERSON_A, ["status"]) for n in range(1, count + 1)]
    with pytest.raises(InvalidAccessEntry) as caught:
        bulk.append_batch(session, batch(items=items))
    assert [p.field for p in caught.value.problems] == ["items"]


def test_the_largest_batch_is_written_and_verified(session: Session) -> None:
    items = [
        bulk.BatchItem(n, f"{n:012d}", ["full_name", "status"], "match")
        for n in range(1, audit.MAX_ITEMS + 1)
    ]
    head = bulk.append_batch(session, batch(items=items))
    bulk.append_batch(session, batch(items=items[:3]))
    result = audit.verify(session)
    assert result.intact and result.entries == 2
    assert audit.for_person(session, f"{audit.MAX_ITEMS:012d}").items[0].id == head.entry_id


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
_FIELD = st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actor=_TEXT,
    organization=st.none() | _TEXT,
    purpose=_TEXT,
    request_id=st.none() | _TEXT,
    items=st.lists(
        st.tuples(
            st.integers(1, 3),
            st.lists(_FIELD, min_size=1, max_size=4),
            st.none() | _TEXT,
            st.none() | _TEXT,
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_the_written_hash_is_the_one_verify_recomputes(
    session: Session,
    actor: str,
    organization: str | None,
    purpose: str,
    request_id: str | None,
    items: list[tuple[int, list[str], str | None, str | None]],
) -> None:
    """Any text (quotes, backslashes, non-ASCII) hashes the same on write (the writer's
    template) and on read (``json.dumps`` of the stored rows)."""
    numbered = []
    number = 0
    for step, fields, result, own in items:
        number += step
        numbered.append(bulk.BatchItem(number, PERSON_A, fields, result, own))
    savepoint = session.begin_nested()
    bulk.append_batch(
        session,
        batch(
            actor=actor,
            organization=organization or BANK,
            purpose=purpose,
            request_id=request_id,
            items=numbered,
        ),
    )
    assert audit.verify(session).intact
    savepoint.rollback()


@given(
    items=st.lists(
        st.tuples(
            st.integers(1, 10**9),
            _TEXT,
            st.lists(_FIELD, min_size=1, max_size=4).map(",".join),
            st.none() | _TEXT,
            st.none() | _TEXT,
        ),
        max_size=8,
    )
)
def test_verify_writes_the_items_as_the_reference_serialisation_does(
    items: list[tuple[int, str, str, str | None, str | None]],
) -> None:
    """``items_text`` (verify's fast path) is exactly the ``items`` array of
    ``canonical_bytes``, for any stored text."""
    stored = [audit.StoredItem(*item) for item in items]
    values = dict.fromkeys(audit.HASHED_COLUMNS) | {
        "id": 1, "fields": ["status"], "occurred_at": T0, "prev_hash": "0" * 64,
    }  # fmt: skip
    reference = audit.canonical_bytes(values, stored).decode()
    assert audit.batch_text(values, audit.items_text(items)) == reference


@given(
    actor=_TEXT, organization=st.none() | _TEXT, purpose=_TEXT,
    items=st.lists(st.tuples(
        st.integers(1, 10_000), st.just("079085000001"), _FIELD,
        st.none() | _TEXT, st.none() | _TEXT,
    ), max_size=6),
)  # fmt: skip
def test_a_batch_entrys_hash_is_the_hash_of_its_canonical_text(
    actor: str,
    organization: str | None,
    purpose: str,
    items: list[tuple[int, str, str, str | None, str | None]],
) -> None:
    """``batch_hash`` feeds the text to SHA-256 in parts (the items never widened by the
    entry's Vietnamese): the same digest as the whole text's, whatever the values."""
    values = dict.fromkeys(audit.HASHED_COLUMNS) | {
        "id": 7, "actor": actor, "organization": organization, "purpose": purpose,
        "fields": ["status"], "occurred_at": T0, "prev_hash": "0" * 64,
    }  # fmt: skip
    items_json = audit.items_text(items)
    whole = audit.batch_text(values, items_json).encode("utf-8")
    assert audit.batch_hash(values, items_json) == hashlib.sha256(whole).hexdigest()
    assert whole == audit.canonical_bytes(values, [audit.StoredItem(*i) for i in items])


@pytest.mark.parametrize(
    "bad", [(True, PERSON_A, "status", None, None), ("1", PERSON_A, "status", None, None),
            (1, PERSON_A, 7, None, None), (1, 12, "status", None, None)],
)  # fmt: skip
def test_stored_items_of_the_wrong_type_are_refused_by_the_fast_path(bad: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError):
        audit.items_text([bad])


# ------------------------------------------------------------------ items given as columns


def _as_columns(items: list[bulk.BatchItem]) -> bulk.BatchColumns:
    """The same items as columns, one kind per distinct (fields, result, purpose)."""
    kinds: list[bulk.ItemKind] = []
    kind_of: list[int] = []
    for item in items:
        kind = bulk.ItemKind(item.fields, item.result, item.purpose)
        if kind not in kinds:
            kinds.append(kind)
        kind_of.append(kinds.index(kind))
    return bulk.BatchColumns(
        [item.item for item in items], [item.personal_id for item in items], kind_of, kinds
    )


@settings(max_examples=60)
@given(
    items=st.lists(
        st.tuples(
            st.integers(1, 3),
            st.sampled_from(PEOPLE),
            st.lists(_FIELD, min_size=1, max_size=3).map(tuple),
            st.none() | st.sampled_from(["match", "mismatch", 'q"uo\\te']),
            st.none() | st.just(PURPOSE) | _TEXT,
        ),
        min_size=1,
        max_size=12,
    ),
    postgres=st.booleans(),
)
def test_items_as_columns_are_prepared_exactly_as_the_same_items_one_by_one(
    items: list[tuple[int, str, tuple[str, ...], str | None, str | None]], postgres: bool
) -> None:
    numbered = []
    number = 0
    for step, person, fields, result, own in items:
        number += step
        numbered.append(bulk.BatchItem(number, person, fields, result, own))
    by_item = bulk.prepare_batch(batch(items=numbered), postgres=postgres)
    by_column = bulk.prepare_batch(batch(items=_as_columns(numbered)), postgres=postgres)
    assert by_column.items_text == by_item.items_text
    assert by_column.rows == by_item.rows
    assert by_column.copy_lines == by_item.copy_lines
    assert by_column.values == by_item.values


def test_bad_items_given_as_columns_are_named_as_one_by_one(session: Session) -> None:
    items = [item for item in _BAD_ITEMS if isinstance(item, bulk.BatchItem)]
    problems = []
    for form in (items, _as_columns(items)):
        with pytest.raises(InvalidAccessEntry) as caught:
            bulk.append_batch(session, batch(items=form))
        problems.append(sorted(str(p) for p in caught.value.problems))
    assert problems[0] == problems[1]
    assert len(problems[0]) == 13
    assert session.scalar(select(func.count()).select_from(AccessLog)) == 0


@pytest.mark.parametrize(
    "columns",
    [
        bulk.BatchColumns([1, 2], [PERSON_A], [0, 0], [bulk.ItemKind(["status"])]),
        bulk.BatchColumns([1], [PERSON_A], [1], [bulk.ItemKind(["status"])]),
        bulk.BatchColumns([1], [PERSON_A], [-1], [bulk.ItemKind(["status"])]),
        bulk.BatchColumns([1], [PERSON_A], [True], [bulk.ItemKind(["status"])]),
        bulk.BatchColumns([1], [PERSON_A], [0], [("status",)]),  # type: ignore[list-item]
        bulk.BatchColumns([1], ["bad"], [0], [None]),  # type: ignore[list-item]
        bulk.BatchColumns([1], ["bad"], [0], [("a", "b", "c", "d")]),  # type: ignore[list-item]
        bulk.BatchColumns((n for n in [1]), [PERSON_A], [0], [bulk.ItemKind(["status"])]),  # type: ignore[arg-type]
        bulk.BatchColumns([1], None, [0], [bulk.ItemKind(["status"])]),  # type: ignore[arg-type]
        bulk.BatchColumns({0: 1}, [PERSON_A], [0], [bulk.ItemKind(["status"])]),  # type: ignore[arg-type]
        bulk.BatchColumns([1], PERSON_A, [0], [bulk.ItemKind(["status"])]),  # type: ignore[arg-type]
    ],
)
def test_columns_that_do_not_fit_together_are_refused(
    session: Session, columns: bulk.BatchColumns
) -> None:
    with pytest.raises(InvalidAccessEntry) as caught:
        bulk.append_batch(session, batch(items=columns))
    assert [p.field for p in caught.value.problems] == ["items"]
    assert session.scalar(select(func.count()).select_from(AccessLog)) == 0


def test_items_given_as_columns_are_written_read_back_and_verified(session: Session) -> None:
    written = batch().items
    assert isinstance(written, list)
    head = bulk.append_batch(session, batch(items=_as_columns(written)))
    assert audit.verify(session).intact
    seen = audit.for_person(session, PEOPLE[5]).items
    assert [e.id for e in seen] == [head.entry_id]
    assert seen[0].purpose == "thẩm định khoản vay"


def test_empty_columns_are_refused_as_an_empty_batch(session: Session) -> None:
    with pytest.raises(InvalidAccessEntry) as caught:
        bulk.append_batch(session, batch(items=bulk.BatchColumns([], [], [], [])))
    assert [p.reason for p in caught.value.problems] == [f"give 1 to {audit.MAX_ITEMS:,} items"]


def test_a_kind_no_item_is_is_not_read(session: Session) -> None:
    """As with a list of items, only what the items name is checked: a bad kind no item
    refers to changes nothing."""
    kinds = [bulk.ItemKind(["status"], "match"), bulk.ItemKind(["Bad Field"], "x\x00")]
    columns = bulk.BatchColumns([1], [PERSON_A], [0], kinds)
    by_column = bulk.prepare_batch(batch(items=columns))
    assert by_column == bulk.prepare_batch(batch(items=columns.as_items()))


@pytest.mark.parametrize("columns", [False, True], ids=["items", "columns"])
def test_item_texts_that_look_like_copy_escapes_are_stored_as_given(
    session: Session, columns: bool
) -> None:
    """On PostgreSQL the items travel in COPY's text format, where a backslash starts an
    escape and ``\\N`` is NULL: texts holding them are stored and read back as given."""
    tricky = ["\\N", "C:\\sổ\\tay", "a\\tb\\nc", "\\\\", "null", "NULL"]
    items = [
        bulk.BatchItem(n, person, ["status"], text, f"{text} thẩm định")
        for n, (person, text) in enumerate(zip(PEOPLE, tricky, strict=False), start=1)
    ]
    head = bulk.append_batch(session, batch(items=_as_columns(items) if columns else items))
    stored = session.execute(
        select(AccessLogItem.item, AccessLogItem.result, AccessLogItem.purpose)
        .where(AccessLogItem.entry_id == head.entry_id)
        .order_by(AccessLogItem.item)
    ).all()
    assert [tuple(row) for row in stored] == [
        (item.item, item.result, item.purpose) for item in items
    ]
    assert audit.verify(session).intact


@given(value=st.none() | st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_a_copy_field_is_read_back_by_the_format_s_rules(value: str | None) -> None:
    """``copy_field`` against COPY's text format as PostgreSQL's documentation states it:
    ``\\N`` alone is NULL; a backslash and the next character are that character, except
    ``\\t``, ``\\n`` and ``\\r``; no raw tab, newline or carriage return in a field."""
    field = bulk.copy_field(value)
    assert not {"\t", "\n", "\r"} & set(field)
    if field == "\\N":
        assert value is None
        return
    read, pending = [], False
    for character in field:
        if pending:
            read.append({"t": "\t", "n": "\n", "r": "\r"}.get(character, character))
            pending = False
        elif character == "\\":
            pending = True
        else:
            read.append(character)
    assert not pending
    assert "".join(read) == value
