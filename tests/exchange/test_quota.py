"""Per-client quotas in fixed minute and day windows: in-process and shared."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.exchange import quota
from dancu.exchange.exceptions import QuotaExceeded
from dancu.exchange.models import ClientUsage
from dancu.exchange.quota import RateLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_minute_quota_refuses_then_resets_with_the_window() -> None:
    clock = Clock(60.0 * 16_667 + 20)  # 20 s into a minute
    limiter = RateLimiter(clock)
    for _ in range(3):
        limiter.take("a", per_minute=3, per_day=100)
    with pytest.raises(QuotaExceeded) as caught:
        limiter.take("a", per_minute=3, per_day=100)
    assert caught.value.retry_after == 40
    assert caught.value.headers == {"Retry-After": "40"}
    limiter.take("b", per_minute=3, per_day=100)  # clients are counted apart
    clock.now += 40
    limiter.take("a", per_minute=3, per_day=100)


def test_the_day_quota_counts_across_minutes() -> None:
    clock = Clock(86_400.0 * 10)
    limiter = RateLimiter(clock)
    for _ in range(5):
        limiter.take("a", per_minute=10, per_day=5)
        clock.now += 61
    with pytest.raises(QuotaExceeded) as caught:
        limiter.take("a", per_minute=10, per_day=5)
    assert 0 < caught.value.retry_after <= 86_400


def test_a_refused_request_is_not_counted_and_a_batch_counts_its_items() -> None:
    limiter = RateLimiter(Clock(60.0))
    with pytest.raises(QuotaExceeded):
        limiter.take("a", per_minute=10, per_day=100, count=11)
    limiter.take("a", per_minute=10, per_day=100, count=10)
    with pytest.raises(QuotaExceeded):
        limiter.take("a", per_minute=10, per_day=100)


def test_the_shared_count_spans_workers_and_refused_ones_are_not_counted(
    session: Session,
) -> None:
    """Two workers (two calls) count against one quota in the database."""
    now = 60.0 * 1_000 + 30
    args = {"per_minute": 5, "per_day": 100, "now": now}
    assert quota.consume(session, "dc_a", count=3, **args) == (3, 0)
    assert quota.consume(session, "dc_a", count=3, **args) == (2, 30)  # the other worker
    assert quota.consume(session, "dc_a", count=1, **args) == (0, 30)
    assert quota.consume(session, "dc_b", count=5, **args) == (5, 0)
    later = {**args, "now": now + 30}  # the next minute
    assert quota.consume(session, "dc_a", count=4, **later) == (4, 0)
    counts = dict(session.execute(select(ClientUsage.period, ClientUsage.count).where(
        ClientUsage.client_id == "dc_a")).tuples().all())  # fmt: skip
    assert counts == {"m:1000": 5, "m:1001": 4, "d:0": 9}


def test_the_day_quota_is_shared_too_and_old_windows_are_purged(session: Session) -> None:
    day = 86_400.0 * 20_000
    assert quota.consume(session, "dc_c", count=8, per_minute=100, per_day=10, now=day) == (8, 0)
    allowed, retry = quota.consume(
        session, "dc_c", count=5, per_minute=100, per_day=10, now=day + 120
    )
    assert allowed == 2 and retry == 86_400 - 120
    assert quota.purge(session, now=day + 86_400 + 1) >= 3
    assert session.scalar(select(func.count()).select_from(ClientUsage)) == 0
