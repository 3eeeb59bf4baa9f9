"""Generations of the access log's batch items (PostgreSQL): a small index to write to,
however long the log grows.

Every person of a batch verification is one ``access_log_item`` row, found by person through
a hash index. Once that index holds millions of items, each insertion lands on a page far
from the last one: on a 2-core machine the batch figure fell from about 90,000 to 70,000
items/s as the log grew past 10 million items, and by a fifth with 6 GB of shared buffers too
(docs/benchmarks.md, "Generations of the access log's items"). So on PostgreSQL the table is
partitioned by ``generation`` (one list partition each, ``access_log_item_g<n>``): writers put
their items in the current generation (``access_log_generation.current``, read under the
chain's append lock), and :func:`rotate` closes it once it passes a size, attaching the next.
A closed generation is never written again. Readers see one table; a search by person probes
each generation's small index.

Rotation holds the append lock (a batch being written finishes first; the next waits a few
milliseconds) and attaches the new partition with ``ATTACH PARTITION``, which takes a SHARE
UPDATE EXCLUSIVE lock on the parent: reads and writes go on. A lock it cannot get within
``lock_timeout`` leaves the generation as it was, for the next try. The server tries at
most every ``audit_rotate_seconds`` after a batch (:class:`Rotator`); operators can rotate
with ``dancu audit rotate``. SQLite keeps every item in generation 0: nothing rotates there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from dancu.audit.service import ADVISORY_LOCK_KEY

log = logging.getLogger(__name__)

TABLE = "access_log_item"
# the current generation, read by a PostgreSQL writer under the append lock
PG_CURRENT_SQL = "SELECT current FROM access_log_generation WHERE id = 1"
# how long rotation waits for a lock before leaving the generation for the next try
LOCK_TIMEOUT = "2s"


def partition(generation: int) -> str:
    """The name of a generation's partition."""
    if type(generation) is not int or generation < 0:
        raise ValueError("a generation is a whole number from 0")
    return f"{TABLE}_g{generation}"


class Generation(NamedTuple):
    """One generation: its number, its partition's size in bytes (rows and indexes), and
    whether items are written to it now."""

    generation: int
    bytes: int
    current: bool


class Rotated(NamedTuple):
    """What :func:`rotate` did: the generation items go to now, the one before (None if
    nothing rotated) and the size in bytes of the current one's rows when it was measured."""

    current: int
    closed: int | None
    bytes: int


def postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def current(connection: Connection) -> int:
    """The generation items are written to now (0 on SQLite, and before any rotation)."""
    found = connection.execute(text(PG_CURRENT_SQL)).scalar()
    return int(found) if found is not None else 0


def generations(connection: Connection) -> list[Generation]:
    """Every generation, oldest first, with its size (PostgreSQL); on SQLite the one."""
    now = current(connection)
    if not postgres(connection):
        return [Generation(0, 0, True)]
    rows = connection.execute(
        text(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table) ORDER BY c.relname"
        ),
        {"table": TABLE},
    ).all()
    found = [
        Generation(int(name.rsplit("_g", 1)[1]), int(size), int(name.rsplit("_g", 1)[1]) == now)
        for name, size in rows
    ]
    return sorted(found)


def current_of(listed: list[Generation]) -> int:
    """The current generation's number in a :func:`generations` listing."""
    return next(g.generation for g in listed if g.current)


def rotate(connection: Connection, *, max_bytes: int) -> Rotated:
    """Close the current generation if its rows take ``max_bytes`` or more (0: whatever its
    size) and start the next, in the caller's transaction (the caller commits); on SQLite
    nothing rotates. Raises ``sqlalchemy.exc.OperationalError`` (lock not available) if a lock
    was not granted within :data:`LOCK_TIMEOUT`; the transaction must then be rolled back."""
    if max_bytes < 0:
        raise ValueError("max_bytes must be 0 or more")
    now = current(connection)
    if not postgres(connection):
        return Rotated(now, None, 0)
    size = _rows_bytes(connection, now)
    if size < max_bytes:
        return Rotated(now, None, size)
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    # the append lock: no batch is between reading the generation and writing its items
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    now = current(connection)  # another process may have rotated meanwhile
    size = _rows_bytes(connection, now)
    if size < max_bytes:
        return Rotated(now, None, size)
    following = now + 1
    name = partition(following)
    # made apart and attached, not CREATE TABLE … PARTITION OF (which locks the parent
    # against every reader): ATTACH takes SHARE UPDATE EXCLUSIVE, and an empty table's
    # partition constraint and indexes take no time to check and build
    connection.execute(text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    connection.execute(
        text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES IN ({following})")
    )
    connection.execute(
        text("UPDATE access_log_generation SET current = :next WHERE id = 1"),
        {"next": following},
    )
    log.info("access log items: generation %d closed at %d bytes; %d opened", now, size, following)
    return Rotated(following, now, size)


def _rows_bytes(connection: Connection, generation: int) -> int:
    """The size of a generation's rows (its table, without indexes): it grows with its items,
    where a hash index grows by doubling."""
    size = connection.execute(
        text("SELECT pg_relation_size(to_regclass(:name))"), {"name": partition(generation)}
    ).scalar()
    return int(size or 0)


class Rotator:
    """Tries :func:`rotate` on ``engine`` at most every ``every`` seconds, on a thread of its
    own, never two at once in this process: poked after each batch a server writes. A failure
    is logged and tried again after the next interval."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_bytes: int,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._max_bytes = max_bytes
        self._every = every
        self._clock = clock
        self._next = clock() + every
        self._running = threading.Lock()

    def poke(self) -> threading.Thread | None:
        """Start a try if one is due (PostgreSQL only); its thread, or None."""
        if self._engine.dialect.name != "postgresql" or self._clock() < self._next:
            return None
        if not self._running.acquire(blocking=False):
            return None
        self._next = self._clock() + self._every
        thread = threading.Thread(target=self._try, name="dancu-rotate", daemon=True)
        thread.start()
        return thread

    def _try(self) -> None:
        try:
            with self._engine.begin() as connection:
                rotate(connection, max_bytes=self._max_bytes)
        except Exception as exc:  # left for the next try
            log.warning("access log items: rotation not done (%s)", type(exc).__name__)
        finally:
            self._running.release()
