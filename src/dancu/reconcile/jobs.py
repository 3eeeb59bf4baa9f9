"""Reconciliation jobs for partners (issue 5 §5): the same run as ``dancu reconcile``, asked
for over the API, run in the background, every person its results name written to the access
log before the results can be fetched.

A job is queued by the upload (:func:`create`), claimed by a worker thread of one of the
server's processes (:func:`claim_next`: an UPDATE that only one process can win), run with
:func:`dancu.reconcile.service.reconcile` against the register's database, and finished:
the access log gets one entry per person the results name (the holder of each ID found, each
person suggested), written in bulk with :func:`dancu.audit.bulk.append` by chunks, then
the job is marked done. A job whose process died stays ``running`` (nothing tells a dead
worker from a slow one across processes); the partner submits the file again.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from dancu.audit import bulk
from dancu.audit import service as audit
from dancu.enums import AccessChannel, ActorKind
from dancu.errors import ConflictError, DancuError, NotFoundError, ValidationFailed
from dancu.reconcile.models import ReconcileJob
from dancu.reconcile.service import DEFAULT_MEMORY_LIMIT, reconcile

__all__ = [
    "JOB_STATUSES",
    "UPLOAD_SUFFIXES",
    "JobRunner",
    "JobSettings",
    "TooManyJobs",
    "active_count",
    "claim_next",
    "create",
    "done_or_raise",
    "get_for_client",
    "input_path",
    "new_id",
    "results_dir",
    "run",
]

log = logging.getLogger(__name__)

JOB_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed")
UPLOAD_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx", ".xlsm", ".xls", ".ods", ".parquet")
"""The file types ``dancu reconcile`` reads (CONTRACTS §3)."""

_LOG_CHUNK = 20_000
"""Access log entries per transaction: the log's append lock is held until each commit, so
a million-row job does not keep partner verifications waiting for long."""
_PROGRESS_SECONDS = 1.0


class JobSettings(BaseSettings):
    """Where jobs keep their files and how much a client may ask (``DANCU_RECONCILE_*``)."""

    model_config = SettingsConfigDict(env_prefix="DANCU_RECONCILE_", extra="ignore")

    job_dir: Path = Path("reconcile-jobs")
    max_upload_bytes: int = Field(default=1 << 30, ge=1024)
    max_active_jobs: int = Field(default=3, ge=1)
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    poll_seconds: float = Field(default=2.0, gt=0)


class TooManyJobs(DancuError):
    """The client already has as many jobs queued or running as it may."""

    code = "too_many_jobs"
    status = 429


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def input_path(settings: JobSettings, job_id: str, suffix: str) -> Path:
    """Where the uploaded file of a job is kept."""
    return settings.job_dir / job_id / f"input{suffix}"


def results_dir(settings: JobSettings, job_id: str) -> Path:
    """Where a job's results are written (the output directory of ``dancu reconcile``)."""
    return settings.job_dir / job_id / "out"


def new_id() -> str:
    """A job id: 128 random bits as hex, unguessable (the id alone never grants access)."""
    return uuid.uuid4().hex


def active_count(session: Session, client_id: str) -> int:
    """How many of the client's jobs are queued or running."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ReconcileJob)
            .where(
                ReconcileJob.client_id == client_id,
                ReconcileJob.status.in_(("queued", "running")),
            )
        )
        or 0
    )


def create(
    session: Session,
    *,
    job_id: str,
    client_id: str,
    organization: str,
    purpose: str,
    file_name: str,
    file_bytes: int,
    options: dict[str, Any],
    request_id: str,
) -> ReconcileJob:
    """Queue a job whose file is already in place (the caller commits)."""
    job = ReconcileJob(
        id=job_id,
        client_id=client_id,
        organization=organization,
        purpose=purpose,
        status="queued",
        file_name=file_name[:300],
        file_bytes=file_bytes,
        options=options,
        rows_done=0,
        request_id=request_id,
        created_at=_now(),
    )
    session.add(job)
    session.flush()
    return job


def get_for_client(session: Session, job_id: str, client_id: str) -> ReconcileJob:
    """The client's job; NotFoundError for another client's job as for no job at all."""
    job = session.get(ReconcileJob, job_id)
    if job is None or job.client_id != client_id:
        raise NotFoundError(f"no reconciliation job {job_id!r} for this client")
    return job


def done_or_raise(job: ReconcileJob) -> None:
    """ConflictError unless the job's results can be fetched."""
    if job.status != "done":
        raise ConflictError(f"job {job.id} is {job.status}: its results are not ready")


def claim_next(session: Session) -> str | None:
    """Claim the oldest queued job for this process (None if there is none): the UPDATE
    succeeds for one claimer only, whichever process asks."""
    for job_id in session.scalars(
        select(ReconcileJob.id)
        .where(ReconcileJob.status == "queued")
        .order_by(ReconcileJob.created_at)
        .limit(5)
    ).all():
        claimed = session.execute(
            update(ReconcileJob)
            .where(ReconcileJob.id == job_id, ReconcileJob.status == "queued")
            .values(status="running", started_at=_now())
        )
        if getattr(claimed, "rowcount", 0) == 1:
            session.commit()
            return job_id
    session.rollback()
    return None


