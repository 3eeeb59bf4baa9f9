"""Register tables: citizens, households, residences, civil events, history, duplicates.

The personal ID number is the natural primary key of a citizen: it is what every partner
sends, and it is the partitioning key at national scale (docs/scaling.md). Parent and spouse
links are personal IDs, validated by the services and the importer rather than by foreign
keys, so that a national import can load a family in any row order.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dancu.db import Base, code_type, personal_id_type

# Citizen columns indexed only where they hold a number.
NUMBERS_INDEXED_WHEN_PRESENT = ("legacy_id_number", "father_id", "mother_id")


class ImportBatch(Base):
    """One run of ``dancu registry import`` or ``dancu seed``: the source of the rows it created."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_inserted: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)


# The columns field agreement reads besides the personal ID (``dancu.exchange.verify``, the
# reconciliation's exact track). On PostgreSQL the primary key's index carries them
# (``INCLUDE``), so that reading people by personal ID is an index-only scan: the 10,000 heap
# visits of a batch verification over the whole register cost about 2.6 of PostgreSQL's
# 4.5 µs a person (docs/registry.md, "The primary key carries what a verification reads").
# The price: an update of one of them is not a HOT update (the index gets a new entry), which
# the register's rare updates afford; a first load builds the key once its rows are in, which
# costs about what keeping the narrow key during the load did.
AGREEMENT_COLUMNS: tuple[str, ...] = (
    "legacy_id_number",
    "full_name",
    "name_key",
    "birth_date",
    "birth_date_precision",
    "sex",
    "status",
    "permanent_commune_code",
)


class Citizen(Base):
    """A person in the register (công dân), with the fields of GLOSSARY.md."""

    __tablename__ = "citizen"
    __table_args__ = (
        PrimaryKeyConstraint("personal_id", postgresql_include=list(AGREEMENT_COLUMNS)),
        CheckConstraint("sex IN ('M', 'F')", name="sex"),
        CheckConstraint("status IN ('alive', 'deceased')", name="status"),
        CheckConstraint("birth_date_precision IN ('day', 'month', 'year')", name="precision"),
        CheckConstraint("death_date IS NULL OR death_date >= birth_date", name="death_after_birth"),
        Index("ix_citizen_name_key_birth_year", "name_key", "birth_year", "birth_date"),
        # Most people have no legacy number, and many no recorded father or mother: these
        # indexes hold only the people who have one (every query of them is by equality,
        # which a partial index serves). Migration 0010.
        *(
            Index(
                f"ix_citizen_{column}",
                column,
                postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"),
            )
            for column in NUMBERS_INDEXED_WHEN_PRESENT
        ),
    )

    personal_id: Mapped[str] = mapped_column(personal_id_type(), primary_key=True)
    legacy_id_number: Mapped[str | None] = mapped_column(personal_id_type())
    full_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(60))
    middle_name: Mapped[str] = mapped_column(String(120))
    given_name: Mapped[str] = mapped_column(String(60))
    # Folded search key: lower case, no diacritics, đ as d, single spaces.
    # Byte order ("C" collation on PostgreSQL) so that a prefix is an index range scan.
    name_key: Mapped[str] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql")
    )
    other_names: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    birth_date_precision: Mapped[str] = mapped_column(String(5), default="day")
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    sex: Mapped[str] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(8), default="alive")
    death_date: Mapped[dt.date | None] = mapped_column(Date)
    birth_registration_place: Mapped[str | None] = mapped_column(String(200))
    marital_status: Mapped[str | None] = mapped_column(String(20))
    blood_type: Mapped[str | None] = mapped_column(String(3))
    ethnicity: Mapped[str | None] = mapped_column(String(60))
    religion: Mapped[str | None] = mapped_column(String(60))
    nationality: Mapped[str | None] = mapped_column(String(60))
    place_of_origin: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    father_id: Mapped[str | None] = mapped_column(personal_id_type())
    mother_id: Mapped[str | None] = mapped_column(personal_id_type())
    spouse_id: Mapped[str | None] = mapped_column(personal_id_type())
    representative_id: Mapped[str | None] = mapped_column(personal_id_type())
    household_code: Mapped[str | None] = mapped_column(code_type(64), index=True)
    relationship_to_head: Mapped[str | None] = mapped_column(String(12))
    # Denormalised from the open permanent residence, for scoping and statistics.
    permanent_commune_code: Mapped[str | None] = mapped_column(code_type(5), index=True)
    permanent_address: Mapped[str | None] = mapped_column(String(300))
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Optimistic concurrency: an update must name the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Household(Base):
    """A household (hộ gia đình) with one head (chủ hộ)."""

    __tablename__ = "household"

    code: Mapped[str] = mapped_column(code_type(64), primary_key=True)
    head_id: Mapped[str | None] = mapped_column(personal_id_type(), index=True)
    commune_code: Mapped[str | None] = mapped_column(code_type(5), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    dissolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Residence(Base):
    """A residence record: permanent, temporary (with validity), current, stay or absence."""

    __tablename__ = "residence"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('permanent', 'temporary', 'current', 'stay', 'temporary_absence')",
            name="kind",
        ),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="period"),
        Index("ix_residence_personal_id_kind", "personal_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    personal_id: Mapped[str] = mapped_column(personal_id_type(), ForeignKey("citizen.personal_id"))
    kind: Mapped[str] = mapped_column(String(20))
    commune_code: Mapped[str | None] = mapped_column(code_type(5), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    household_code: Mapped[str | None] = mapped_column(code_type(64))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CivilEvent(Base):
    """A civil-status event (hộ tịch) applied to the register through ``registry.events``."""

    __tablename__ = "civil_event"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('birth', 'death', 'marriage', 'divorce', 'correction')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(12))
    personal_id: Mapped[str] = mapped_column(personal_id_type(), index=True)
    other_personal_id: Mapped[str | None] = mapped_column(personal_id_type())
    event_date: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    legal_basis: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class CitizenHistory(Base):
    """One changed field of one person: from what to what, when, by whom, from where, why.

    Written in the same transaction as the change; never updated or deleted.
    """

    __tablename__ = "citizen_history"
    __table_args__ = (
        Index("ix_citizen_history_personal_id_changed_at", "personal_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    personal_id: Mapped[str] = mapped_column(personal_id_type())
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(300))
    legal_basis: Mapped[str | None] = mapped_column(String(300))
    civil_event_id: Mapped[int | None] = mapped_column(ForeignKey("civil_event.id"))
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))


