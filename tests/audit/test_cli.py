"""``dancu audit verify`` against its own SQLite file: exit codes and what it prints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu.audit import service as audit
from dancu.cli import app
from dancu.config import get_settings
from dancu.db import make_engine
from dancu.migrations import upgrade
from tests.audit.factories import T0, entry


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("DANCU_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _run_sql(url: str, *statements: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


@pytest.fixture
def three_entries(database: str) -> list[audit.Anchor]:
    engine = make_engine(database)
    upgrade(engine)
    with Session(engine) as session:
        rows = audit.record(
            session, [entry(occurred_at=T0 + dt.timedelta(seconds=i)) for i in range(3)]
        )
        anchors = [audit.Anchor(r.id, r.entry_hash) for r in rows]
        session.commit()
    engine.dispose()
    return anchors


def test_an_intact_log_prints_one_line_and_exits_0(three_entries: list[audit.Anchor]) -> None:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("access log intact: 3 entries")
    head = three_entries[-1]
    assert f"{head.entry_id}:{head.entry_hash}" in lines[0], "printed ready to publish"
    pinned = CliRunner().invoke(
        app, ["audit", "verify", "--anchor", f"{head.entry_id}:{head.entry_hash}"]
    )
    assert pinned.exit_code == 0, pinned.output


def test_a_changed_entry_exits_1_and_names_it(
    database: str, three_entries: list[audit.Anchor]
) -> None:
    _run_sql(database, "UPDATE access_log SET actor = 'someone-else' WHERE id = 2")
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "access log broken at entry 2 (altered)" in result.stderr
    assert "1 entries before it are intact" in result.stderr


def test_a_cut_tail_is_caught_only_against_an_anchor(
    database: str, three_entries: list[audit.Anchor]
) -> None:
    _run_sql(database, "DELETE FROM access_log WHERE id = 3")
    assert CliRunner().invoke(app, ["audit", "verify"]).exit_code == 0
    head = three_entries[-1]
    result = CliRunner().invoke(
        app, ["audit", "verify", "--anchor", f"{head.entry_id}:{head.entry_hash}"]
    )
    assert result.exit_code == 1
    assert "access log broken at entry 3 (anchor_missing)" in result.stderr


def test_a_database_without_the_log_is_a_user_error(database: str) -> None:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "no access log" in result.stderr


def test_a_log_older_than_batch_entries_asks_for_an_upgrade(database: str) -> None:
    engine = make_engine(database)
    upgrade(engine, "0006")
    engine.dispose()
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "upgrade it first" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["audit"], ["audit", "verify", "--anchor", "abc"], ["audit", "verify", "--batch-size", "0"]],
)
def test_usage_errors_exit_2(database: str, args: list[str]) -> None:
    assert CliRunner().invoke(app, args).exit_code == 2


def test_a_malformed_anchor_hash_is_a_user_error(three_entries: list[audit.Anchor]) -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--anchor", "3:xyz"])
    assert result.exit_code == 1
    assert "anchor hash must be 64" in result.stderr
