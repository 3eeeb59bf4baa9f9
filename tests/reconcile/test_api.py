"""Partner reconciliation jobs over the API (issue 5 §5): upload, poll, download, access log."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dancu.app import create_app
from dancu.audit.models import AccessLog
from dancu.config import Settings
from dancu.db import unit_of_work
from dancu.exchange.models import ApiClient
from dancu.exchange.routes import Exchange
from dancu.reconcile.router import SCOPE_RECONCILE, ReconcileApi
from tests.exchange.conftest import (  # noqa: F401 (fixtures)
    anyio_backend,
    api_database_url,
    api_engine,
    api_settings,
)
from tests.exchange.helpers import ISSUER, PURPOSE, Partner, add_partner, bearer, token_for
from tests.reconcile.helpers import ALIVE, DEAD, HEADER, UNKNOWN, row

pytestmark = pytest.mark.anyio

ROWS = [
    row(),  # match
    row(sex="Nữ"),  # mismatch: sex
    row(pid=DEAD),  # deceased
    row(pid=UNKNOWN),  # not_found: the fields are ALIVE's, suggested
    row(pid=""),  # missing_id, suggested
]


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.fixture
def app(
    api_settings: Settings,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FastAPI]:
    monkeypatch.setenv("DANCU_RECONCILE_JOB_DIR", str(tmp_path / "jobs"))
    application = create_app(api_settings)
    yield application
    state: ReconcileApi = application.state.reconcile
    state.runner.stop()
    exchange: Exchange = application.state.exchange
    exchange.committer.stop()
    application.state.engine.dispose()


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        yield client


def _partner(app: FastAPI, *scopes: str) -> Partner:
    """A client with ``scopes`` (set on the row: the exchange's product list does not offer
    population.reconcile yet)."""
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session)
        client = session.get(ApiClient, partner.client_id)
        assert client is not None
        client.scopes = list(scopes)
    return partner


@pytest.fixture
async def token(app: FastAPI) -> str:
    return await token_for(app, _partner(app, SCOPE_RECONCILE))


async def _submit(
    http: httpx.AsyncClient, token: str, body: bytes, *, name: str = "members.csv", **data: Any
) -> httpx.Response:
    return await http.post(
        "/api/v1/reconcile",
        headers=bearer(token),
        files={"file": (name, body, "text/csv")},
        data={"purpose": PURPOSE, **data},
    )


async def _finish(app: FastAPI, http: httpx.AsyncClient, token: str, job_id: str) -> dict[str, Any]:
    """Run the queued jobs here and now, then answer the job's status."""
    state: ReconcileApi = app.state.reconcile
    await asyncio.to_thread(state.runner.run_pending)
    for _ in range(300):
        answer = (await http.get(f"/api/v1/reconcile/{job_id}", headers=bearer(token))).json()
        if answer["status"] in ("done", "failed"):
            return dict(answer)
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {answer}")


async def test_a_job_runs_and_its_results_come_back(
    app: FastAPI,
    http: httpx.AsyncClient,
    token: str,
    api_engine: Engine,  # noqa: F811
) -> None:
    submitted = await _submit(http, token, _csv(ROWS))
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == f"/api/v1/reconcile/{job['job_id']}"
    assert job["status"] in ("queued", "running", "done")
    assert job["purpose"] == PURPOSE and job["file_name"] == "members.csv"
    done = await _finish(app, http, token, job["job_id"])
    assert done["status"] == "done", done
    assert done["progress"] == {"rows_done": 5, "rows_total": 5}
    assert done["summary"]["statuses"] == {
        "match": 1, "mismatch": 1, "deceased": 1, "not_found": 1, "invalid_id": 0, "missing_id": 1,
    }  # fmt: skip
    got = await http.get(f"/api/v1/reconcile/{job['job_id']}/results", headers=bearer(token))
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    results = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["status"] for r in results] == [
        "match", "mismatch", "deceased", "not_found", "missing_id",
    ]  # fmt: skip
    assert [r["suggested_id"] for r in results] == ["", ALIVE, "", ALIVE, ALIVE]
    # every person the results name was written to the access log, with the purpose
    with unit_of_work(app.state.sessions) as session:
        entries = session.scalars(
            select(AccessLog).where(AccessLog.request_id.like(f"{job['request_id']}:%"))
        ).all()
        logged = sorted((e.request_id.split(":")[1], e.personal_id, e.result) for e in entries)
        assert {e.purpose for e in entries} == {PURPOSE}
        assert {e.channel for e in entries} == {"batch"}
    assert logged == [
        ("1", ALIVE, "match"),
        ("2", ALIVE, "mismatch"),
        ("3", DEAD, "deceased"),
        ("4", ALIVE, "suggested"),
        ("5", ALIVE, "suggested"),
    ]
    assert done["summary"]["access_log_entries"] == 5


