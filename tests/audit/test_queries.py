"""Reading the log: the citizen's view (newest first, paginated) and the auditor's search."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from dancu.audit import service as audit
from dancu.audit.exceptions import InvalidAccessQuery
from tests.audit.factories import PERSON_A, PERSON_B, T0, entry

BANK = "Ngân hàng Thử Nghiệm"
WARD = "Công an phường Thử Nghiệm"


@pytest.fixture
def log(session: Session) -> None:
    """Five reads of person A (one every hour from T0) and three of person B by a bank."""
    audit.record(
        session,
        [
            entry(occurred_at=T0 + dt.timedelta(hours=h), request_id=f"a-{h}")
            for h in (2, 0, 4, 1, 3)
        ],
    )
    audit.record(
        session,
        [
            entry(
                actor="bank-client-7",
                actor_kind="client",
                organization=BANK,
                personal_id=PERSON_B,
                channel="verify",
                fields=["full_name"],
                purpose="xác thực khách hàng mở tài khoản",
                result="match",
                occurred_at=T0 + dt.timedelta(hours=h, minutes=30),
                request_id=f"b-{h}",
            )
            for h in range(3)
        ],
    )


@pytest.mark.usefixtures("log")
def test_a_citizen_sees_who_read_their_data_newest_first(session: Session) -> None:
    first = audit.for_person(session, PERSON_A, limit=2)
    assert [e.request_id for e in first.items] == ["a-4", "a-3"]
    assert first.has_more
    last = audit.for_person(session, PERSON_A, limit=2, offset=4)
    assert [e.request_id for e in last.items] == ["a-0"]
    assert not last.has_more
    assert last.items[0].occurred_at == T0
    assert last.items[0].occurred_at.tzinfo is not None
    assert audit.for_person(session, "001099999999").items == []


@pytest.mark.usefixtures("log")
def test_auditors_search_by_organization_actor_person_and_time(session: Session) -> None:
    by_bank = audit.search(session, organization=BANK)
    assert [e.request_id for e in by_bank.items] == ["b-2", "b-1", "b-0"]
    assert {e.result for e in by_bank.items} == {"match"}
    assert audit.search(session, actor="bank-client-7", limit=1).has_more
    window = audit.search(
        session,
        organization=WARD,
        since=T0 + dt.timedelta(hours=1),
        until=T0 + dt.timedelta(hours=3),
    )
    assert [e.request_id for e in window.items] == ["a-2", "a-1"], "since in, until out"
    # The same instant written in Vietnam's time zone finds the same entries.
    ict = dt.timezone(dt.timedelta(hours=7))
    assert [
        e.request_id
        for e in audit.search(
            session,
            personal_id=PERSON_A,
            since=(T0 + dt.timedelta(hours=1)).astimezone(ict),
            until=(T0 + dt.timedelta(hours=3)).astimezone(ict),
        ).items
    ] == ["a-2", "a-1"]
    both = audit.search(session, personal_id=PERSON_B, organization=BANK, offset=2)
    assert [e.request_id for e in both.items] == ["b-0"]
    assert audit.search(session, personal_id=PERSON_A, organization=BANK).items == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"personal_id": PERSON_A, "limit": 0}, "limit"),
        ({"personal_id": PERSON_A, "limit": 501}, "limit"),
        ({"personal_id": PERSON_A, "offset": -1}, "offset"),
        ({"personal_id": "12345"}, "personal_id"),
        ({"personal_id": "٠٠١٠٨٥٠٠٠٠٠١"}, "personal_id"),  # digits, but not ASCII ones
        ({"organization": "  "}, "organization"),
        ({}, None),
        ({"since": T0}, None),
        ({"actor": "x", "since": T0.replace(tzinfo=None)}, "since"),
        ({"actor": "x", "since": T0, "until": T0 - dt.timedelta(seconds=1)}, "since"),
    ],
)
def test_bad_queries_name_the_field(
    session: Session, kwargs: dict[str, object], field: str | None
) -> None:
    with pytest.raises(InvalidAccessQuery) as caught:
        audit.search(session, **kwargs)  # type: ignore[arg-type]
    assert [p.field for p in caught.value.problems] == [field]
    assert caught.value.status == 400


def test_the_citizen_view_validates_too(session: Session) -> None:
    assert audit.search(session, actor="x", limit=500, since=T0, until=T0).items == []
    with pytest.raises(InvalidAccessQuery):
        audit.for_person(session, PERSON_A, limit=501)
    with pytest.raises(InvalidAccessQuery):
        audit.for_person(session, "not-an-id")
