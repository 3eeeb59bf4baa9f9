"""The hash chain: it grows correctly, verifies, and detects changed, deleted and inserted
entries, and two concurrent writers never fork it."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import threading
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dancu.audit import service as audit
from dancu.audit.exceptions import ChainConflict, InvalidAccessEntry, InvalidAnchor
from dancu.audit.models import AccessLog
from dancu.audit.service import Anchor, LinkProblem
from tests.audit.factories import PERSON_B, T0, entry


def _append(session: Session, n: int) -> list[AccessLog]:
    return audit.record(
        session,
        [entry(occurred_at=T0 + dt.timedelta(minutes=i), request_id=f"r-{i}") for i in range(n)],
    )


def _values(session: Session, entry_id: int) -> dict[str, Any]:
    columns = [getattr(AccessLog, name) for name in (*audit.HASHED_COLUMNS, "entry_hash")]
    row = session.execute(select(*columns).where(AccessLog.id == entry_id)).one()
    return dict(row._mapping)


def _shift_ids(session: Session, from_id: int, by: int) -> None:
    """Renumber entries from ``from_id`` on, in two steps so no step clashes on the key."""
    session.execute(text("UPDATE access_log SET id = id + 1000000 WHERE id >= :i"), {"i": from_id})
    session.execute(
        text("UPDATE access_log SET id = id - 1000000 + :by WHERE id >= 1000000"), {"by": by}
    )


def test_the_chain_grows_from_genesis(session: Session) -> None:
    first = _append(session, 3)
    more = audit.record(session, [entry(personal_id=PERSON_B)])
    rows = [*first, *more]
    assert [r.id for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == audit.GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.entry_hash
    assert len({r.entry_hash for r in rows}) == 4
    assert audit.head(session) == Anchor(4, rows[-1].entry_hash)
    assert rows[0].fields == ["birth_date", "full_name"], "stored sorted"


def test_the_hash_is_the_documented_serialisation(session: Session) -> None:
    """Recomputed here from the description in docs/audit.md, not with the service's code."""
    row = audit.record(
        session,
        [
            entry(
                occurred_at=dt.datetime(
                    2026, 3, 1, 15, 4, 5, 120000, tzinfo=dt.timezone(dt.timedelta(hours=7))
                ),
                fields=["full_name", "birth_date", "full_name"],
                result=None,
            )
        ],
    )[0]
    document = {
        "actor": "can-bo-01",
        "actor_kind": "official",
        "channel": "web",
        "fields": ["birth_date", "full_name"],
        "id": 1,
        "occurred_at": "2026-03-01T08:04:05.120000Z",
        "organization": "Công an phường Thử Nghiệm",
        "personal_id": "001085000001",
        "prev_hash": "0" * 64,
        "purpose": "giải quyết thủ tục đăng ký thường trú",
        "request_id": "req-0001",
        "result": None,
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert raw.startswith('{"actor":"can-bo-01","actor_kind":"official","channel":"web",')
    expected = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    assert row.entry_hash == expected
    assert _values(session, 1)["entry_hash"] == expected
    # The worked example in docs/audit.md.
    assert expected == "d0e985667975d0800351ea079b04238073f7bc75e43491d90f443fdcc37cdbbd"


def test_a_sound_log_verifies(session: Session) -> None:
    assert audit.verify(session) == audit.VerifyResult(0, None, None)
    rows = _append(session, 7)
    result = audit.verify(session, batch_size=3)
    assert result.intact
    assert result.entries == 7
    assert result.last == Anchor(7, rows[-1].entry_hash)
    assert audit.verify(session, anchor=Anchor(4, rows[3].entry_hash)).intact


def test_a_changed_entry_is_caught_at_that_entry(session: Session) -> None:
    _append(session, 5)
    session.execute(text("UPDATE access_log SET purpose = 'kiểm tra' WHERE id = 3"))
    result = audit.verify(session, batch_size=2)
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.problem) == (3, LinkProblem.ALTERED)
    assert result.entries == 2
    assert "changed" in result.broken.detail


def test_a_changed_and_rehashed_entry_breaks_the_next_link(session: Session) -> None:
    _append(session, 5)
    values = _values(session, 3)
    values["personal_id"] = PERSON_B
    session.execute(
        text("UPDATE access_log SET personal_id = :p, entry_hash = :h WHERE id = 3"),
        {"p": PERSON_B, "h": audit.compute_hash(values)},
    )
    result = audit.verify(session)
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.problem) == (4, LinkProblem.UNLINKED)


@pytest.mark.parametrize(("deleted", "reported"), [(3, 4), (1, 2)])
def test_a_deleted_entry_leaves_a_gap(session: Session, deleted: int, reported: int) -> None:
    _append(session, 5)
    session.execute(text("DELETE FROM access_log WHERE id = :i"), {"i": deleted})
    result = audit.verify(session)
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.problem) == (reported, LinkProblem.MISSING)
    assert f"entry {deleted} is missing" in result.broken.detail


def test_a_deletion_hidden_by_renumbering_still_breaks_the_chain(session: Session) -> None:
    _append(session, 5)
    session.execute(text("DELETE FROM access_log WHERE id = 3"))
    _shift_ids(session, 4, -1)
    result = audit.verify(session)
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.problem) == (3, LinkProblem.UNLINKED)


def test_a_forged_entry_with_a_wrong_hash_is_caught(session: Session) -> None:
    rows = _append(session, 3)
    forged = {
        **_values(session, 3),
        "id": 4,
        "prev_hash": rows[-1].entry_hash,
        "personal_id": PERSON_B,
        "entry_hash": hashlib.sha256(b"plausible").hexdigest(),
    }
    session.execute(insert(AccessLog), [forged])
    result = audit.verify(session)
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.problem) == (4, LinkProblem.ALTERED)


