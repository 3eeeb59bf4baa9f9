"""The ``dancu`` command as partners script it (CONTRACTS.md section 1): exit codes and output.

Each test runs the real command against its own SQLite file.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dancu.cli import app
from dancu.config import get_settings
from tests.registry.factories import family, person, write_csv


@pytest.fixture
def dancu(tmp_path: Path) -> Iterator[CliRunner]:
    runner = CliRunner()
    os.environ["DANCU_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    get_settings.cache_clear()
    yield runner
    del os.environ["DANCU_DATABASE_URL"]
    get_settings.cache_clear()


def test_import_prints_one_summary_line_and_exits_0(dancu: CliRunner, tmp_path: Path) -> None:
    rows = family("00004", household="HH-CLI")
    result = dancu.invoke(app, ["registry", "import", str(write_csv(tmp_path / "a.csv", rows))])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "3 rows read, 3 inserted, 0 unchanged, 0 rejected" in lines[0]


def test_bad_input_exits_1_and_names_row_column_and_problem(
    dancu: CliRunner, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "bad.csv", [person(), person(birth_date="2023-02-30")])
    result = dancu.invoke(app, ["registry", "import", str(path)])
    assert result.exit_code == 1
    assert "row 2, column birth_date: '2023-02-30' is not a real date" in result.stderr
    assert "nothing was imported" in result.stderr


def test_missing_file_is_a_user_error(dancu: CliRunner, tmp_path: Path) -> None:
    result = dancu.invoke(app, ["registry", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "no such file" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["registry", "import"], ["seed"], ["seed", "--citizens", "0"], ["registry", "frobnicate"]],
)
def test_usage_errors_exit_2(dancu: CliRunner, args: list[str]) -> None:
    assert dancu.invoke(app, args).exit_code == 2


def test_skip_invalid_reports_rejects(dancu: CliRunner, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [person(), person(sex="X")])
    rejects = tmp_path / "rejects.csv"
    result = dancu.invoke(
        app, ["registry", "import", str(path), "--skip-invalid", "--rejects", str(rejects)]
    )
    assert result.exit_code == 0, result.output
    assert "1 inserted" in result.stdout and "1 rejected" in result.stdout
    assert "row 2, column sex" in result.stderr
    assert rejects.exists()


def test_seed_is_deterministic_and_exports(dancu: CliRunner, tmp_path: Path) -> None:
    first = dancu.invoke(app, ["seed", "--citizens", "300", "--seed", "5"])
    assert first.exit_code == 0, first.output
    assert "seeded 300 citizens" in first.stdout
    again = dancu.invoke(app, ["seed", "--citizens", "300", "--seed", "5"])
    assert "seeded 0 citizens (300 already present" in again.stdout
    out = tmp_path / "out.csv"
    exported = dancu.invoke(app, ["registry", "export", str(out)])
    assert exported.exit_code == 0
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300
    assert all(len(r["personal_id"]) == 12 for r in rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_seeds_a_demo_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DANCU_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "DANCU_DEMO_CITIZENS": "400",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "dancu", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180  # a generous bound for a shared CI machine
        while True:
            try:
                home = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert home.status_code == 200
        assert "400" in home.text and "3,321" in home.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        missing = httpx.get(f"http://127.0.0.1:{port}/no-such-page")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert missing.json()["error"]["request_id"] == missing.headers["X-Request-ID"]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "seeded a demo population of 400" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert "dancu officials add --username" in output, "says how to create the first official"


def test_reconcile_is_a_dancu_command(dancu: CliRunner, tmp_path: Path) -> None:
    register = write_csv(tmp_path / "register.csv", [person(personal_id="001085000555")])
    sector = tmp_path / "bank.csv"
    sector.write_text(
        "so_cccd,ho_ten,ngay_sinh\n001 085 000 555,NGUYEN VAN THU,14/03/1985\n"
        "001085000556,Lê Văn Khác,1990\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = dancu.invoke(
        app, ["reconcile", str(sector), "--out", str(out), "--register", str(register)]
    )
    assert result.exit_code == 0, result.output
    with (out / "results.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["status"], r["personal_id"]) for r in rows] == [
        ("1", "match", "001085000555"),
        ("2", "not_found", ""),
    ]


@pytest.mark.parametrize("text", ["{", "[" * 5_000], ids=["not-json", "nested-too-deeply"])
def test_a_bad_jwks_file_is_a_usage_error(dancu: CliRunner, tmp_path: Path, text: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(text, encoding="utf-8")
    args = ["exchange", "client", "add", "--org", "Ngân hàng Thử", "--scope", "population.verify",
            "--purpose", "kyc", "--jwks", str(path)]  # fmt: skip
    result = dancu.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--jwks" in result.stderr
