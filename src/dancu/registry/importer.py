"""Bulk import into the register (CONTRACTS.md section 2), all-or-nothing by default.

The pipeline, chosen so that memory stays bounded and the database does the set work:

1. stream the file in batches; check and normalise each batch (``registry.interchange``);
2. load the valid rows into a temporary staging table: COPY on PostgreSQL, ``executemany``
   on SQLite;
3. run the checks that need the whole file and the register in SQL on the staging table:
   an ID twice, an ID already held with different data, a legacy number held by someone
   else, a father, mother or spouse who is nobody, a household with no head or two;
4. with any problem, raise with the complete list (the caller's transaction rolls back and
   nothing changes), or with ``skip_invalid`` drop the bad rows, and whatever depended on
   them, and write them to a rejects file;
5. merge: insert new citizens, households and permanent residences; rows already held with
   identical data are left alone, so importing a file twice changes nothing the second time;
6. flag duplicate candidates among the new people (never merged automatically).

An empty register (the first load of a nation) skips the staging table: rows go straight into
the register and the whole-file checks run there (``registry.first_load``). At the first sign
of a problem that path gives way, its savepoint is rolled back, and the file is read again
through the steps above, which build the complete error report or the rejects.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dancu.db import execute_count
from dancu.errors import Problem, ValidationFailed
from dancu.geo.models import Commune
from dancu.registry import bulk, duplicates, first_load, pipeline, quality
from dancu.registry.interchange import (
    COLUMNS,
    STAGING_SCHEMA,
    RawBatch,
    format_partial,
    open_source,
)
from dancu.registry.models import Citizen, ImportBatch, Residence

log = logging.getLogger(__name__)

STAGING = "import_staging"
# The staging columns that hold a person's number, a household code or a commune code: in
# byte order on PostgreSQL, as the register's (``db.personal_id_type``, ``db.code_type``).
_BYTE_ORDER_COLUMNS = (
    "personal_id", "legacy_id_number", "father_id", "mother_id", "spouse_id",
    "household_id", "permanent_commune_code",
)  # fmt: skip
PARALLEL_FROM_ROWS = 100_000
# From this size a load sets the secondary indexes aside and builds them again afterwards.
BULK_FROM_ROWS = 100_000
_STAGING_COLUMNS = STAGING_SCHEMA.names
# Columns compared between a staged row and the held record, as (staging, citizen) names:
# every interchange column but the ID, and the precision that a partial birth date implies.
_COMPARED: tuple[tuple[str, str], ...] = (
    *((c, "household_code" if c == "household_id" else c) for c in COLUMNS[1:]),
    ("birth_date_precision", "birth_date_precision"),
)

Progress = Callable[[int], None]


@dataclass(slots=True)
class ImportReport:
    """What an import did; ``problems`` lists every rejected row when ``skip_invalid``."""

    batch_id: int | None
    rows_read: int = 0
    inserted: int = 0
    unchanged: int = 0
    rejected: int = 0
    households: int = 0
    duplicate_candidates: int = 0
    problems: list[Problem] = field(default_factory=list)
    rejects_path: Path | None = None
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    # A first load's data-quality counts per commune, from its stream (``quality_counts`` of
    # ``load``), in the order of ``first_load.TALLIED``; ``None`` when not made.
    quality: dict[str, tuple[int, ...]] | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0


class _Stopwatch:
    """Adds the time since the previous lap to a named stage."""

    def __init__(self, stages: dict[str, float]) -> None:
        self.stages = stages
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.last
        self.last = now


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _create_staging(session: Session) -> None:
    types = {
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.string(): "TEXT",
        pa.date32(): "DATE",
    }
    cols = ", ".join(f"{f.name} {types[f.type]}" for f in STAGING_SCHEMA)
    if _dialect(session) == "postgresql":
        # the numbers and codes in byte order, as the register's: the comparisons with its
        # columns are then made in its collation, which its indexes serve
        for name in _BYTE_ORDER_COLUMNS:
            cols = cols.replace(f"{name} TEXT", f'{name} TEXT COLLATE "C"')
        session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{STAGING}"))
        session.execute(text(f"CREATE TEMP TABLE {STAGING} ({cols}) ON COMMIT DROP"))
    else:
        # row_no as the rowid: every index on the staging table then covers the row number.
        cols = cols.replace("row_no BIGINT", "row_no INTEGER PRIMARY KEY")
        session.execute(text(f"DROP TABLE IF EXISTS temp.{STAGING}"))
        session.execute(text(f"CREATE TEMP TABLE {STAGING} ({cols})"))


def _drop_staging(session: Session) -> None:
    schema = "pg_temp" if _dialect(session) == "postgresql" else "temp"
    session.execute(text(f"DROP TABLE IF EXISTS {schema}.{STAGING}"))


def _load_staging(session: Session, table: pa.Table) -> None:
    """Append normalised rows to the staging table by the backend's fastest path."""
    if table.num_rows == 0:
        return
    dbapi = session.connection().connection.driver_connection
    if _dialect(session) == "postgresql":
        buf = io.BytesIO()
        pcsv.write_csv(table, buf, write_options=pcsv.WriteOptions(include_header=False))
        cols = ", ".join(_STAGING_COLUMNS)
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {STAGING} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buf.getbuffer())
        return
    columns = []
    for column in table.columns:
        if pa.types.is_date(column.type):
            column = pc.strftime(column, format="%Y-%m-%d")
        columns.append(column.to_pylist())
    marks = ", ".join("?" * len(columns))
    dbapi.executemany(  # type: ignore[union-attr]
        f"INSERT INTO {STAGING} VALUES ({marks})", zip(*columns, strict=True)
    )


