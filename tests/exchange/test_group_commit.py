"""Group commit: concurrent verifications share transactions, and none is answered without
its log entry."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

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


def _postgres_only(app: FastAPI) -> None:
    if app.state.sessions.kw["bind"].engine.dialect.name != "postgresql":
        pytest.skip("the batch transaction on the event loop is PostgreSQL's")


@pytest.fixture
def batch_client(app: FastAPI) -> str:
    """A partner's client id, on PostgreSQL (the batch transaction on the event loop)."""
    _postgres_only(app)
    with unit_of_work(app.state.sessions) as session:
        return add_partner(session).client_id


def _batch(client_id: str, size: int = 3, request_id: str = "b") -> verify_service.Batch:
    claims = [parse_claim({"personal_id": ALIVE, "sex": "M"})] * size
    return verify_service.Batch(client_id, "Org", PURPOSE, request_id, claims, [None] * size)


async def test_a_refused_batch_leaves_its_connection_idle_for_the_next(
    app: FastAPI, batch_client: str
) -> None:
    """Refused mid-transaction (a client with no right to verify), a batch rolls back,
    counts nothing, and leaves its connection idle and kept: the next batch uses it."""
    committer = GroupCommitter(app.state.sessions)
    try:
        with pytest.raises(ClientSuspended):
            await committer.commit_batch(_batch("dc_nobody"))
        (kept,) = committer._groups(asyncio.get_running_loop()).idle
        assert kept.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        answers = await committer.commit_batch(_batch(batch_client))
        assert committer._groups(asyncio.get_running_loop()).idle == [kept]
    finally:
        committer.stop()
    assert [a.result for a in answers] == ["match"] * 3
    assert kept.closed  # stop() closes the idle connections
    with unit_of_work(app.state.sessions) as session:
        counted = session.scalars(
            select(ClientUsage.count).where(ClientUsage.client_id == "dc_nobody")
        ).all()
    assert counted == []


async def test_a_batch_past_its_quota_is_refused_whole_and_counts_nothing(app: FastAPI) -> None:
    """The quota upsert runs in the batch's transaction: refused, it is rolled back with the
    rest, so the client's count stays where it was and nothing is logged."""
    _postgres_only(app)
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, per_minute=3)
    committer = GroupCommitter(app.state.sessions)
    try:
        with pytest.raises(QuotaExceeded):
            await committer.commit_batch(_batch(partner.client_id, size=4))
    finally:
        committer.stop()
    with unit_of_work(app.state.sessions) as session:
        counted = session.scalars(
            select(ClientUsage.count).where(ClientUsage.client_id == partner.client_id)
        ).all()
        logged = audit.search(session, actor=partner.client_id).items
    assert counted == []
    assert logged == []


