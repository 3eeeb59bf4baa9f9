"""access log: the append-only, hash-chained record of who read whose data

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_log",
        # The chain position, assigned by dancu.audit.service.record (no sequence: gapless).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=True),
        sa.Column("personal_id", sa.String(length=12), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=300), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("result", sa.String(length=40), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "actor_kind IN ('official', 'client', 'citizen', 'system')",
            name=op.f("ck_access_log_actor_kind"),
        ),
        sa.CheckConstraint("purpose <> ''", name=op.f("ck_access_log_purpose")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_log_personal_id_occurred_at", ["personal_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_access_log_organization_occurred_at",
            ["organization", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_access_log_actor_occurred_at", ["actor", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_actor_occurred_at")
        batch_op.drop_index("ix_access_log_organization_occurred_at")
        batch_op.drop_index("ix_access_log_personal_id_occurred_at")

    op.drop_table("access_log")