def _null_safe_equal(session: Session, left: str, right: str) -> str:
    if _dialect(session) == "postgresql":
        return f"{left} IS NOT DISTINCT FROM {right}"
    return f"{left} IS {right}"


def _rows(session: Session, sql: str, **params: Any) -> list[Any]:
    return list(session.execute(text(sql), params).all())


def _check_whole_file(session: Session) -> list[Problem]:
    """The checks that need every row of the file and the register, in SQL."""
    problems: list[Problem] = []
    for row_no, first in _rows(
        session,
        f"""SELECT s.row_no, f.first_row FROM {STAGING} s
            JOIN (SELECT personal_id, MIN(row_no) AS first_row FROM {STAGING}
                  GROUP BY personal_id HAVING COUNT(*) > 1) f ON f.personal_id = s.personal_id
            WHERE s.row_no <> f.first_row""",
    ):
        problems.append(Problem(row_no, "personal_id", f"the same personal_id as row {first}"))

    differs = " OR ".join(
        f"NOT ({_null_safe_equal(session, f's.{mine}', f'c.{held}')})" for mine, held in _COMPARED
    )
    staged_cols = ", ".join(f"s.{mine}" for mine, _ in _COMPARED)
    held_cols = ", ".join(f"c.{held}" for _, held in _COMPARED)
    n = len(_COMPARED)
    for row in _rows(
        session,
        f"""SELECT s.row_no, {staged_cols}, {held_cols}
            FROM {STAGING} s JOIN citizen c ON c.personal_id = s.personal_id
            WHERE {differs}""",
    ):
        changed = [
            _COMPARED[i][0]
            for i in range(n)
            if _comparable(row[1 + i]) != _comparable(row[1 + n + i])
        ]
        problems.append(
            Problem(
                row[0],
                "personal_id",
                "already in the register with different data (" + ", ".join(changed) + ")",
            )
        )

    for row_no, first in _rows(
        session,
        f"""SELECT s.row_no, f.first_row FROM {STAGING} s
            JOIN (SELECT legacy_id_number, MIN(row_no) AS first_row FROM {STAGING}
                  WHERE legacy_id_number IS NOT NULL
                  GROUP BY legacy_id_number HAVING COUNT(*) > 1) f
              ON f.legacy_id_number = s.legacy_id_number
            WHERE s.row_no <> f.first_row""",
    ):
        problems.append(
            Problem(row_no, "legacy_id_number", f"the same legacy number as row {first}")
        )
    for (row_no,) in _rows(
        session,
        f"""SELECT s.row_no FROM {STAGING} s JOIN citizen c
              ON c.legacy_id_number = s.legacy_id_number AND c.personal_id <> s.personal_id""",
    ):
        problems.append(
            Problem(row_no, "legacy_id_number", "already held by another person in the register")
        )
    problems.extend(_check_links(session))
    return problems


