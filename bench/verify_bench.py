"""Benchmark of the partner verification API (issue: partner verification).

Against a register of N synthetic citizens (``dancu seed``; reused when already seeded), with
the access log on, a production server (uvicorn, uvloop + httptools, W worker processes) and
``wrk`` (Debian package) posting verify bodies for random existing people with a real token:

- ``verify``: POST /api/v1/verify, requests/s and latency percentiles;
- ``noop``: GET /api/v1/ping (token checked, nothing else) on the same server, for the share;
- ``batch``: POST /api/v1/verify/batch with 10,000 items (distinct people, every item with
  number, name, birth date and sex), items/s, posted by two clients at once (a partner
  reconciling its customers sends batches concurrently; one client alone leaves the server
  idle while it reads each answer);
- the access log grew by exactly the number of verifications answered 200.

All three run against one server. One worker is the default: on two cores shared with
PostgreSQL and the load generator it answers more verifications than two workers do (two
double the no-op, not the verifications: docs/benchmarks.md), and with two clients it
reaches the batch figure on an empty log with the default 50,000 people. The ``verify`` and
``batch`` lines give the access log's size when they started (entries, and batch items), and
the batch line the items' generations after it (``log_generations``, ``log_generation``: on
PostgreSQL the items are written in generations so that the index being written stays small;
docs/audit.md); ``--empty-log`` empties the log first, and is refused for a database whose
name does not contain "bench". ``--batch-only`` measures the batch alone; ``--batch-warm S``
posts batches for S seconds first (the claim caches of a server that has run a while).

    .venv/bin/python bench/verify_bench.py --backend postgresql
    .venv/bin/python bench/verify_bench.py --backend sqlite

Results go to stdout as JSON lines; copy them into docs/benchmarks.md with the date, the
machine and the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from common import busy_cpu_seconds, emit
from dancu.audit import generations
from dancu.audit.models import AccessLog, AccessLogItem
from dancu.db import make_engine, make_sessionmaker, unit_of_work
from dancu.exchange import clients
from dancu.registry.models import Citizen

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/h_exch_bench"
SQLITE_URL = "sqlite:////tmp/exch/bench.db"
DANCU = str(Path(sys.executable).with_name("dancu"))
UVICORN = str(Path(sys.executable).with_name("uvicorn"))
PURPOSE = "xác minh khách hàng mở tài khoản"

_LUA_POST = """
local bodies = {%s}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %s"}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/api/v1/verify", headers, bodies[i])
end
"""
_LUA_GET = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %s"
"""


def _secret() -> str:
    """The server secret of the bench databases, kept in the scratch directory: the signing
    keys stored there are encrypted with it."""
    path = Path("/tmp/exch/bench_secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _people(url: str, n: int, seed: int) -> list[dict[str, str]]:
    """Verify bodies for ``n`` distinct random existing people: number, name, birth date
    (day, month and year) and sex, the sex wrong for about one in ten (a mismatch)."""
    engine = make_engine(url)
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Citizen)) or 0
        if total == 0:
            raise SystemExit("the register is empty: run dancu seed first (or --seed-citizens)")
        rng = random.Random(seed)
        ids = session.scalars(select(Citizen.personal_id).order_by(Citizen.personal_id)).all()
        picks = rng.sample(list(ids), min(n, len(ids)))
        columns = (Citizen.personal_id, Citizen.full_name, Citizen.birth_date, Citizen.sex)
        rows = [
            row
            for start in range(0, len(picks), 900)  # SQLite binds at most 999 parameters
            for row in session.execute(
                select(*columns).where(Citizen.personal_id.in_(picks[start : start + 900]))
            )
        ]
    engine.dispose()
    bodies = []
    for row in rows:
        born = row.birth_date.strftime("%d/%m/%Y")
        sex = "Nam" if row.sex == "M" else "Nữ"
        if rng.random() < 0.1:
            sex = "Nữ" if sex == "Nam" else "Nam"
        bodies.append(
            {"personal_id": row.personal_id, "full_name": row.full_name, "birth_date": born,
             "sex": sex, "purpose": PURPOSE}
        )  # fmt: skip
    rng.shuffle(bodies)
    return bodies


