"""``dancu officials add|reset``: the first administrator from the shell, a one-time link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu.cli import app
from dancu.config import get_settings
from dancu.db import make_engine
from dancu.officials import crypto
from dancu.officials.models import Official


@pytest.fixture
def dancu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CliRunner, str]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DANCU_DATABASE_URL", url)
    monkeypatch.setenv("DANCU_BASE_URL", "https://dancu.example")
    get_settings.cache_clear()
    yield CliRunner(), url
    get_settings.cache_clear()


def _official(url: str, username: str) -> Official:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            found = session.scalar(select(Official).where(Official.username == username))
            assert found is not None
            session.expunge(found)
            return found
    finally:
        engine.dispose()


def test_add_creates_the_first_administrator_and_prints_a_one_time_link(
    dancu: tuple[CliRunner, str],
) -> None:
    runner, url = dancu
    result = runner.invoke(
        app,
        ["officials", "add", "--username", "quan-tri", "--role", "system_admin", "--unit", "VN"],
    )
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert "https://dancu.example/enrol/" in line
    token = line.split("/enrol/", 1)[1].split()[0]
    official = _official(url, "quan-tri")
    assert official.role == "system_admin" and official.enrolled_at is None
    assert official.enrolment_token_hash == crypto.token_hash(token)
    assert token not in (official.enrolment_token_hash or "")


def test_add_refuses_bad_input_with_exit_1_naming_each_field(
    dancu: tuple[CliRunner, str],
) -> None:
    runner, _ = dancu
    result = runner.invoke(
        app, ["officials", "add", "--username", "X", "--role", "king", "--unit", "123"]
    )
    assert result.exit_code == 1
    for field in ("username", "role", "unit"):
        assert field in result.stderr


def test_reset_issues_a_new_link_and_the_old_one_dies(dancu: tuple[CliRunner, str]) -> None:
    runner, url = dancu
    first = runner.invoke(
        app, ["officials", "add", "--username", "xa-01", "--role", "commune_officer",
              "--unit", "00004"],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    old = _official(url, "xa-01").enrolment_token_hash
    again = runner.invoke(app, ["officials", "reset", "--username", "xa-01"])
    assert again.exit_code == 0, again.output
    assert _official(url, "xa-01").enrolment_token_hash not in (None, old)
    missing = runner.invoke(app, ["officials", "reset", "--username", "nobody"])
    assert missing.exit_code == 1
