"""Secondary indexes and foreign keys set aside around a large load, and the settings for it.

Building an index once from a million loaded rows costs a fraction of a million random
insertions into it, and on PostgreSQL one validating join per foreign key replaces a trigger
call per row. Everything happens inside the load's transaction: a load that fails or rolls
back leaves the schema exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import ForeignKeyConstraint, Index, PrimaryKeyConstraint, Table, text
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.schema import AddConstraint, DropConstraint

# How SQLite builds an index: its sorter cuts the keys into runs of the page cache's size and,
# with helper threads, sorts and merges runs while the table is still being read. With the
# register's 200 MB cache every key fits one run, sorted by one thread in one long pass (the
# second core idle); with 2 MB runs and four helpers both cores sort, and each run fits the
# processor's caches. Ten indexes of 1M people: 4.2-4.8 s -> 2.4-2.7 s rebuilt alone,
# 4.5-4.9 s -> 2.7-3.3 s in an import (docs/benchmarks.md).
_SQLITE_SORT_THREADS = 4
_SQLITE_SORT_CACHE_KIB = 2000


def table_of(model: type[DeclarativeBase]) -> Table:
    """The table of a mapped class, typed as a table."""
    return cast(Table, model.__table__)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def tune(session: Session) -> None:
    """Settings for the rest of a bulk-load transaction (PostgreSQL; SQLite needs none).

    Enough memory to sort an index in one pass, with the parallel workers the machine has;
    ``synchronous_commit`` off for this transaction only: the load's commit does not wait for
    its WAL to reach the disk, so a server crash in that instant loses the load (and never
    corrupts anything); the load can then be run again.
    """
    if _postgres(session):
        session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        session.execute(text("SET LOCAL max_parallel_maintenance_workers = 2"))
        session.execute(text("SET LOCAL synchronous_commit = off"))


class SetAside:
    """The secondary indexes of ``tables`` (and, on PostgreSQL, their foreign keys), dropped by
    :meth:`drop` and built again by :meth:`rebuild` in the same transaction.

    On PostgreSQL the primary keys of ``keys`` (tables empty before the load) are set aside
    too, with every foreign key that refers to them (those of other tables read from the
    catalogue, so that none is missed): a key built once from the loaded rows costs less than
    keeping it row by row (1M people: 0.6-0.7 s to build the citizen's key with its payload;
    the COPY without it about as much faster; docs/benchmarks.md). A duplicate then fails
    :meth:`rebuild_keys` instead of the insert."""

    def __init__(
        self, session: Session, tables: list[Table], *, keys: Sequence[Table] = ()
    ) -> None:
        self.session = session
        self.indexes: list[Index] = [index for table in tables for index in table.indexes]
        postgres = _postgres(session)
        self.keys: list[PrimaryKeyConstraint] = (
            [table.primary_key for table in keys] if postgres else []
        )
        self.foreign_keys: list[ForeignKeyConstraint] = (
            [
                c
                for table in tables
                for c in table.constraints
                if isinstance(c, ForeignKeyConstraint)
            ]
            if postgres
            else []
        )
        self._own = [table.name for table in tables]
        # (table, name, definition) of the other tables' foreign keys to ``keys``: set by drop
        self.referring: list[tuple[str, str, str]] = []

    def drop(self) -> None:
        connection = self.session.connection()
        for index in self.indexes:
            index.drop(connection)
        for constraint in self.foreign_keys:
            connection.execute(DropConstraint(constraint))
        if self.keys:
            rows = connection.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE contype = 'f' "
                    "AND confrelid = ANY(CAST(:keyed AS regclass[])) "
                    "AND NOT conrelid = ANY(CAST(:own AS regclass[])) ORDER BY 1, 2"
                ),
                {"keyed": [key.table.name for key in self.keys], "own": self._own},
            )
            self.referring = [(table, name, definition) for table, name, definition in rows]
        quote = connection.dialect.identifier_preparer.quote_identifier
        for table, name, _ in self.referring:
            connection.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}"))
        for key in self.keys:
            connection.execute(DropConstraint(key))

    def rebuild_keys(self) -> None:
        """The primary keys set aside (an ``IntegrityError`` if the rows repeat a key)."""
        connection = self.session.connection()
        for key in self.keys:
            connection.execute(AddConstraint(key))

    def rebuild(self) -> None:
        """The primary keys, the indexes, then the foreign keys."""
        self.rebuild_keys()
        self.rebuild_indexes()
        self.rebuild_foreign_keys()

    def rebuild_indexes(self) -> None:
        connection = self.session.connection()
        sqlite = not _postgres(self.session)
        if sqlite:
            threads = self.session.scalar(text("PRAGMA threads"))
            cache = self.session.scalar(text("PRAGMA cache_size"))
            self.session.execute(text(f"PRAGMA threads = {_SQLITE_SORT_THREADS}"))
            self.session.execute(text(f"PRAGMA cache_size = -{_SQLITE_SORT_CACHE_KIB}"))
        try:
            for index in self.indexes:
                index.create(connection)
        finally:
            if sqlite:
                self.session.execute(text(f"PRAGMA threads = {int(threads or 0)}"))
                self.session.execute(text(f"PRAGMA cache_size = {int(cache or 0)}"))

    def rebuild_foreign_keys(self, *, all_visible: bool = False) -> None:
        """Add the foreign keys back; each one validates its rows with one join.

        With ``all_visible`` (every page of the loaded tables marked all-visible, as after
        ``COPY ... FREEZE``, and their statistics fresh), a key whose columns lead an index of
        its table is validated with hash joins off: PostgreSQL then merges that index with the
        referenced primary key, both read without touching the tables (0.2 s instead of 0.6 s
        for the 1,000,000 residences against the citizens, where the hash join it prefers
        reads both tables and hashes a million keys). Elsewhere such an index-only scan would
        visit the table for every row, so the planner's choice stays.
        """
        connection = self.session.connection()
        quote = connection.dialect.identifier_preparer.quote_identifier
        for table, name, definition in self.referring:
            connection.execute(
                text(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
            )
        self.referring = []
        for constraint in self.foreign_keys:
            merge = all_visible and _leads_an_index(constraint)
            if merge:
                previous = self.session.scalar(text("SELECT current_setting('enable_hashjoin')"))
                self.session.execute(text("SELECT set_config('enable_hashjoin', 'off', true)"))
            connection.execute(AddConstraint(constraint))
            if merge:
                self.session.execute(
                    text("SELECT set_config('enable_hashjoin', :v, true)"), {"v": previous}
                )


def _leads_an_index(constraint: ForeignKeyConstraint) -> bool:
    """Whether the key's columns are the first columns of an index of its table."""
    columns = [column.name for column in constraint.columns]
    return any(
        [column.name for column in index.columns][: len(columns)] == columns
        for index in constraint.table.indexes
    )


def analyze(session: Session, *tables: str) -> None:
    """Fresh statistics, or the planner treats the newly loaded tables as empty."""
    for table in tables:
        session.execute(text(f"ANALYZE {table}"))
