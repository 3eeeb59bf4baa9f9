"""Revisions 0010 and 0012, up and down on a populated database.

- 0010: the legacy-number, father and mother indexes hold only the people who have one, on
  both backends, and still serve the lookups by number.
- 0012: on PostgreSQL every column holding an administrative-unit or household code is in byte
  order (collation C); downgrading gives them the database's collation back. Rows are untouched
  both ways."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dancu.migrations import alembic_config, upgrade

# Written out here rather than imported from the revision: the test states the schema.
CODE_COLUMNS = {
    ("province", "code"),
    ("commune", "code"),
    ("commune", "province_code"),
    ("legacy_province", "code"),
    ("legacy_district", "code"),
    ("legacy_district", "province_code"),
    ("legacy_commune", "code"),
    ("legacy_commune", "district_code"),
    ("legacy_commune", "province_code"),
    ("commune_conversion", "legacy_commune_code"),
    ("commune_conversion", "commune_code"),
    ("citizen", "household_code"),
    ("citizen", "permanent_commune_code"),
    ("household", "code"),
    ("household", "commune_code"),
    ("residence", "commune_code"),
    ("residence", "household_code"),
    ("quality_commune_stats", "commune_code"),
    ("quality_commune_stats", "province_code"),
    ("official", "unit_code"),
}
PARTIAL = ("ix_citizen_legacy_id_number", "ix_citizen_father_id", "ix_citizen_mother_id")
PARENT, CHILD = "001085000001", "001115000002"


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _populate(engine: Engine) -> None:
    with engine.begin() as connection:
        run = connection.execute
        run(text("INSERT INTO province (code, name, short_name, key, population) "
                 "VALUES ('01', 'Thành phố Hà Nội', 'Hà Nội', 'hanoi', 8000000)"))  # fmt: skip
        run(text("INSERT INTO commune (code, province_code, name, short_name, kind, key) "
                 "VALUES ('00004', '01', 'Phường Ba Đình', 'Ba Đình', 'ward', 'bd')"))  # fmt: skip
        for number, father, legacy, born in (
            (PARENT, None, "012345678", 1985),
            (CHILD, PARENT, None, 2015),
        ):
            run(
                text(
                    "INSERT INTO citizen (personal_id, legacy_id_number, full_name, family_name, "
                    "middle_name, given_name, name_key, birth_date, birth_date_precision, "
                    "birth_year, sex, status, father_id, household_code, "
                    "permanent_commune_code, created_at, updated_at, version) VALUES (:number, "
                    ":legacy, 'Nguyễn Văn Thử', 'Nguyễn', 'Văn', 'Thử', 'nguyen van thu', "
                    ":born_on, 'day', :born, 'M', 'alive', :father, 'HK0001', '00004', "
                    ":now, :now, 1)"
                ),
                {"number": number, "father": father, "legacy": legacy, "born": born,
                 "born_on": f"{born}-03-14", "now": "2026-11-25 05:00:00+00"},
            )  # fmt: skip
        run(text("INSERT INTO household (code, head_id, commune_code, address, created_at) "
                 "VALUES ('HK0001', :head, '00004', 'số 1', '2026-11-25 05:00:00+00')"),
            {"head": PARENT})  # fmt: skip


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT c.personal_id, c.father_id, c.legacy_id_number, c.household_code, "
                    "m.code, p.code, h.code FROM citizen c "
                    "JOIN commune m ON m.code = c.permanent_commune_code "
                    "JOIN province p ON p.code = m.province_code "
                    "JOIN household h ON h.code = c.household_code ORDER BY c.personal_id"
                )
            )
        ]


def _collations(engine: Engine) -> dict[tuple[str, str], str | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        )
        found = {(row.table_name, row.column_name): row.collation_name for row in rows}
    return {key: found[key] for key in CODE_COLUMNS}


def _index_sql(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'citizen'")
            )
        else:
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
            )
        found = {name: sql or "" for name, sql in rows}
    return {name: found[name] for name in PARTIAL}


def _plan(engine: Engine, sql: str, **params: object) -> str:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            rows = connection.execute(text(f"EXPLAIN {sql}"), params)
            return "\n".join(row[0] for row in rows)
        rows = connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"), params)
        return "\n".join(str(row[-1]) for row in rows)


def test_revision_0010_makes_the_number_indexes_partial_and_back(fresh: Engine) -> None:
    upgrade(fresh, "0009")
    _populate(fresh)
    rows = _rows(fresh)
    assert not any("IS NOT NULL" in sql for sql in _index_sql(fresh).values())

    upgrade(fresh, "0010")
    for name, sql in _index_sql(fresh).items():
        column = name.removeprefix("ix_citizen_")
        assert f"{column} IS NOT NULL" in sql.replace("(", "").replace(")", ""), sql
    assert _rows(fresh) == rows
    # the lookups by number still go through them
    assert "ix_citizen_legacy_id_number" in _plan(
        fresh, "SELECT personal_id FROM citizen WHERE legacy_id_number = :n", n="012345678"
    )
    assert "ix_citizen_father_id" in _plan(
        fresh, "SELECT personal_id FROM citizen WHERE father_id = :n", n=PARENT
    )

    _downgrade(fresh, "0009")
    assert not any("IS NOT NULL" in sql for sql in _index_sql(fresh).values())
    assert _rows(fresh) == rows


def test_revision_0012_puts_every_code_column_in_byte_order_and_back(fresh: Engine) -> None:
    if fresh.dialect.name != "postgresql":
        pytest.skip("SQLite compares text byte by byte already; the revision changes nothing")
    upgrade(fresh, "0011")
    _populate(fresh)
    rows = _rows(fresh)
    before = _collations(fresh)
    assert before == dict.fromkeys(CODE_COLUMNS)

    upgrade(fresh, "0012")
    assert _collations(fresh) == dict.fromkeys(CODE_COLUMNS, "C")
    assert _rows(fresh) == rows
    # a commune's people and a household's members are still read through their indexes
    assert "ix_citizen_permanent_commune_code" in _plan(
        fresh, "SELECT personal_id FROM citizen WHERE permanent_commune_code = :c", c="00004"
    )
    assert "ix_citizen_household_code" in _plan(
        fresh,
        "SELECT c.personal_id FROM household h JOIN citizen c ON c.household_code = h.code "
        "WHERE h.code = :h",
        h="HK0001",
    )

    _downgrade(fresh, "0011")
    assert _collations(fresh) == before
    assert _rows(fresh) == rows
