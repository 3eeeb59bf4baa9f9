"""HTTP for partner reconciliation jobs (issue 5 §5): upload a sectoral file, poll the job,
fetch the results. Scope ``population.reconcile``; the client's bearer token and purposes as
for the verification API (``dancu.exchange``). Thin: authenticate, authorise, parse, call
:mod:`dancu.reconcile.jobs`, answer.

* ``POST /api/v1/reconcile`` (``multipart/form-data``: ``file``, ``purpose``, any number of
  ``column`` = ``field=HEADER``, ``sheet``) answers 202 with the job and its ``Location``;
* ``GET /api/v1/reconcile/{job_id}``: status, progress, and the counts once done;
* ``GET /api/v1/reconcile/{job_id}/results?format=csv|parquet|xlsx|json|html``: the files
  of ``dancu reconcile`` (409 until the job is done).

A job is only ever visible to the client that submitted it (another client gets 404).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from dancu.errors import Problem, ValidationFailed
from dancu.exchange import clients
from dancu.exchange.exceptions import (
    BodyTooLarge,
    ClientSuspended,
    InsufficientScope,
    PurposeNotRegistered,
)
from dancu.exchange.routes import Exchange
from dancu.exchange.tokens import ClientState
from dancu.reconcile import jobs
from dancu.reconcile.columns import parse_mapping
from dancu.reconcile.models import ReconcileJob
from dancu.reconcile.schemas import JobProgress, JobRead

__all__ = ["SCOPE_RECONCILE", "ReconcileApi", "install", "router"]

SCOPE_RECONCILE = "population.reconcile"
PATH = "/api/v1/reconcile"
_FORMATS = {
    "csv": ("results.csv", "text/csv; charset=utf-8"),
    "parquet": ("results.parquet", "application/vnd.apache.parquet"),
    "xlsx": (
        "results.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "json": ("summary.json", "application/json"),
    "html": ("report.html", "text/html; charset=utf-8"),
}
_FORM_SLACK = 1 << 20  # the multipart envelope and the other fields around the file

router = APIRouter(tags=["reconciliation"])


@dataclass(slots=True)
class ReconcileApi:
    """The per-process state of the reconciliation API, on ``app.state.reconcile``."""

    sessions: sessionmaker[Session]
    settings: jobs.JobSettings
    runner: jobs.JobRunner


def install(app: FastAPI, settings: jobs.JobSettings | None = None) -> ReconcileApi:
    """Add the routes and the (not yet started) worker to ``app``."""
    job_settings = settings or jobs.JobSettings()
    state = ReconcileApi(
        sessions=app.state.sessions,
        settings=job_settings,
        runner=jobs.JobRunner(app.state.sessions, job_settings),
    )
    app.state.reconcile = state
    app.include_router(router)
    return state


def _state(request: Request) -> ReconcileApi:
    state: ReconcileApi = request.app.state.reconcile
    return state


async def _authorise(request: Request) -> ClientState:
    """The caller's client: 401 without a valid token, 403 without the scope or suspended."""
    exchange: Exchange = request.app.state.exchange
    token = exchange.tokens.validate(request.headers.get("authorization"))
    if SCOPE_RECONCILE not in token.scopes:
        raise InsufficientScope(SCOPE_RECONCILE)
    client = exchange.clients.cached(token.client_id)
    if client is None:
        client = await run_in_threadpool(exchange.clients.load, token.client_id)
    if not client.active:
        raise ClientSuspended("this client is suspended")
    return client


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def _read(job: ReconcileJob, request_id: str) -> dict[str, Any]:
    link = f"{PATH}/{job.id}"
    answer = JobRead(
        job_id=job.id,
        status=job.status,
        file_name=job.file_name,
        file_bytes=job.file_bytes,
        purpose=job.purpose,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=JobProgress(rows_done=job.rows_done, rows_total=job.rows_total),
        summary=job.summary,
        error=job.error,
        links={"self": link, "results": f"{link}/results"},
        request_id=request_id,
    )
    return answer.model_dump(mode="json")


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name}: expected text", [Problem(None, name, "not text")])
    return value


def _purpose(client: ClientState, stated: str | None) -> str:
    purpose = clients.clean_purpose(stated or "")
    if not purpose:
        raise ValidationFailed(
            "purpose: state why you reconcile", [Problem(None, "purpose", "empty")]
        )
    if purpose not in client.purposes:
        raise PurposeNotRegistered(
            "purpose is not one this client registered; register it with the administrator"
        )
    return purpose