class PersonalIdAllocation(Base):
    """Every number ever handed out at birth registration: never reused, even after a merge."""

    __tablename__ = "personal_id_allocation"

    personal_id: Mapped[str] = mapped_column(personal_id_type(), primary_key=True)
    allocated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    actor: Mapped[str] = mapped_column(String(100))


class DuplicateCandidate(Base):
    """Two records that may be the same person, for an official to review; never auto-merged."""

    __tablename__ = "duplicate_candidate"
    __table_args__ = (
        CheckConstraint("personal_id_a < personal_id_b", name="ordered"),
        CheckConstraint("status IN ('open', 'not_same', 'merged')", name="status"),
        Index("uq_duplicate_candidate_pair", "personal_id_a", "personal_id_b", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    personal_id_a: Mapped[str] = mapped_column(personal_id_type())
    personal_id_b: Mapped[str] = mapped_column(personal_id_type(), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="open")
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(String(300))  # why: not the same, merged


class CitizenMerge(Base):
    """A record merged into another after duplicate review: the merged record stays, untouched
    but for its links, and its number (and legacy number) keep finding the kept person."""

    __tablename__ = "citizen_merge"

    merged_id: Mapped[str] = mapped_column(
        personal_id_type(), ForeignKey("citizen.personal_id"), primary_key=True
    )
    kept_id: Mapped[str] = mapped_column(
        personal_id_type(), ForeignKey("citizen.personal_id"), index=True
    )
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("duplicate_candidate.id"))
    merged_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(300))


class QualityCommuneStats(Base):
    """Data-quality counts of one 2025 commune, pre-aggregated by ``quality.refresh_quality``
    so that a province's overview reads about a hundred rows instead of scanning its people."""

    __tablename__ = "quality_commune_stats"

    commune_code: Mapped[str] = mapped_column(code_type(5), primary_key=True)
    province_code: Mapped[str] = mapped_column(code_type(2), index=True)
    people: Mapped[int] = mapped_column(Integer, default=0)
    alive: Mapped[int] = mapped_column(Integer, default=0)
    incomplete: Mapped[int] = mapped_column(Integer, default=0)
    id_inconsistent: Mapped[int] = mapped_column(Integer, default=0)
    deceased_with_residence: Mapped[int] = mapped_column(Integer, default=0)
    child_older_than_parent: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_candidate: Mapped[int] = mapped_column(Integer, default=0)
    legacy_address: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
