"""The citizen's primary key carries the columns a verification reads (revision 0014).

On PostgreSQL the key's index includes them, so that the verification's register read is an
index-only scan; the revision rebuilds the key in place, keeping the foreign keys that refer to
it and every row, and the first load builds the key once its rows are in (an ID twice then
fails that build, and the load gives way to the checked merge: tests/registry/test_first_load.py
covers the report). SQLite has no INCLUDE: its schema does not change."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dancu.exchange import verify
from dancu.geo import loader as geo_loader
from dancu.migrations import alembic_config, upgrade
from dancu.registry import importer
from dancu.registry.models import AGREEMENT_COLUMNS
from tests.registry.factories import commune_codes, family, write_csv
from tests.registry.test_migration_0010_0012 import CHILD, PARENT, _populate

# Written out here rather than imported: the test states the schema.
COVERED = (
    "legacy_id_number, full_name, name_key, birth_date, birth_date_precision, sex, status, "
    "permanent_commune_code"
)
READ = (
    "SELECT personal_id, legacy_id_number, full_name, name_key, birth_date, "
    "birth_date_precision, sex, status, permanent_commune_code FROM citizen "
    "WHERE personal_id = ANY(CAST(:ids AS text[]))"
)


def _postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no INCLUDE: the key stays as it is there")


def _key(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(
            connection.scalar(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conname = 'pk_citizen'"
                )
            )
        )


def _referring(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                    "AND confrelid = 'citizen'::regclass ORDER BY conname"
                )
            )
        )


def _plan(engine: Engine) -> str:
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        rows = connection.execute(text(f"EXPLAIN {READ}"), {"ids": [PARENT, CHILD]})
        return "\n".join(row[0] for row in rows)


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_the_key_covers_what_the_verification_reads() -> None:
    read = [column.name for column in verify._COLUMNS]
    assert read == ["personal_id", *AGREEMENT_COLUMNS]
    assert ", ".join(AGREEMENT_COLUMNS) == COVERED


def test_revision_0014_rebuilds_the_key_with_its_payload_and_back(fresh: Engine) -> None:
    _postgres_only(fresh)
    upgrade(fresh, "0013")
    _populate(fresh)
    with fresh.begin() as connection:
        rows = connection.execute(text(READ), {"ids": [PARENT, CHILD]}).all()
    referring = _referring(fresh)
    assert "fk_residence_personal_id_citizen" in referring
    assert _key(fresh) == "PRIMARY KEY (personal_id)"
    with fresh.begin() as connection:  # as docs/exchange.md advised before 0014
        connection.execute(
            text(
                f"CREATE INDEX ix_citizen_verification ON citizen (personal_id) INCLUDE ({COVERED})"
            )
        )

    upgrade(fresh, "0014")
    with fresh.connect() as connection:  # dropped: the key does its work
        assert connection.scalar(text("SELECT to_regclass('ix_citizen_verification')")) is None
    assert _key(fresh) == f"PRIMARY KEY (personal_id) INCLUDE ({COVERED})"
    assert _referring(fresh) == referring  # every foreign key that referred to it, back
    with fresh.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM citizen"))  # all-visible, as after a first load
    assert "Index Only Scan using pk_citizen" in _plan(fresh)
    with fresh.begin() as connection:
        assert connection.execute(text(READ), {"ids": [PARENT, CHILD]}).all() == rows
    # still the key: a second person with the same number is refused
    with pytest.raises(IntegrityError), fresh.begin() as connection:
        connection.execute(
            text("INSERT INTO citizen SELECT * FROM citizen WHERE personal_id = :p"),
            {"p": PARENT},
        )

    _downgrade(fresh, "0013")
    assert _key(fresh) == "PRIMARY KEY (personal_id)"
    assert _referring(fresh) == referring


def test_the_first_load_builds_the_covering_key(
    fresh: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(fresh)
    upgrade(fresh)
    monkeypatch.setattr(importer, "BULK_FROM_ROWS", 1)  # the large load's path: keys set aside
    referring = _referring(fresh)  # the residences' key and the merge history's two
    assert len(referring) == 3
    with Session(fresh) as session:
        geo_loader.load(session)
        session.commit()
        path = write_csv(tmp_path / "family.csv", family(commune_codes(session)[0]))
        report = importer.import_file(session, path, actor="test")
        session.commit()
    assert report.inserted == 3
    assert _key(fresh) == f"PRIMARY KEY (personal_id) INCLUDE ({COVERED})"
    assert _referring(fresh) == referring  # each foreign key to the key, added back
