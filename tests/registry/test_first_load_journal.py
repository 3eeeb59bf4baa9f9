"""The first load of a nation on SQLite, written once into the database file
(``first_load.written_in_place``): a rollback journal instead of the write-ahead log while
the register is empty, all-or-nothing all the same, the log back afterwards."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dancu import bootstrap
from dancu.db import make_engine, make_sessionmaker, unit_of_work
from dancu.registry import first_load, importer
from tests.registry.factories import family, person, write_csv


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "nation.db"
    engine = make_engine(f"sqlite:///{path}")
    bootstrap.prepare(engine)
    yield engine, path
    engine.dispose()


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as lite:
        return str(lite.execute("PRAGMA journal_mode").fetchone()[0])


def _people(path: Path) -> int:
    lite = sqlite3.connect(path)
    try:
        assert lite.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(lite.execute("SELECT COUNT(*) FROM citizen").fetchone()[0])
    finally:
        lite.close()


def _import(engine: Engine, csv: Path) -> importer.ImportReport:
    with unit_of_work(make_sessionmaker(engine)) as session:
        return importer.import_file(session, csv, actor="test")


def test_an_empty_register_is_loaded_without_the_log_which_comes_back(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, path = database
    csv = write_csv(tmp_path / "nation.csv", family("00004"))
    with first_load.written_in_place(engine) as switched:
        assert switched
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert _import(engine, csv).inserted == 3
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()
    assert _journal_mode(path) == "wal"
    assert _people(path) == 3


def test_a_failed_load_leaves_an_empty_register_and_the_log(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, path = database
    csv = write_csv(tmp_path / "nation.csv", family("00004"))
    with pytest.raises(RuntimeError, match="after the load"):
        with first_load.written_in_place(engine):
            with unit_of_work(make_sessionmaker(engine)) as session:
                importer.import_file(session, csv, actor="test")
                raise RuntimeError("after the load, before the commit")
    engine.dispose()
    assert _journal_mode(path) == "wal"
    assert _people(path) == 0


def test_the_log_stays_for_a_populated_register_or_a_file_open_elsewhere(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, path = database
    reader = sqlite3.connect(path)
    try:
        reader.execute("SELECT COUNT(*) FROM commune").fetchone()
        with first_load.written_in_place(engine) as switched:
            assert not switched, "another connection has the file open"
    finally:
        reader.close()
    _import(engine, write_csv(tmp_path / "first.csv", family("00004")))
    with first_load.written_in_place(engine) as switched:
        assert not switched, "the register holds people"
        assert _import(engine, write_csv(tmp_path / "more.csv", [person()])).inserted == 1
    engine.dispose()
    assert _journal_mode(path) == "wal"
    assert _people(path) == 4


def test_a_crash_in_the_middle_of_a_first_load_leaves_an_empty_register(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, path = database
    engine.dispose()
    csv = write_csv(tmp_path / "nation.csv", [person() for _ in range(3000)])
    # A process that loads with a cache of a few pages (so that the load's pages go into the
    # database file before the commit), checks that the file grew, and dies without committing.
    crash = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from sqlalchemy import text
        from dancu.db import make_engine, make_sessionmaker
        from dancu.registry import first_load, importer

        engine = make_engine("sqlite:///{path}")
        before = os.path.getsize("{path}")
        with first_load.written_in_place(engine) as switched:
            assert switched
            session = make_sessionmaker(engine)()
            session.execute(text("PRAGMA cache_size = 8"))
            importer.import_file(session, Path("{csv}"), actor="test")
            grew = os.path.getsize("{path}") > before
            journal = os.path.exists("{path}-journal")
            print(grew, journal, flush=True)
            os._exit(3)
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", crash], capture_output=True, text=True, check=False, timeout=120
    )
    assert ran.returncode == 3, ran.stderr
    assert ran.stdout.split() == ["True", "True"], "the load was written into the file"
    assert _people(path) == 0, "the next opening rolled the journal back"
    assert not Path(f"{path}-journal").exists() or Path(f"{path}-journal").stat().st_size == 0
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM household")).scalar() == 0
    finally:
        engine.dispose()
    assert _journal_mode(path) == "wal"
