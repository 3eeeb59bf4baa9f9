"""Data-quality findings over the register, computed in SQL (đúng, đủ, sạch, sống).

A finding is never a refusal: the law guarantees only that a personal ID has 12 digits
(DOMAIN.md), so a number whose structure disagrees with the record is flagged for an official,
not rejected. The back office lists findings per unit; these functions are its queries.

Six kinds of finding, each one SQL condition on a person ``c`` (``PREDICATES``), used both to
count (``refresh_quality``, ``overview``) and to list the people (``findings``), so that a count
and its list always agree. Records merged into another (duplicate review) are left out.

* ``incomplete`` (đủ): a living person without one of the fields every living person must
  have: permanent commune and street address, household and relationship to its head,
  ethnicity, religion, nationality, place of origin, and a birth date known to the day.
  (Phone, marital status, blood type and parents are optional and not counted.)
* ``id_inconsistent`` (đúng): the ID's century/sex digit or year digits disagree with the
  recorded birth year or sex.
* ``deceased_with_residence`` (sống): a deceased person with a residence still open.
* ``child_older_than_parent`` (đúng): a father or mother born less than ``MIN_PARENT_AGE``
  years (by birth year) before the child, or after.
* ``duplicate_candidate`` (sạch): a person in an open duplicate pair.
* ``legacy_address`` (đúng): a permanent address whose text still names a unit abolished on
  1 July 2025: a district-level unit (quận, huyện, thị xã; ``Q.``, ``TX.``) or a township
  (thị trấn, ``TT.``). The register's commune codes are 2025 codes (the importer refuses
  others), so old units survive only in the street text copied from old documents.

The counts per commune are pre-aggregated in ``quality_commune_stats`` by ``refresh_quality``
(after a seed, by ``dancu registry quality-refresh``, or for one unit after its officials'
work), so a province's overview reads about a hundred rows; ``overview`` says when they were
computed. The lists (``findings``) are always live.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import DateTime, bindparam, delete, func, insert, select, text
from sqlalchemy.orm import Session

from dancu.db import execute_count
from dancu.errors import DancuError, Problem, ValidationFailed
from dancu.geo.models import Commune
from dancu.registry import scope as scopes
from dancu.registry.models import Citizen, QualityCommuneStats
from dancu.registry.scope import Scope
from dancu.vn import personal_id as vn_ids

# The digit G of PPP G YY RRRRRR: century and sex (1900s: 0/1, 2000s: 2/3, ...).
_EXPECTED_G = "((c.birth_year / 100) - 19) * 2 + CASE WHEN c.sex = 'F' THEN 1 ELSE 0 END"
_ID_G = "CAST(SUBSTR(c.personal_id, 4, 1) AS INTEGER)"
_ID_YY = "CAST(SUBSTR(c.personal_id, 5, 2) AS INTEGER)"


@dataclass(frozen=True, slots=True)
class IdFinding:
    """A person whose ID number disagrees with the recorded birth year or sex."""

    personal_id: str
    birth_year: int
    sex: str
    year_differs: bool
    sex_or_century_differs: bool


def id_inconsistencies(
    session: Session,
    *,
    commune_code: str | None = None,
    province_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[IdFinding]:
    """People whose ID's century/sex digit or year digits disagree with the record, in a
    commune or a province (2025 units), paginated by personal ID."""
    if not 1 <= limit <= 1000:
        raise DancuError("limit must be between 1 and 1000", code="invalid_limit")
    if offset < 0:
        raise DancuError("offset must not be negative", code="invalid_offset")
    where = [f"({_ID_G} <> {_EXPECTED_G} OR {_ID_YY} <> c.birth_year % 100)"]
    params: dict[str, object] = {"limit": limit, "offset": offset}
    joins = ""
    if commune_code:
        where.append("c.permanent_commune_code = :commune")
        params["commune"] = commune_code
    if province_code:
        joins = "JOIN commune m ON m.code = c.permanent_commune_code"
        where.append("m.province_code = :province")
        params["province"] = province_code
    rows = session.execute(
        text(
            f"""SELECT c.personal_id, c.birth_year, c.sex,
                       {_ID_YY} <> c.birth_year % 100 AS year_differs,
                       {_ID_G} <> {_EXPECTED_G} AS g_differs
                FROM citizen c {joins}
                WHERE {" AND ".join(where)}
                ORDER BY c.personal_id LIMIT :limit OFFSET :offset"""
        ),
        params,
    )
    return [
        IdFinding(pid, int(year), sex, bool(year_differs), bool(g_differs))
        for pid, year, sex, year_differs, g_differs in rows
    ]


# ------------------------------------------------------------------ the six finding kinds

MIN_PARENT_AGE = 13
REQUIRED_FIELDS: tuple[str, ...] = (
    "permanent_commune_code",
    "permanent_address",
    "household_code",
    "relationship_to_head",
    "ethnicity",
    "religion",
    "nationality",
    "place_of_origin",
)
# District-level and township words of the units abolished on 1 July 2025, as written in
# addresses (NFC). SQLite's LIKE folds ASCII case only and PostgreSQL's none: every case is
# listed.
LEGACY_UNIT_WORDS: tuple[str, ...] = (
    "Quận ", "quận ", "QUẬN ", "Huyện ", "huyện ", "HUYỆN ", "Thị xã ", "thị xã ", "Thị Xã ",
    "THỊ XÃ ", "Thị trấn ", "thị trấn ", "Thị Trấn ", "THỊ TRẤN ", "Q.", "TX.", "TT.",
)  # fmt: skip

_MISSING = " OR ".join(f"COALESCE(c.{name}, '') = ''" for name in REQUIRED_FIELDS)
_PARENT_TOO_YOUNG = """CASE WHEN c.{link} IS NULL THEN 0 ELSE (
    SELECT COUNT(*) FROM citizen p
    WHERE p.personal_id = c.{link} AND c.birth_year - p.birth_year < :min_parent_age) END"""
_OPEN_PAIRS = """SELECT personal_id_a FROM duplicate_candidate WHERE status = 'open'
                 UNION ALL SELECT personal_id_b FROM duplicate_candidate WHERE status = 'open'"""

PREDICATES: dict[str, str] = {
    "incomplete": f"(c.status = 'alive' AND ({_MISSING} OR c.birth_date_precision <> 'day'))",
    "id_inconsistent": f"({_ID_G} <> {_EXPECTED_G} OR {_ID_YY} <> c.birth_year % 100)",
    # CASE decides the order: the residence probe runs for the deceased only.
    "deceased_with_residence": """(CASE WHEN c.status = 'deceased' THEN (
        SELECT COUNT(*) FROM residence r WHERE r.personal_id = c.personal_id
        AND r.ended_at IS NULL) ELSE 0 END > 0)""",
    "child_older_than_parent": (
        f"({_PARENT_TOO_YOUNG.format(link='father_id')}"
        f" + {_PARENT_TOO_YOUNG.format(link='mother_id')} > 0)"
    ),
    "duplicate_candidate": f"c.personal_id IN ({_OPEN_PAIRS})",
    "legacy_address": "("
    + " OR ".join(f"c.permanent_address LIKE '%{word}%'" for word in LEGACY_UNIT_WORDS)
    + ")",
}
KINDS: tuple[str, ...] = tuple(PREDICATES)
LABELS: dict[str, tuple[str, str]] = {
    "incomplete": ("Thiếu thông tin bắt buộc", "Missing required information"),
    "id_inconsistent": (
        "Số định danh không khớp năm sinh, giới tính",
        "ID number disagrees with birth year or sex",
    ),
    "deceased_with_residence": (
        "Đã chết nhưng còn nơi cư trú",
        "Deceased but still holding a residence",
    ),
    "child_older_than_parent": (
        "Con lớn tuổi hơn (hoặc gần tuổi) cha mẹ",
        "Child older than (or too close in age to) a parent",
    ),
    "duplicate_candidate": ("Nghi trùng lặp", "Possible duplicate"),
    "legacy_address": (
        "Địa chỉ còn ghi đơn vị hành chính cũ (trước 2025)",
        "Address still on pre-2025 units",
    ),
}
"""What an official reads for each kind: (Vietnamese, English)."""

_NOT_MERGED = "NOT EXISTS (SELECT 1 FROM citizen_merge x WHERE x.merged_id = c.personal_id)"
_PARAMS = {"min_parent_age": MIN_PARENT_AGE}


@contextmanager
def _no_jit(session: Session) -> Iterator[None]:
    """PostgreSQL's JIT compiles the aggregate's many expressions for longer than they run
    (17 s instead of 6 s at 1M people): off for these statements, then as it was."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.scalar(text("SELECT current_setting('jit')"))
    session.execute(text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('jit', :v, true)"), {"v": previous})


def _scope_sql(scope: Scope) -> tuple[str, dict[str, object]]:
    """The scope as SQL on ``c``: the same rule as ``registry.scope.where_in_scope``."""
    if scope.level == "commune":
        return "c.permanent_commune_code = :scope_code", {"scope_code": scope.code}
    if scope.level == "province":
        # As literal values (digits only, from the unit index), for the planner's estimates.
        codes = scopes.province_communes(str(scope.code))
        assert all(code.isdigit() for code in codes)
        listed = ", ".join(f"'{code}'" for code in codes) or "NULL"
        return f"c.permanent_commune_code IN ({listed})", {}
    return "c.permanent_commune_code IS NOT NULL", {}


# The aggregate's own form of two predicates, equal in value to ``PREDICATES``' (the lists
# keep those). For the whole country, each parent by a join rather than a subquery per person:
# PostgreSQL then hashes the citizen table once instead of probing its key twice a person
# (8 s -> 4-5 s at 1M); for a province, probing its people's parents stays cheaper than
# hashing the country. On SQLite, whose LIKE folds ASCII case, the legacy words that differ
# only in ASCII case are tested once.
_PARENTS_JOINED = """LEFT JOIN citizen f ON f.personal_id = c.father_id
                     LEFT JOIN citizen m ON m.personal_id = c.mother_id"""
_PARENT_TOO_YOUNG_JOINED = (
    "(c.birth_year - f.birth_year < :min_parent_age"
    " OR c.birth_year - m.birth_year < :min_parent_age)"
)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _legacy_sqlite() -> str:
    words = {word.translate(_ASCII_LOWER): word for word in reversed(LEGACY_UNIT_WORDS)}
    return "(" + " OR ".join(f"c.permanent_address LIKE '%{w}%'" for w in words.values()) + ")"


def _aggregate_sql(session: Session, scope: Scope) -> tuple[str, dict[str, object]]:
    """Counts per commune of ``scope`` in one pass over its people.

    Grouped by the commune alone, in the order of its index, so that no sort is needed (a
    province column in the grouping made SQLite sort every person's fields first); the
    province is joined to the groups (one a commune) afterwards. Merged records are left out by
    a probe per person only when some record was ever merged.
    """
    where, params = _scope_sql(scope)
    predicates, joins = dict(PREDICATES), ""
    if scope.level == "national":
        predicates["child_older_than_parent"] = _PARENT_TOO_YOUNG_JOINED
        joins = _PARENTS_JOINED
    if session.get_bind().dialect.name == "sqlite":
        predicates["legacy_address"] = _legacy_sqlite()
    sums = ",\n".join(
        f"SUM(CASE WHEN {predicate} THEN 1 ELSE 0 END) AS {kind}"
        for kind, predicate in predicates.items()
    )
    merged = session.execute(text("SELECT 1 FROM citizen_merge LIMIT 1")).first() is not None
    sql = f"""SELECT a.*, k.province_code AS province_code FROM (
                SELECT c.permanent_commune_code AS commune_code,
                       COUNT(*) AS people,
                       SUM(CASE WHEN c.status = 'alive' THEN 1 ELSE 0 END) AS alive,
                       {sums}
                FROM citizen c {joins}
                WHERE {where}{f" AND {_NOT_MERGED}" if merged else ""}
                GROUP BY c.permanent_commune_code) a
              JOIN commune k ON k.code = a.commune_code"""
    return sql, {**_PARAMS, **params}


# -------------------------------------------------------------------------- the overview


@dataclass(frozen=True, slots=True)
class CommuneQuality:
    """The counts of one commune; ``counts`` has one entry per kind in ``KINDS``."""

    commune_code: str
    commune_name: str
    province_code: str
    people: int
    alive: int
    counts: dict[str, int]

    @property
    def completeness(self) -> float:
        """Share of the living with every required field (1.0 for a commune without people)."""
        return 1.0 - self.counts["incomplete"] / self.alive if self.alive else 1.0


@dataclass(frozen=True, slots=True)
class QualityOverview:
    """The quality of a unit, commune by commune.

    ``refreshed_at`` is when the counts were computed: the oldest refresh among the unit's
    communes, or the moment of the call for a live overview. ``unplaced`` counts the people
    without a permanent commune (national overview only: no commune holds them).
    """

    scope: Scope
    communes: list[CommuneQuality]
    refreshed_at: dt.datetime | None
    live: bool
    unplaced: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def people(self) -> int:
        return sum(c.people for c in self.communes)

    @property
    def alive(self) -> int:
        return sum(c.alive for c in self.communes)

    @property
    def completeness(self) -> float:
        alive = self.alive
        return 1.0 - self.totals.get("incomplete", 0) / alive if alive else 1.0


def _communes_of(session: Session, scope: Scope) -> dict[str, tuple[str, str]]:
    query = select(Commune.code, Commune.name, Commune.province_code).order_by(Commune.code)
    if scope.level == "province":
        query = query.where(Commune.province_code == scope.code)
    elif scope.level == "commune":
        query = query.where(Commune.code == scope.code)
    return {code: (name, province) for code, name, province in session.execute(query)}


def overview(session: Session, scope: Scope, *, live: bool = False) -> QualityOverview:
    """Counts per commune of ``scope`` (every commune listed, with zeros where nobody lives).

    Reads ``quality_commune_stats``; with ``live`` (or when nothing was ever aggregated),
    computes the counts now, which costs a scan of the unit's people.
    """
    communes = _communes_of(session, scope)
    rows: dict[str, dict[str, int]] = {}
    refreshed: dt.datetime | None = None
    stats = select(QualityCommuneStats)
    if scope.level == "province":
        stats = stats.where(QualityCommuneStats.province_code == scope.code)
    elif scope.level == "commune":
        stats = stats.where(QualityCommuneStats.commune_code == scope.code)
    if not live:
        found = list(session.scalars(stats))
        if not found and not session.scalar(select(func.count(QualityCommuneStats.commune_code))):
            live = True
        for row in found:
            rows[row.commune_code] = {
                "people": row.people,
                "alive": row.alive,
                **{kind: getattr(row, kind) for kind in KINDS},
            }
            at = _aware(row.refreshed_at)
            refreshed = at if refreshed is None or at < refreshed else refreshed
    if live:
        sql, params = _aggregate_sql(session, scope)
        with _no_jit(session):
            found_rows = session.execute(text(sql), params).mappings()
            rows = {r["commune_code"]: dict(r) for r in found_rows}
        refreshed = dt.datetime.now(dt.UTC)
    result = []
    for code, (name, province) in communes.items():
        got = rows.get(code, {})
        result.append(
            CommuneQuality(
                commune_code=code,
                commune_name=name,
                province_code=province,
                people=int(got.get("people", 0)),
                alive=int(got.get("alive", 0)),
                counts={kind: int(got.get(kind, 0) or 0) for kind in KINDS},
            )
        )
    unplaced = 0
    if scope.level == "national":
        unplaced = int(
            session.scalar(select(func.count()).where(Citizen.permanent_commune_code.is_(None)))
            or 0
        )
    totals = {kind: sum(c.counts[kind] for c in result) for kind in KINDS}
    return QualityOverview(scope, result, refreshed, live, unplaced, totals)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def refresh_quality(
    session: Session, scope: Scope = scopes.NATIONAL, *, now: dt.datetime | None = None
) -> int:
    """Recompute ``quality_commune_stats`` for the communes of ``scope`` (the whole country
    by default) in SQL; returns how many communes hold people. Only flushes."""
    now = now or dt.datetime.now(dt.UTC)
    sql, params = _aggregate_sql(session, scope)
    target = delete(QualityCommuneStats)
    if scope.level == "province":
        target = target.where(QualityCommuneStats.province_code == scope.code)
    elif scope.level == "commune":
        target = target.where(QualityCommuneStats.commune_code == scope.code)
    session.execute(target)
    columns = ", ".join(("commune_code", "province_code", "people", "alive", *KINDS))
    with _no_jit(session):
        inserted = execute_count(
            session,
            text(
                f"INSERT INTO quality_commune_stats ({columns}, refreshed_at) "
                f"SELECT {columns}, :refreshed_at FROM ({sql}) agg"
            ).bindparams(bindparam("refreshed_at", type_=DateTime(timezone=True))),
            {**params, "refreshed_at": now},
        )
    session.flush()
    return inserted


def store_counts(
    session: Session,
    counts: Mapping[str, Sequence[int]],
    *,
    kinds: Sequence[str],
    now: dt.datetime | None = None,
) -> int:
    """Write ``quality_commune_stats`` for the whole country from counts made elsewhere (a
    first load's, from its stream: ``first_load.QualityTally``) instead of in SQL; returns
    how many communes hold people, as ``refresh_quality`` does.

    ``counts`` maps a commune to its counts in the order of ``kinds`` (``people``, ``alive``
    and kinds of ``KINDS``); a kind not given is zero, except ``duplicate_candidate``, which is
    counted here in SQL from the open pairs (few rows, read through their index). Only right
    when the counts describe every person of the register, none of them merged.
    """
    now = now or dt.datetime.now(dt.UTC)
    provinces: dict[str, str] = dict(
        session.execute(select(Commune.code, Commune.province_code)).all()
    )
    pairs = {
        code: int(people)
        for code, people in session.execute(
            text(
                f"""SELECT c.permanent_commune_code, COUNT(*) FROM citizen c
                    WHERE c.permanent_commune_code IS NOT NULL
                      AND c.personal_id IN ({_OPEN_PAIRS})
                    GROUP BY c.permanent_commune_code"""
            )
        )
    }
    rows = []
    for commune, values in counts.items():
        row: dict[str, object] = dict.fromkeys(("people", "alive", *KINDS), 0)
        row |= dict(zip(kinds, values, strict=True))
        row["duplicate_candidate"] = pairs.get(commune, 0)
        row |= {"commune_code": commune, "province_code": provinces[commune], "refreshed_at": now}
        rows.append(row)
    session.execute(delete(QualityCommuneStats))
    if rows:
        session.execute(insert(QualityCommuneStats), rows)
    session.flush()
    return len(rows)


# --------------------------------------------------------------------------- the people


@dataclass(frozen=True, slots=True)
class Finding:
    """One person behind a count, with what is wrong in words."""

    person: Citizen
    detail: str


@dataclass(frozen=True, slots=True)
class FindingPage:
    kind: str
    items: list[Finding]
    limit: int
    offset: int
    has_more: bool


def findings(
    session: Session,
    scope: Scope,
    kind: str,
    commune_code: str | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> FindingPage:
    """The people behind one count of ``overview`` (live), by personal ID, paginated."""
    if kind not in PREDICATES:
        raise ValidationFailed(
            f"unknown finding kind {kind!r}",
            [Problem(None, "kind", f"expected one of {', '.join(KINDS)}")],
        )
    if not 1 <= limit <= 500:
        raise DancuError("limit must be between 1 and 500", code="invalid_limit")
    if offset < 0:
        raise DancuError("offset must not be negative", code="invalid_offset")
    unit = scope
    if commune_code:
        scopes.require_commune(scope, commune_code)
        unit = Scope("commune", commune_code)
    where, params = _scope_sql(unit)
    ids = list(
        session.scalars(
            text(
                f"""SELECT c.personal_id FROM citizen c
                    WHERE {where} AND {_NOT_MERGED} AND {PREDICATES[kind]}
                    ORDER BY c.personal_id LIMIT :limit OFFSET :offset"""
            ),
            {**_PARAMS, **params, "limit": limit + 1, "offset": offset},
        )
    )
    people = {
        c.personal_id: c
        for c in session.scalars(select(Citizen).where(Citizen.personal_id.in_(ids[:limit])))
    }
    items = [Finding(people[pid], _explain(session, kind, people[pid])) for pid in ids[:limit]]
    return FindingPage(kind, items, limit, offset, len(ids) > limit)


def _explain(session: Session, kind: str, person: Citizen) -> str:
    """What is wrong with this person, in words an official can act on."""
    if kind == "incomplete":
        missing = [name for name in REQUIRED_FIELDS if not getattr(person, name)]
        if person.birth_date_precision != "day":
            missing.append(f"birth_date (known to the {person.birth_date_precision} only)")
        return "missing: " + ", ".join(missing)
    if kind == "id_inconsistent":
        return "; ".join(
            vn_ids.check_consistency(person.personal_id, person.birth_year, person.sex)
        )
    if kind == "deceased_with_residence":
        return f"deceased on {person.death_date}; a residence is still open"
    if kind == "child_older_than_parent":
        parts = []
        for link in ("father_id", "mother_id"):
            parent = session.get(Citizen, getattr(person, link)) if getattr(person, link) else None
            if parent is not None and person.birth_year - parent.birth_year < MIN_PARENT_AGE:
                parts.append(f"{link[:-3]} {parent.personal_id} born {parent.birth_year}")
        return f"born {person.birth_year}; " + "; ".join(parts)
    if kind == "duplicate_candidate":
        return "in an open duplicate pair: review it"
    return f"address: {person.permanent_address}"
