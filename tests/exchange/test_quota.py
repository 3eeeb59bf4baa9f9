"""Per-client quotas in fixed minute and day windows."""

from __future__ import annotations

import pytest

from dancu.exchange.exceptions import QuotaExceeded
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