def _log_count(url: str, table: Any = AccessLog) -> int:
    """Rows of the access log's ``table``: its entries, or (``AccessLogItem``) its batch
    entries' items."""
    engine = make_engine(url)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(table)) or 0
    engine.dispose()
    return int(count)


def _generations(url: str) -> dict[str, int]:
    """The items' generations after the batch (PostgreSQL partitions; one on SQLite): how
    many, and the one written to."""
    engine = make_engine(url)
    with engine.connect() as connection:
        found = generations.generations(connection)
    engine.dispose()
    return {"log_generations": len(found), "log_generation": generations.current_of(found)}


def _empty_log(url: str) -> None:
    """Delete every access log entry and item (``--empty-log``): of a bench database only,
    one whose name contains "bench", so that a mistyped ``--url`` cannot empty a real log."""
    engine = make_engine(url)
    name = engine.url.database or ""
    if "bench" not in Path(name).name:
        engine.dispose()
        raise SystemExit(f"--empty-log: {name!r} is not a bench database (its name lacks 'bench')")
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE access_log, access_log_item"))
        else:
            conn.execute(text("DELETE FROM access_log_item"))
            conn.execute(text("DELETE FROM access_log"))
    engine.dispose()


def _partner(url: str) -> tuple[str, str]:
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        creds = clients.add(
            session, organization="Ngân hàng Đo Tải", kind="bank", scopes=["population.verify"],
            purposes=[PURPOSE], per_minute=100_000_000, per_day=1_000_000_000,
        ) if clients.get_organization(session, "Ngân hàng Đo Tải") is None else clients.add(
            session, organization="Ngân hàng Đo Tải", scopes=["population.verify"],
            purposes=[PURPOSE], per_minute=100_000_000, per_day=1_000_000_000,
        )  # fmt: skip
    engine.dispose()
    assert creds.client_secret is not None
    return creds.client_id, creds.client_secret


def _serve(
    url: str, port: int, workers: int, env_extra: dict[str, str], app: str = "dancu.app:factory"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DANCU_DATABASE_URL": url,
        "DANCU_ENVIRONMENT": "production",
        "DANCU_SECRET_KEY": env_extra["secret"],
        "DANCU_BASE_URL": f"http://127.0.0.1:{port}",
    }
    server = subprocess.Popen(
        [
            UVICORN,
            app,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start")


_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the uvicorn workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _wrk(
    script: Path, target: str, seconds: int, connections: int, server: int | None = None
) -> dict[str, Any]:
    cpu_before = _cpu_seconds(server) if server else 0.0
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), target],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    latency = {f"p{p}_ms": round(_ms(v, u), 2) for p, v, u in _LATENCY.findall(out)}
    if server:  # CPU the server spent per request: what the figure would be on idle cores
        cpu = _cpu_seconds(server) - cpu_before
        latency["server_cpu_ms_per_request"] = round(1000 * cpu / max(total, 1), 3)
    return {
        "requests_per_second": round(rps), "requests": total,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "", **latency,
    }  # fmt: skip


