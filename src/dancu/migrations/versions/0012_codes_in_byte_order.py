"""administrative-unit and household codes in byte order (collation C) on PostgreSQL

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 05:35:00.000000

Province, district and commune codes are digits, which every collation sorts alike; household
codes are mostly ASCII (the interchange format does not require it: a non-ASCII code would
sort differently in a listing, and compare equal as before). But in a language collation (the database's default, ``C.UTF-8`` or
``en_US.UTF-8``) their B-trees compare keys through the C library's ``strcoll``. In byte order
a first load of 1M people builds ``citizen``'s household and commune indexes, ``household``'s
and ``residence``'s commune indexes in 1.20 s instead of 1.56 s (docs/benchmarks.md), and
``pk_household`` is probed faster as households are written. As with the personal IDs
(0009), every column holding such a code changes together (``dancu.db.code_type``), so that
the columns compared with each other (a citizen with its commune, a residence with its
household, an official's unit with a province's communes) share a collation.

Nothing is rewritten: the types stay ``varchar(n)``, and PostgreSQL rebuilds the indexes and
foreign keys on the changed columns, each table in one statement under an ACCESS EXCLUSIVE
lock: plan a maintenance window for a large register (docs/registry.md, "Upgrading"). SQLite
compares text byte by byte already: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Every column holding a unit or household code, by table, with its length. Referenced tables
# come before the tables whose foreign keys refer to them.
COLUMNS: dict[str, tuple[tuple[str, int], ...]] = {
    "province": (("code", 2),),
    "commune": (("code", 5), ("province_code", 2)),
    "legacy_province": (("code", 2),),
    "legacy_district": (("code", 3), ("province_code", 2)),
    "legacy_commune": (("code", 5), ("district_code", 3), ("province_code", 2)),
    "commune_conversion": (("legacy_commune_code", 5), ("commune_code", 5)),
    "citizen": (("household_code", 64), ("permanent_commune_code", 5)),
    "household": (("code", 64), ("commune_code", 5)),
    "residence": (("commune_code", 5), ("household_code", 64)),
    "quality_commune_stats": (("commune_code", 5), ("province_code", 2)),
    "official": (("unit_code", 5),),
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(
            f'ALTER COLUMN {column} TYPE varchar({length}) COLLATE "{collation}"'
            for column, length in columns
        )
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