@pytest.mark.parametrize(
    ("fmt", "media"),
    [
        ("parquet", "application/vnd.apache.parquet"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("json", "application/json"),
        ("html", "text/html"),
    ],
)
async def test_results_in_every_format(
    app: FastAPI, http: httpx.AsyncClient, token: str, fmt: str, media: str, tmp_path: Path
) -> None:
    job = (await _submit(http, token, _csv(ROWS[:2]))).json()
    await _finish(app, http, token, job["job_id"])
    got = await http.get(
        f"/api/v1/reconcile/{job['job_id']}/results", params={"format": fmt}, headers=bearer(token)
    )
    assert got.status_code == 200
    assert got.headers["content-type"].startswith(media)
    if fmt == "parquet":
        (tmp_path / "r.parquet").write_bytes(got.content)
        assert pq.read_table(tmp_path / "r.parquet").column("status").to_pylist() == [
            "match", "mismatch",
        ]  # fmt: skip


async def test_column_mappings_and_a_failed_job(
    app: FastAPI, http: httpx.AsyncClient, token: str
) -> None:
    body = b"Ma so,Ten\n079085000001,Nguyen Van Thu\n"
    mapped = (
        await _submit(http, token, body, column=["personal_id=Ma so", "full_name=Ten"])
    ).json()
    unmapped = (await _submit(http, token, body)).json()
    assert (await _finish(app, http, token, mapped["job_id"]))["status"] == "done"
    failed = await _finish(app, http, token, unmapped["job_id"])
    assert failed["status"] == "failed"
    assert "Ma so" in failed["error"]  # the error lists the headers found
    refused = await http.get(
        f"/api/v1/reconcile/{unmapped['job_id']}/results", headers=bearer(token)
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"


async def test_results_wait_for_the_job(app: FastAPI, http: httpx.AsyncClient, token: str) -> None:
    state: ReconcileApi = app.state.reconcile
    state.runner.stop()
    state.runner.wake = lambda: None  # type: ignore[method-assign]
    state.runner.start = lambda: None  # type: ignore[method-assign]
    job = (await _submit(http, token, _csv(ROWS))).json()
    assert job["status"] == "queued"
    got = await http.get(f"/api/v1/reconcile/{job['job_id']}/results", headers=bearer(token))
    assert got.status_code == 409
    polled = (await http.get(f"/api/v1/reconcile/{job['job_id']}", headers=bearer(token))).json()
    assert polled["status"] == "queued" and polled["progress"]["rows_done"] == 0
    # three jobs queued: a fourth is refused until one finishes
    for _ in range(2):
        assert (await _submit(http, token, _csv(ROWS))).status_code == 202
    too_many = await _submit(http, token, _csv(ROWS))
    assert too_many.status_code == 429
    assert too_many.json()["error"]["code"] == "too_many_jobs"


async def test_a_job_is_only_its_clients(app: FastAPI, http: httpx.AsyncClient, token: str) -> None:
    job = (await _submit(http, token, _csv(ROWS))).json()
    await _finish(app, http, token, job["job_id"])
    other = await token_for(app, _partner(app, SCOPE_RECONCILE))
    for path in (
        f"/api/v1/reconcile/{job['job_id']}",
        f"/api/v1/reconcile/{job['job_id']}/results",
    ):
        answer = await http.get(path, headers=bearer(other))
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"


async def test_refusals(app: FastAPI, http: httpx.AsyncClient, token: str) -> None:
    body = _csv(ROWS)
    anonymous = await http.post(
        "/api/v1/reconcile", files={"file": ("a.csv", body)}, data={"purpose": PURPOSE}
    )
    assert anonymous.status_code == 401
    verify_only = await token_for(app, _partner(app, "population.verify"))
    assert (await _submit(http, verify_only, body)).status_code == 403
    wrong_purpose = await _submit(http, token, body, purpose="tò mò")
    assert wrong_purpose.status_code == 403
    assert wrong_purpose.json()["error"]["code"] == "purpose_not_registered"
    wrong_type = await _submit(http, token, body, name="members.txt")
    assert wrong_type.status_code == 400
    no_file = await http.post("/api/v1/reconcile", headers=bearer(token), data={"purpose": PURPOSE})
    assert no_file.status_code == 400
    bad_mapping = await _submit(http, token, body, column=["nothing"])
    assert bad_mapping.status_code == 400
    unknown = await http.get("/api/v1/reconcile/" + "0" * 32, headers=bearer(token))
    assert unknown.status_code == 404
    job = (await _submit(http, token, body)).json()
    bad_format = await http.get(
        f"/api/v1/reconcile/{job['job_id']}/results", params={"format": "pdf"},
        headers=bearer(token),
    )  # fmt: skip
    assert bad_format.status_code == 400
