"""``dancu reconcile FILE --out DIR`` as partners script it: exit codes, stdout, stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu import bootstrap
from dancu.cli.reconcile import reconcile_cli
from dancu.db import make_engine
from dancu.reconcile.service import OUTPUT_FILES
from dancu.registry import importer
from tests.reconcile.helpers import DEAD, REGISTER, row, write_rows
from tests.registry.factories import write_csv


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """The register as ``dancu registry export`` writes it (no database needed)."""
    return write_csv(tmp_path / "register.csv", REGISTER)


def test_success_prints_one_line_and_exits_0(snapshot: Path, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row(), row(pid=DEAD), row(pid="")])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        reconcile_cli, [str(path), "--out", str(out), "--register", str(snapshot)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("reconciled in.csv: 3 rows: 1 match, 0 mismatch, 1 deceased")
    assert "rows/s" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)


def test_reads_the_register_from_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'register.db'}"
    engine = make_engine(url)
    bootstrap.prepare(engine)
    with Session(engine) as session:
        importer.import_file(session, write_csv(tmp_path / "r.csv", REGISTER), actor="test")
        session.commit()
    engine.dispose()
    monkeypatch.setenv("DANCU_DATABASE_URL", url)
    path = write_rows(tmp_path / "in.csv", [row(), row(pid=DEAD)])
    result = CliRunner().invoke(reconcile_cli, [str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "2 rows: 1 match, 0 mismatch, 1 deceased" in result.stdout


def test_no_register_is_a_user_error(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row()])
    result = CliRunner().invoke(
        reconcile_cli,
        [
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--database-url",
            f"sqlite:///{tmp_path}/none.db",
        ],
    )
    assert result.exit_code == 1
    assert "no register at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_bad_input_exits_1_naming_the_problem(snapshot: Path, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [["1", "2"]], header=["Mã KH", "SĐT"])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        reconcile_cli, [str(path), "--out", str(out), "--register", str(snapshot)]
    )
    assert result.exit_code == 1
    assert "Headers found: 'Mã KH', 'SĐT'" in result.stderr
    assert "nothing was written" in result.stderr
    assert list(out.iterdir()) == []


def test_a_file_in_another_encoding_exits_1(snapshot: Path, tmp_path: Path) -> None:
    path = tmp_path / "tcvn3.csv"
    path.write_bytes("so_cccd,ho_ten\n079085000001,NguyÔn V¨n An\n".encode("latin-1"))
    result = CliRunner().invoke(
        reconcile_cli, [str(path), "--out", str(tmp_path / "out"), "--register", str(snapshot)]
    )
    assert result.exit_code == 1
    assert "line 2" in result.stderr and "TCVN3" in result.stderr


def test_unreadable_values_are_warned_on_stderr(snapshot: Path, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row(), row(born="hôm qua")])
    result = CliRunner().invoke(
        reconcile_cli, [str(path), "--out", str(tmp_path / "out"), "--register", str(snapshot)]
    )
    assert result.exit_code == 0
    assert "warning: column birth_date: 1 values could not be read (rows 2)" in result.stderr


@pytest.mark.parametrize(
    "extra",
    [
        ["--column", "full_name"],
        ["--column", "nickname=Tên"],
        ["--column", "full_name=A", "--column", "full_name=B"],
        ["--column", "full_name=A", "--column", "address=A"],
    ],
)
def test_bad_column_options_are_usage_errors(tmp_path: Path, extra: list[str]) -> None:
    path = write_rows(tmp_path / "in.csv", [row()])
    result = CliRunner().invoke(reconcile_cli, [str(path), "--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2


def test_missing_arguments_are_usage_errors(tmp_path: Path) -> None:
    assert CliRunner().invoke(reconcile_cli, []).exit_code == 2
    assert CliRunner().invoke(reconcile_cli, [str(tmp_path / "in.csv")]).exit_code == 2


def test_runs_as_dancu_reconcile(snapshot: Path, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row()])
    done = subprocess.run(
        [sys.executable, "-m", "dancu", "reconcile", str(path), "--out", str(tmp_path / "o"),
         "--register", str(snapshot)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 match" in done.stdout


def test_reconcile_starts_without_importing_the_other_commands(
    snapshot: Path, tmp_path: Path
) -> None:
    """`dancu reconcile` loads only its own command: not the web app, the server, the
    migrations or the exchange; Plotly only once the report is written."""
    path = write_rows(tmp_path / "in.csv", [row()])
    heavy = ("uvicorn", "fastapi", "alembic", "dancu.app", "dancu.exchange", "plotly")
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dancu.cli import app\n"
        "help = CliRunner().invoke(app, ['reconcile', '--help'])\n"
        "assert help.exit_code == 0, help.output\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
        f"run = CliRunner().invoke(app, ['reconcile', {str(path)!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--register', {str(snapshot)!r}])\n"
        "assert run.exit_code == 0, run.output\n"
        "print('plotly' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]
