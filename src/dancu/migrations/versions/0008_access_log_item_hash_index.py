"""access log: batch items found by person through a hash index on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 22:45:00.000000

The B-tree ``(personal_id, entry_id)`` cost about 27 ms of every 10,000-item batch's insert
(44 ms against 17 ms without it); a hash index on ``personal_id`` costs about 10 ms. The
citizen's view and the search by person read a person's items by equality and sort them
themselves (they are a union with the single entries), so they lose no ordering. SQLite has
no hash index: a B-tree on ``personal_id``.

On a large log, the index is built under an exclusive lock on ``access_log_item``: plan the
upgrade (or build ``ix_access_log_item_personal_id`` by hand with ``CREATE INDEX
CONCURRENTLY`` first, and drop the old one the same way if you like; the upgrade then does
what is left).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OLD = "ix_access_log_item_personal_id_entry_id"
_NEW = "ix_access_log_item_personal_id"


def upgrade() -> None:
    existing = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("access_log_item")}
    if _NEW not in existing:
        op.create_index(
            _NEW, "access_log_item", ["personal_id"], unique=False, postgresql_using="hash"
        )
    if _OLD in existing:
        op.drop_index(_OLD, table_name="access_log_item")


def downgrade() -> None:
    op.create_index(_OLD, "access_log_item", ["personal_id", "entry_id"], unique=False)
    op.drop_index(_NEW, table_name="access_log_item")
