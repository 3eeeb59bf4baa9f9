"""The access log (nhật ký khai thác): one row each time anyone reads a person's data.

The table is append-only and tamper-evident: every entry carries the SHA-256 of its own
content and of the entry before it (``prev_hash``), so changing, deleting or inserting an
entry breaks the chain at that point. ``dancu.audit.service`` is the only writer; the exact
serialisation that is hashed is documented there and in docs/audit.md.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dancu.db import Base, personal_id_type


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A time-zone-aware timestamp stored in UTC and read back as an aware UTC datetime.

    SQLite has no time zone type: SQLAlchemy stores the wall-clock text and drops the offset.
    Converting to UTC on the way in and labelling UTC on the way out gives both backends the
    same values, which the hash chain needs (a hash computed on write must match on read).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("access log times must be time-zone aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: dt.datetime | None,
        dialect: Dialect,  # noqa: ARG002 (the signature TypeDecorator calls)
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class AccessLog(Base):
    """One read of one person's data (who, for which organisation, which fields, why, when),
    or of many people in one request: a batch entry, whose people are its items.

    ``id`` is the position in the chain: 1, 2, 3 … with no gaps. ``service.record`` assigns
    it as the previous entry's id plus one while holding the append lock, instead of taking
    it from a sequence, because a PostgreSQL sequence leaves a gap behind every rolled-back
    transaction and a gap must mean a deleted entry. The primary key then also refuses a
    second entry at the same position, so two writers can never fork the chain.
    """

    __tablename__ = "access_log"
    __table_args__ = (
        CheckConstraint(
            "actor_kind IN ('official', 'client', 'citizen', 'system')", name="actor_kind"
        ),
        CheckConstraint("purpose <> ''", name="purpose"),
        # one person (personal_id), or a batch of people (item_count items in access_log_item)
        CheckConstraint(
            "(personal_id IS NULL AND item_count >= 1) "
            "OR (personal_id IS NOT NULL AND item_count IS NULL)",
            name="person_or_items",
        ),
        Index("ix_access_log_personal_id_occurred_at", "personal_id", "occurred_at"),
        Index("ix_access_log_organization_occurred_at", "organization", "occurred_at"),
        Index("ix_access_log_actor_occurred_at", "actor", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    # Who: an official's username, a partner's OAuth client id, a citizen's e-ID subject.
    actor: Mapped[str] = mapped_column(String(100))
    actor_kind: Mapped[str] = mapped_column(String(8))
    organization: Mapped[str | None] = mapped_column(String(200))
    # The person whose data was read; None for a batch entry (its people are its items).
    personal_id: Mapped[str | None] = mapped_column(personal_id_type())
    # Names of the fields read, sorted and without repeats (of a batch: of all its items).
    fields: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(String(40))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    # A batch entry's number of items (rows of access_log_item); None for one person's entry.
    item_count: Mapped[int | None] = mapped_column(Integer)


class AccessLogItem(Base):
    """One person of a batch entry: who was read, which fields, with which result.

    ``item`` is the person's position in the batch request (1, 2, 3 …; a position may be
    missing, for an item that named no person, such as a legacy number not in the register).
    ``fields`` are the field names joined by commas, sorted and without repeats (a name
    never holds a comma). ``purpose`` is None when the item's purpose is the entry's.

    On PostgreSQL the table is partitioned into *generations* (``generation``, a list
    partition each: ``access_log_item_g0``, ``_g1`` …; ``dancu.audit.generations``): items
    are written to the current one, which is closed once it passes a size, so that the
    person index being written stays small however long the log grows (an insertion into a
    hash index of millions of items costs several times one into a small one). Readers see
    one table. On SQLite every item is of generation 0.

    The items are part of their entry's hash (docs/audit.md), so ``audit.verify`` detects
    an item changed, deleted or added. There is no foreign key to ``access_log``: a check
    per row would cost as much as the row; ``verify`` also reports items whose entry does
    not exist. The one secondary index serves the citizen's view and the search by person:
    a hash index on PostgreSQL (an item's insert costs about a third of a B-tree's, and the
    views sort a person's items themselves), a B-tree on SQLite, which has no other.
    """

    __tablename__ = "access_log_item"
    __table_args__ = (
        # a partitioned table's key holds its partition key; an entry's items are written
        # by one statement, all of one generation
        PrimaryKeyConstraint("entry_id", "item", "generation"),
        Index("ix_access_log_item_personal_id", "personal_id", postgresql_using="hash"),
        {"postgresql_partition_by": "LIST (generation)"},
    )

    entry_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    item: Mapped[int] = mapped_column(Integer)
    # Byte order on PostgreSQL, as every personal ID column (``db.personal_id_type``): index
    # insertions and look-ups compare with memcmp (10% of an item's cost).
    personal_id: Mapped[str] = mapped_column(personal_id_type())
    fields: Mapped[str] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str | None] = mapped_column(String(300))
    generation: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class AccessLogGeneration(Base):
    """The generation of ``access_log_item`` that batch entries write their items to (one
    row; PostgreSQL reads and changes it under the chain's append lock)."""

    __tablename__ = "access_log_generation"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    current: Mapped[int] = mapped_column(Integer)
