"""Engine, sessions and the declarative base shared by every domain.

SQLite (WAL mode) is the embedded default and PostgreSQL (psycopg 3) the production backend;
the same models and migrations serve both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import MetaData, String, create_engine, event
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def personal_id_type() -> String:
    """The column type of a personal ID (or legacy CMND) number: 12 characters, and on
    PostgreSQL in byte order (collation ``C``). The numbers are digits, which every collation
    sorts alike, but a B-tree of a language collation compares its keys through the C
    library's ``strcoll`` and cannot sort them by abbreviated keys: with byte order a
    register read of 2,000 people probes ``pk_citizen`` in about 25% less time, and the index
    builds in half the time (docs/benchmarks.md). Every column holding a person's number uses
    it, so that the columns compared with each other share a collation and their indexes
    serve the comparisons (migration 0009)."""
    return _byte_order(12)


def code_type(length: int) -> String:
    """The column type of an administrative-unit code (province, district, commune) or a
    household code: on PostgreSQL in byte order (collation ``C``), as the personal IDs
    (``personal_id_type``). The codes are digits and ASCII, which every collation sorts
    alike; in byte order their indexes compare keys without ``strcoll`` (a first load of 1M
    people builds the four code indexes in about 0.4 s less), and every column holding such a
    code shares the collation, so that comparing one with another can use their indexes
    (migration 0012)."""
    return _byte_order(length)


def _byte_order(length: int) -> String:
    """Text of at most ``length`` characters, compared in byte order (collation ``C``) on
    PostgreSQL; SQLite compares text in byte order anyway."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def pg_array_element(value: str) -> str:
    """``value`` as one element of a PostgreSQL array literal (``'{"a b","c\\"d"}'``):
    double-quoted, with its backslashes and double quotes escaped, so that commas, braces,
    spaces and the word NULL stay text."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-200000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with the per-backend settings dancu relies on."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error. Whoever opens it commits."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def execute_count(session: Session, statement: Any, params: Any = None) -> int:
    """Execute an INSERT, UPDATE or DELETE and return how many rows it touched."""
    result = (
        session.execute(statement, params) if params is not None else session.execute(statement)
    )
    return int(cast(CursorResult[Any], result).rowcount)
