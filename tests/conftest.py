"""Test database: SQLite by default, PostgreSQL when ``DANCU_TEST_DATABASE_URL`` is set.

The schema is built by the real migrations, once per test process (one database per
pytest-xdist worker on PostgreSQL). Administrative units are loaded once. Each test runs in a
transaction rolled back at teardown, so tests never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from dancu.db import make_engine
from dancu.geo import loader as geo_loader
from dancu.migrations import upgrade

# Timing never belongs in assertions: no per-example deadline (CI machines are shared).
hypothesis_settings.register_profile("dancu", deadline=None)
hypothesis_settings.load_profile("dancu")


def _postgres_url(base: str, worker: str) -> str:
    url = make_url(base)
    name = f"{url.database}_{worker}" if worker != "master" else url.database
    if name != url.database:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    else:
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    base = os.environ.get("DANCU_TEST_DATABASE_URL")
    if base:
        return _postgres_url(base, worker)
    path: Path = tmp_path_factory.mktemp("db") / f"test_{worker}.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    with Session(eng) as s:
        geo_loader.load(s)
        s.commit()
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test."""
    connection = engine.connect()
    outer = connection.begin()
    s = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def fresh(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of the backend under test, with no schema: for migration tests."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield engine
        engine.dispose()
        return
    name = f"{url.database}_migrate"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
