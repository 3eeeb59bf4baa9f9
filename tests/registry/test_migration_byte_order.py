"""Revision 0009: on PostgreSQL every column holding a person's number is in byte order
(collation C), so that they compare with each other through their indexes; downgrading
gives them the database's collation back. Rows are untouched both ways."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dancu.migrations import alembic_config, upgrade

# Written out here rather than imported from the revision: the test states the schema.
NUMBER_COLUMNS = {
    ("citizen", "personal_id"),
    ("citizen", "legacy_id_number"),
    ("citizen", "father_id"),
    ("citizen", "mother_id"),
    ("citizen", "spouse_id"),
    ("citizen", "representative_id"),
    ("household", "head_id"),
    ("residence", "personal_id"),
    ("civil_event", "personal_id"),
    ("civil_event", "other_personal_id"),
    ("citizen_history", "personal_id"),
    ("personal_id_allocation", "personal_id"),
    ("duplicate_candidate", "personal_id_a"),
    ("duplicate_candidate", "personal_id_b"),
    ("citizen_merge", "merged_id"),
    ("citizen_merge", "kept_id"),
    ("access_log", "personal_id"),
    ("access_log_item", "personal_id"),  # since 0007
}

PARENT, CHILD = "001085000001", "001115000002"


def _collations(engine: Engine) -> dict[tuple[str, str], str | None]:
    """The collation of every 12-character text column but two that hold words."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND character_maximum_length = 12 "
                "AND column_name NOT IN ('kind', 'relationship_to_head')"
            )
        )
        return {(row.table_name, row.column_name): row.collation_name for row in rows}


def _people(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT personal_id, father_id FROM citizen ORDER BY personal_id")
        )
        return [(row.personal_id, row.father_id) for row in rows]


def _uses_primary_key(engine: Engine) -> bool:
    """Whether a read of people by number, as the verification sends it, probes pk_citizen."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = connection.execute(
            text(
                "EXPLAIN SELECT c.personal_id FROM citizen c "
                "JOIN citizen f ON f.personal_id = c.father_id "
                "WHERE c.personal_id = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": [CHILD]},
        )
        return "pk_citizen" in "\n".join(row[0] for row in plan)


def test_revision_0009_puts_every_personal_id_column_in_byte_order_and_back(
    fresh: Engine,
) -> None:
    if fresh.dialect.name != "postgresql":
        pytest.skip("SQLite compares text byte by byte already; the revision changes nothing")
    upgrade(fresh, "0008")
    with fresh.begin() as connection:
        for number, father, born in ((PARENT, None, 1985), (CHILD, PARENT, 2015)):
            connection.execute(
                text(
                    "INSERT INTO citizen (personal_id, full_name, family_name, middle_name, "
                    "given_name, name_key, birth_date, birth_date_precision, birth_year, sex, "
                    "status, father_id, created_at, updated_at, version) VALUES (:number, "
                    "'Nguyễn Văn Thử', 'Nguyễn', 'Văn', 'Thử', 'nguyen van thu', "
                    "make_date(:born, 3, 14), 'day', :born, 'M', 'alive', :father, now(), "
                    "now(), 1)"
                ),
                {"number": number, "father": father, "born": born},
            )
    before = _collations(fresh)
    assert set(before) == NUMBER_COLUMNS
    assert {k: v for k, v in before.items() if v is not None} == {
        ("access_log_item", "personal_id"): "C"
    }
    people = _people(fresh)

    upgrade(fresh, "0012")  # the last revision before the items' partitions (0013)
    assert _collations(fresh) == dict.fromkeys(NUMBER_COLUMNS, "C")
    assert _people(fresh) == people
    assert _uses_primary_key(fresh)

    config = alembic_config(fresh.url.render_as_string(hide_password=False))
    with fresh.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    assert _collations(fresh) == before
    assert _people(fresh) == people
