"""Group commit: many requests' verifications in one transaction every few milliseconds.

Every verification must be in the access log before its answer leaves the server (a crash
after an answer never loses its entry). A transaction and an fsync per request would cap the
API at a few hundred requests a second and serialise on the log's append lock; instead one
committer thread per process takes every verification waiting (up to ``max_batch``), and in
one transaction re-reads the status of their clients (a client suspended anywhere is refused
at once), counts them against their quotas (``quota.consume``, shared by every worker), reads
the register, appends the log entries (``audit.service.record``, one lock
and one head read per batch), commits, and only then releases the waiting requests.

On PostgreSQL the committer keeps one connection of its own and runs the group's transaction
in three round trips (``verify.commit_group_pg``); on SQLite it takes the ORM path
(``_admit`` and ``verify_many``), with no network round trips to save.

There is no timer: while one batch commits, the next accumulates, so a quiet server answers
at once and a busy one in larger batches. With several worker processes each has its own
committer; ``audit.service.record``'s append lock (an advisory lock on PostgreSQL, the write
lock on SQLite) orders their batches in the chain. If the transaction fails, every request of
the batch fails with 503: nothing is answered without its log entry.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from dancu.exchange import quota
from dancu.exchange.exceptions import AccessLogUnavailable, ClientSuspended, QuotaExceeded
from dancu.exchange.verify import Answer, Job, active_clients, commit_group_pg, verify_many

log = logging.getLogger(__name__)

_STOP = object()
_PURGE_SECONDS = 60.0


@dataclass(slots=True)
class _Waiting:
    job: Job
    future: asyncio.Future[Answer]
    loop: asyncio.AbstractEventLoop


_Outcome = tuple[asyncio.Future[Answer], Answer | BaseException]


def _settle(outcomes: list[_Outcome]) -> None:
    """Resolve futures on their event loop (a request that went away is skipped)."""
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class GroupCommitter:
    """One committer thread per process, started on first use."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_batch: int = 2_000,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Waiting | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._purged_at = 0.0
        engine: Engine = sessions.kw["bind"]
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._connection: PoolProxiedConnection | None = None  # the committer's own (PG)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="dancu-group-commit", daemon=True)
                thread.start()
                self._thread = thread

    async def submit(self, job: Job) -> Answer:
        """Answer ``job`` once its access log entry is committed."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._queue.put(_Waiting(job, future, loop))
        return await future

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the batches already queued, then end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        try:
            self._serve()
        finally:  # the committer's own connection goes back to the pool with the thread
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit([w for w in batch if isinstance(w, _Waiting)])
            if stop:
                return

    def _commit_pg(self, batch: list[_Waiting]) -> list[tuple[_Waiting, Answer | BaseException]]:
        """PostgreSQL: the group on the committer's own connection (kept between groups: no
        pool check-out and ping per group), in three round trips (``commit_group_pg``)."""
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        driver: psycopg.Connection[Any] = self._connection.driver_connection  # type: ignore[assignment]
        now = time.time()
        purge = now - self._purged_at > _PURGE_SECONDS
        try:
            results = commit_group_pg(driver, [w.job for w in batch], now=now, purge=purge)
        except Exception:
            try:
                driver.rollback()
            except Exception:  # the connection is broken: the next group opens another
                self._connection.invalidate()
                self._connection = None
            raise
        if purge:
            self._purged_at = now
        return list(zip(batch, results, strict=True))

    def _admit(
        self,
        session: Session,
        batch: list[_Waiting],
        refused: list[tuple[_Waiting, Answer | BaseException]],
    ) -> list[_Waiting]:
        """The verifications of active clients within their quota (counted in the shared
        ``client_usage``, in this transaction); the others go to ``refused`` with 403 or
        429."""
        by_client: dict[str, list[_Waiting]] = defaultdict(list)
        for waiting in batch:
            by_client[waiting.job.client_id].append(waiting)
        quotas = active_clients(session, by_client)
        now = time.time()
        if now - self._purged_at > _PURGE_SECONDS:
            quota.purge(session, now=now)
            self._purged_at = now
        admitted: list[_Waiting] = []
        suspended = ClientSuspended("this client is suspended")
        for client_id, queued in by_client.items():
            if client_id not in quotas:
                refused.extend((w, suspended) for w in queued)
                continue
            per_minute, per_day = quotas[client_id]
            allowed, retry = quota.consume(
                session, client_id, count=len(queued), per_minute=per_minute,
                per_day=per_day, now=now,
            )  # fmt: skip
            admitted.extend(queued[:allowed])
            if allowed < len(queued):
                over = QuotaExceeded(f"quota reached; retry in {retry} s", retry)
                refused.extend((w, over) for w in queued[allowed:])
        return admitted

    def _commit(self, batch: list[_Waiting]) -> None:
        outcomes: list[tuple[_Waiting, Answer | BaseException]] = []
        try:
            if self._postgres:
                outcomes = self._commit_pg(batch)
            else:
                with self._sessions() as session:
                    allowed = self._admit(session, batch, outcomes)
                    answers = verify_many(session, [w.job for w in allowed])
                    session.commit()
                outcomes.extend(zip(allowed, answers, strict=True))
        except Exception:
            log.exception("group commit of %d verifications failed", len(batch))
            failed = AccessLogUnavailable(
                "the access log could not be written; nothing was answered, retry later"
            )
            outcomes = [(w, failed) for w in batch]
        if self._on_batch is not None:
            self._on_batch(len(batch))
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
        for waiting, outcome in outcomes:
            by_loop[waiting.loop].append((waiting.future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop closed (shutdown): nobody is waiting any more
                pass
