"""Group commit: concurrent verifications share transactions, and none is answered without
its log entry."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dancu.audit import service as audit
from dancu.db import unit_of_work
from dancu.exchange import verify as verify_service
from dancu.exchange.exceptions import AccessLogUnavailable, ClientSuspended, QuotaExceeded
from dancu.exchange.group_commit import GroupCommitter
from dancu.exchange.models import ClientUsage
from dancu.exchange.verify import Answer, Job
from dancu.registry.agreement import parse_claim
from tests.exchange.helpers import PURPOSE, add_partner
from tests.reconcile.helpers import ALIVE, NINE_DIGIT_LEGACY, OLD_CARD_LEGACY, UNKNOWN

pytestmark = pytest.mark.anyio


def _job(client_id: str, number: str = ALIVE, n: int = 0) -> Job:
    return Job(parse_claim({"personal_id": number, "sex": "M"}), client_id, "Org", PURPOSE, f"g{n}")


async def test_concurrent_requests_share_a_transaction(app: FastAPI) -> None:
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session)
    sizes: list[int] = []
    committer = GroupCommitter(app.state.sessions, on_batch=sizes.append)
    try:
        await committer.submit(_job(partner.client_id))  # the thread is running
        answers = await asyncio.gather(
            *(committer.submit(_job(partner.client_id, ALIVE if n % 2 else UNKNOWN, n))
              for n in range(200))
        )  # fmt: skip
    finally:
        committer.stop()
    assert [a.result for a in answers] == ["not_found", "match"] * 100
    assert sum(sizes) == 201
    assert max(sizes) > 1  # some requests were committed together


async def test_a_failed_commit_fails_every_request_of_the_batch(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session)

    def broken(*_args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(verify_service.bulk, "link", broken)  # both backends chain with it
    committer = GroupCommitter(app.state.sessions)
    try:
        results = await asyncio.gather(
            *(committer.submit(_job(partner.client_id, n=n)) for n in range(20)),
            return_exceptions=True,
        )
    finally:
        committer.stop()
    assert all(isinstance(r, AccessLogUnavailable) for r in results)


async def test_an_unknown_or_suspended_client_is_refused_in_the_batch(app: FastAPI) -> None:
    committer = GroupCommitter(app.state.sessions)
    try:
        with pytest.raises(ClientSuspended):
            await committer.submit(_job("dc_nobody"))
    finally:
        committer.stop()


@pytest.mark.parametrize("chunk", [None, 1], ids=["one-statement", "a-statement-a-number"])
async def test_one_group_reads_current_and_legacy_numbers_together(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    """A 9-digit CMND, a 12-digit CMND, a current number and an unknown one in one group:
    each is found as ``registry.service.lookup`` would find it, whether the register is read
    in one statement or split across several (as a batch of 10,000 numbers is)."""
    if chunk is not None:
        monkeypatch.setattr(verify_service, "_PG_CHUNK", chunk)
        monkeypatch.setattr(verify_service, "_CHUNK", chunk)
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session)
    sizes: list[int] = []
    committer = GroupCommitter(app.state.sessions, on_batch=sizes.append)
    numbers = [NINE_DIGIT_LEGACY, OLD_CARD_LEGACY, ALIVE, UNKNOWN] * 5
    try:
        await committer.submit(_job(partner.client_id))  # the thread is running
        answers = await asyncio.gather(
            *(committer.submit(_job(partner.client_id, number, n))
              for n, number in enumerate(numbers))
        )  # fmt: skip
    finally:
        committer.stop()
    assert [a.result == "not_found" for a in answers] == [False, False, False, True] * 5
    assert max(sizes) > 1


async def test_past_the_quota_in_a_group_only_the_allowed_are_counted(app: FastAPI) -> None:
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, per_minute=5)
    committer = GroupCommitter(app.state.sessions)
    try:
        results = await asyncio.gather(
            *(committer.submit(_job(partner.client_id, n=n)) for n in range(8)),
            return_exceptions=True,
        )
    finally:
        committer.stop()
    answered = [r for r in results if isinstance(r, Answer)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert (len(answered), len(refused)) == (5, 3)
    assert all(1 <= r.retry_after <= 60 for r in refused)
    with app.state.sessions() as session:
        counts = session.scalars(
            select(ClientUsage.count).where(ClientUsage.client_id == partner.client_id)
        ).all()
        assert sorted(counts) == [5, 5]  # the minute and the day; the refused not counted
        assert len(audit.search(session, actor=partner.client_id).items) == 5


async def test_after_a_failed_group_the_next_one_commits(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed group leaves the committer usable (on PostgreSQL it opens a new connection)."""
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session)
    link = verify_service.bulk.link
    calls: list[int] = []

    def fails_once(*args: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no space left on device")
        return link(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(verify_service.bulk, "link", fails_once)
    committer = GroupCommitter(app.state.sessions)
    try:
        with pytest.raises(AccessLogUnavailable):
            await committer.submit(_job(partner.client_id, n=1))
        answer = await committer.submit(_job(partner.client_id, n=2))
    finally:
        committer.stop()
    assert answer.result == "match"
    with app.state.sessions() as session:
        logged = audit.search(session, actor=partner.client_id).items
        assert [entry.request_id for entry in logged] == ["g2"]
        assert audit.verify(session).intact


def test_a_refused_batch_hands_its_pooled_connection_back_as_it_came(app: FastAPI) -> None:
    """A batch runs on a pooled connection switched to autocommit for its own BEGIN and
    COMMIT; refused mid-transaction (a client with no right to verify), it must leave that
    connection idle and transactional again, with nothing counted."""
    engine = app.state.sessions.kw["bind"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the plain-connection batch transaction is PostgreSQL's")
    claims = [parse_claim({"personal_id": ALIVE, "sex": "M"})] * 3
    batch = verify_service.Batch("dc_nobody", "Org", PURPOSE, "b", claims, [None] * 3)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with pytest.raises(ClientSuspended):
            verify_service.commit_batch_pg(conn, batch, now=time.time())
        assert conn.autocommit is False
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        raw.close()
    with unit_of_work(app.state.sessions) as session:
        counted = session.scalars(
            select(ClientUsage.count).where(ClientUsage.client_id == "dc_nobody")
        ).all()
    assert counted == []


def test_a_batch_past_its_quota_is_refused_whole_and_counts_nothing(app: FastAPI) -> None:
    """The quota upsert runs in the batch's transaction: refused, it is rolled back with the
    rest, so the client's count stays where it was and nothing is logged."""
    engine = app.state.sessions.kw["bind"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the plain-connection batch transaction is PostgreSQL's")
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, per_minute=3)
    claims = [parse_claim({"personal_id": ALIVE, "sex": "M"})] * 4
    batch = verify_service.Batch(partner.client_id, "Org", PURPOSE, "q", claims, [None] * 4)
    raw = engine.raw_connection()
    try:
        with pytest.raises(QuotaExceeded):
            verify_service.commit_batch_pg(raw.driver_connection, batch, now=time.time())
    finally:
        raw.close()
    with unit_of_work(app.state.sessions) as session:
        counted = session.scalars(
            select(ClientUsage.count).where(ClientUsage.client_id == partner.client_id)
        ).all()
        logged = audit.search(session, actor=partner.client_id).items
    assert counted == []
    assert logged == []
