"""access log: batch entries, one chain entry for many people (access_log_item)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 20:00:00.000000

Every existing entry keeps its values and its hash: it names one person and has no items.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_count", sa.Integer(), nullable=True))
        batch_op.alter_column("personal_id", existing_type=sa.String(length=12), nullable=True)
        batch_op.create_check_constraint(
            "person_or_items",
            "(personal_id IS NULL AND item_count >= 1) "
            "OR (personal_id IS NOT NULL AND item_count IS NULL)",
        )
    op.create_table(
        "access_log_item",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column(
            "personal_id",
            sa.String(length=12).with_variant(sa.String(length=12, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", "item", name=op.f("pk_access_log_item")),
    )
    with op.batch_alter_table("access_log_item", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_log_item_personal_id_entry_id", ["personal_id", "entry_id"], unique=False
        )


def downgrade() -> None:
    # Deleting batch entries would break the chain after the first of them: refuse instead.
    batches = op.get_bind().scalar(sa.text("SELECT count(*) FROM access_log_item"))
    if batches:
        raise RuntimeError(
            "the access log holds batch entries, which revision 0006 cannot store; "
            "a downgrade would break the hash chain, so it was refused"
        )
    with op.batch_alter_table("access_log_item", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_item_personal_id_entry_id")
    op.drop_table("access_log_item")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_constraint("person_or_items", type_="check")
        batch_op.alter_column("personal_id", existing_type=sa.String(length=12), nullable=False)
        batch_op.drop_column("item_count")
