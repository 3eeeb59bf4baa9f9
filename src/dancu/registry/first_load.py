"""The first load of a nation: straight into an empty register, one write of each person.

When the register holds nobody, the checks that a merge needs (an ID already held with other
data, a legacy number held by someone else, a household with another head) cannot fire, and
every row of a valid file is a new person. So rows go straight into ``citizen``, ``household``
and ``residence`` as they are checked (COPY on PostgreSQL, prepared by the reading process;
multi-row inserts on SQLite; a large load on PostgreSQL truncates the empty tables first and
writes its rows frozen, :func:`_truncated`), with no staging table, and the whole-file checks
are made as the rows arrive:

- an ID twice: the primary key of ``citizen`` refuses the second row (on PostgreSQL, for a
  large load, when the key is built after the rows are in);
- a household with two heads: the primary key of ``household`` refuses the second head;
- a legacy number twice, a father, mother or spouse who is nobody, a household with no head:
  found from the stream by the reading process (:class:`FileSurvey`), or for a load too large
  for it, one query each on the loaded tables.

Any problem at all, in a row or in the file, means the file needs the complete error report
(or, with ``--skip-invalid``, the rejects file), which the checked merge of
``registry.importer`` builds. This path then raises :class:`GiveWay`, the importer rolls its
savepoint back and reads the file again through the staging table. A valid file is written
once; an invalid one costs a second reading, and reports exactly what it always did.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import Table, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dancu.errors import Problem
from dancu.registry import bulk, quality
from dancu.registry.interchange import STAGING_SCHEMA
from dancu.registry.models import Citizen, Household, Residence
from dancu.registry.pipeline import Checked

# The checked columns (the staging schema without the row number), as citizen columns.
CITIZEN_COLUMNS: tuple[str, ...] = tuple(
    "household_code" if name == "household_id" else name for name in STAGING_SCHEMA.names[1:]
)
_STAMPS = ("import_batch_id", "created_at", "updated_at", "version")
TABLES: tuple[Table, ...] = tuple(bulk.table_of(m) for m in (Citizen, Household, Residence))
# SQLite: rows per INSERT statement. One statement per row re-evaluates the table's CHECK
# constraints' IN lists for each row; 500 rows of 25 values stay under SQLite's 32,766
# parameters.
_ROWS_PER_STATEMENT = 500
# Whole-file problems left to find once the rows are in (IDs and household heads are refused
# by primary keys as they arrive), when the checking process could not find them in the stream
# (:class:`FileSurvey`). Counts rather than "LIMIT 1": with a limit PostgreSQL expects an early
# hit and probes an index for every row, where a hash join over the whole table is ten times
# faster when, as in a valid file, there is no hit.
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


# The checking process keeps what the whole-file checks and the quality counts need (about
# 50 bytes a person) for up to this many rows; a larger load is checked and counted in SQL once
# loaded, so that memory stays bounded.
SURVEY_MAX_ROWS = 3_000_000
# 9-digit legacy numbers are kept apart from 12-digit ones: 000123456789 is not 123456789.
_NINE_DIGITS = 10**12


def _numbers(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Checked ID numbers (12 digits) as integers: equal numbers, equal text."""
    return pc.cast(column.drop_null(), pa.int64())


def _chunked(parts: list[pa.ChunkedArray], kind: pa.DataType) -> pa.ChunkedArray:
    """The parts as one column; the list lets go of them (the survey keeps no second copy)."""
    joined = pa.chunked_array([c for part in parts for c in part.chunks], kind)
    parts.clear()
    return joined


def _all_in(values: pa.ChunkedArray, known: pa.ChunkedArray) -> bool:
    if len(values) == 0:
        return True
    return bool(pc.all(pc.is_in(values, value_set=known.combine_chunks())).as_py())


# The counts of ``quality_commune_stats`` that the stream gives (the duplicate pairs are found
# after the load, and no deceased person keeps an open residence after a first load).
TALLIED: tuple[str, ...] = (
    "people",
    "alive",
    "incomplete",
    "id_inconsistent",
    "child_older_than_parent",
    "legacy_address",
)
# Those a row answers alone.
_PER_ROW = ("people", "alive", "incomplete", "id_inconsistent", "legacy_address")


