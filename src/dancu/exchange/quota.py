"""Per-client quotas: requests per minute and per day, counted in fixed windows.

The limiter is in-process: nothing to run beside dancu, and a check costs a dictionary
look-up on the hot path. With several worker processes each keeps its own counts, so a
client may get up to (workers x quota) before every worker refuses it; size quotas per worker
or run one worker per partner-facing host (docs/exchange.md, "Quotas"). A shared counter
(Redis, or the database at each group commit) is the next step when that is not enough.

A batch counts each of its items: the quota is on verifications, whatever the envelope.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from dancu.exchange.exceptions import QuotaExceeded

_MINUTE = 60
_DAY = 86_400


@dataclass(slots=True)
class _Window:
    minute: int = -1
    minute_count: int = 0
    day: int = -1
    day_count: int = 0


class RateLimiter:
    """Fixed-window counters per client (minute and UTC day); use from one thread (the
    event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def take(self, client_id: str, *, per_minute: int, per_day: int, count: int = 1) -> None:
        """Count ``count`` verifications for the client, or raise QuotaExceeded (nothing is
        counted then) with the seconds until the window that refused them ends."""
        now = self._clock()
        minute, day = int(now // _MINUTE), int(now // _DAY)
        window = self._windows.get(client_id)
        if window is None:
            window = self._windows[client_id] = _Window()
        if window.minute != minute:
            window.minute, window.minute_count = minute, 0
        if window.day != day:
            window.day, window.day_count = day, 0
        if window.minute_count + count > per_minute:
            retry = max(1, math.ceil((minute + 1) * _MINUTE - now))
            if count > per_minute:
                retry = max(retry, _MINUTE)
            raise QuotaExceeded(
                f"quota of {per_minute:,} verifications a minute reached; retry in {retry} s",
                retry,
            )
        if window.day_count + count > per_day:
            retry = max(1, math.ceil((day + 1) * _DAY - now))
            raise QuotaExceeded(
                f"quota of {per_day:,} verifications a day reached; retry in {retry} s", retry
            )
        window.minute_count += count
        window.day_count += count
