"""Read the administrative units shipped by ``vietnamadminunits`` and load them into the database.

Only the package's data files are read (``data/dataset.db`` and ``data/converter_2025.json``);
none of its Python modules is imported, because its parser module builds a geopy ArcGIS
geocoder at import time and its converter calls that geocoder over the network for split wards.

Codes are the official ones (Decision 19/2025/QĐ-TTg for the 2025 units). The five island
districts of the legacy set had no communes (Bạch Long Vĩ, Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn
Đảo); they map directly to a 2025 special zone and are kept in ``SourceData.district_conversions``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import importlib.util
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dancu.errors import DancuError
from dancu.geo.models import (
    Commune,
    CommuneConversion,
    LegacyCommune,
    LegacyDistrict,
    LegacyProvince,
    Province,
    UnitSource,
)

PACKAGE = "vietnamadminunits"
# Raise when ``load`` changes what it writes from the same package data, so that databases
# loaded by the previous code are loaded again (``fingerprint``).
LOADER_REVISION = 1


class GeoDataError(DancuError):
    """The packaged administrative-unit data is missing or inconsistent."""

    code = "geo_data_invalid"
    status = 500


class UnitKind(StrEnum):
    """The type of an administrative unit (GLOSSARY: province; commune/ward/special zone)."""

    PROVINCE = "province"  # tỉnh
    CITY = "city"  # thành phố (centrally run, or a provincial city before 2025)
    URBAN_DISTRICT = "urban_district"  # quận (before 2025)
    RURAL_DISTRICT = "rural_district"  # huyện (before 2025)
    TOWN = "town"  # thị xã (before 2025)
    WARD = "ward"  # phường
    COMMUNE = "commune"  # xã
    TOWNSHIP = "township"  # thị trấn (before 2025)
    SPECIAL_ZONE = "special_zone"  # đặc khu (since 2025)


_KIND_BY_TYPE = {
    "Tỉnh": UnitKind.PROVINCE,
    "Thành phố": UnitKind.CITY,
    "Quận": UnitKind.URBAN_DISTRICT,
    "Huyện": UnitKind.RURAL_DISTRICT,
    "Thị xã": UnitKind.TOWN,
    "Phường": UnitKind.WARD,
    "Xã": UnitKind.COMMUNE,
    "Thị trấn": UnitKind.TOWNSHIP,
    "Đặc khu": UnitKind.SPECIAL_ZONE,
}

# Approximate average population of the 63 legacy provinces, in thousands, by legacy code:
# the public General Statistics Office (GSO) yearly averages of about 2023-2024, rounded and
# entered by hand (not checked line by line against the yearbook). They sum to 100.2 million
# (GSO: 100.3 million in 2023). A 2025 province's population is the sum over the provinces
# merged into it (Resolution 202/2025/QH15, as the package's converter data lists them).
# Approximate by design: the synthetic population generator uses them only as weights.
LEGACY_POPULATION_THOUSANDS: dict[str, int] = {
    "01": 8718, "02": 903, "04": 547, "06": 326, "08": 805, "10": 770, "11": 640, "12": 482,
    "14": 1300, "15": 847, "17": 880, "19": 1342, "20": 802, "22": 1380, "24": 1922, "25": 1511,
    "26": 1209, "27": 1517, "30": 1947, "31": 2105, "33": 1302, "34": 1883, "35": 889,
    "36": 1888, "37": 1010, "38": 3739, "40": 3442, "42": 1324, "44": 915, "45": 650,
    "46": 1166, "48": 1245, "49": 1519, "51": 1248, "52": 1505, "54": 877, "56": 1260,
    "58": 597, "60": 1258, "62": 586, "64": 1591, "66": 1919, "67": 680, "68": 1332,
    "70": 1025, "72": 1188, "74": 2763, "75": 3310, "77": 1187, "79": 9456, "80": 1735,
    "82": 1792, "83": 1298, "84": 1019, "86": 1028, "87": 1600, "89": 1906, "91": 1755,
    "92": 1258, "93": 727, "94": 1200, "95": 925, "96": 1207,
}  # fmt: skip


_NEW_COLUMNS = (
    "province, provinceShort, provinceCode, provinceKey, provinceKeywords, provinceAlias,"
    " ward, wardShort, wardType, wardCode, wardKey, wardKeywords, wardAlias"
)
_DISTRICT_COLUMNS = (
    "district, districtShort, districtType, districtCode, districtKey, districtKeywords,"
    " districtAlias"
)


@dataclass(frozen=True, slots=True)
class SourceUnit:
    """One administrative unit as read from the package, with its matching keywords."""

    code: str
    name: str
    short_name: str
    kind: UnitKind
    key: str
    keywords: tuple[str, ...]
    province_code: str = ""
    district_code: str = ""
    area_km2: float | None = None


@dataclass(frozen=True, slots=True)
class SourceData:
    """Both unit sets and the old-to-new conversion, exactly as the package ships them."""

    provinces: tuple[SourceUnit, ...]
    communes: tuple[SourceUnit, ...]
    legacy_provinces: tuple[SourceUnit, ...]
    legacy_districts: tuple[SourceUnit, ...]
    legacy_communes: tuple[SourceUnit, ...]
    conversions: tuple[tuple[str, str, bool], ...]
    """(legacy commune code, 2025 commune code, is_default), one default per legacy commune."""
    district_conversions: dict[str, str]
    """Legacy district code (of a district without communes) -> 2025 commune code."""
    province_merges: dict[str, tuple[str, ...]]
    """2025 province code -> the legacy province codes merged into it."""
    unmapped: tuple[str, ...]
    """Legacy commune codes the package gives no 2025 commune for."""


@dataclass(slots=True)
class LoadSummary:
    """What ``load`` did: rows inserted per table (zero everywhere on a second run)."""

    inserted: dict[str, int] = field(default_factory=dict)
    populations_updated: int = 0
    unmapped_legacy_communes: tuple[str, ...] = ()
    communeless_legacy_districts: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())


def package_data_dir() -> Path:
    """The package's ``data`` folder, found without importing (and so running) the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GeoDataError(f"the {PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _keywords(*raw: str | None) -> tuple[str, ...]:
    out: list[str] = []
    for item in raw:
        if item:
            out.extend(str(k) for k in json.loads(item) if k)
    return tuple(dict.fromkeys(out))