def _legacy_pattern(fold_ascii_case: bool) -> str:
    """``quality.PREDICATES["legacy_address"]`` as one regular expression (one pass over the
    addresses instead of one per word): a word anywhere in the address, compared as the
    backend's LIKE compares (SQLite folds ASCII case, PostgreSQL folds nothing)."""
    words = quality.LEGACY_UNIT_WORDS
    if fold_ascii_case:
        words = tuple(dict.fromkeys(pc.ascii_lower(pa.array(words)).to_pylist()))
    return "|".join(re.escape(word) for word in words)


def _count(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A boolean column as 0/1 (null as 0), for sums per commune."""
    return pc.cast(pc.fill_null(values, False), pa.int64())


class QualityTally:
    """The data-quality counts per commune of a first load (``quality_commune_stats``, as
    ``quality.refresh_quality`` computes them in SQL), from the checked batches as they pass,
    so that the import need not scan the loaded register again (1M people: 2.1 s of SQL on one
    core after the load, against about 0.3 s of Arrow in the checking process).

    Each batch is counted per commune for every predicate that a row answers alone (people
    without a permanent commune fall in the null group, which no commune's counts include);
    for "child older than parent" the birth years and communes are kept, and the parents' years
    looked up when the stream ends (:meth:`finish`, given where each father and mother is
    among the loaded people by :class:`FileSurvey`). The counts of duplicate candidates, found
    after the load, are added by ``quality.store_counts``; a first load ends a deceased
    person's residence itself, so that count is zero. ``fold_ascii_case``: the legacy-unit
    words compared as SQLite's LIKE compares them.
    """

    def __init__(self, *, fold_ascii_case: bool) -> None:
        self.fold = fold_ascii_case
        self.pattern = _legacy_pattern(fold_ascii_case)
        self.forget()

    def forget(self) -> None:
        self.years: list[pa.ChunkedArray] = []
        self.communes: list[pa.ChunkedArray] = []
        self.counted: list[pa.Table] = []

    def add(self, table: pa.Table) -> None:
        commune, year = table["permanent_commune_code"], table["birth_year"]
        self.years.append(year)
        self.communes.append(commune)
        alive = pc.equal(table["status"], "alive")
        missing = pc.not_equal(table["birth_date_precision"], "day")
        for name in quality.REQUIRED_FIELDS:
            column = table["household_id" if name == "household_code" else name]
            missing = pc.or_(missing, pc.fill_null(pc.equal(column, ""), True))
        pid = table["personal_id"]
        century = pc.cast(pc.utf8_slice_codeunits(pid, 3, 4), pa.int32())
        decade = pc.cast(pc.utf8_slice_codeunits(pid, 4, 6), pa.int32())
        hundreds = pc.divide(year, 100)  # truncated, as SQL's integer division
        expected = pc.add(
            pc.multiply(pc.subtract(hundreds, 19), 2),
            pc.cast(pc.equal(table["sex"], "F"), pa.int32()),
        )
        id_inconsistent = pc.or_(
            pc.not_equal(century, expected),
            pc.not_equal(decade, pc.subtract(year, pc.multiply(hundreds, 100))),
        )
        address = table["permanent_address"]
        if self.fold:
            address = pc.ascii_lower(address)
        self.counted.append(
            pa.table(
                {
                    "commune": commune,
                    "people": pa.repeat(pa.scalar(1, pa.int64()), table.num_rows),
                    "alive": _count(alive),
                    "incomplete": _count(pc.and_(alive, missing)),
                    "id_inconsistent": _count(id_inconsistent),
                    "legacy_address": _count(pc.match_substring_regex(address, self.pattern)),
                }
            )
            .group_by("commune")
            .aggregate([(name, "sum") for name in _PER_ROW])
            .rename_columns(["commune", *_PER_ROW])
        )

    def finish(self, fathers: pa.Array, mothers: pa.Array) -> dict[str, tuple[int, ...]]:
        """The counts by commune, in the order of :data:`TALLIED`. ``fathers`` and ``mothers``
        give, for each loaded person in the order of the batches, where their father and
        mother are among the loaded people (null: none listed)."""
        if not self.counted:  # not one batch without a problem
            return {}
        years = _chunked(self.years, pa.int32()).combine_chunks()
        flags = [
            pc.less(pc.subtract(years, pc.take(years, parents)), quality.MIN_PARENT_AGE)
            for parents in (fathers, mothers)
        ]
        self.counted.append(
            pa.table(
                {
                    "commune": _chunked(self.communes, pa.string()),
                    # NULL for a parent not listed, as the SQL's LEFT JOIN gives: counted when
                    # either comparison is true.
                    "child_older_than_parent": _count(pc.or_kleene(*flags)),
                }
            )
            .group_by("commune")
            .aggregate([("child_older_than_parent", "sum")])
            .rename_columns(["commune", "child_older_than_parent"])
        )
        totals = pa.concat_tables(self.counted, promote_options="default")
        self.forget()
        totals = totals.group_by("commune").aggregate([(name, "sum") for name in TALLIED])
        rows = totals.filter(pc.is_valid(totals["commune"])).to_pylist()
        return {
            row["commune"]: tuple(int(row[f"{name}_sum"] or 0) for name in TALLIED) for row in rows
        }


@dataclass(slots=True, frozen=True)
class Surveyed:
    """What the survey found (:class:`FileSurvey`), sent from the checking process."""

    found: list[str] | None  # None: not surveyed, the SQL checks run
    counts: dict[str, tuple[int, ...]] | None = None  # QualityTally's, when it was kept


class FileSurvey:
    """The whole-file checks of a first load (:data:`_FILE_CHECKS`), made from the stream by
    the checking process while the loading process writes, rather than in SQL on the loaded
    tables afterwards (a scan of every person for the spouses, who have no index: at 1M people
    0.9 s less in the loading process on SQLite, 0.5-0.7 s on PostgreSQL).

    In an empty register a legacy number twice, a link to nobody and a household with no head
    are facts of the file alone. ``found`` is ``None`` (not surveyed: the SQL checks run) or
    what the file has, as the SQL checks name it. Past :data:`SURVEY_MAX_ROWS` the survey
    stops and the SQL checks run. With a ``tally`` the survey also counts the data-quality
    findings per commune (:class:`QualityTally`); ``counts`` holds them once received (``None``
    when the survey stopped or found a problem).
    """

    def __init__(self, tally: QualityTally | None = None) -> None:
        self.rows = 0
        self.found: list[str] | None = None
        self.counts: dict[str, tuple[int, ...]] | None = None
        self.tally = tally
        self._forget()

    def _forget(self) -> None:
        self.ids: list[pa.ChunkedArray] = []
        # Fathers and mothers row for row (null where none is listed), spouses without nulls.
        self.links: dict[str, list[pa.ChunkedArray]] = {
            "father_id": [],
            "mother_id": [],
            "spouse_id": [],
        }
        self.legacy: list[pa.ChunkedArray] = []
        self.households: list[pa.ChunkedArray] = []
        self.heads: list[pa.ChunkedArray] = []
        if self.tally:
            self.tally.forget()

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.rows > SURVEY_MAX_ROWS:
            self._forget()
            return
        self.ids.append(_numbers(table["personal_id"]))
        for link, parts in self.links.items():
            column = table[link]
            parts.append(pc.cast(column.drop_null() if link == "spouse_id" else column, pa.int64()))
        legacy = table["legacy_id_number"].drop_null()
        nine = pc.if_else(pc.equal(pc.utf8_length(legacy), 9), _NINE_DIGITS, 0)
        self.legacy.append(pc.add(pc.cast(legacy, pa.int64()), nine))
        households = table["household_id"]
        self.households.append(pa.chunked_array([pc.unique(households.drop_null())]))
        self.heads.append(households.filter(pc.equal(table["relationship_to_head"], "head")))
        if self.tally:
            self.tally.add(table)

    def finish(self) -> Surveyed:
        if self.rows > SURVEY_MAX_ROWS:
            return Surveyed(None)
        found = []
        legacy = _chunked(self.legacy, pa.int64())
        if pc.count_distinct(legacy).as_py() < len(legacy):
            found.append(_FILE_CHECKS[0][0])
        del legacy
        # Every link looked up among the IDs at once (one hash of the IDs): where each father,
        # mother and spouse is, null for nobody.
        links = [_chunked(parts, pa.int64()) for parts in self.links.values()]
        everyone = pc.index_in(
            pa.chunked_array([c for link in links for c in link.chunks], pa.int64()),
            value_set=_chunked(self.ids, pa.int64()).combine_chunks(),
        ).combine_chunks()
        if everyone.null_count > sum(link.null_count for link in links):
            found.append(_FILE_CHECKS[1][0])
        households = _chunked(self.households, pa.string())
        if not _all_in(households, _chunked(self.heads, pa.string())):
            found.append(_FILE_CHECKS[2][0])
        counts = None
        if self.tally and not found:
            people = len(links[0])
            counts = self.tally.finish(everyone.slice(0, people), everyone.slice(people, people))
        return Surveyed(found, counts)

    def received(self, summary: Surveyed) -> None:
        self.found = summary.found
        self.counts = summary.counts


# PostgreSQL's errors for a COPY FREEZE it cannot do: prior activity of the transaction (an
# open cursor, a held snapshot), a table not truncated in the current subtransaction.
_FREEZE_REFUSED = frozenset({"25000", "55000"})


class GiveWay(Exception):
    """The file has (or may have) a problem: the checked merge must load and report it."""


def _holds_nothing(session: Session) -> bool:
    return all(
        session.execute(text(f"SELECT 1 FROM {table.name} LIMIT 1")).first() is None
        for table in TABLES
    )


def register_is_empty(session: Session) -> bool:
    """Nobody in the register, no household, no residence: the first load of a nation.

    On PostgreSQL an empty register is then locked against other writers until the commit
    (this lock lets readers through), so that two first loads cannot both find it empty;
    SQLite lets one writer at a time anyway.
    """
    if not _holds_nothing(session):
        return False
    if session.get_bind().dialect.name != "postgresql":
        return True
    session.execute(text("LOCK TABLE citizen IN SHARE ROW EXCLUSIVE MODE"))
    return _holds_nothing(session)


@contextmanager
def written_in_place(engine: Engine) -> Iterator[bool]:
    """Around a whole import transaction (the caller's commit included): on SQLite, when the
    register is empty and nothing else has the database file open, a rollback journal instead
    of the write-ahead log until the end, so that the load is written once, into the database
    file, rather than into the log and then copied by the checkpoint (650 MB at 1M people).

    All-or-nothing holds as in WAL mode: a rollback journal records the pages that held data
    before the transaction (of an empty register, a few), pages added past the old end of the
    file need none, and a crash leaves a journal that the next opening of the file rolls back.
    ``synchronous=FULL`` meanwhile, so that the journal is on disk before the file changes.
    The log is back (and ``synchronous=NORMAL``) when the block ends, however it ends. Yields
    whether the journal was switched; other backends, a populated register, or a file that
    another connection holds open keep the log.
    """
    switched = False
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection, Session(bind=connection) as session:
            if register_is_empty(session):
                try:
                    mode = connection.exec_driver_sql("PRAGMA journal_mode = TRUNCATE").scalar()
                except OperationalError:  # another connection holds the file open
                    mode = None
                switched = mode == "truncate"
                if switched:
                    connection.exec_driver_sql("PRAGMA synchronous = FULL")
    try:
        yield switched
    finally:
        if switched:
            # The pool's only connection: leaving WAL succeeded because no other was open.
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode = WAL")
                connection.exec_driver_sql("PRAGMA synchronous = NORMAL")


@dataclass(slots=True, frozen=True)
class CopyRows:
    """One checked batch as COPY input (CSV) for each table, made by the reading process so
    that the loading process only passes bytes to the server.

    The tables' CSV follow each other in ``data``, which is what ``pipeline`` moves between
    the processes (through shared memory when it can, ``pipeline.Shared``)."""

    copies: tuple[tuple[str, tuple[str, ...], int], ...]  # (table, columns, bytes of CSV)
    people: int
    heads: int
    data: bytes | memoryview

    def parts(self) -> Iterator[tuple[str, tuple[str, ...], memoryview]]:
        """(table, columns, CSV) of each table with rows."""
        view, start = memoryview(self.data), 0
        for table, columns, size in self.copies:
            if size:
                yield table, columns, view[start : start + size]
            start += size


def _constants(batch_id: int, now: dt.datetime) -> dict[str, dict[str, tuple[pa.Scalar, str]]]:
    """The columns that hold one value for the whole load, by table: (value, SQL literal)."""
    stamp = now.isoformat()
    at = (pa.scalar(stamp), f"'{stamp}'::timestamptz")
    return {
        "citizen": {
            "import_batch_id": (pa.scalar(batch_id, pa.int64()), str(int(batch_id))),
            "created_at": at,
            "updated_at": at,
            "version": (pa.scalar(1, pa.int32()), "1"),
        },
        "household": {"created_at": at},
        "residence": {"kind": (pa.scalar("permanent"), "'permanent'"), "created_at": at},
    }


def _csv(columns: dict[str, pa.Array], sink: io.BytesIO) -> int:
    """Append the columns' rows to ``sink`` as CSV; return how many bytes."""
    before = sink.tell()
    pcsv.write_csv(
        pa.Table.from_arrays(list(columns.values()), names=list(columns)),
        sink,
        write_options=pcsv.WriteOptions(include_header=False),
    )
    return sink.tell() - before


@dataclass(slots=True)
class ResidenceIds:
    """The ids of a large PostgreSQL load's residences, numbered by the reading process from
    ``next`` instead of by the column's sequence for each row (a third less of the server's
    time for the residences' COPY, measured). The loader sets ``next`` from the sequence once
    it holds the load's lock on the table, before the reading process starts, and moves the
    sequence past the loaded ids at the end (:class:`_PostgresWriter`)."""

    next: int = 0


def copy_rows(
    batch_id: int, now: dt.datetime, *, as_defaults: bool, ids: ResidenceIds | None = None
) -> Callable[[pa.Table], CopyRows]:
    """The function the reading process applies to each checked batch (PostgreSQL).

    With ``as_defaults`` the columns of :func:`_constants` are left out: the loader has made
    them column defaults for the time of the load (:class:`_Defaults`). With ``ids`` the
    residences carry their ids.
    """
    constants = _constants(batch_id, now)
    ended_stamp = pa.scalar(now.isoformat())

    def copy(
        table: str, columns: dict[str, pa.Array], n: int, sink: io.BytesIO
    ) -> tuple[str, tuple[str, ...], int]:
        if not as_defaults:
            columns |= {c: pa.repeat(v, n) for c, (v, _) in constants[table].items()}
        return table, tuple(columns), _csv(columns, sink)

    def prepare(table: pa.Table) -> CopyRows:
        n = table.num_rows
        citizens = dict(zip(CITIZEN_COLUMNS, table.columns[1:], strict=True))
        heads = table.filter(pc.equal(table["relationship_to_head"], "head"))
        households = {
            "code": heads["household_id"],
            "head_id": heads["personal_id"],
            "commune_code": heads["permanent_commune_code"],
            "address": heads["permanent_address"],
        }
        placed = table.filter(pc.is_valid(table["permanent_commune_code"]))
        m = placed.num_rows
        numbered = {}
        if ids is not None:
            numbered = {"id": pa.array(np.arange(ids.next, ids.next + m, dtype=np.int64))}
            ids.next += m
        residences = {
            **numbered,
            "personal_id": placed["personal_id"],
            "commune_code": placed["permanent_commune_code"],
            "address": placed["permanent_address"],
            "household_code": placed["household_id"],
            "valid_from": pa.nulls(m, pa.date32()),
            "valid_to": placed["death_date"],
            # A deceased person's permanent residence ends with the death (Law 68/2020
            # art. 24).
            "ended_at": pc.if_else(
                pc.equal(placed["status"], "deceased"), ended_stamp, pa.scalar(None, pa.string())
            ),
        }
        sink = io.BytesIO()
        copies = (
            copy("citizen", citizens, n, sink),
            copy("household", households, heads.num_rows, sink),
            copy("residence", residences, m, sink),
        )
        return CopyRows(copies, n, heads.num_rows, sink.getbuffer())

    return prepare


class _Defaults:
    """The constant columns of a large PostgreSQL load as column defaults, for the time of
    the load: COPY then neither carries nor parses them (a third of its time for ``citizen``,
    measured). Inside the load's transaction; :meth:`restore` puts back what was there."""

    def __init__(self, session: Session, batch_id: int, now: dt.datetime) -> None:
        self.session = session
        self.values = {
            table: {column: literal for column, (_, literal) in columns.items()}
            for table, columns in _constants(batch_id, now).items()
        }
        self.before: dict[str, dict[str, str | None]] = {}

    def _alter(self, table: str, defaults: dict[str, str | None]) -> None:
        changes = ", ".join(
            f"ALTER COLUMN {column} "
            + (f"SET DEFAULT {expr}" if expr is not None else "DROP DEFAULT")
            for column, expr in defaults.items()
        )
        self.session.execute(text(f"ALTER TABLE {table} {changes}"))

    def set(self) -> None:
        for table, values in self.values.items():
            rows = self.session.execute(
                text(
                    "SELECT column_name, column_default FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = :t"
                ),
                {"t": table},
            )
            held: dict[str, str | None] = {str(c): d for c, d in rows}
            self.before[table] = {column: held.get(column) for column in values}
            self._alter(table, dict(values))

    def restore(self) -> None:
        for table, defaults in self.before.items():
            self._alter(table, defaults)


def _truncated(session: Session) -> bool:
    """Empty the (already empty) three tables with TRUNCATE inside the load's savepoint, so that
    COPY may write their rows frozen (PostgreSQL, ``COPY ... WITH (FREEZE)``).

    Frozen rows arrive with their visibility settled and their pages marked all-visible: the
    whole-file checks, the duplicate pass and the validation of the residences' foreign key
    read indexes alone (1M people: 2.5 s less, measured), and neither the first reader after
    the commit nor the next vacuum writes every page again to record that the load committed.
    TRUNCATE must name every table whose foreign keys point at these
    (``citizen_merge``); it is done only when all of them are empty too, and is rolled back
    with the savepoint, like the rows, when the load gives way. Returns whether it was done.
    """
    names = [table.name for table in TABLES]
    referring = session.scalars(
        text(
            """SELECT DISTINCT c.conrelid::regclass::text FROM pg_constraint c
               WHERE c.contype = 'f' AND c.confrelid = ANY(CAST(:names AS regclass[]))
                 AND NOT c.conrelid = ANY(CAST(:names AS regclass[]))"""
        ),
        {"names": names},
    ).all()
    others = [str(name) for name in referring]
    if any(session.execute(text(f"SELECT 1 FROM {name} LIMIT 1")).first() for name in others):
        return False
    session.execute(text(f"TRUNCATE {', '.join([*names, *others])}"))
    return True


class _Writer:
    """Writes checked batches into the three tables; returns (people, households)."""

    def write(self, checked: Checked) -> int:
        raise NotImplementedError

    def finish(self) -> int:
        raise NotImplementedError


_SEQUENCE = "pg_get_serial_sequence('residence', 'id')"


class _PostgresWriter(_Writer):
    def __init__(
        self,
        session: Session,
        defaults: _Defaults | None,
        *,
        freeze: bool,
        ids: ResidenceIds | None = None,
    ) -> None:
        self.session = session
        self.dbapi: Any = session.connection().connection.driver_connection
        self.defaults = defaults
        self.options = "FORMAT csv, FREEZE" if freeze else "FORMAT csv"
        self.heads = 0
        self.ids = ids
        if defaults:
            defaults.set()
        if ids is not None:
            # After the defaults: their ALTER TABLE holds the residences against other writers
            # until the commit, so nobody else takes the numbers that follow.
            ids.next = int(session.scalar(text(f"SELECT nextval({_SEQUENCE})")) or 0)

    def write(self, checked: Checked) -> int:
        rows: CopyRows = checked.payload
        with self.dbapi.cursor() as cur:
            for table, columns, data in rows.parts():
                sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH ({self.options})"
                with cur.copy(sql) as copy:
                    copy.write(data)
        self.heads += rows.heads
        return rows.people

    def finish(self) -> int:
        if self.defaults:
            self.defaults.restore()
        if self.ids is not None:
            self.session.execute(
                text(
                    f"SELECT setval({_SEQUENCE}, MAX(id)) FROM residence HAVING MAX(id) IS NOT NULL"
                )
            )
        return self.heads


def _python_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A column's values as Python objects (dates as ``YYYY-MM-DD`` text), for the driver.

    A column that repeats its values (sex, ethnicity, family names, communes, birth dates, ...)
    gets one object per distinct value, shared by its rows: fewer objects to make, and the
    driver's UTF-8 form of each is made once (the write of 1M people: about 1 s less).
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_date(column.type):
        column = pc.cast(column, pa.string())
    encoded = pc.dictionary_encode(column)
    distinct = len(encoded.dictionary)
    if distinct * 2 > len(column):
        return np.array(column.to_pylist(), dtype=object)
    values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    shared: np.ndarray = values[pc.fill_null(encoded.indices, distinct).to_numpy()]
    return shared


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
        # Row-major parameters without a tuple per row: a grid of references filled column by
        # column, flattened one statement at a time (half the cost of zip and chain).
        grid = np.empty((table.num_rows, table.num_columns - 1), dtype=object)
        for j, column in enumerate(table.columns[1:]):
            grid[:, j] = _python_values(column)
        for start in range(0, table.num_rows, _ROWS_PER_STATEMENT):
            chunk = grid[start : start + _ROWS_PER_STATEMENT]
            self.dbapi.execute(self._insert(len(chunk)), (*self.stamps, *chunk.ravel().tolist()))
        return int(table.num_rows)

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
    survey: FileSurvey | None = None,
    ids: ResidenceIds | None = None,
) -> tuple[int, int]:
    """Load a checked stream into the empty register; return (people, households).

    Raises :class:`GiveWay` at the first sign of a problem; the caller holds a savepoint and
    rolls it back. With ``bulk_load`` the secondary indexes are set aside meanwhile. ``lap``
    names the stage that just ended, for the timings of ``dancu -v``. ``survey``, given to the
    stream too, has made the whole-file checks by the end of the stream. ``ids``, given to the
    stream's :func:`copy_rows` too, numbers the residences from where this sets it.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    driver_errors: Any = session.get_bind().dialect.loaded_dbapi.IntegrityError
    freeze = postgres and bulk_load and _truncated(session)
    # On PostgreSQL the citizen's key is set aside too, and built once the rows are in: an ID
    # twice then fails that build (below) instead of the second row's insert.
    aside = (
        bulk.SetAside(session, list(TABLES), keys=[bulk.table_of(Citizen)]) if bulk_load else None
    )
    if aside:
        aside.drop()
    writer: _Writer = (
        _PostgresWriter(
            session,
            _Defaults(session, batch_id, now) if bulk_load else None,
            freeze=freeze,
            ids=ids,
        )
        if postgres
        else _SqliteWriter(session, batch_id, now)
    )
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
        if survey is not None and survey.found:
            raise GiveWay(f"the file has {survey.found[0]}")
        households = writer.finish()
        lap("write")
        if aside:
            aside.rebuild_keys()
    except (IntegrityError, driver_errors) as exc:
        raise GiveWay(f"refused by the database: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:
        # COPY FREEZE refused (an open cursor or snapshot of the caller's transaction): the
        # checked merge loads the file instead.
        if freeze and getattr(exc, "sqlstate", None) in _FREEZE_REFUSED:
            raise GiveWay(f"refused by the database: {str(exc).splitlines()[0]}") from exc
        raise
    if aside:
        aside.rebuild_indexes()
        # After the indexes: SQLite's statistics are per index. Before the foreign keys: their
        # validation is planned with them.
        bulk.analyze(session, *(table.name for table in TABLES))
        aside.rebuild_foreign_keys(all_visible=freeze)
        lap("indexes")
    if survey is None or survey.found is None:
        for what, sql in _FILE_CHECKS:
            if session.scalar(text(sql)):
                raise GiveWay(f"the file has {what}")
        lap("check file")
    return people, households
