"""The allowed imports between domains (docs/architecture.md), and one migration head."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

import dancu.migrations as migrations
from dancu.migrations import alembic_config, head_revision, include_object
from dancu.models import Base

SRC = Path(__file__).resolve().parents[1] / "src" / "dancu"
ALLOWED = {
    "vn": set(),
    "geo": {"vn", "db", "errors", "enums"},
    "registry": {"vn", "geo", "db", "errors", "enums"},
    "audit": {"db", "errors", "enums"},
    "reconcile": {"vn", "geo", "registry", "audit", "exchange", "db", "errors", "enums", "config"},
    "officials": {"vn", "geo", "registry", "audit", "db", "errors", "enums", "config"},
    "exchange": {"vn", "geo", "registry", "audit", "db", "errors", "enums", "config"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dancu"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dancu."):
                    found.add(alias.name.split(".")[1])
    return found


def test_domains_import_only_what_the_architecture_allows() -> None:
    for domain, allowed in ALLOWED.items():
        for path in (SRC / domain).rglob("*.py"):
            extra = _imports(path) - allowed - {domain}
            assert not extra, f"{path.relative_to(SRC)} imports {sorted(extra)}"


def test_no_imports_inside_functions() -> None:
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    assert not isinstance(inner, ast.Import | ast.ImportFrom), (
                        f"{path.relative_to(SRC)}:{inner.lineno} imports inside a function"
                    )


def test_migrations_have_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_the_head_read_from_the_file_names_is_alembics() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == script.get_current_head()


def test_a_database_at_the_head_is_upgraded_without_importing_alembic(tmp_path: Path) -> None:
    """The start-up of every command: at the head, one read and no Alembic; below it, the
    upgrade runs."""
    url = f"sqlite:///{tmp_path / 'at_head.db'}"
    program = (
        "import sys\n"
        "from dancu.db import make_engine\n"
        "from dancu.migrations import current_revision, head_revision, upgrade\n"
        f"engine = make_engine({url!r})\n"
        "before = current_revision(engine)\n"
        "upgrade(engine)\n"
        "print(before, current_revision(engine) == head_revision(), 'alembic' in sys.modules)\n"
    )
    run = [sys.executable, "-c", program]
    first = subprocess.run(run, capture_output=True, text=True, check=True).stdout.split()
    second = subprocess.run(run, capture_output=True, text=True, check=True).stdout.split()
    assert first == ["None", "True", "True"]
    assert second == [head_revision(), "True", "False"]


def test_migrations_match_the_models(engine: Engine) -> None:
    """The schema built by the migrations is the one the models describe."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_a_revision_file_not_named_by_its_number_leaves_the_head_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for name in ("__init__.py", "0001_first.py", "0002_second.py"):
        (versions / name).write_text("")
    monkeypatch.setattr(migrations, "HERE", tmp_path)
    assert migrations.head_revision() == "0002"
    (versions / "3f2a9c1b7d10_made_without_rev_id.py").write_text("")
    assert migrations.head_revision() is None
