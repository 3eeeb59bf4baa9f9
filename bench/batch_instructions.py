"""Instructions per item of a batch verification's Python work, counted by callgrind.

A throughput run on a shared 2-core machine moves by 20% from one run to the next; the
number of instructions the server's Python executes per batch item does not. This bench
reads the register rows of ``--people`` random people once from a seeded database (as
``verify_bench.py`` picks them, every field given, one in ten with the wrong sex), then,
under ``valgrind --tool=callgrind`` (Debian package), does what the batch route does with
them in process, without the database: read the body, check each item and read its claim,
make the jobs, compare with the register rows, check and encode the access log entry and
its items, hash it, render the answer. Only that part is counted (``--toggle-collect`` on
the ``functools.reduce`` that runs it), after a first round that fills the memos. The
garbage collector is set as ``app.factory`` sets it in the server.

    python bench/batch_instructions.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench

prints one JSON line with ``instructions_per_item``. Compare two versions of the code with
``PYTHONPATH=<other checkout>/src``: about 2 minutes a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections import namedtuple
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
import verify_bench
from dancu.audit import bulk
from dancu.audit.service import Anchor
from dancu.db import make_engine
from dancu.exchange import routes, verify
from dancu.exchange.tokens import ClientState
from dancu.registry.agreement import parse_claim

BATCH = 10_000
CLIENT = ClientState("dc_bench", "Bench", True, frozenset([verify_bench.PURPOSE]), 10**9, 10**9)


def _prepare(url: str, people: int, path: Path) -> None:
    """The bodies (batches of 10,000 distinct people) and their register rows, pickled."""
    bodies = verify_bench._people(url, people, 7)
    batches = [
        orjson.dumps(
            {
                "purpose": verify_bench.PURPOSE,
                "items": [
                    {k: v for k, v in body.items() if k != "purpose"}
                    for body in bodies[start : start + BATCH]
                ],
            }
        )
        for start in range(0, len(bodies) - BATCH + 1, BATCH)
    ]
    numbers = [body["personal_id"] for body in bodies]
    engine = make_engine(url)
    with Session(engine) as session:
        found = verify.fetch(session, numbers)  # the lean register read, by any backend
    engine.dispose()
    names = list(next(iter(found.values()))._fields)
    path.write_bytes(pickle.dumps((batches, names, [tuple(row) for row in found.values()])))


def _one(body: bytes, register: dict[str, Any]) -> bytes:
    """What the batch route and ``commit_group_pg`` do with one body, but the database."""
    stated, items = routes._batch_body(body)
    if hasattr(routes, "read_batch"):  # items as columns (25 November 2026, session 9)
        batch = routes.read_batch(items, CLIENT, CLIENT.client_id, stated, "r" * 32)
        numbers = sorted({claim.number for claim in batch.claims})
        rows = {n: register[n] for n in numbers if n in register}
        answers, columns = verify.batch_answers(batch, rows)
        prepared = bulk.prepare_batch(verify.batch_entry(batch, columns))
    else:  # a job per item
        if hasattr(routes, "batch_jobs"):
            jobs = routes.batch_jobs(items, CLIENT, CLIENT.client_id, stated, "r" * 32)
        else:  # code before 25 November 2026 (7c385ac and older): the route's loop as it was
            jobs = [
                verify.Job(parse_claim(item, row=n), "dc_bench", "Bench", stated, "r" * 32, item=n)
                for n, item in enumerate(items, start=1)
            ]
        numbers = sorted({job.claim.number for job in jobs})
        rows = {n: register[n] for n in numbers if n in register}
        answers, items_read = verify.batch_answers(jobs, rows)
        prepared = bulk.prepare_batch(verify.batch_entry(jobs, items_read))
    bulk.link_batch(prepared, Anchor(1, "0" * 64))
    bulk.pg_batch_params(prepared, 0)
    rendered: bytes = routes._batch_json(answers, "r" * 32)
    return rendered


def _count(path: Path, rounds: int) -> None:
    """Run under callgrind: a warm round, then ``rounds`` counted ones."""
    batches, names, raw = pickle.loads(path.read_bytes())
    row = namedtuple("row", names)  # type: ignore[misc]  # as psycopg's namedtuple_row
    register = {values[0]: row(*values) for values in raw}
    for body in batches:
        _one(body, register)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)  # as app.factory
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)
    for _ in range(rounds):
        functools.reduce(lambda _, body: _one(body, register), batches, b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a seeded database (dancu seed)")
    parser.add_argument(
        "--people", type=int, default=50_000, help="distinct people, 10,000 a batch"
    )
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds over the batches")
    parser.add_argument("--count", type=Path, help=argparse.SUPPRESS)  # the run under callgrind
    args = parser.parse_args()
    if args.count:
        _count(args.count, args.rounds)
        return
    if not args.url or args.people < BATCH:
        parser.error(f"give --url and at least {BATCH:,} --people")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as work:
        data, out = Path(work) / "data.pkl", Path(work) / "callgrind.out"
        _prepare(args.url, args.people, data)
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            "--toggle-collect=functools_reduce", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--count", str(data), "--rounds", str(args.rounds),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit("callgrind wrote no totals")
        items = args.people // BATCH * BATCH * args.rounds
    print(
        json.dumps(
            {
                "bench": "batch_instructions",
                "instructions_per_item": round(int(found.group(1)) / items),
                "items": items,
                "date": dt.datetime.now(dt.UTC).date().isoformat(),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