def _broken(*_args: object) -> None:
    raise OSError("no space left on device")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("link_batch", _broken),  # before the items are sent
        ("PG_COPY_ITEMS_SQL", "COPY no_such_table (x) FROM STDIN"),  # in the items' COPY
    ],
    ids=["chaining", "copy"],
)
async def test_a_failed_batch_is_a_503_and_its_connection_is_not_kept(
    app: FastAPI, batch_client: str, monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    committer = GroupCommitter(app.state.sessions)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(verify_service.bulk, name, value)
            with pytest.raises(AccessLogUnavailable):
                await committer.commit_batch(_batch(batch_client))
        assert committer._groups(asyncio.get_running_loop()).idle == []
        answers = await committer.commit_batch(_batch(batch_client, request_id="b2"))
    finally:
        committer.stop()
    assert [a.result for a in answers] == ["match"] * 3
    with unit_of_work(app.state.sessions) as session:
        logged = audit.search(session, actor=batch_client).items
        # the failed batch left nothing: only the second one's items ("b2:<item>")
        assert [entry.request_id for entry in logged] == ["b2:1", "b2:2", "b2:3"]
        assert audit.verify(session).intact


async def test_no_more_batches_run_at_once_than_allowed(
    app: FastAPI, batch_client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``batch_concurrency``, batches wait for a slot (each would hold a connection)."""
    running = most = 0
    real = verify_service.commit_batch_pg_async

    async def counted(*args: object, **kwargs: object) -> list[Answer]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)
            return await real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            running -= 1

    monkeypatch.setattr("dancu.exchange.group_commit.commit_batch_pg_async", counted)
    committer = GroupCommitter(app.state.sessions, batch_concurrency=2)
    try:
        results = await asyncio.gather(
            *(committer.commit_batch(_batch(batch_client, request_id=f"c{n}"))
              for n in range(6))
        )  # fmt: skip
        idle = len(committer._groups(asyncio.get_running_loop()).idle)
    finally:
        committer.stop()
    assert most == 2
    assert idle == 2  # one connection per slot, kept
    assert all([a.result for a in answers] == ["match"] * 3 for answers in results)


def test_a_committer_needs_room_for_a_batch(app: FastAPI) -> None:
    with pytest.raises(ValueError, match="batch_concurrency"):
        GroupCommitter(app.state.sessions, batch_concurrency=0)


def test_a_batch_compares_in_slices_with_the_same_result(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the event loop a batch pauses between slices of its comparison (an empty round
    trip: the loop runs its other work); the answers and log items are those of one pass."""
    monkeypatch.setattr(verify_service, "PAUSE_EVERY", 100)
    numbers = [ALIVE, UNKNOWN, NINE_DIGIT_LEGACY, OLD_CARD_LEGACY] * 88  # 352 items
    claims = [parse_claim({"personal_id": n, "sex": "M"}) for n in numbers]
    batch = verify_service.Batch("dc_x", "Org", PURPOSE, "s", claims, [None] * len(claims))
    with app.state.sessions() as session:
        rows = verify_service.fetch(session, numbers)
    trips = verify_service._paused(verify_service._batch_answers(batch, rows))
    pauses = 0
    while True:
        try:
            assert next(trips) == []
        except StopIteration as done:
            sliced = done.value
            break
        pauses += 1
    assert pauses == 3
    whole = verify_service.batch_answers(batch, rows)
    assert sliced[0] == whole[0]
    assert sliced[1] == whole[1]
    assert len(whole[0]) == 352 and whole[1].positions


@pytest.mark.parametrize(
    ("numbers", "own"),
    [
        ([ALIVE, UNKNOWN, NINE_DIGIT_LEGACY, "987654321", OLD_CARD_LEGACY, ALIVE],
         [None, "Khác", None, "Khác", None, "Khác"]),
        ([ALIVE, UNKNOWN, ALIVE, UNKNOWN], [None] * 4),
    ],
    ids=["legacy-numbers-and-own-purposes", "personal-ids-only"],
)  # fmt: skip
def test_a_batchs_log_items_are_whose_data_was_read(
    app: FastAPI, numbers: list[str], own: list[str | None]
) -> None:
    """The log's items as columns, against the rule item by item: an item per person read
    (the register's personal ID for a legacy number found, the 12-digit number asked when
    not found), none for a legacy number not found; a kind per distinct answer and purpose
    (an item's own purpose only where it differs from the batch's)."""
    claims = [parse_claim({"personal_id": n, "sex": "M"}) for n in numbers]
    batch = verify_service.Batch("dc_x", "Org", PURPOSE, "s", claims, own)
    with app.state.sessions() as session:
        rows = verify_service.fetch(session, numbers)
    answers, items = verify_service.batch_answers(batch, rows)
    expected = []
    each = zip(numbers, own, answers, strict=True)
    for position, (number, purpose, found) in enumerate(each, start=1):
        row = rows.get(number)
        person = row.personal_id if row is not None else number
        if len(person) == 12:
            expected.append((position, person, found.read, found.result, purpose))
    assert len(expected) == len(numbers) - numbers.count("987654321")
    got = [
        (position, person, *items.kinds[kind])
        for position, person, kind in zip(items.positions, items.people, items.kind_of, strict=True)
    ]
    assert got == expected
    assert len(items.kinds) == len({(e[2], e[3], e[4]) for e in expected})


async def test_a_batch_with_pauses_is_answered_and_logged_whole(
    app: FastAPI, batch_client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_service, "PAUSE_EVERY", 100)
    committer = GroupCommitter(app.state.sessions)
    try:
        answers = await committer.commit_batch(_batch(batch_client, size=350, request_id="p"))
    finally:
        committer.stop()
    assert [a.result for a in answers] == ["match"] * 350
    with unit_of_work(app.state.sessions) as session:
        page = audit.search(session, actor=batch_client, limit=500)
        assert len(page.items) == 350
        assert audit.verify(session).intact


async def test_the_loop_runs_between_a_batchs_slices(
    app: FastAPI, batch_client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each pause gives the event loop a turn (``asyncio.sleep(0)``) before the next slice."""
    monkeypatch.setattr(verify_service, "PAUSE_EVERY", 10)
    turns: list[float] = []
    real_sleep = asyncio.sleep

    async def counted(delay: float) -> None:
        turns.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr(verify_service.asyncio, "sleep", counted)
    committer = GroupCommitter(app.state.sessions)
    try:
        answers = await committer.commit_batch(_batch(batch_client, size=105, request_id="t"))
    finally:
        committer.stop()
    assert len(answers) == 105
    assert turns == [0] * 10  # before items 10, 20, ... 100


async def test_an_idle_connection_cut_by_the_server_is_replaced(
    app: FastAPI, batch_client: str
) -> None:
    """A kept connection the server has since closed (a restart, an idle timeout) costs no
    batch its answer: it is checked before use and replaced."""
    committer = GroupCommitter(app.state.sessions)
    try:
        await committer.commit_batch(_batch(batch_client, request_id="first"))
        (kept,) = committer._groups(asyncio.get_running_loop()).idle
        with app.state.sessions() as session:
            session.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.info.backend_pid}
            )
        answers = await committer.commit_batch(_batch(batch_client, request_id="second"))
        (replaced,) = committer._groups(asyncio.get_running_loop()).idle
    finally:
        committer.stop()
    assert [a.result for a in answers] == ["match"] * 3
    assert replaced is not kept and kept.closed


async def test_a_batch_ending_after_stop_closes_its_connection(
    app: FastAPI, batch_client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = GroupCommitter(app.state.sessions)
    started = asyncio.Event()
    real = verify_service.commit_batch_pg_async

    async def slow(*args: object, **kwargs: object) -> list[Answer]:
        started.set()
        await asyncio.sleep(0.05)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("dancu.exchange.group_commit.commit_batch_pg_async", slow)
    groups = committer._groups(asyncio.get_running_loop())
    running = asyncio.ensure_future(committer.commit_batch(_batch(batch_client)))
    await started.wait()
    committer.stop()
    answers = await running
    assert len(answers) == 3
    assert groups.idle == []
