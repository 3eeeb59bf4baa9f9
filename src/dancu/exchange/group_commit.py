"""Group commit: many requests' verifications in one transaction every few milliseconds.

Every verification must be in the access log before its answer leaves the server (a crash
after an answer never loses its entry). A transaction and an fsync per request would cap the
API at a few hundred requests a second and serialise on the log's append lock; instead one
committer per process takes every verification waiting (up to ``max_batch``), and in one
transaction re-reads the status of their clients (a client suspended anywhere is refused
at once), counts them against their quotas (``quota.consume``, shared by every worker), reads
the register, appends the log entries (``audit.service.record``, one lock
and one head read per batch), commits, and only then releases the waiting requests.

On PostgreSQL the committer is not a thread but a task on the event loop, with an
asynchronous psycopg connection of its own (autocommit; its statements prepared once): it
runs the group's transaction in two round trips of one query string each
(``verify.commit_group_pg_async``) while the loop goes on reading
requests, and resolves their futures directly (no queue between threads, no wake-up of the
loop from another thread, no contention for the GIL). On SQLite, whose calls block, the
committer is a thread taking the ORM path (``_admit`` and ``verify_many``).

A batch request (``commit_batch``) is a transaction of its own, on PostgreSQL on the same
event loop: each of up to ``batch_concurrency`` batches at once on a connection of its own
(kept for the next batch), its Python work between its round trips. More batches wait their
turn. On SQLite the route runs a batch on a thread.

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
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dancu.exchange import quota
from dancu.exchange.exceptions import AccessLogUnavailable, ClientSuspended, QuotaExceeded
from dancu.exchange.verify import (
    Answer,
    Batch,
    Job,
    Outcome,
    active_clients,
    commit_batch_pg_async,
    commit_group_pg_async,
    verify_many,
)

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


class _LoopGroups:
    """PostgreSQL: the group commit of one event loop. Requests append to ``pending``; a
    task, started when the first one arrives and ending when none is left, commits what is
    pending, then what arrived meanwhile, and so on."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer  # no reference to the loop: it keys a weak dictionary
        self.pending: list[tuple[Job, asyncio.Future[Answer]]] = []
        self.task: asyncio.Task[None] | None = None
        self.connection: psycopg.AsyncConnection[Any] | None = None
        # batch requests: how many may run at once, and the connections they left idle
        self.batch_slots = asyncio.Semaphore(committer.batch_concurrency)
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.closed = False  # stopped: a batch finishing now closes its connection

    def submit(self, job: Job, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        future: asyncio.Future[Answer] = loop.create_future()
        self.pending.append((job, future))
        if self.task is None:
            self.task = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self.pending:
                limit = self.committer.max_batch
                group, self.pending = self.pending[:limit], self.pending[limit:]
                outcomes = await self._commit([job for job, _ in group])
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():  # the request went away
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self.task = None

    async def _commit(self, jobs: list[Job]) -> list[Outcome | BaseException]:
        committer = self.committer
        now = time.time()
        purge = now - committer.purged_at > _PURGE_SECONDS
        outcomes: list[Outcome | BaseException]
        try:
            if self.connection is None or self.connection.closed:
                self.connection = await psycopg.AsyncConnection.connect(
                    **committer.connect_args, autocommit=True
                )
            outcomes = list(
                await commit_group_pg_async(self.connection, jobs, now=now, purge=purge)
            )
            if purge:
                committer.purged_at = now
        except Exception:
            log.exception("group commit of %d verifications failed", len(jobs))
            self.close_group()  # a fresh connection for the next group
            outcomes = [AccessLogUnavailable()] * len(jobs)
        if committer.on_batch is not None:
            committer.on_batch(len(jobs))
        return outcomes

    async def batch(self, batch: Batch) -> list[Answer]:
        """A batch request's answers, once its log entry is committed, on a connection of
        its own (an idle one, else a new one), after waiting for a free slot."""
        async with self.batch_slots:
            connection = self.idle.pop() if self.idle else None
            try:
                connection = await self._checked(connection)
                answers = await commit_batch_pg_async(connection, batch, now=time.time())
            except (ClientSuspended, QuotaExceeded):  # rolled back (or closed if it could not)
                self._keep(connection)
                raise
            except Exception as exc:
                log.exception("batch verification of %d items failed", len(batch.claims))
                _finish(connection)
                raise AccessLogUnavailable() from exc
            except BaseException:  # cancelled: the transaction may be half sent
                _finish(connection)
                raise
            self._keep(connection)
            return answers

    async def _checked(
        self, connection: psycopg.AsyncConnection[Any] | None
    ) -> psycopg.AsyncConnection[Any]:
        """``connection`` if it still answers (an idle one may have been cut by a server
        restart or an idle timeout: one round trip, against a batch's hundred milliseconds),
        else a new one."""
        if connection is not None and not connection.closed:
            try:
                await connection.execute("SELECT 1")
                return connection
            except psycopg.Error:
                _finish(connection)
        return await psycopg.AsyncConnection.connect(**self.committer.connect_args, autocommit=True)

    def _keep(self, connection: psycopg.AsyncConnection[Any] | None) -> None:
        """Keep ``connection`` for the next batch (closed instead once stopped)."""
        if connection is None or connection.closed:
            return
        if self.closed:
            _finish(connection)
        else:
            self.idle.append(connection)

    def close_group(self) -> None:
        """Close the group commit's connection (no I/O: libpq's ``finish``)."""
        _finish(self.connection)
        self.connection = None

    def close(self) -> None:
        """Close every connection (usable when the loop is gone); a batch still running
        closes its own when it ends."""
        self.closed = True
        self.close_group()
        for connection in self.idle:
            _finish(connection)
        self.idle.clear()


def _finish(connection: psycopg.AsyncConnection[Any] | None) -> None:
    """Close ``connection`` without I/O (libpq's ``finish``): usable when the loop is gone."""
    if connection is not None and not connection.closed:
        connection.pgconn.finish()


class GroupCommitter:
    """The group commit of one process: a task per event loop on PostgreSQL (normally one
    loop per process; tests run several in turn), one thread on SQLite, started on first
    use."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_batch: int = 2_000,
        on_batch: Callable[[int], None] | None = None,
        batch_concurrency: int = 4,
    ) -> None:
        if batch_concurrency < 1:
            raise ValueError("batch_concurrency must be at least 1")
        self._sessions = sessions
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.batch_concurrency = batch_concurrency
        self._queue: queue.SimpleQueue[_Waiting | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.purged_at = 0.0
        # the bind may be a Connection (tests run in an outer transaction): its engine's
        # parameters, since the committer opens connections of its own
        engine: Engine = sessions.kw["bind"].engine
        self._postgres = engine.dialect.name == "postgresql"
        self.connect_args: dict[str, Any] = {}
        if self._postgres:  # the engine's own connection parameters, for psycopg directly
            args, kwargs = engine.dialect.create_connect_args(engine.url)
            if args:
                raise ValueError("expected keyword connection arguments for psycopg")
            self.connect_args = dict(kwargs)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopGroups] = (
            weakref.WeakKeyDictionary()
        )

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="dancu-group-commit", daemon=True)
                thread.start()
                self._thread = thread

    def submit(self, job: Job) -> asyncio.Future[Answer]:
        """The future answer of ``job``, set once its access log entry is committed (or its
        refusal, or ``AccessLogUnavailable``). A future, not a coroutine: the request awaits
        it directly (each coroutine layer around it costs the hot path a frame and a step).
        Call it on the running event loop."""
        loop = asyncio.get_running_loop()
        if self._postgres:
            return self._groups(loop).submit(job, loop)
        self._ensure_started()
        future: asyncio.Future[Answer] = loop.create_future()
        self._queue.put(_Waiting(job, future, loop))
        return future

    @property
    def postgres(self) -> bool:
        """Whether this committer writes to PostgreSQL (and answers batches itself)."""
        return self._postgres

    async def commit_batch(self, batch: Batch) -> list[Answer]:
        """PostgreSQL: a batch request's answers once its log entry is committed, on this
        event loop (``commit_batch_pg_async``); ``AccessLogUnavailable`` if it could not be
        written. SQLite's batches are the route's (on a thread, through the ORM)."""
        if not self._postgres:
            raise RuntimeError("batches are committed here on PostgreSQL only")
        return await self._groups(asyncio.get_running_loop()).batch(batch)

    def _groups(self, loop: asyncio.AbstractEventLoop) -> _LoopGroups:
        groups = self._loops.get(loop)
        if groups is None:
            groups = self._loops[loop] = _LoopGroups(self)
            weakref.finalize(loop, groups.close)  # a test's loop ends before the app
        return groups

    def stop(self, timeout: float = 5.0) -> None:
        """SQLite: finish the batches already queued, then end the thread. PostgreSQL: close
        the connections (a group still committing fails: its requests get 503)."""
        for groups in list(self._loops.values()):
            groups.close()
        self._loops.clear()
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        self._serve()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
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
        if now - self.purged_at > _PURGE_SECONDS:
            quota.purge(session, now=now)
            self.purged_at = now
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
            with self._sessions() as session:
                allowed = self._admit(session, batch, outcomes)
                answers = verify_many(session, [w.job for w in allowed])
                session.commit()
            outcomes.extend(zip(allowed, answers, strict=True))
        except Exception:
            log.exception("group commit of %d verifications failed", len(batch))
            failed = AccessLogUnavailable()
            outcomes = [(w, failed) for w in batch]
        if self.on_batch is not None:
            self.on_batch(len(batch))
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
        for waiting, outcome in outcomes:
            by_loop[waiting.loop].append((waiting.future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop closed (shutdown): nobody is waiting any more
                pass