def _batch(
    base: str, token: str, bodies: list[dict[str, str]], seconds: float, streams: int
) -> dict[str, Any]:
    """10,000-item batches of distinct people posted back to back by ``streams`` concurrent
    clients, each stream cycling through the payloads from a different one."""
    items = [{k: v for k, v in b.items() if k != "purpose"} for b in bodies]
    payloads = [  # whole batches only: a register smaller than 10,000 people gives one smaller
        json.dumps({"purpose": PURPOSE, "items": items[start : start + 10_000]}).encode()
        for start in range(0, max(len(items) - 9_999, 1), 10_000)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    counts: list[int] = []
    started = time.perf_counter()

    def stream(first: int) -> None:
        turn = first
        with httpx.Client(base_url=base, timeout=120) as client:
            while time.perf_counter() - started < seconds:
                payload = payloads[turn % len(payloads)]
                turn += 1
                t0 = time.perf_counter()
                response = client.post("/api/v1/verify/batch", content=payload, headers=headers)
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                # answers counted in the bytes, as wrk would not parse them: a JSON parse of
                # each 10,000-answer body cost the load generator, on the same two cores as
                # the server, 0.15 of a core
                counts.append(response.content.count(b'"result":'))

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "items_per_second": round(sum(counts) / elapsed), "items": sum(counts),
        "batches": len(counts), "streams": streams,
        "median_batch_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
    }  # fmt: skip


def _single(
    args: argparse.Namespace, url: str, base: str, token: str, server: subprocess.Popen[bytes]
) -> None:
    """The single verifications and the no-op under ``wrk``, and the share of one in the other."""
    with tempfile.TemporaryDirectory(dir="/tmp/exch") as scratch:
        post = _post_script(Path(scratch), _people(url, args.verify_people, seed=5), token)
        get = Path(scratch) / "ping.lua"
        get.write_text(_LUA_GET % token)
        # warm up every worker (keys, caches, connections)
        _wrk(post, f"{base}/api/v1/verify", 3, args.connections)
        _wrk(get, f"{base}/api/v1/ping", 3, args.connections)
        common = {
            "backend": args.backend, "workers": args.workers,
            "connections": args.connections, "seconds": args.seconds,
        }  # fmt: skip
        load = os.getloadavg()[0]
        logged_before = _log_count(url)
        verify = _wrk(post, f"{base}/api/v1/verify", args.seconds, args.connections, server.pid)
        logged = _log_count(url) - logged_before
        emit(bench="verify", **common, **verify, access_log_entries=logged,
             log_entries_before=logged_before, load_before=round(load, 2))  # fmt: skip
        load = os.getloadavg()[0]
        noop = _wrk(get, f"{base}/api/v1/ping", args.seconds, args.connections, server.pid)
        emit(bench="noop", **common, **noop, load_before=round(load, 2))
        emit(
            bench="verify_share_of_noop", backend=args.backend, workers=args.workers,
            share=round(verify["requests_per_second"] / noop["requests_per_second"], 3),
        )  # fmt: skip


def _post_script(scratch: Path, bodies: list[dict[str, str]], token: str) -> Path:
    """wrk's script posting ``bodies`` in turn as single verifications."""
    post = scratch / "verify.lua"
    post.write_text(
        _LUA_POST % (",".join(_lua_string(json.dumps(b, ensure_ascii=False))
                              for b in bodies), token)
    )  # fmt: skip
    return post