def _kind(type_name: str | None, full_name: str) -> UnitKind:
    """The unit's type, from its name first: the package's type column is wrong for a few
    (``Phường Việt Hòa`` is typed ``Xã``), while its names and keys agree with each other."""
    lowered = full_name.lower()
    for prefix in sorted(_KIND_BY_TYPE, key=len, reverse=True):
        if lowered.startswith(prefix.lower() + " "):
            return _KIND_BY_TYPE[prefix]
    if type_name and type_name in _KIND_BY_TYPE:
        return _KIND_BY_TYPE[type_name]
    raise GeoDataError(f"unknown unit type for {full_name!r}")


def _rows(conn: sqlite3.Connection, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


@cache
def read_source() -> SourceData:
    """Read and check both unit sets and the conversion table (cached; about 0.2 s)."""
    data = package_data_dir()
    conn = sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro&immutable=1", uri=True)
    try:
        area = dict(conn.execute("SELECT wardCode, wardAreaKm2 FROM admin_units").fetchall())
        new_rows = _rows(conn, f"SELECT {_NEW_COLUMNS} FROM admin_units ORDER BY wardCode")
        old_rows = _rows(
            conn,
            f"SELECT {_NEW_COLUMNS}, {_DISTRICT_COLUMNS} FROM admin_units_legacy"
            " ORDER BY districtCode, wardCode",
        )
    finally:
        conn.close()
    converter = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))

    provinces: dict[str, SourceUnit] = {}
    communes: list[SourceUnit] = []
    new_code: dict[tuple[str, str], str] = {}
    new_province_code: dict[str, str] = {}
    for r in new_rows:
        if r["provinceCode"] not in provinces:
            provinces[r["provinceCode"]] = _province(r)
        new_province_code[r["provinceKey"]] = r["provinceCode"]
        new_code[(r["provinceKey"], r["wardKey"])] = r["wardCode"]
        communes.append(
            SourceUnit(
                code=r["wardCode"],
                name=r["ward"],
                short_name=r["wardShort"],
                kind=_kind(r["wardType"], r["ward"]),
                key=r["wardKey"],
                keywords=_keywords(r["wardKeywords"], r["wardAlias"]),
                province_code=r["provinceCode"],
                area_km2=area.get(r["wardCode"]),
            )
        )

    legacy_provinces: dict[str, SourceUnit] = {}
    districts: dict[str, SourceUnit] = {}
    legacy: list[SourceUnit] = []
    old_code: dict[str, str] = {}
    old_district: dict[str, str] = {}
    legacy_province_code: dict[str, str] = {}
    for r in old_rows:
        if r["provinceCode"] not in legacy_provinces:
            legacy_provinces[r["provinceCode"]] = _province(r)
        legacy_province_code[r["provinceKey"]] = r["provinceCode"]
        if r["districtCode"] not in districts:
            districts[r["districtCode"]] = _district(r)
        old_key = f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey'] or ''}"
        if r["wardCode"] is None:
            old_district[old_key] = r["districtCode"]
            continue
        old_code[old_key] = r["wardCode"]
        legacy.append(
            SourceUnit(
                code=r["wardCode"],
                name=r["ward"],
                short_name=r["wardShort"],
                kind=_kind(r["wardType"], r["ward"]),
                key=r["wardKey"],
                keywords=_keywords(r["wardKeywords"], r["wardAlias"]),
                province_code=r["provinceCode"],
                district_code=r["districtCode"],
            )
        )

    conversions: list[tuple[str, str, bool]] = []
    district_conversions: dict[str, str] = {}
    try:
        for pkey, wards in converter["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
            for wkey, olds in wards.items():
                target = new_code[(pkey, wkey)]
                for old in olds:
                    if old in old_district:
                        district_conversions[old_district[old]] = target
                    else:
                        conversions.append((old_code[old], target, True))
        for pkey, split in converter["DICT_PROVINCE_WARD_DIVIDED"].items():
            for old, targets in split.items():
                for t in targets:
                    target = new_code[(pkey, t["newWardKey"])]
                    conversions.append((old_code[old], target, bool(t["isDefaultNewWard"])))
        merges = {
            new_province_code[pkey]: tuple(legacy_province_code[k] for k in olds)
            for pkey, olds in converter["DICT_PROVINCE"].items()
        }
    except KeyError as exc:
        raise GeoDataError(f"converter data names an unknown unit: {exc}") from exc

    defaults: dict[str, int] = {}
    for old, _new, is_default in conversions:
        defaults[old] = defaults.get(old, 0) + int(is_default)
    wrong = sorted(code for code, n in defaults.items() if n != 1)
    if wrong:
        raise GeoDataError(f"legacy communes without exactly one default: {wrong[:10]}")
    return SourceData(
        provinces=tuple(sorted(provinces.values(), key=lambda u: u.code)),
        communes=tuple(communes),
        legacy_provinces=tuple(sorted(legacy_provinces.values(), key=lambda u: u.code)),
        legacy_districts=tuple(sorted(districts.values(), key=lambda u: u.code)),
        legacy_communes=tuple(legacy),
        conversions=tuple(dict.fromkeys(conversions)),
        district_conversions=district_conversions,
        province_merges=merges,
        unmapped=tuple(sorted(u.code for u in legacy if u.code not in defaults)),
    )


def _province(r: dict[str, Any]) -> SourceUnit:
    return SourceUnit(
        code=r["provinceCode"],
        name=r["province"],
        short_name=r["provinceShort"],
        kind=_kind(None, r["province"]),
        key=r["provinceKey"],
        keywords=_keywords(r["provinceKeywords"], r["provinceAlias"]),
    )


def _district(r: dict[str, Any]) -> SourceUnit:
    return SourceUnit(
        code=r["districtCode"],
        name=r["district"],
        short_name=r["districtShort"],
        kind=_kind(r["districtType"], r["district"]),
        key=r["districtKey"],
        keywords=_keywords(r["districtKeywords"], r["districtAlias"]),
        province_code=r["provinceCode"],
    )


def province_populations(src: SourceData) -> dict[str, int]:
    """Approximate population of each 2025 province: its merged legacy provinces summed."""
    return {
        code: 1000 * sum(LEGACY_POPULATION_THOUSANDS.get(old, 0) for old in olds)
        for code, olds in src.province_merges.items()
    }


def _insert_missing(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> int:
    existing = set(session.scalars(select(model.code)))
    missing = [row for row in rows if row["code"] not in existing]
    if missing:
        session.execute(insert(model), missing)
    return len(missing)


def load(session: Session) -> LoadSummary:
    """Fill the six unit tables from the package data; idempotent, only flushes (caller commits).

    Rows already present (by primary key) are left alone, so a second run inserts nothing;
    province populations are set to ``province_populations`` where they differ.
    """
    started = time.perf_counter()
    src = read_source()
    populations = province_populations(src)
    summary = LoadSummary(
        unmapped_legacy_communes=src.unmapped,
        communeless_legacy_districts=tuple(sorted(src.district_conversions)),
    )
    summary.inserted["province"] = _insert_missing(
        session,
        Province,
        [
            {
                "code": p.code,
                "name": p.name,
                "short_name": p.short_name,
                "key": p.key,
                "population": populations.get(p.code, 0),
            }
            for p in src.provinces
        ],
    )
    summary.inserted["legacy_province"] = _insert_missing(
        session,
        LegacyProvince,
        [
            {"code": p.code, "name": p.name, "short_name": p.short_name, "key": p.key}
            for p in src.legacy_provinces
        ],
    )
    summary.inserted["commune"] = _insert_missing(
        session,
        Commune,
        [
            {
                "code": c.code,
                "province_code": c.province_code,
                "name": c.name,
                "short_name": c.short_name,
                "kind": c.kind.value,
                "key": c.key,
                "area_km2": c.area_km2,
            }
            for c in src.communes
        ],
    )
    summary.inserted["legacy_district"] = _insert_missing(
        session,
        LegacyDistrict,
        [
            {
                "code": d.code,
                "province_code": d.province_code,
                "name": d.name,
                "short_name": d.short_name,
                "kind": d.kind.value,
                "key": d.key,
            }
            for d in src.legacy_districts
        ],
    )
    summary.inserted["legacy_commune"] = _insert_missing(
        session,
        LegacyCommune,
        [
            {
                "code": c.code,
                "district_code": c.district_code,
                "province_code": c.province_code,
                "name": c.name,
                "short_name": c.short_name,
                "kind": c.kind.value,
                "key": c.key,
            }
            for c in src.legacy_communes
        ],
    )
    existing = {
        (old, new)
        for old, new in session.execute(
            select(CommuneConversion.legacy_commune_code, CommuneConversion.commune_code)
        )
    }
    conversions = [
        {"legacy_commune_code": old, "commune_code": new, "is_default": is_default}
        for old, new, is_default in src.conversions
        if (old, new) not in existing
    ]
    if conversions:
        session.execute(insert(CommuneConversion), conversions)
    summary.inserted["commune_conversion"] = len(conversions)

    current = dict(session.execute(select(Province.code, Province.population)).all())
    for code, population in populations.items():
        if code in current and current[code] != population:
            session.execute(
                update(Province).where(Province.code == code).values(population=population)
            )
            summary.populations_updated += 1
    session.flush()
    summary.seconds = time.perf_counter() - started
    return summary


def fingerprint() -> str:
    """What ``load`` writes depends on: the package's version, the SHA-256 of each data file
    it reads, the province populations typed into this module, and ``LOADER_REVISION``.
    ``load_if_changed`` compares it with the one stored (about 15 ms to compute)."""
    data = package_data_dir()
    digest = hashlib.sha256()
    for name in ("dataset.db", "converter_2025.json"):
        digest.update((data / name).read_bytes())
    digest.update(repr(sorted(LEGACY_POPULATION_THOUSANDS.items())).encode())
    return (
        f"{PACKAGE} {importlib.metadata.version(PACKAGE)}; data {digest.hexdigest()[:32]}; "
        f"loader {LOADER_REVISION}"
    )


def load_if_changed(session: Session) -> LoadSummary | None:
    """``load`` unless the units were loaded from the same data by the same loader (the
    stored fingerprint matches): one read instead of reading the package data and comparing
    every unit (0.3-0.65 s). Returns what ``load`` did, or None when it did not run. Only
    flushes (the caller commits). Two commands starting at once may both load (each inserts
    only what is missing) and both store the fingerprint: the second store overwrites."""
    current = fingerprint()
    stored = session.get(UnitSource, PACKAGE)
    if stored is not None and stored.fingerprint == current:
        return None
    summary = load(session)
    values = {"name": PACKAGE, "fingerprint": current, "loaded_at": dt.datetime.now(dt.UTC)}
    dialect = session.get_bind().dialect.name
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(UnitSource)
    session.execute(
        upsert.values(values).on_conflict_do_update(
            index_elements=[UnitSource.name],
            set_={"fingerprint": current, "loaded_at": values["loaded_at"]},
        )
    )
    if stored is not None:
        session.expire(stored)
    return summary
