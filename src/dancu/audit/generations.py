"""Generations of the access log's batch items (PostgreSQL): a small index to write to,
however long the log grows.

Every person of a batch verification is one ``access_log_item`` row, found by person through
a hash index. Once that index holds millions of items, each insertion lands on a page far
from the last one: on a 2-core machine, with the whole register in the batches, the batch
figure fell from 81,602 to 61,625 items/s over the first 11 million items with one index, and
held 82,000-83,000 with generations (docs/benchmarks.md, "Generations of the access log's
items"). So on PostgreSQL the table is partitioned by ``generation`` (one list partition
each, ``access_log_item_g<n>``): writers put their items in the current generation
(``access_log_generation.current``, read under the chain's append lock), and :func:`rotate`
closes it once it passes a size, attaching the next. A closed generation is never written
again. Readers see one table; a search by person probes each generation's small index.

Rotation takes the parent's SHARE UPDATE EXCLUSIVE lock (no reader or writer of the log
conflicts with it) and makes the new table first, then holds the append lock only to attach
it and move the generation on: a batch being written finishes first, the next waits a few
milliseconds. A lock it cannot get within ``lock_timeout`` leaves the generation as it was,
for the next try. ``ATTACH PARTITION`` needs the owner of the log: the server tries at most
every ``audit_rotate_seconds`` after a batch (:class:`Rotator`; 0 turns it off, where the
server's role does not own the log), and operators can rotate with ``dancu audit rotate``.
SQLite keeps every item in generation 0: nothing rotates there.
"""

from __future__ import annotations

import logging
import re
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
_LOCK_NOT_AVAILABLE = "55P03"
_NUMBERED = re.compile(rf"{TABLE}_g([0-9]+)")


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
    """What :func:`rotate` did: the generation items go to now, the one it closed (None if
    nothing rotated), and the size in bytes of the rows it measured (of the one it closed, or
    of the current one if it closed none)."""

    current: int
    closed: int | None
    bytes: int


def postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


NO_ROW = "access_log_generation has no row: the schema is damaged (migration 0013 makes it)"


def current(connection: Connection) -> int:
    """The generation items are written to now (0 on SQLite, and before any rotation)."""
    found = connection.execute(text(PG_CURRENT_SQL)).scalar()
    if found is None:
        raise RuntimeError(NO_ROW)
    return int(found)


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
    found = []
    for name, size in rows:
        match = _NUMBERED.fullmatch(name)
        if match is None:  # a partition attached by hand under another name: not ours
            continue
        number = int(match.group(1))
        found.append(Generation(number, int(size), number == now))
    return sorted(found)


def current_of(listed: list[Generation]) -> int:
    """The current generation's number in a :func:`generations` listing."""
    return next(g.generation for g in listed if g.current)


def rotate(connection: Connection, *, max_bytes: int) -> Rotated:
    """Close the current generation if its rows take ``max_bytes`` or more (0: whatever its
    size) and start the next, in the caller's transaction (the caller commits); on SQLite
    nothing rotates. Raises ``sqlalchemy.exc.OperationalError`` (lock not available) if a lock
    was not granted within :data:`LOCK_TIMEOUT`; the transaction must then be rolled back.

    The parent's SHARE UPDATE EXCLUSIVE lock (which ``ATTACH PARTITION`` needs, and which no
    writer or reader of the log conflicts with) is taken first, and the new table made,
    before the append lock: a wait for the former (a VACUUM or ANALYZE of the parent) never
    holds up the log's writers, and rotations of several processes take turns. Under the
    append lock only the partition is attached and the generation moved on."""
    if max_bytes < 0:
        raise ValueError("max_bytes must be 0 or more")
    now = current(connection)
    if not postgres(connection):
        return Rotated(now, None, 0)
    size = _rows_bytes(connection, now)
    if size < max_bytes:
        return Rotated(now, None, size)
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    connection.execute(text(f"LOCK TABLE ONLY {TABLE} IN SHARE UPDATE EXCLUSIVE MODE"))
    now = current(connection)  # another process may have rotated before the lock was granted
    size = _rows_bytes(connection, now)
    if size < max_bytes:
        return Rotated(now, None, size)
    following = now + 1
    name = partition(following)
    # made apart and attached, not CREATE TABLE … PARTITION OF (which locks the parent
    # against every reader); an empty table's partition constraint and indexes take no time
    # to check and build
    connection.execute(text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    # the append lock: no batch is between reading the generation and writing its items
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    connection.execute(
        text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES IN ({following})")
    )
    moved = connection.execute(
        text("UPDATE access_log_generation SET current = :next WHERE id = 1"),
        {"next": following},
    )
    if moved.rowcount != 1:
        raise RuntimeError(NO_ROW)
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
    """Tries :func:`rotate` on ``engine`` at most every ``every`` seconds (0: never), on a
    thread of its own, never two at once in this process: poked after each batch a server
    writes. A failure is logged (an error, but for a lock not granted in time) and tried
    again after the next interval."""

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
        """Start a try if one is due (PostgreSQL only, ``every`` above 0); its thread, or
        None."""
        if self._engine.dialect.name != "postgresql" or self._every <= 0:
            return None
        if self._clock() < self._next:
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
            # names no person: a lock not granted, or a missing privilege (the role serving
            # the API does not own the log: rotate with ``dancu audit rotate`` as its owner)
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            timeout = getattr(getattr(exc, "orig", None), "sqlstate", None) == _LOCK_NOT_AVAILABLE
            log.log(
                logging.WARNING if timeout else logging.ERROR,
                "access log items: rotation not done: %s",
                reason,
            )
        finally:
            self._running.release()
