"""The first load of a nation: straight into an empty register, one write of each person.

When the register holds nobody, the checks that a merge needs (an ID already held with other
data, a legacy number held by someone else, a household with another head) cannot fire, and
every row of a valid file is a new person. So rows go straight into ``citizen``, ``household``
and ``residence`` as they are checked (COPY on PostgreSQL, prepared by the reading process;
multi-row inserts on SQLite), with no staging table, and the whole-file checks run on the
loaded tables:

- an ID twice: the primary key of ``citizen`` refuses the second row;
- a household with two heads: the primary key of ``household`` refuses the second head;
- a legacy number twice, a father, mother or spouse who is nobody, a household with no head:
  one query each.

Any problem at all, in a row or in the file, means the file needs the complete error report
(or, with ``--skip-invalid``, the rejects file), which the checked merge of
``registry.importer`` builds. This path then raises :class:`GiveWay`, the importer rolls its
savepoint back and reads the file again through the staging table. A valid file is written
once; an invalid one costs a second reading, and reports exactly what it always did.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import Table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.errors import Problem
from dancu.registry import bulk
from dancu.registry.interchange import STAGING_SCHEMA
from dancu.registry.models import Citizen, Household, Residence
from dancu.registry.pipeline import Checked

# The checked columns (the staging schema without the row number), as citizen columns.
CITIZEN_COLUMNS: tuple[str, ...] = tuple(
    "household_code" if name == "household_id" else name for name in STAGING_SCHEMA.names[1:]
)
_STAMPS = ("import_batch_id", "created_at", "updated_at", "version")
_HOUSEHOLD_COLUMNS = ("code", "head_id", "commune_code", "address", "created_at")
_RESIDENCE_COLUMNS = (
    "personal_id",
    "kind",
    "commune_code",
    "address",
    "household_code",
    "valid_from",
    "valid_to",
    "ended_at",
    "created_at",
)
TABLES: tuple[Table, ...] = tuple(bulk.table_of(m) for m in (Citizen, Household, Residence))
# SQLite: rows per INSERT statement. One statement per row re-evaluates the table's CHECK
# constraints' IN lists for each row; 500 rows of 25 values stay under SQLite's 32,766
# parameters.
_ROWS_PER_STATEMENT = 500
# Whole-file problems left to find once the rows are in (IDs and household heads are refused
# by primary keys as they arrive). Counts rather than "LIMIT 1": with a limit PostgreSQL
# expects an early hit and probes an index for every row, where a hash join over the whole
# table is ten times faster when, as in a valid file, there is no hit.
_FILE_CHECKS: tuple[tuple[str, str], ...] = (
    (
        "a legacy number twice",
        """SELECT COUNT(*) FROM (SELECT legacy_id_number FROM citizen
           WHERE legacy_id_number IS NOT NULL
           GROUP BY legacy_id_number HAVING COUNT(*) > 1) AS twice""",
    ),
    (
        "a father, mother or spouse who is nobody",
        """SELECT COUNT(*) FROM (
             SELECT father_id AS link FROM citizen WHERE father_id IS NOT NULL
             UNION ALL SELECT mother_id FROM citizen WHERE mother_id IS NOT NULL
             UNION ALL SELECT spouse_id FROM citizen WHERE spouse_id IS NOT NULL) AS l
           WHERE NOT EXISTS (SELECT 1 FROM citizen p WHERE p.personal_id = l.link)""",
    ),
    (
        "a household with no head",
        """SELECT COUNT(*) FROM citizen c WHERE c.household_code IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM household h WHERE h.code = c.household_code)""",
    ),
)


class GiveWay(Exception):
    """The file has (or may have) a problem: the checked merge must load and report it."""


def register_is_empty(session: Session) -> bool:
    """Nobody in the register, no household, no residence: the first load of a nation."""
    if session.get_bind().dialect.name == "postgresql":
        # Writers wait for each other from here to the commit, so two first loads cannot both
        # see an empty register; readers are not blocked.
        session.execute(text("LOCK TABLE citizen IN SHARE ROW EXCLUSIVE MODE"))
    return all(
        session.execute(text(f"SELECT 1 FROM {table.name} LIMIT 1")).first() is None
        for table in TABLES
    )


@dataclass(slots=True, frozen=True)
class CopyRows:
    """One checked batch as COPY input (CSV) for the three tables, made by the reading
    process so that the loading process only passes bytes to the server."""

    citizens: bytes
    households: bytes
    residences: bytes
    people: int
    heads: int


def _csv(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pcsv.write_csv(table, buf, write_options=pcsv.WriteOptions(include_header=False))
    return buf.getvalue()


def copy_rows(batch_id: int, now: dt.datetime) -> Callable[[pa.Table], CopyRows]:
    """The function the reading process applies to each checked batch (PostgreSQL)."""
    stamp = now.isoformat()

    def prepare(table: pa.Table) -> CopyRows:
        n = table.num_rows
        citizens = pa.Table.from_arrays(
            [
                *table.columns[1:],
                pa.repeat(pa.scalar(batch_id, pa.int64()), n),
                pa.repeat(pa.scalar(stamp), n),
                pa.repeat(pa.scalar(stamp), n),
                pa.repeat(pa.scalar(1, pa.int32()), n),
            ],
            names=[*CITIZEN_COLUMNS, *_STAMPS],
        )
        heads = table.filter(pc.equal(table["relationship_to_head"], "head"))
        households = pa.Table.from_arrays(
            [
                heads["household_id"],
                heads["personal_id"],
                heads["permanent_commune_code"],
                heads["permanent_address"],
                pa.repeat(pa.scalar(stamp), heads.num_rows),
            ],
            names=list(_HOUSEHOLD_COLUMNS),
        )
        placed = table.filter(pc.is_valid(table["permanent_commune_code"]))
        m = placed.num_rows
        # A deceased person's permanent residence ends with the death (Law 68/2020 art. 24).
        ended = pc.if_else(
            pc.equal(placed["status"], "deceased"), stamp, pa.scalar(None, pa.string())
        )
        residences = pa.Table.from_arrays(
            [
                placed["personal_id"],
                pa.repeat(pa.scalar("permanent"), m),
                placed["permanent_commune_code"],
                placed["permanent_address"],
                placed["household_id"],
                pa.nulls(m, pa.date32()),
                placed["death_date"],
                ended,
                pa.repeat(pa.scalar(stamp), m),
            ],
            names=list(_RESIDENCE_COLUMNS),
        )
        return CopyRows(_csv(citizens), _csv(households), _csv(residences), n, heads.num_rows)

    return prepare


class _Writer:
    """Writes checked batches into the three tables; returns (people, households)."""

    def write(self, checked: Checked) -> int:
        raise NotImplementedError

    def finish(self) -> int:
        raise NotImplementedError


class _PostgresWriter(_Writer):
    def __init__(self, session: Session) -> None:
        self.dbapi: Any = session.connection().connection.driver_connection
        self.heads = 0

    def write(self, checked: Checked) -> int:
        rows: CopyRows = checked.payload
        with self.dbapi.cursor() as cur:
            for table, columns, data in (
                ("citizen", (*CITIZEN_COLUMNS, *_STAMPS), rows.citizens),
                ("household", _HOUSEHOLD_COLUMNS, rows.households),
                ("residence", _RESIDENCE_COLUMNS, rows.residences),
            ):
                if data:
                    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
                    with cur.copy(sql) as copy:
                        copy.write(data)
        self.heads += rows.heads
        return rows.people

    def finish(self) -> int:
        return self.heads


class _SqliteWriter(_Writer):
    def __init__(self, session: Session, batch_id: int, now: dt.datetime) -> None:
        self.session = session
        self.dbapi: Any = session.connection().connection.driver_connection
        self.now = now
        # The text the driver's datetime adapter writes, as the checked merge stores it.
        stamp = now.isoformat(" ")
        self.stamps: tuple[Any, ...] = (batch_id, stamp, stamp)
        self._sql: dict[int, str] = {}

    def _insert(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            one = "(" + ", ".join("?" * len(CITIZEN_COLUMNS)) + ")"
            sql = (
                f"INSERT INTO citizen ({', '.join((*CITIZEN_COLUMNS, *_STAMPS))}) "
                f"SELECT *, ?, ?, ?, 1 FROM (VALUES {', '.join([one] * rows)})"
            )
            self._sql[rows] = sql
        return sql

    def write(self, checked: Checked) -> int:
        table = checked.result.table
        columns = [
            (pc.cast(c, pa.string()) if pa.types.is_date(c.type) else c).to_pylist()
            for c in table.columns[1:]
        ]
        rows = list(zip(*columns, strict=True))
        flatten = itertools.chain.from_iterable
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            self.dbapi.execute(self._insert(len(chunk)), self.stamps + tuple(flatten(chunk)))
        return len(rows)

    def finish(self) -> int:
        heads = self.session.execute(
            text(
                """INSERT INTO household (code, head_id, commune_code, address, created_at)
                SELECT household_code, personal_id, permanent_commune_code, permanent_address,
                       :now
                FROM citizen WHERE relationship_to_head = 'head'"""
            ),
            {"now": self.now},
        )
        # A deceased person's permanent residence ends with the death (Law 68/2020 art. 24).
        self.session.execute(
            text(
                """INSERT INTO residence (personal_id, kind, commune_code, address,
                    household_code, valid_from, valid_to, ended_at, created_at)
                SELECT personal_id, 'permanent', permanent_commune_code, permanent_address,
                       household_code, NULL, death_date,
                       CASE WHEN status = 'deceased' THEN :now END, :now
                FROM citizen WHERE permanent_commune_code IS NOT NULL"""
            ),
            {"now": self.now},
        )
        return int(heads.rowcount)  # type: ignore[attr-defined]


def load(
    session: Session,
    stream: Iterable[Checked],
    *,
    batch_id: int,
    now: dt.datetime,
    bulk_load: bool,
    malformed: list[Problem],
    on_batch: Callable[[Checked], None],
    lap: Callable[[str], None],
) -> tuple[int, int]:
    """Load a checked stream into the empty register; return (people, households).

    Raises :class:`GiveWay` at the first sign of a problem; the caller holds a savepoint and
    rolls it back. With ``bulk_load`` the secondary indexes are set aside meanwhile. ``lap``
    names the stage that just ended, for the timings of ``dancu -v``.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    driver_errors: Any = session.get_bind().dialect.loaded_dbapi.IntegrityError
    writer: _Writer = (
        _PostgresWriter(session) if postgres else _SqliteWriter(session, batch_id, now)
    )
    aside = bulk.SetAside(session, list(TABLES)) if bulk_load else None
    if aside:
        aside.drop()
    people = 0
    try:
        for checked in stream:
            lap("read and check rows")
            on_batch(checked)
            if checked.result.problems:
                raise GiveWay("a row has a problem")
            people += writer.write(checked)
            lap("write")
        if malformed:
            raise GiveWay("a row has the wrong number of fields")
        if people == 0:
            raise GiveWay("no valid row")
        households = writer.finish()
        lap("write")
    except (IntegrityError, driver_errors) as exc:
        raise GiveWay(f"refused by the database: {str(exc).splitlines()[0]}") from exc
    if aside:
        aside.rebuild()
        # After the indexes: SQLite's statistics are per index.
        bulk.analyze(session, *(table.name for table in TABLES))
        lap("indexes")
    for what, sql in _FILE_CHECKS:
        if session.scalar(text(sql)):
            raise GiveWay(f"the file has {what}")
    lap("check file")
    return people, households
