"""Data-quality findings over the register, computed in SQL (đúng, đủ, sạch, sống).

A finding is never a refusal: the law guarantees only that a personal ID has 12 digits
(DOMAIN.md), so a number whose structure disagrees with the record is flagged for an official,
not rejected. The back office lists findings per unit; these functions are its queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from dancu.errors import DancuError

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
