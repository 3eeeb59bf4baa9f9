"""Administrative unit tables. Codes are the official ones (Decision 19/2025/QĐ-TTg for 2025).

Legacy and 2025 commune codes overlap (``00004`` is a different ward in each), so the two
unit sets live in separate tables, joined by ``commune_conversion``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dancu.db import Base, code_type


class Province(Base):
    """A province or centrally-run city of the 2025 units (34)."""

    __tablename__ = "province"

    code: Mapped[str] = mapped_column(code_type(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100), index=True)
    population: Mapped[int] = mapped_column(Integer, default=0)


class Commune(Base):
    """A commune, ward or special zone of the 2025 units (3,321)."""

    __tablename__ = "commune"

    code: Mapped[str] = mapped_column(code_type(5), primary_key=True)
    province_code: Mapped[str] = mapped_column(
        code_type(2), ForeignKey("province.code"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(100), index=True)
    area_km2: Mapped[float | None] = mapped_column(Float)


class LegacyProvince(Base):
    """One of the 63 provinces before 1 July 2025."""

    __tablename__ = "legacy_province"

    code: Mapped[str] = mapped_column(code_type(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100), index=True)


class LegacyDistrict(Base):
    """A district (huyện, quận, thị xã, thành phố thuộc tỉnh) before 1 July 2025."""

    __tablename__ = "legacy_district"

    code: Mapped[str] = mapped_column(code_type(3), primary_key=True)
    province_code: Mapped[str] = mapped_column(
        code_type(2), ForeignKey("legacy_province.code"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(100))


class LegacyCommune(Base):
    """A commune or ward before 1 July 2025."""

    __tablename__ = "legacy_commune"

    code: Mapped[str] = mapped_column(code_type(5), primary_key=True)
    district_code: Mapped[str] = mapped_column(
        code_type(3), ForeignKey("legacy_district.code"), index=True
    )
    province_code: Mapped[str] = mapped_column(
        code_type(2), ForeignKey("legacy_province.code"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    short_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(100))


class CommuneConversion(Base):
    """Old commune to new commune. A split ward has several rows, exactly one ``is_default``."""

    __tablename__ = "commune_conversion"

    legacy_commune_code: Mapped[str] = mapped_column(
        code_type(5), ForeignKey("legacy_commune.code"), primary_key=True
    )
    commune_code: Mapped[str] = mapped_column(
        code_type(5), ForeignKey("commune.code"), primary_key=True
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)


class UnitSource(Base):
    """What the unit tables were last loaded from (one row per source): the fingerprint of
    the package data and of the loader (``geo.loader.fingerprint``), so that a command that
    starts finds the units loaded with one read instead of reading the package data again."""

    __tablename__ = "unit_source"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
