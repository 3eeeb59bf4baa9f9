"""Group commit: concurrent verifications share transactions, and none is answered without
its log entry."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from dancu.db import unit_of_work
from dancu.exchange import verify as verify_service
from dancu.exchange.exceptions import AccessLogUnavailable, ClientSuspended
from dancu.exchange.group_commit import GroupCommitter
from dancu.exchange.verify import Job
from dancu.registry.agreement import parse_claim
from tests.exchange.helpers import PURPOSE, add_partner
from tests.reconcile.helpers import ALIVE, UNKNOWN

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

    monkeypatch.setattr(verify_service.audit, "append", broken)
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
