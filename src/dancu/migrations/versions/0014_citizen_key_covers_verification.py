"""the citizen's primary key carries the columns a verification reads (PostgreSQL)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 11:45:00.000000

A batch verification reads 10,000 people by personal ID. With the narrow key each read is an
index probe and then a visit of the person's heap page; with the columns the verification
compares carried in the key's index (``INCLUDE``, ``registry.models.AGREEMENT_COLUMNS``) it is an
index-only scan (docs/benchmarks.md, "The citizen's key covers the verification").

PostgreSQL cannot change an index under a constraint in place: the foreign keys that refer to
the key are dropped, the key is dropped and added again with its payload (one sorted build),
and the foreign keys are added back (each validated by one join). All in the migration's
transaction, under ACCESS EXCLUSIVE locks on ``citizen`` and the tables that refer to it:
1.5 s for 1,000,000 people and their residences; plan a maintenance window for a national register
(docs/registry.md, "Upgrading"). An index ``ix_citizen_verification`` built by hand as
docs/exchange.md advised before this revision is dropped: the key does its work. SQLite has no
``INCLUDE``: nothing changes there.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# As registry.models.AGREEMENT_COLUMNS when this revision was written (a migration does not
# follow the models: a later change of the list is a later revision).
COVERED = (
    "legacy_id_number", "full_name", "name_key", "birth_date", "birth_date_precision", "sex",
    "status", "permanent_commune_code",
)  # fmt: skip
_REFERRING = text(
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE confrelid = 'citizen'::regclass AND contype = 'f' ORDER BY conrelid::regclass::text, conname"
)


def _key(include: tuple[str, ...]) -> None:
    """``pk_citizen`` again, carrying ``include``; the foreign keys that refer to it kept."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    referring = bind.execute(_REFERRING).all()
    quote = bind.dialect.identifier_preparer.quote_identifier
    # every table at once, before any change: not one lock taken while another is awaited
    tables = ", ".join(["citizen", *sorted({table for table, _, _ in referring})])
    op.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
    for table, name, _ in referring:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    op.execute("ALTER TABLE citizen DROP CONSTRAINT pk_citizen")
    payload = f" INCLUDE ({', '.join(include)})" if include else ""
    op.execute(f"ALTER TABLE citizen ADD CONSTRAINT pk_citizen PRIMARY KEY (personal_id){payload}")
    for table, name, definition in referring:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")


def upgrade() -> None:
    _key(COVERED)
    if op.get_bind().dialect.name == "postgresql":
        # The covering index docs/exchange.md told operators to build by hand before this
        # revision: the key now does its work, and a first load would keep it row by row.
        op.execute("DROP INDEX IF EXISTS ix_citizen_verification")


def downgrade() -> None:
    _key(())