def _save(upload: UploadFile, target: Path, limit: int) -> int:
    """Copy the upload into the job's directory; BodyTooLarge past ``limit`` bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                shutil.rmtree(target.parent, ignore_errors=True)
                raise BodyTooLarge(f"the file is larger than {limit:,} bytes")
            out.write(chunk)
    return size


def _queue(state: ReconcileApi, **values: Any) -> dict[str, Any]:
    with state.sessions() as session:
        job = jobs.create(session, **values)
        session.commit()
        return _read(job, str(values["request_id"]))


def _active(state: ReconcileApi, client_id: str) -> int:
    with state.sessions() as session:
        return jobs.active_count(session, client_id)


@router.post(PATH, status_code=202)
async def submit(request: Request) -> Response:
    """Upload a sectoral file (``file``) with the ``purpose`` of the reconciliation; answers
    202 with the job to poll. Optional: ``column`` (``field=HEADER``, repeatable), ``sheet``."""
    state = _state(request)
    client = await _authorise(request)
    limit = state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _FORM_SLACK:
        raise BodyTooLarge(f"the file is larger than {limit:,} bytes")
    if await run_in_threadpool(_active, state, client.client_id) >= state.settings.max_active_jobs:
        raise jobs.TooManyJobs(
            f"this client already has {state.settings.max_active_jobs} jobs queued or running; "
            "wait for one to finish"
        )
    async with request.form(max_files=1, max_fields=40) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ValidationFailed(
                "file: upload the sectoral file", [Problem(None, "file", "missing")]
            )
        name = Path(upload.filename).name
        suffix = Path(name).suffix.lower()
        if suffix not in jobs.UPLOAD_SUFFIXES:
            raise ValidationFailed(
                f"file: {name!r} is not one of {', '.join(jobs.UPLOAD_SUFFIXES)}",
                [Problem(None, "file", "unsupported file type")],
            )
        purpose = _purpose(client, _text(form, "purpose"))
        columns = parse_mapping([v for v in form.getlist("column") if isinstance(v, str)])
        sheet = _text(form, "sheet")
        job_id = jobs.new_id()
        size = await run_in_threadpool(
            _save, upload, jobs.input_path(state.settings, job_id, suffix), limit
        )
    request_id = _request_id(request)
    body = await run_in_threadpool(
        _queue,
        state,
        job_id=job_id,
        client_id=client.client_id,
        organization=client.organization,
        purpose=purpose,
        file_name=name,
        file_bytes=size,
        options={"columns": columns, "sheet": sheet},
        request_id=request_id,
    )
    state.runner.wake()
    return JSONResponse(body, status_code=202, headers={"Location": body["links"]["self"]})


def _job(state: ReconcileApi, job_id: str, client_id: str) -> ReconcileJob:
    with state.sessions() as session:
        return jobs.get_for_client(session, job_id, client_id)


@router.get(PATH + "/{job_id}", response_model=JobRead)
async def status(job_id: str, request: Request) -> Response:
    """Where the job stands: ``queued``, ``running`` (with rows done), ``done`` (with the
    counts of its results) or ``failed`` (with the reason)."""
    state = _state(request)
    client = await _authorise(request)
    job = await run_in_threadpool(_job, state, job_id, client.client_id)
    state.runner.start()  # a job queued through another process is run here too
    return JSONResponse(_read(job, _request_id(request)))


@router.get(PATH + "/{job_id}/results")
async def results(job_id: str, request: Request, format: str = "csv") -> Response:
    """The job's results: ``csv`` (default), ``parquet``, ``xlsx``, ``json`` (summary.json) or
    ``html`` (the report). 409 until the job is done."""
    state = _state(request)
    client = await _authorise(request)
    if format not in _FORMATS:
        raise ValidationFailed(
            f"format: expected one of {', '.join(_FORMATS)}", [Problem(None, "format", format)]
        )
    job = await run_in_threadpool(_job, state, job_id, client.client_id)
    jobs.done_or_raise(job)
    name, media = _FORMATS[format]
    path = jobs.results_dir(state.settings, job_id) / name
    return FileResponse(path, media_type=media, filename=f"{job_id}-{name}")
