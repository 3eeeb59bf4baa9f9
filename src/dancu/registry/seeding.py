"""``dancu seed``: load a synthetic nation through the same importer as a real file.

People arrive in the interchange format (``registry.synth``) and go through every check of an
import. Temporary residences (tạm trú), which the interchange format does not carry, are then
registered in SQL for about 5% of living adults, chosen and placed deterministically from
their ID numbers: in another commune of their province (people who moved for work or study),
with a validity of two years. The data-quality counts (``registry.quality``) are refreshed
last, so that the back office's overview is current from the start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from dancu.db import execute_count
from dancu.registry import importer, interchange, quality, synth

TEMPORARY_SHARE_PERCENT = 5


def seed(
    session: Session,
    n: int,
    seed_value: int,
    communes: Sequence[synth.CommuneWeight],
    *,
    name: str | None = None,
    actor: str = "seed",
    progress: importer.Progress | None = None,
    today: dt.date | None = None,
) -> importer.ImportReport:
    """Generate ``n`` people deterministically from ``seed_value`` and load them."""
    today = today or dt.date.today()

    def people() -> Iterator[interchange.RawBatch]:
        return interchange.number_batches(synth.generate(n, seed_value, communes, today=today))

    report = importer.load(
        session,
        people(),
        source="seed",
        name=name or f"seed:{n}:{seed_value}",
        actor=actor,
        progress=progress,
        parallel=n >= importer.PARALLEL_FROM_ROWS,
        today=today,
        reopen=people,
        expected_rows=n,
    )
    if report.inserted and report.batch_id is not None:
        add_temporary_residences(session, report.batch_id, today)
        quality.refresh_quality(session)
    return report


def add_temporary_residences(session: Session, batch_id: int, today: dt.date) -> int:
    """Register temporary residences for about 5% of the batch's living adults."""
    starts = [
        (
            i,
            (today - dt.timedelta(days=30 * (i + 1))).isoformat(),
            (today - dt.timedelta(days=30 * (i + 1)) + dt.timedelta(days=730)).isoformat(),
        )
        for i in range(12)
    ]
    session.execute(text("DROP TABLE IF EXISTS seed_period"))
    session.execute(
        text("CREATE TEMP TABLE seed_period (i INTEGER, valid_from DATE, valid_to DATE)")
    )
    session.execute(
        text("INSERT INTO seed_period VALUES (:i, :f, :t)"),
        [{"i": i, "f": f, "t": t} for i, f, t in starts],
    )
    session.execute(text("DROP TABLE IF EXISTS seed_commune"))
    session.execute(
        text(
            """CREATE TEMP TABLE seed_commune AS
               SELECT province_code, code,
                      ROW_NUMBER() OVER (PARTITION BY province_code ORDER BY code) - 1 AS i,
                      COUNT(*) OVER (PARTITION BY province_code) AS n
               FROM commune"""
        )
    )
    session.execute(text("CREATE UNIQUE INDEX ix_seed_commune_code ON seed_commune (code)"))
    session.execute(text("CREATE INDEX ix_seed_commune_slot ON seed_commune (province_code, i)"))
    session.execute(text("ANALYZE seed_commune"))
    session.execute(text("ANALYZE seed_period"))
    adult_year = today.year - 18
    inserted = execute_count(
        session,
        text(
            f"""INSERT INTO residence (personal_id, kind, commune_code, address, household_code,
                    valid_from, valid_to, created_at)
            SELECT c.personal_id, 'temporary', target.code,
                   'Phòng ' || (CAST(SUBSTR(c.personal_id, 9, 3) AS INTEGER) + 1)
                       || ', nhà trọ số ' || (CAST(SUBSTR(c.personal_id, 7, 2) AS INTEGER) + 1),
                   NULL, p.valid_from, p.valid_to, :now
            FROM citizen c
            JOIN seed_commune home ON home.code = c.permanent_commune_code
            JOIN seed_commune target ON target.province_code = home.province_code
             AND target.i = CAST(SUBSTR(c.personal_id, 7, 4) AS INTEGER) % home.n
            JOIN seed_period p ON p.i = CAST(SUBSTR(c.personal_id, 12, 1) AS INTEGER) % 12
            WHERE c.import_batch_id = :batch AND c.status = 'alive' AND c.birth_year <= :adult
              AND CAST(SUBSTR(c.personal_id, 11, 2) AS INTEGER) < {TEMPORARY_SHARE_PERCENT}
              AND target.code <> c.permanent_commune_code"""
        ),
        {"batch": batch_id, "adult": adult_year, "now": dt.datetime.now(dt.UTC)},
    )
    session.execute(text("DROP TABLE seed_commune"))
    session.execute(text("DROP TABLE seed_period"))
    return int(inserted)
