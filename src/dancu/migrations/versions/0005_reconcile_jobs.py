"""reconciliation jobs submitted by partners over the API

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_job",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_reconcile_job_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_job")),
    )
    with op.batch_alter_table("reconcile_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconcile_job_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            "ix_reconcile_job_status_created_at", ["status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reconcile_job", schema=None) as batch_op:
        batch_op.drop_index("ix_reconcile_job_status_created_at")
        batch_op.drop_index(batch_op.f("ix_reconcile_job_client_id"))
    op.drop_table("reconcile_job")
