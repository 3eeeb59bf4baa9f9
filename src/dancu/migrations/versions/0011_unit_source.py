"""unit_source: what the administrative units were last loaded from

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 05:40:00.000000

Every ``dancu`` command brings the database to a usable state before it runs, and so loaded
the administrative units again: read the package data and compare all 24,700 rows, 0.3 s of
each command on a fast machine (0.5-0.65 s on a slow one). The fingerprint of the data and
the loader, stored when the units are loaded, lets the next command skip that with one read
(``geo.loader.load_if_changed``). A database upgraded to this revision has no fingerprint
yet: its next command loads (nothing new) and stores it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_source",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_unit_source")),
    )


def downgrade() -> None:
    op.drop_table("unit_source")
