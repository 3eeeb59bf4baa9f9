"""register workflows for officials (merges, quality aggregates)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("duplicate_candidate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_note", sa.String(length=300), nullable=True))
    op.create_table(
        "citizen_merge",
        sa.Column("merged_id", sa.String(length=12), nullable=False),
        sa.Column("kept_id", sa.String(length=12), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["duplicate_candidate.id"],
            name=op.f("fk_citizen_merge_candidate_id_duplicate_candidate"),
        ),
        sa.ForeignKeyConstraint(
            ["kept_id"], ["citizen.personal_id"], name=op.f("fk_citizen_merge_kept_id_citizen")
        ),
        sa.ForeignKeyConstraint(
            ["merged_id"],
            ["citizen.personal_id"],
            name=op.f("fk_citizen_merge_merged_id_citizen"),
        ),
        sa.PrimaryKeyConstraint("merged_id", name=op.f("pk_citizen_merge")),
    )
    with op.batch_alter_table("citizen_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_citizen_merge_kept_id"), ["kept_id"], unique=False)

    op.create_table(
        "quality_commune_stats",
        sa.Column("commune_code", sa.String(length=5), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("alive", sa.Integer(), nullable=False),
        sa.Column("incomplete", sa.Integer(), nullable=False),
        sa.Column("id_inconsistent", sa.Integer(), nullable=False),
        sa.Column("deceased_with_residence", sa.Integer(), nullable=False),
        sa.Column("child_older_than_parent", sa.Integer(), nullable=False),
        sa.Column("duplicate_candidate", sa.Integer(), nullable=False),
        sa.Column("legacy_address", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("commune_code", name=op.f("pk_quality_commune_stats")),
    )
    with op.batch_alter_table("quality_commune_stats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quality_commune_stats_province_code"), ["province_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("quality_commune_stats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quality_commune_stats_province_code"))
    op.drop_table("quality_commune_stats")
    with op.batch_alter_table("citizen_merge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_citizen_merge_kept_id"))
    op.drop_table("citizen_merge")
    with op.batch_alter_table("duplicate_candidate", schema=None) as batch_op:
        batch_op.drop_column("review_note")
