"""Per-client quotas: verifications per minute and per UTC day, in fixed windows.

Two counters, one purpose:

* ``RateLimiter`` (in-process, on the event loop): refuses a client already past its quota in
  this worker without touching the database, so abusive traffic costs a dictionary look-up.
  Each worker counts on its own, so on its own it would let a client make up to
  (workers x quota).
* ``consume`` (in the database, ``client_usage``): the authoritative count, shared by every
  worker and kept across restarts. The group commit calls it once per client per batch, in
  the transaction that writes the access log, and refuses (429) what is past the quota;
  refused verifications are not counted. Redis is not needed: the count rides on a
  transaction the verification makes anyway (one upsert per client and window per batch).

A batch counts each of its items: the quota is on verifications, whatever the envelope.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Insert, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dancu.exchange.exceptions import QuotaExceeded
from dancu.exchange.models import ClientUsage

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


def _upsert(session: Session, client_id: str, period: str, add: int, ends: float) -> int:
    """Add ``add`` to the client's count for ``period``; the new count (the row stays locked
    until the transaction ends, so concurrent workers count one after the other)."""
    table = ClientUsage.__table__
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert: Insert = module.insert(table).values(
        client_id=client_id,
        period=period,
        count=add,
        expires_at=dt.datetime.fromtimestamp(ends, dt.UTC),
    )
    statement = insert.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=["client_id", "period"],
        set_={"count": table.c.count + insert.excluded.count},  # type: ignore[attr-defined]
    ).returning(table.c.count)
    return int(session.execute(statement).scalar_one())


def consume(
    session: Session,
    client_id: str,
    *,
    count: int,
    per_minute: int,
    per_day: int,
    now: float | None = None,
) -> tuple[int, int]:
    """Count up to ``count`` verifications against the client's quota in the database.

    Returns (how many are allowed, seconds until the refusing window ends or 0). The allowed
    ones are counted in the caller's transaction; the refused ones are not.
    """
    now = time.time() if now is None else now
    windows = _windows(now, per_minute, per_day)
    totals = [_upsert(session, client_id, key, count, ends) for key, _limit, ends in windows]
    allowed, retry = _allowed(windows, totals, count, now)
    if allowed < count:
        for key, _limit, ends in windows:
            _upsert(session, client_id, key, allowed - count, ends)
    return allowed, retry


def _windows(now: float, per_minute: int, per_day: int) -> list[tuple[str, int, float]]:
    """The client's current windows: (key, limit, when it ends)."""
    return [
        (f"m:{int(now // _MINUTE)}", per_minute, (int(now // _MINUTE) + 1) * _MINUTE),
        (f"d:{int(now // _DAY)}", per_day, (int(now // _DAY) + 1) * _DAY),
    ]


def _allowed(
    windows: list[tuple[str, int, float]], totals: list[int], count: int, now: float
) -> tuple[int, int]:
    """How many of ``count`` just counted fit under every window's limit, given each
    window's new total, and the seconds until the refusing window ends (0 if all fit)."""
    allowed = count
    retry = 0
    for (_key, limit, ends), total in zip(windows, totals, strict=True):
        fits = max(0, limit - (total - count))
        if fits < count:
            retry = max(retry, max(1, math.ceil(ends - now)))
        allowed = min(allowed, fits)
    return allowed, retry


# PostgreSQL, for the group commit's own psycopg connection: every client of a group read
# (active ones only) and counted in both windows in ONE statement, instead of a status query
# and two upserts per client. Rows are upserted in key order (no deadlock between workers).
PG_ADMIT_SQL = """
WITH wanted AS (
  SELECT * FROM unnest(%(ids)s::text[], %(counts)s::int[]) AS w(client_id, n)
), active AS (
  SELECT c.client_id, c.per_minute, c.per_day, wanted.n
  FROM api_client AS c JOIN wanted USING (client_id)
  WHERE c.status = 'active'
), counted AS (
  INSERT INTO client_usage (client_id, period, count, expires_at)
  SELECT active.client_id, w.period, active.n, w.ends
  FROM active CROSS JOIN (VALUES (%(minute)s, %(minute_ends)s::timestamptz),
                                 (%(day)s, %(day_ends)s::timestamptz)) AS w(period, ends)
  ORDER BY active.client_id, w.period
  ON CONFLICT (client_id, period) DO UPDATE SET count = client_usage.count + excluded.count
  RETURNING client_id, period, count
)
SELECT active.client_id, active.per_minute, active.per_day,
       (SELECT count FROM counted AS m WHERE m.client_id = active.client_id
          AND m.period = %(minute)s) AS minute_total,
       (SELECT count FROM counted AS d WHERE d.client_id = active.client_id
          AND d.period = %(day)s) AS day_total
FROM active
"""
PG_GIVE_BACK_SQL = (
    "UPDATE client_usage SET count = count - %(n)s "
    "WHERE client_id = %(client_id)s AND period = ANY(%(periods)s::text[])"
)


def pg_admit_params(counts: dict[str, int], now: float) -> dict[str, object]:
    """The parameters of ``PG_ADMIT_SQL`` for ``counts`` (verifications per client)."""
    (minute, _, minute_ends), (day, _, day_ends) = _windows(now, 0, 0)
    return {
        "ids": list(counts),
        "counts": list(counts.values()),
        "minute": minute,
        "minute_ends": dt.datetime.fromtimestamp(minute_ends, dt.UTC),
        "day": day,
        "day_ends": dt.datetime.fromtimestamp(day_ends, dt.UTC),
    }


def pg_admitted(
    row: tuple[str, int, int, int, int], count: int, now: float
) -> tuple[int, int, dict[str, object] | None]:
    """From one row of ``PG_ADMIT_SQL`` (a client that is active, counted ``count`` times):
    how many are allowed, the seconds to wait for the rest, and the parameters of
    ``PG_GIVE_BACK_SQL`` that un-count the refused ones (None when all fit)."""
    client_id, per_minute, per_day, minute_total, day_total = row
    windows = _windows(now, per_minute, per_day)
    allowed, retry = _allowed(windows, [minute_total, day_total], count, now)
    if allowed == count:
        return allowed, retry, None
    give_back = {"n": count - allowed, "client_id": client_id, "periods": [w[0] for w in windows]}
    return allowed, retry, give_back


PG_PURGE_SQL = "DELETE FROM client_usage WHERE expires_at < %s"
"""``purge`` as a plain statement (its parameter: the moment, an aware datetime)."""


def purge(session: Session, *, now: float | None = None) -> int:
    """Delete the counts of windows that have ended; returns how many rows went."""
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    result = session.execute(delete(ClientUsage).where(ClientUsage.expires_at < moment))
    return int(getattr(result, "rowcount", 0) or 0)