def _mixed(
    args: argparse.Namespace, url: str, base: str, token: str, people: list[dict[str, str]],
    streams: int,
) -> None:  # fmt: skip
    """Single verifications under ``wrk`` (``--mixed-connections``) while ``streams`` clients
    post batches to the same server: what the batches cost the singles' latency."""
    with tempfile.TemporaryDirectory(dir="/tmp/exch") as scratch:
        post = _post_script(Path(scratch), _people(url, args.verify_people, seed=5), token)
        batches: dict[str, Any] = {}
        poster = threading.Thread(
            target=lambda: batches.update(_batch(base, token, people, args.seconds + 2, streams))
        )
        poster.start()
        time.sleep(1)  # the batches under way
        single = _wrk(post, f"{base}/api/v1/verify", args.seconds, args.mixed_connections)
        poster.join()
    if not batches:
        raise SystemExit("the batches failed while the single verifications ran (see above)")
    emit(bench="verify_during_batches", backend=args.backend, workers=args.workers,
         connections=args.mixed_connections, seconds=args.seconds, **single,
         batch_streams=streams, batch_items_per_second=batches["items_per_second"],
         batch_median_ms=batches["median_batch_ms"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--url", help="database URL (default: the backend's bench database)")
    parser.add_argument(
        "--workers", type=int, default=1,
        help="uvicorn worker processes (default 1: what fits on two cores beside PostgreSQL)",
    )  # fmt: skip
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--batch-seconds", type=float, default=15)
    parser.add_argument(
        "--mixed-connections", type=int, default=0,
        help="then single verifications on this many connections while batches run (0: not)",
    )  # fmt: skip
    parser.add_argument("--seed-citizens", type=int, default=0, help="seed this many first")
    parser.add_argument(
        "--batch-streams", type=int, default=0,
        help="clients posting batches at once (default: three, or one per worker if more: on "
        "one worker, one batch's Python runs while the others wait for PostgreSQL or the "
        "network)",
    )  # fmt: skip
    parser.add_argument(
        "--verify-people", type=int, default=5_000,
        help="distinct people wrk's single verifications cycle through (default: 5,000)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-people", type=int, default=50_000,
        help="distinct people in the batches, 10,000 a batch (default: 50,000, five batches)",
    )  # fmt: skip
    parser.add_argument(
        "--app", default="dancu.app:factory",
        help="the ASGI app factory uvicorn serves (another, wrapping it, to profile or count)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-only", action="store_true",
        help="measure the batch alone (to profile it, or to compare changes to it quickly)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-warm", type=float, default=0, metavar="SECONDS",
        help="post batches this long before the measured ones (the claim caches of a server "
        "that has run a while; a fresh worker reads most names of the whole register anew)",
    )  # fmt: skip
    parser.add_argument(
        "--empty-log", action="store_true",
        help="delete the bench database's access log first (its size changes the batch figure)",
    )  # fmt: skip
    args = parser.parse_args()
    url = args.url or (PG_URL if args.backend == "postgresql" else SQLITE_URL)
    env = {**os.environ, "DANCU_DATABASE_URL": url}
    if args.seed_citizens:
        subprocess.run([DANCU, "seed", "--citizens", str(args.seed_citizens)], env=env, check=True)
    else:  # schema at head, units loaded
        subprocess.run([DANCU, "exchange", "client", "list", "--org", "-"], env=env,
                       capture_output=True, check=False)  # fmt: skip
    if args.empty_log:
        _empty_log(url)
    client_id, secret = _partner(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(url, port, args.workers, {"secret": _secret()}, args.app)
    try:
        token = httpx.post(
            f"{base}/oauth/token", data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        ).json()["access_token"]  # fmt: skip
        if not args.batch_only:
            _single(args, url, base, token, server)
        people = _people(url, args.batch_people, seed=6)
        streams = args.batch_streams or max(3, args.workers)
        if args.batch_warm:
            _batch(base, token, people, args.batch_warm, streams)
        items_before = _log_count(url, AccessLogItem)  # before the CPU is counted: a scan
        cpu_before = _cpu_seconds(server.pid)
        busy_before, own_before = busy_cpu_seconds(), time.process_time()
        batch = _batch(base, token, people, args.batch_seconds, streams)
        cpu = _cpu_seconds(server.pid) - cpu_before
        busy, own = busy_cpu_seconds() - busy_before, time.process_time() - own_before
        per_item = 1e6 / max(batch["items"], 1)
        # the server's workers, the load generator (this process), and the rest: PostgreSQL
        # on this machine, plus whatever else ran
        batch["server_cpu_us_per_item"] = round(cpu * per_item, 1)
        batch["client_cpu_us_per_item"] = round(own * per_item, 1)
        batch["other_cpu_us_per_item"] = round((busy - cpu - own) * per_item, 1)
        emit(bench="batch", backend=args.backend, workers=args.workers, **batch,
             warm_seconds=args.batch_warm,
             log_items_before=items_before, **_generations(url))  # fmt: skip
        if args.mixed_connections:
            _mixed(args, url, base, token, people, streams)
    finally:
        server.terminate()
        server.wait(30)
    with make_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))


if __name__ == "__main__":
    main()