@dataclass(slots=True)
class _Progress:
    """Rows done, written to the job at most once a second (its own short transactions)."""

    sessions: sessionmaker[Session]
    job_id: str
    done: int = 0
    total: int | None = None
    written_at: float = 0.0

    def _write(self) -> None:
        with self.sessions() as session:
            session.execute(
                update(ReconcileJob)
                .where(ReconcileJob.id == self.job_id)
                .values(rows_done=self.done, rows_total=self.total)
            )
            session.commit()
        self.written_at = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.written_at >= _PROGRESS_SECONDS:
            self._write()

    def set_total(self, total: int) -> None:
        self.total = total
        self._write()


_COMPARED = ("full_name", "birth_date", "sex", "address")


def _log_people(session: Session, job: ReconcileJob, out: Path, columns: list[str]) -> int:
    """One access log entry per person the results name, in bulk, committed by chunks: the
    ID holder of each row found (what was compared, and the status), and each person
    suggested (what was compared, and their ID, which the results reveal)."""
    compared = [c for c in _COMPARED if c in columns]
    written = 0
    entries: list[audit.AccessEntry] = []

    def flush() -> None:
        nonlocal written, entries
        if entries:
            bulk.append(session, entries)
            session.commit()
            written += len(entries)
            entries = []

    parquet = pq.ParquetFile(out / "results.parquet")
    for batch in parquet.iter_batches(
        columns=["row", "status", "personal_id", "suggested_id"], batch_size=_LOG_CHUNK
    ):
        rows, statuses, found, suggested = (c.to_pylist() for c in batch.columns)
        for row, status, pid, other in zip(rows, statuses, found, suggested, strict=True):
            for person, fields, result in (
                (pid, [*compared, "status"], status),
                (other if other != pid else None, [*compared, "personal_id"], "suggested"),
            ):
                if person is not None:
                    entries.append(
                        audit.AccessEntry(
                            actor=job.client_id,
                            actor_kind=ActorKind.CLIENT.value,
                            organization=job.organization,
                            personal_id=person,
                            fields=fields,
                            purpose=job.purpose,
                            channel=AccessChannel.BATCH.value,
                            request_id=f"{job.request_id}:{row}",
                            result=result,
                        )
                    )
        if len(entries) >= _LOG_CHUNK:
            flush()
    flush()
    return written


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """What a partner sees of ``summary.json`` in the job's status (counts only)."""
    suggestions = data.get("suggestions", {})
    return {
        "rows": data.get("rows"),
        "statuses": data.get("statuses"),
        "mismatched_fields": data.get("mismatched_fields"),
        "duplicates": data.get("duplicates"),
        "suggested": suggestions.get("suggested", 0),
        "columns": data.get("input", {}).get("columns"),
    }


def run(sessions: sessionmaker[Session], settings: JobSettings, job_id: str) -> None:
    """Run a claimed job to its end: results written, people logged, job done; or failed,
    with a message the partner can act on (bad input) or a generic one (anything else, logged
    with the job id)."""
    with sessions() as session:
        job = session.get(ReconcileJob, job_id)
        if job is None:
            return
        options = dict(job.options or {})
        suffix = Path(job.file_name).suffix.lower()
    columns = options.get("columns")
    sheet = options.get("sheet")
    source = input_path(settings, job_id, suffix)
    out = results_dir(settings, job_id)
    progress = _Progress(sessions, job_id)
    try:
        with sessions() as session:
            summary = reconcile(
                session,
                source,
                out,
                columns={str(k): str(v) for k, v in columns.items()}
                if isinstance(columns, dict)
                else None,
                sheet=sheet if isinstance(sheet, str) else None,
                progress=progress.advance,
                on_total=progress.set_total,
                memory_limit=settings.memory_limit,
            )
        with sessions() as session:
            job = session.get(ReconcileJob, job_id)
            assert job is not None
            logged = _log_people(session, job, out, list(summary.data["input"]["columns"]))
            job.status = "done"
            job.rows_done = summary.rows
            job.rows_total = summary.rows
            job.summary = {**_summary(summary.data), "access_log_entries": logged}
            job.finished_at = _now()
            session.commit()
        log.info("reconciliation job %s done: %d rows", job_id, summary.rows)
    except Exception as exc:
        message = (
            exc.message
            if isinstance(exc, ValidationFailed | DancuError)
            else "the job failed; quote its id to the administrator"
        )
        if not isinstance(exc, DancuError):
            log.exception("reconciliation job %s failed", job_id)
        shutil.rmtree(out, ignore_errors=True)
        with sessions() as session:
            session.execute(
                update(ReconcileJob)
                .where(ReconcileJob.id == job_id)
                .values(status="failed", error=message[:1000], finished_at=_now())
            )
            session.commit()
    finally:
        source.unlink(missing_ok=True)  # the partner's file is not kept once read


class JobRunner:
    """The worker thread of one server process: claims queued jobs and runs them one at a
    time (a job uses both cores; several at once would only share them). Started by the first
    upload or status request, woken by each upload, polling every few seconds for jobs queued
    by other processes."""

    def __init__(self, sessions: sessionmaker[Session], settings: JobSettings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread if it is not running (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._loop, name="reconcile-jobs", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        """A job was queued: look now."""
        self.start()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current job (tests, shutdown)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_pending(self) -> int:
        """Run every queued job now, in this thread (the loop's body; tests call it)."""
        ran = 0
        while not self._stopping.is_set():
            with self._sessions() as session:
                job_id = claim_next(session)
            if job_id is None:
                return ran
            run(self._sessions, self._settings, job_id)
            ran += 1
        return ran

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_pending()
            except Exception:
                log.exception("reconciliation worker: claiming a job failed")
            self._wake.wait(self._settings.poll_seconds)
            self._wake.clear()