def test_a_correctly_hashed_entry_inserted_in_the_middle_is_caught(session: Session) -> None:
    rows = _append(session, 5)
    _shift_ids(session, 3, 1)
    forged = {
        **_values(session, 2),
        "id": 3,
        "prev_hash": rows[1].entry_hash,
        "personal_id": PERSON_B,
        "purpose": "tra cứu",
    }
    forged["entry_hash"] = audit.compute_hash(forged)
    session.execute(insert(AccessLog), [forged])
    result = audit.verify(session)
    assert result.broken is not None
    assert result.broken.entry_id == 4
    assert result.broken.problem == LinkProblem.UNLINKED
    assert result.entries == 3


def test_only_an_anchor_catches_a_rewritten_chain_or_a_cut_tail(session: Session) -> None:
    rows = _append(session, 5)
    pinned = Anchor(5, rows[-1].entry_hash)
    # Rewrite entry 3 and recompute every hash after it: the chain alone holds.
    prev = rows[1].entry_hash
    for entry_id in (3, 4, 5):
        values = _values(session, entry_id)
        values["prev_hash"] = prev
        if entry_id == 3:
            values["purpose"] = "đã sửa"
        prev = audit.compute_hash(values)
        session.execute(
            text(
                "UPDATE access_log SET purpose = :p, prev_hash = :r, entry_hash = :h WHERE id = :i"
            ),
            {"p": values["purpose"], "r": values["prev_hash"], "h": prev, "i": entry_id},
        )
    assert audit.verify(session).intact
    broken = audit.verify(session, anchor=pinned).broken
    assert broken is not None
    assert (broken.entry_id, broken.problem) == (5, LinkProblem.ANCHOR_MISMATCH)

    session.execute(text("DELETE FROM access_log WHERE id >= 4"))
    assert audit.verify(session).intact
    broken = audit.verify(session, anchor=pinned).broken
    assert broken is not None
    assert (broken.entry_id, broken.problem) == (5, LinkProblem.ANCHOR_MISSING)


def test_an_unreadable_value_is_reported_not_raised(session: Session, is_postgres: bool) -> None:
    if is_postgres:
        pytest.skip("PostgreSQL's json and timestamptz types refuse malformed values")
    _append(session, 4)
    session.execute(text("UPDATE access_log SET fields = 'not json' WHERE id = 3"))
    result = audit.verify(session, batch_size=10)
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.problem) == (3, LinkProblem.UNREADABLE)
    assert result.entries == 2


def test_a_malformed_anchor_is_refused(session: Session) -> None:
    with pytest.raises(InvalidAnchor):
        audit.verify(session, anchor=Anchor(1, "abc"))
    with pytest.raises(InvalidAnchor):
        audit.verify(session, anchor=Anchor(0, "0" * 64))


def test_bad_entries_are_refused_all_at_once_and_nothing_is_written(session: Session) -> None:
    _append(session, 1)
    bad = [
        entry(),
        entry(purpose="   "),
        entry(personal_id="12345", fields=[]),
        entry(actor_kind="robot", channel="fax"),
        entry(organization=None),
        entry(occurred_at=dt.datetime(2026, 1, 1), fields="full_name"),
        entry(actor="a\nb", fields=["Full Name"]),
        entry(personal_id="００１０８５０００００１"),  # full-width digits: not a personal ID
    ]
    with pytest.raises(InvalidAccessEntry) as caught:
        audit.record(session, bad)
    found = {(p.row, p.field) for p in caught.value.problems}
    assert found == {
        (2, "purpose"),
        (3, "personal_id"),
        (3, "fields"),
        (4, "actor_kind"),
        (4, "channel"),
        (5, "organization"),
        (6, "occurred_at"),
        (6, "fields"),
        (7, "actor"),
        (7, "fields"),
        (8, "personal_id"),
    }
    assert session.scalar(select(func.count()).select_from(AccessLog)) == 1


def test_a_citizen_reading_their_own_record_needs_no_organization(session: Session) -> None:
    row = audit.record(
        session,
        [entry(actor="e-id-sub-42", actor_kind="citizen", organization=None, channel="portal")],
    )[0]
    assert row.organization is None
    assert audit.verify(session).intact


def test_a_writer_with_a_stale_head_cannot_fork_the_chain(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _append(session, 2)
    session.expunge_all()
    stale = Anchor(1, rows[0].entry_hash)
    monkeypatch.setattr(audit, "head", lambda _session: stale)
    with pytest.raises(ChainConflict):
        audit.record(session, [entry()])


def test_entries_are_frozen() -> None:
    with pytest.raises(AttributeError):
        entry().purpose = "khác"  # type: ignore[misc]


def test_concurrent_writers_never_fork_the_chain(engine: Engine) -> None:
    errors: list[BaseException] = []
    with Session(engine) as s:
        before = s.scalar(select(func.count()).select_from(AccessLog)) or 0

    def write(name: str) -> None:
        try:
            for i in range(50):
                with Session(engine) as s:
                    audit.record(s, [entry(actor=name, request_id=f"{name}-{i}")])
                    s.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"thread-{n}",)) for n in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        with Session(engine) as s:
            result = audit.verify(s, batch_size=17)
            assert result.intact, result.broken
            assert result.entries == before + 100
            assert s.scalar(select(func.count(func.distinct(AccessLog.prev_hash)))) == before + 100
    finally:
        with Session(engine) as s:
            s.execute(delete(AccessLog).where(AccessLog.actor.in_(["thread-0", "thread-1"])))
            s.commit()
