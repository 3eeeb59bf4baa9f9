"""access log: batch items in generations (list partitions) on PostgreSQL

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 09:40:00.000000

On PostgreSQL ``access_log_item`` becomes a table partitioned by ``generation`` (a new
column); the items already there become generation 0 (``access_log_item_g0``), and later
generations are attached by ``dancu.audit.generations.rotate``. The new key is ``(entry_id,
item, generation)``: a partitioned table's keys hold its partition key. ``access_log_generation``
holds the generation written to now.

The upgrade renames the table and builds the new key's index over its items (one pass, under
an ACCESS EXCLUSIVE lock: 4.3 s for 11.3 million items on the benchmark machine, so plan a
maintenance window of minutes per hundred million); the
items' person index is kept as it is and adopted by the partitioned one, and the privileges
granted on the table to roles other than its owner are granted on the partitioned one (and
SELECT on ``access_log_generation``). On SQLite the column and the one-row table are added;
nothing is partitioned.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_PERSON_INDEX = "ix_access_log_item_personal_id"


def _copy_grants(source: str, target: str) -> str:
    """A statement that grants on ``target`` what roles other than the owner were granted on
    ``source`` (a deployment that keeps the application's role to INSERT and SELECT,
    docs/audit.md, keeps it so), and SELECT on ``access_log_generation`` to each of them."""
    return f"""
DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END AS who,
           a.privilege_type AS what
    FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
    LEFT JOIN pg_roles g ON g.oid = a.grantee
    WHERE c.oid = '{source}'::regclass AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT %s ON {target} TO %s', r.what, r.who);
    EXECUTE format('GRANT SELECT ON access_log_generation TO %s', r.who);
  END LOOP;
END $$"""


def upgrade() -> None:
    op.create_table(
        "access_log_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_access_log_generation_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log_generation")),
    )
    op.execute("INSERT INTO access_log_generation (id, current) VALUES (1, 0)")
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("access_log_item") as batch:
            batch.add_column(
                sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False)
            )
            batch.drop_constraint("pk_access_log_item", type_="primary")
            batch.create_primary_key("pk_access_log_item", ["entry_id", "item", "generation"])
        return
    for statement in (
        "ALTER TABLE access_log_item RENAME TO access_log_item_g0",
        # its key becomes the partitioned table's, of three columns (built at ATTACH)
        "ALTER TABLE access_log_item_g0 DROP CONSTRAINT pk_access_log_item",
        f"ALTER INDEX {_PERSON_INDEX} RENAME TO access_log_item_g0_personal_id_idx",
        "ALTER TABLE access_log_item_g0 ADD COLUMN generation integer DEFAULT 0 NOT NULL",
        # the partition constraint, proved by a check, so that ATTACH need not prove it again
        "ALTER TABLE access_log_item_g0 ADD CONSTRAINT access_log_item_g0_generation "
        "CHECK (generation = 0)",
        "CREATE TABLE access_log_item (LIKE access_log_item_g0 INCLUDING DEFAULTS) "
        "PARTITION BY LIST (generation)",
        "ALTER TABLE access_log_item ADD CONSTRAINT pk_access_log_item "
        "PRIMARY KEY (entry_id, item, generation)",
        f"CREATE INDEX {_PERSON_INDEX} ON access_log_item USING hash (personal_id)",
        # builds generation 0's index of the new key, adopts its person index
        "ALTER TABLE access_log_item ATTACH PARTITION access_log_item_g0 FOR VALUES IN (0)",
        "ALTER TABLE access_log_item_g0 DROP CONSTRAINT access_log_item_g0_generation",
        # privileges are checked on the table queried: the partitioned one
        _copy_grants("access_log_item_g0", "access_log_item"),
    ):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("access_log_item") as batch:
            batch.drop_constraint("pk_access_log_item", type_="primary")
            batch.create_primary_key("pk_access_log_item", ["entry_id", "item"])
            batch.drop_column("generation")
        op.drop_table("access_log_generation")
        return
    # every generation's items into one plain table again
    for statement in (
        "CREATE TABLE access_log_item_flat (LIKE access_log_item)",
        "INSERT INTO access_log_item_flat SELECT * FROM access_log_item",
        _copy_grants("access_log_item", "access_log_item_flat"),
        "DROP TABLE access_log_item",
        "ALTER TABLE access_log_item_flat DROP COLUMN generation",
        "ALTER TABLE access_log_item_flat RENAME TO access_log_item",
        "ALTER TABLE access_log_item ADD CONSTRAINT pk_access_log_item "
        "PRIMARY KEY (entry_id, item)",
        f"CREATE INDEX {_PERSON_INDEX} ON access_log_item USING hash (personal_id)",
    ):
        op.execute(statement)
    op.drop_table("access_log_generation")
