"""Alembic migrations, shipped inside the package so ``dancu serve`` can upgrade any install.

Every ``dancu`` command brings the schema to the head revision before it runs. A database
already there is recognised with one read of ``alembic_version``, without importing Alembic
(about 60 ms of every command's start-up)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
_NUMBERED = re.compile(r"[0-9]{4}_[A-Za-z0-9_]+\.py")
# the access log items' generations (partitions made at run time: dancu.audit.generations)
_GENERATION = re.compile(r"access_log_item_g[0-9]+")


def include_object(
    obj: object,  # noqa: ARG001 (the signature Alembic calls)
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: object,  # noqa: ARG001
) -> bool:
    """What Alembic compares with the models: all but the partitions of the access log's
    items, which the models describe through their parent."""
    return not (reflected and type_ == "table" and _GENERATION.fullmatch(name or ""))


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    """The newest revision, read from the file names: revisions are numbered (``0001``,
    ``0002``, ...), each file is named after its number, and each revises the one before it,
    so the head is the highest number (a test holds this to Alembic's own reading). None if
    any revision file is named otherwise: then only Alembic can tell."""
    names = [p.name for p in (HERE / "versions").glob("*.py") if p.name != "__init__.py"]
    numbered = [name[:4] for name in names if _NUMBERED.fullmatch(name)]
    if not numbered or len(numbered) != len(names):
        return None
    return max(numbered)


def current_revision(engine: Engine) -> str | None:
    """The revision ``engine``'s database is at; None for a database with no schema yet."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema on ``engine`` to ``revision``."""
    head = head_revision() if revision == "head" else None
    if head is not None and current_revision(engine) == head:
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
