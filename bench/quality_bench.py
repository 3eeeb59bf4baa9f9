"""Benchmarks of the back office's register services (issue 3) on a large register.

Measures, in process against an existing database (seeded first with ``dancu seed`` in a
child process when it is empty):

- ``refresh``: ``registry.quality.refresh_quality`` for the whole country;
- ``overview``: ``registry.quality.overview`` of every province from the pre-aggregated
  counts (the figure of issue 3: a province under 2 s), and computed live for the largest
  province and for a commune;
- ``findings``: the first page of people behind each count, in the largest province;
- ``search``: the scoped search (``registry.scope.search``) of a commune and of a province,
  by name prefix with and without diacritics, and by ID number.

``--defects`` first plants a deterministic sample of data-quality problems in the register
(PostgreSQL only; idempotent), so that every finding kind has people: about 1% of addresses
get a pre-2025 district, 1% of people lose their ethnicity, 1% have their sex flipped, 1 in
10 of the deceased get their permanent residence reopened, and 1% of children are made five
years younger than their father. Results go to stdout as JSON lines; copy them into
docs/benchmarks.md with the date, the machine and its load.

    createdb h_reg_bench   # once
    DANCU_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/h_reg_bench \\
        .venv/bin/dancu seed --citizens 1000000
    .venv/bin/python bench/quality_bench.py --defects
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from common import emit
from dancu.db import make_engine
from dancu.geo.models import Commune
from dancu.registry import quality, scope
from dancu.registry.models import Citizen
from dancu.registry.scope import Scope
from dancu.vn import names as vn_names

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/h_reg_bench"
DANCU = str(Path(sys.executable).with_name("dancu"))

DEFECTS = (
    """UPDATE citizen SET permanent_address = permanent_address || ', Quận Cũ'
       WHERE personal_id LIKE '%17' AND permanent_address NOT LIKE '%Quận Cũ'""",
    "UPDATE citizen SET ethnicity = NULL WHERE personal_id LIKE '%41' AND status = 'alive'",
    """UPDATE citizen SET sex = CASE WHEN CAST(SUBSTR(personal_id, 4, 1) AS INTEGER) % 2 = 1
                                THEN 'M' ELSE 'F' END
       WHERE personal_id LIKE '%29'""",
    """UPDATE residence SET ended_at = NULL FROM citizen c
       WHERE c.personal_id = residence.personal_id AND c.status = 'deceased'
         AND residence.kind = 'permanent' AND c.personal_id LIKE '%3'""",
    """UPDATE citizen c SET birth_date = (p.birth_date + interval '5 years')::date,
              birth_year = p.birth_year + 5
       FROM citizen p WHERE p.personal_id = c.father_id AND c.personal_id LIKE '%53'
         AND c.status = 'alive' AND c.birth_year <> p.birth_year + 5
         AND (c.death_date IS NULL OR c.death_date >= (p.birth_date + interval '5 years')::date)
         AND p.birth_date + interval '5 years' <= now()""",
)


def _timed(action: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return times, result


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "n": len(ordered),
    }


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default=os.environ.get("DANCU_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--citizens", type=int, default=1_000_000, help="seed size if empty")
    parser.add_argument("--defects", action="store_true", help="plant quality problems first")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300, help="searches per kind")
    args = parser.parse_args()
    engine = make_engine(args.url)
    with Session(engine) as s:
        people = int(s.scalar(select(func.count()).select_from(Citizen)) or 0)
    if people == 0:
        started = time.perf_counter()
        subprocess.run(
            [DANCU, "seed", "--citizens", str(args.citizens)],
            env={**os.environ, "DANCU_DATABASE_URL": args.url},
            check=True,
        )
        emit(figure="seed", citizens=args.citizens, seconds=round(time.perf_counter() - started, 1))
        people = args.citizens
    emit(figure="register", citizens=people, backend=engine.dialect.name, load=_load())

    with Session(engine) as s:
        if args.defects:
            for statement in DEFECTS:
                s.execute(text(statement))
            s.commit()
            s.execute(text("ANALYZE citizen"))
            s.execute(text("ANALYZE residence"))
            s.commit()

        times, communes = _timed(lambda: quality.refresh_quality(s), 1)
        s.commit()
        emit(figure="refresh_quality (national)", seconds=round(times[0], 2), communes=communes)

        sizes = dict(
            s.execute(
                select(Commune.province_code, func.count())
                .select_from(Citizen)
                .join(Commune, Commune.code == Citizen.permanent_commune_code)
                .group_by(Commune.province_code)
            ).all()
        )
        largest = max(sizes, key=lambda p: sizes[p])
        province_times: list[float] = []
        for code in sorted(sizes):
            t, _ = _timed(lambda c=code: quality.overview(s, Scope.parse(c)), args.repeat)
            province_times.extend(t)
        emit(figure="overview of a province (aggregated), all 34", **_ms(province_times))
        t, overview = _timed(lambda: quality.overview(s, scope.NATIONAL), args.repeat)
        emit(figure="overview national (aggregated)", **_ms(t))
        assert isinstance(overview, quality.QualityOverview)
        emit(figure="national totals", people=overview.people, **overview.totals)

        big = Scope.parse(largest)
        t, _ = _timed(lambda: quality.overview(s, big, live=True), 2)
        emit(figure=f"overview live, largest province {largest}", people=sizes[largest], **_ms(t))
        commune = s.scalars(
            select(Citizen.permanent_commune_code).where(Citizen.personal_id >= "079").limit(1)
        ).one()
        assert commune is not None
        small = Scope.parse(commune)
        t, _ = _timed(lambda: quality.overview(s, small, live=True), args.repeat)
        emit(figure="overview live, one commune", commune=commune, **_ms(t))
        for kind in quality.KINDS:
            t, page = _timed(lambda k=kind: quality.findings(s, big, k, limit=50), args.repeat)
            assert isinstance(page, quality.FindingPage)
            emit(figure=f"findings first page: {kind}", found=len(page.items), **_ms(t))

        rng = random.Random(7)
        sample = list(
            s.execute(
                select(Citizen.personal_id, Citizen.full_name, Citizen.permanent_commune_code)
                .where(Citizen.permanent_commune_code.is_not(None))
                .order_by(Citizen.personal_id)
                .offset(rng.randrange(max(1, people - 5000)))
                .limit(5000)
            ).all()
        )
        picks = rng.sample(sample, min(args.queries, len(sample)))
        index = {c.code: c.province_code for c in s.scalars(select(Commune))}
        for label, make in (
            ("commune, full name", lambda p: (Scope("commune", p[2]), p[1])),
            ("province, full name", lambda p: (Scope("province", index[p[2]]), p[1])),
            (
                "province, family + middle name prefix, no diacritics",
                lambda p: (
                    Scope("province", index[p[2]]),
                    vn_names.fold(" ".join(p[1].split()[:2])),
                ),
            ),
            ("commune, by ID number", lambda p: (Scope("commune", p[2]), p[0])),
        ):
            times = []
            for pick in picks:
                unit, query = make(pick)
                t, _ = _timed(lambda u=unit, q=query: scope.search(s, u, query=q), 1)
                times.extend(t)
            emit(figure=f"scoped search: {label}", **_ms(times))
    engine.dispose()
    emit(figure="done", load=_load())


if __name__ == "__main__":
    main()
