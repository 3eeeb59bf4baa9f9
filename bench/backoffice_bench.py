"""Benchmarks of the back office (issue 3), measured over HTTP against a real uvicorn server.

On a register already seeded (``dancu seed --citizens 1000000`` into the database given), it
creates two officials (a province officer of the most populous province and the national
auditor), signs them in through both factors in process, starts ``uvicorn dancu.app:factory``
in a child process, and times from this process, one request at a time (and then with a few
concurrent clients):

- ``citizen_api``: ``GET /api/v1/registry/citizens/{id}?purpose=…`` (record, household,
  residences, timeline; one access-log entry written and committed per request);
- ``citizen_page``: the same as the server-rendered page ``/registry/citizens/{id}``;
- ``search_name``: ``GET /api/v1/registry/citizens?q=<name>`` with and without diacritics,
  scoped to the officer's province, 20 per page (one access-log entry per person listed);
- ``search_page``: the same search as the HTML page;
- ``search_id``: the search box given a personal ID;
- ``quality_province``: ``GET /api/v1/registry/quality`` for the province (pre-aggregated).

Results are JSON lines (p50, p95, p99 in ms); copy them into docs/benchmarks.md.

    DANCU_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/h_off_bench \\
        .venv/bin/python bench/backoffice_bench.py --requests 400
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from common import emit
from dancu.config import Settings
from dancu.db import make_engine
from dancu.geo.models import Commune
from dancu.officials import crypto
from dancu.officials import service as officials
from dancu.officials.models import Official
from dancu.registry import quality
from dancu.registry.models import Citizen, QualityCommuneStats
from dancu.registry.scope import Scope
from dancu.vn import names as vn_names

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "bench-password-not-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _official(session: Session, settings: Settings, username: str, role: str, unit: str) -> str:
    """An enrolled official (created once) and a fresh full session token for them."""
    found = session.scalar(select(Official).where(Official.username == username))
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    if found is None:
        enrolment = officials.create(
            session, settings, username=username, role=role, unit_code=unit, actor="bench",
            now=then,
        )  # fmt: skip
        found = enrolment.official
        token = enrolment.token
    else:
        token = officials.reset_enrolment(session, settings, found, now=then).token
    secret = crypto.decrypt_secret(settings, found.totp_secret_encrypted or "")
    assert secret is not None
    officials.complete_enrolment(
        session, settings, token=token, password=PASSWORD, password_again=PASSWORD,
        code=pyotp.TOTP(secret).at(then), now=then,
    )  # fmt: skip
    first = officials.sign_in_password(
        session, settings, username=username, password=PASSWORD, client_ip="bench"
    )
    now = dt.datetime.now(dt.UTC)
    full = officials.sign_in_totp(
        session, settings, token=first.token, code=pyotp.TOTP(secret).at(now),
        client_ip="bench", now=now,
    )  # fmt: skip
    return full.token


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(cut[94] * 1000, 1),
        "p99_ms": round(cut[98] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _time(
    client: httpx.Client, urls: list[str], check: Callable[[httpx.Response], None]
) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        check(response)
    return samples


def _ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url} -> {response.status_code}: {response.text[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per kind")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the last round")
    args = parser.parse_args()
    url = os.environ.get("DANCU_DATABASE_URL")
    if not url:
        raise SystemExit("set DANCU_DATABASE_URL to a seeded database")
    settings = Settings(
        database_url=url, secret_key=SECRET, cookie_secure=False, environment="development"
    )  # type: ignore[arg-type]
    engine = make_engine(url)
    rng = random.Random(6)
    with Session(engine) as session:
        people = session.scalar(select(func.count()).select_from(Citizen)) or 0
        province = session.execute(
            select(Commune.province_code, func.count())
            .join(Citizen, Citizen.permanent_commune_code == Commune.code)
            .group_by(Commune.province_code)
            .order_by(func.count().desc())
            .limit(1)
        ).one()[0]
        in_province = select(Commune.code).where(Commune.province_code == province)
        sample = list(
            session.execute(
                text(
                    "SELECT personal_id, full_name FROM citizen TABLESAMPLE SYSTEM (2) "
                    "WHERE permanent_commune_code IN (SELECT code FROM commune "
                    "WHERE province_code = :p) LIMIT 5000"
                )
                if engine.dialect.name == "postgresql"
                else select(Citizen.personal_id, Citizen.full_name)
                .where(Citizen.permanent_commune_code.in_(in_province))
                .limit(5000),
                {"p": province},
            )
        )
        if not session.scalar(select(func.count()).select_from(QualityCommuneStats)):
            quality.refresh_quality(session, Scope.parse(province))
        tokens = {
            "province": _official(session, settings, "bench-tinh", "province_officer", province),
            "auditor": _official(session, settings, "bench-thanh-tra", "ministry_auditor", "VN"),
        }
        session.commit()
    engine.dispose()
    rng.shuffle(sample)
    ids = [pid for pid, _ in sample]
    names = [
        vn_names.fold(name) if i % 2 else name  # half without diacritics
        for i, (_, name) in enumerate(sample)
    ]
    n = args.requests
    port = _free_port()
    env = {
        **os.environ,
        "DANCU_SECRET_KEY": SECRET,
        "DANCU_COOKIE_SECURE": "false",
        "DANCU_ENVIRONMENT": "development",
    }
    server = subprocess.Popen(
        [
            str(os.path.join(os.path.dirname(sys.executable), "uvicorn")),
            "dancu.app:factory",
            "--factory",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", str(args.workers),
            "--log-level", "warning",
            "--no-access-log",
        ],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        load = os.getloadavg()[0]
        cookies = {"dancu_session": tokens["province"]}
        with httpx.Client(base_url=base, cookies=cookies, timeout=30) as client:
            purpose = "purpose=inspection"
            rounds = {
                "citizen_api": [f"/api/v1/registry/citizens/{p}?{purpose}" for p in ids[:n]],
                "citizen_page": [f"/registry/citizens/{p}?{purpose}" for p in ids[n : 2 * n]],
                "search_name": [f"/api/v1/registry/citizens?{purpose}&q={q}" for q in names[:n]],
                "search_page": [f"/registry?{purpose}&q={q}" for q in names[n : 2 * n]],
                "search_id": [f"/api/v1/registry/citizens?{purpose}&q={p}" for p in ids[:n]],
                "quality_province": ["/api/v1/registry/quality"] * min(n, 50),
            }
            for warm in list(rounds.values()):
                _time(client, warm[:5], _ok)
            for kind, urls in rounds.items():
                samples = _time(client, urls, _ok)
                emit(
                    figure=f"backoffice_{kind}",
                    citizens=people,
                    province=province,
                    requests=len(urls),
                    concurrency=1,
                    workers=args.workers,
                    backend=engine.dialect.name,
                    load_before=round(load, 2),
                    **_percentiles(samples),
                )
            # A few officials at once: the access log's append lock is shared by all readers.
            urls = [f"/api/v1/registry/citizens/{p}?{purpose}" for p in ids[2 * n : 3 * n]]
            chunks = [urls[i :: args.concurrency] for i in range(args.concurrency)]
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(lambda chunk: _time(client, chunk, _ok), chunks))
            wall = time.perf_counter() - started
            emit(
                figure="backoffice_citizen_api_concurrent",
                citizens=people,
                requests=len(urls),
                concurrency=args.concurrency,
                workers=args.workers,
                backend=engine.dialect.name,
                requests_per_second=round(len(urls) / wall, 1),
                **_percentiles([s for chunk in results for s in chunk]),
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