def _check_links(session: Session) -> list[Problem]:
    """References to people and household heads; re-run after rejected rows are dropped."""
    problems: list[Problem] = []
    for column in ("father_id", "mother_id", "spouse_id"):
        for (row_no,) in _rows(
            session,
            f"""SELECT s.row_no FROM {STAGING} s WHERE s.{column} IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {STAGING} t WHERE t.personal_id = s.{column})
                AND NOT EXISTS (SELECT 1 FROM citizen c WHERE c.personal_id = s.{column})""",
        ):
            problems.append(
                Problem(row_no, column, "points to nobody in this file or in the register")
            )
    for row_no, household, first in _rows(
        session,
        f"""SELECT s.row_no, s.household_id, f.first_row FROM {STAGING} s
            JOIN (SELECT household_id, MIN(row_no) AS first_row FROM {STAGING}
                  WHERE relationship_to_head = 'head'
                  GROUP BY household_id HAVING COUNT(*) > 1) f ON f.household_id = s.household_id
            WHERE s.relationship_to_head = 'head' AND s.row_no <> f.first_row""",
    ):
        problems.append(
            Problem(
                row_no,
                "relationship_to_head",
                f"household {household} already has a head on row {first}",
            )
        )
    for row_no, household in _rows(
        session,
        f"""SELECT s.row_no, s.household_id FROM {STAGING} s
            JOIN household h ON h.code = s.household_id
            WHERE s.relationship_to_head = 'head' AND h.head_id <> s.personal_id""",
    ):
        problems.append(
            Problem(
                row_no,
                "relationship_to_head",
                f"household {household} already has another head in the register",
            )
        )
    for row_no, household in _rows(
        session,
        f"""SELECT MIN(s.row_no), s.household_id FROM {STAGING} s
            WHERE s.household_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM household h WHERE h.code = s.household_id)
            GROUP BY s.household_id
            HAVING SUM(CASE WHEN s.relationship_to_head = 'head' THEN 1 ELSE 0 END) = 0""",
    ):
        problems.append(Problem(row_no, "household_id", f"household {household} has no head"))
    return problems


