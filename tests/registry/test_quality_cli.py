"""``dancu registry quality-refresh`` and the refresh that follows an import, against a real
SQLite file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu.cli import app
from dancu.config import get_settings
from dancu.db import make_engine
from dancu.registry.models import QualityCommuneStats
from tests.registry.factories import family, write_csv


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'quality.db'}"
    os.environ["DANCU_DATABASE_URL"] = url
    get_settings.cache_clear()
    yield url
    del os.environ["DANCU_DATABASE_URL"]
    get_settings.cache_clear()


def _stats(url: str) -> dict[str, tuple[int, int]]:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return {
                r.commune_code: (r.people, r.incomplete)
                for r in s.scalars(select(QualityCommuneStats))
            }
    finally:
        engine.dispose()


def test_import_refreshes_and_the_command_refreshes_a_unit(database: str, tmp_path: Path) -> None:
    runner = CliRunner()
    rows = family("00004", household="HH-QC")
    imported = runner.invoke(app, ["registry", "import", str(write_csv(tmp_path / "a.csv", rows))])
    assert imported.exit_code == 0, imported.output
    assert _stats(database) == {"00004": (3, 3)}, "factory rows lack ethnicity and more"

    engine = make_engine(database)
    with Session(engine) as s:  # as if the counts had never been computed
        s.execute(QualityCommuneStats.__table__.delete())  # type: ignore[attr-defined]
        s.commit()
    engine.dispose()
    assert _stats(database) == {}
    result = runner.invoke(app, ["registry", "quality-refresh", "--unit", "01"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == ["quality counts refreshed for 1 communes (01)"]
    assert _stats(database) == {"00004": (3, 3)}
    elsewhere = runner.invoke(app, ["registry", "quality-refresh", "--unit", "79"])
    assert elsewhere.stdout.strip() == "quality counts refreshed for 0 communes (79)"
    assert _stats(database) == {"00004": (3, 3)}, "another province's refresh leaves 01 alone"


def test_an_unknown_unit_is_a_user_error(database: str) -> None:
    result = CliRunner().invoke(app, ["registry", "quality-refresh", "--unit", "99"])
    assert result.exit_code == 1
    assert "99 is not a province code" in result.stderr