def _comparable(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


def _drop_rows(session: Session, rows: Iterable[int]) -> None:
    unique = sorted(set(rows))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join(str(int(r)) for r in chunk)
        session.execute(text(f"DELETE FROM {STAGING} WHERE row_no IN ({marks})"))


def _register_rows_up_to(session: Session, limit: int) -> int:
    """How many people the register holds, counting no further than ``limit`` (cheap on a
    national register, where a full COUNT(*) is a scan)."""
    return int(
        session.scalar(
            text("SELECT COUNT(*) FROM (SELECT 1 FROM citizen LIMIT :n) AS head"), {"n": limit}
        )
        or 0
    )


def _merge(session: Session, batch_id: int, now: dt.datetime, *, big: bool) -> tuple[int, int, int]:
    """Insert what is new; return (unchanged, inserted citizens, inserted households).

    With ``big`` (a load at least as large as the register), the secondary indexes are
    dropped and rebuilt around the inserts, inside the transaction (``registry.bulk``).
    """
    unchanged = execute_count(
        session,
        text(
            f"DELETE FROM {STAGING} WHERE EXISTS "
            f"(SELECT 1 FROM citizen c WHERE c.personal_id = {STAGING}.personal_id)"
        ),
    )
    tables = [bulk.table_of(Citizen), bulk.table_of(Residence)]
    aside = bulk.SetAside(session, tables) if big else None
    if aside:
        bulk.tune(session)
        aside.drop()
    inserted = execute_count(
        session,
        text(
            f"""INSERT INTO citizen (personal_id, legacy_id_number, full_name, family_name,
                middle_name, given_name, name_key, birth_date, birth_date_precision, birth_year,
                sex, status, death_date, ethnicity, religion, nationality, place_of_origin, phone,
                father_id, mother_id, spouse_id, household_code, relationship_to_head,
                permanent_commune_code, permanent_address, import_batch_id, created_at,
                updated_at, version)
            SELECT personal_id, legacy_id_number, full_name, family_name, middle_name,
                given_name, name_key, birth_date, birth_date_precision, birth_year, sex, status,
                death_date, ethnicity, religion, nationality, place_of_origin, phone, father_id,
                mother_id, spouse_id, household_id, relationship_to_head,
                permanent_commune_code, permanent_address, :batch, :now, :now, 1
            FROM {STAGING} ORDER BY personal_id"""
        ),
        {"batch": batch_id, "now": now},
    )
    households = execute_count(
        session,
        text(
            f"""INSERT INTO household (code, head_id, commune_code, address, created_at)
            SELECT s.household_id, s.personal_id, s.permanent_commune_code, s.permanent_address,
                   :now
            FROM {STAGING} s WHERE s.relationship_to_head = 'head'
              AND NOT EXISTS (SELECT 1 FROM household h WHERE h.code = s.household_id)"""
        ),
        {"now": now},
    )
    # A deceased person's permanent residence ends with the death (Law 68/2020 art. 24).
    session.execute(
        text(
            f"""INSERT INTO residence (personal_id, kind, commune_code, address, household_code,
                valid_from, valid_to, ended_at, created_at)
            SELECT personal_id, 'permanent', permanent_commune_code, permanent_address,
                   household_id, NULL, death_date,
                   CASE WHEN status = 'deceased' THEN :now END, :now
            FROM {STAGING} WHERE permanent_commune_code IS NOT NULL"""
        ),
        {"now": now},
    )
    if aside:
        aside.rebuild()
        bulk.analyze(session, "citizen", "household", "residence")
    return unchanged, inserted, households


class _Rejects:
    """Writes rejected rows, in the interchange columns plus their row number and reason."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: io.TextIOWrapper | None = None
        self._writer: Any = None
        self._reasons: dict[int, list[str]] = {}

    def note(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            self._reasons.setdefault(p.row or 0, []).append(
                f"{p.field}: {p.reason}" if p.field else p.reason
            )

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self._fh = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._fh)
            self._writer.writerow([*COLUMNS, "row", "error"])
        for row in rows:
            number = int(row["row"])
            self._writer.writerow(
                [row.get(c) or "" for c in COLUMNS]
                + [number, "; ".join(self._reasons.get(number, []))]
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def load(
    session: Session,
    batches: Iterable[RawBatch],
    *,
    source: str,
    name: str,
    actor: str,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    malformed: list[Problem] | None = None,
    file_sha256: str | None = None,
    progress: Progress | None = None,
    today: dt.date | None = None,
    parallel: bool = False,
    reopen: Callable[[], Iterable[RawBatch]] | None = None,
    expected_rows: int | None = None,
    quality_counts: bool = False,
) -> ImportReport:
    """Check and load ``batches`` into the register inside the caller's transaction.

    Raises ``ValidationFailed`` listing every problem unless ``skip_invalid``; the caller's
    rollback then leaves the register unchanged. ``parallel`` reads and checks in a second
    process (worth it from about 100,000 rows). ``reopen`` gives the same batches again: with
    it, a load into an empty register goes straight in (``registry.first_load``) and reads
    the input a second time only if it finds a problem. ``expected_rows`` (when known) lets a
    large load set the secondary indexes aside from the start. With ``quality_counts`` a first
    load also counts the data-quality findings per commune from its stream
    (``report.quality``, for :func:`refresh_quality`).
    """
    started = time.perf_counter()
    today = today or dt.date.today()
    now = dt.datetime.now(dt.UTC)
    malformed = malformed if malformed is not None else []
    communes = frozenset(session.scalars(select(Commune.code)).all())
    # The batch row is written first: on SQLite that opens the transaction that the first
    # load's savepoint must sit in.
    batch = ImportBatch(
        source=source,
        file_name=name,
        file_sha256=file_sha256,
        actor=actor,
        started_at=now,
        rows_read=0,
    )
    session.add(batch)
    session.flush()
    big = (expected_rows or 0) >= BULK_FROM_ROWS
    if big:
        bulk.tune(session)
    report: ImportReport | None = None
    if reopen is not None and first_load.register_is_empty(session):
        report = ImportReport(batch_id=batch.id)
        try:
            _first_load(
                session,
                batches,
                report,
                now=now,
                big=big,
                communes=communes,
                today=today,
                malformed=malformed,
                parallel=parallel,
                progress=progress,
                quality_counts=quality_counts,
            )
        except first_load.GiveWay as why:
            log.info("import %s: %s; loading through the staging table", name, why)
            report = None
            malformed.clear()
            batches = reopen()
    if report is None:
        report = ImportReport(batch_id=batch.id)
        _checked_merge(
            session,
            batches,
            report,
            name=name,
            now=now,
            communes=communes,
            today=today,
            malformed=malformed,
            parallel=parallel,
            progress=progress,
            skip_invalid=skip_invalid,
            rejects_path=rejects_path,
        )
    batch.rows_read = report.rows_read
    batch.rows_inserted = report.inserted
    batch.rows_unchanged = report.unchanged
    batch.rows_rejected = report.rejected
    batch.finished_at = dt.datetime.now(dt.UTC)
    session.flush()
    report.seconds = time.perf_counter() - started
    log.info(
        "import %s: read %d, inserted %d, unchanged %d, rejected %d in %.1f s (%s)",
        name,
        report.rows_read,
        report.inserted,
        report.unchanged,
        report.rejected,
        report.seconds,
        ", ".join(f"{k} {v:.1f} s" for k, v in report.stages.items()),
    )
    return report


def _first_load(
    session: Session,
    batches: Iterable[RawBatch],
    report: ImportReport,
    *,
    now: dt.datetime,
    big: bool,
    communes: frozenset[str],
    today: dt.date,
    malformed: list[Problem],
    parallel: bool,
    progress: Progress | None,
    quality_counts: bool,
) -> None:
    """Load into the empty register under a savepoint; raises ``first_load.GiveWay`` (with
    the savepoint rolled back) when the file needs the checked merge."""
    assert report.batch_id is not None
    watch = _Stopwatch(report.stages)

    def arrived(checked: pipeline.Checked) -> None:
        report.rows_read += checked.rows_read
        if progress:
            progress(checked.rows_read)

    postgres = _dialect(session) == "postgresql"
    ids = first_load.ResidenceIds() if postgres and big else None
    prepare = (
        first_load.copy_rows(report.batch_id, now, as_defaults=big, ids=ids) if postgres else None
    )
    tally = (
        first_load.QualityTally(fold_ascii_case=_dialect(session) == "sqlite")
        if quality_counts
        else None
    )
    survey = first_load.FileSurvey(tally)
    stream = pipeline.checked_batches(
        batches,
        communes=communes,
        today=today,
        malformed=malformed,
        parallel=parallel,
        prepare=prepare,
        survey=survey,
    )
    with session.begin_nested(), closing(stream):
        report.inserted, report.households = first_load.load(
            session,
            stream,
            batch_id=report.batch_id,
            now=now,
            bulk_load=big,
            malformed=malformed,
            on_batch=arrived,
            lap=watch.lap,
            survey=survey,
            ids=ids,
        )
        report.duplicate_candidates = duplicates.flag_from_table(session, "citizen", now, bulk=big)
        watch.lap("duplicates")
    report.quality = survey.counts


def refresh_quality(session: Session, report: ImportReport) -> int:
    """The data-quality counts per commune after an import (``quality_commune_stats``): from
    the first load's stream when it counted them, else in SQL (``quality.refresh_quality``).
    Returns how many communes hold people."""
    if report.quality is not None:
        return quality.store_counts(session, report.quality, kinds=first_load.TALLIED)
    return quality.refresh_quality(session)


def _checked_merge(
    session: Session,
    batches: Iterable[RawBatch],
    report: ImportReport,
    *,
    name: str,
    now: dt.datetime,
    communes: frozenset[str],
    today: dt.date,
    malformed: list[Problem],
    parallel: bool,
    progress: Progress | None,
    skip_invalid: bool,
    rejects_path: Path | None,
) -> None:
    """Stage, check the whole file, then merge into the register (steps 2 to 6 above)."""
    assert report.batch_id is not None
    rejects = _Rejects(rejects_path if skip_invalid else None)
    problems: list[Problem] = []
    _create_staging(session)
    watch = _Stopwatch(report.stages)
    try:
        stream = pipeline.checked_batches(
            batches, communes=communes, today=today, malformed=malformed, parallel=parallel
        )
        for checked in stream:
            watch.lap("read and check rows")
            report.rows_read += checked.rows_read
            if checked.result.problems:
                problems.extend(checked.result.problems)
                if skip_invalid:
                    rejects.note(checked.result.problems)
                    rejects.write(checked.rejected_raw)
            _load_staging(session, checked.result.table)
            watch.lap("stage")
            if progress:
                progress(checked.rows_read)
        if malformed:
            problems.extend(malformed)
            report.rows_read += len(malformed)
            if skip_invalid:
                rejects.note(malformed)
                rejects.write({"row": p.row} for p in malformed)
        if report.rows_read == 0:
            raise ValidationFailed(f"{name} has no data rows")
        session.execute(text(f"CREATE INDEX ix_{STAGING}_pid ON {STAGING} (personal_id)"))
        session.execute(text(f"CREATE INDEX ix_{STAGING}_hh ON {STAGING} (household_id)"))
        session.execute(text(f"ANALYZE {STAGING}"))
        whole = _check_whole_file(session)
        watch.lap("check file")
        if whole and not skip_invalid:
            problems.extend(whole)
        if problems and not skip_invalid:
            problems.sort(key=lambda p: (p.row or 0, p.field or ""))
            raise ValidationFailed(
                f"{name}: {len({p.row for p in problems})} invalid rows; nothing was imported",
                problems,
            )
        while whole:
            problems.extend(whole)
            rejects.note(whole)
            bad_rows = {p.row for p in whole if p.row is not None}
            rejects.write(_staged_rows(session, bad_rows))
            _drop_rows(session, bad_rows)
            whole = _check_links(session)
        staged = int(session.scalar(text(f"SELECT COUNT(*) FROM {STAGING}")) or 0)
        big = staged >= BULK_FROM_ROWS and _register_rows_up_to(session, staged) < staged
        report.unchanged, report.inserted, report.households = _merge(
            session, report.batch_id, now, big=big
        )
        watch.lap("merge")
        report.duplicate_candidates = duplicates.flag_from_table(session, STAGING, now, bulk=big)
        watch.lap("duplicates")
        report.problems = sorted(problems, key=lambda p: (p.row or 0, p.field or ""))
        report.rejected = len({p.row for p in problems})
        report.rejects_path = rejects.path if report.rejected else None
        _drop_staging(session)
    finally:
        rejects.close()


def _staged_rows(session: Session, rows: set[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ordered = sorted(rows)
    for start in range(0, len(ordered), 500):
        marks = ", ".join(str(int(r)) for r in ordered[start : start + 500])
        for rec in session.execute(
            text(f"SELECT * FROM {STAGING} WHERE row_no IN ({marks})")
        ).mappings():
            row = {c: _comparable(rec.get(c)) for c in COLUMNS if c in rec}
            row["household_id"] = rec["household_id"]
            row["birth_date"] = format_partial(rec["birth_date"], rec["birth_date_precision"])
            row["row"] = rec["row_no"]
            out.append(row)
    return out


def import_file(
    session: Session,
    path: Path,
    *,
    actor: str,
    chunk_rows: int = 50_000,
    max_line_bytes: int = 1 << 20,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    parallel: bool | None = None,
) -> ImportReport:
    """Import an interchange file (.csv or .parquet) into the register."""
    malformed: list[Problem] = []
    total, digest, batches = open_source(
        path, chunk_rows=chunk_rows, max_line_bytes=max_line_bytes, malformed=malformed
    )
    if on_total:
        on_total(total)

    def reopen() -> Iterable[RawBatch]:
        return open_source(
            path, chunk_rows=chunk_rows, max_line_bytes=max_line_bytes, malformed=malformed
        )[2]

    return load(
        session,
        batches,
        source="import",
        name=path.name,
        actor=actor,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path or path.with_name(path.stem + ".rejects.csv"),
        malformed=malformed,
        file_sha256=digest,
        progress=progress,
        parallel=total >= PARALLEL_FROM_ROWS if parallel is None else parallel,
        reopen=reopen,
        expected_rows=total,
        quality_counts=True,
    )
