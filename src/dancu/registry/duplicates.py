"""Duplicate candidates: the same canonical name and birth date, with matching parents or place.

Candidates are flagged for an official's review and never merged automatically: two people
may share a name, a birth date and a commune (twins are the common case, and they differ by
given name), so only a person can decide.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from dancu.registry.models import DuplicateCandidate

REASON = "same name and birth date; same {what}"

_MATCH = """
    c.name_key = s.name_key AND c.birth_year = s.birth_year AND c.birth_date = s.birth_date
    AND c.birth_date_precision = s.birth_date_precision AND c.full_name = s.full_name
    AND c.personal_id <> s.personal_id
    AND (c.father_id = s.father_id OR c.mother_id = s.mother_id
         OR c.permanent_commune_code = s.permanent_commune_code)
"""

_WHAT = """CASE WHEN c.father_id = s.father_id OR c.mother_id = s.mother_id
                THEN 'parent' ELSE 'permanent commune' END"""


def flag_from_table(session: Session, source: str, now: dt.datetime) -> int:
    """Flag candidates between the people in ``source`` (a table with citizen columns; the
    staging table of an import) and the whole register. Returns how many new pairs."""
    sql = f"""
        INSERT INTO duplicate_candidate (personal_id_a, personal_id_b, reason, status, found_at)
        SELECT a, b, MIN(reason), 'open', :now FROM (
            SELECT CASE WHEN s.personal_id < c.personal_id THEN s.personal_id
                        ELSE c.personal_id END AS a,
                   CASE WHEN s.personal_id < c.personal_id THEN c.personal_id
                        ELSE s.personal_id END AS b,
                   'same name and birth date; same ' || {_WHAT} AS reason
            FROM {source} s JOIN citizen c ON {_MATCH}
        ) pairs
        WHERE NOT EXISTS (SELECT 1 FROM duplicate_candidate d
                          WHERE d.personal_id_a = pairs.a AND d.personal_id_b = pairs.b)
        GROUP BY a, b
    """
    return session.execute(text(sql), {"now": now}).rowcount


def flag_for(session: Session, personal_id: str, now: dt.datetime | None = None) -> int:
    """Flag candidates for one person (after a birth registration or a correction)."""
    now = now or dt.datetime.now(dt.UTC)
    sql = f"""
        INSERT INTO duplicate_candidate (personal_id_a, personal_id_b, reason, status, found_at)
        SELECT CASE WHEN s.personal_id < c.personal_id THEN s.personal_id ELSE c.personal_id END,
               CASE WHEN s.personal_id < c.personal_id THEN c.personal_id ELSE s.personal_id END,
               'same name and birth date; same ' || {_WHAT}, 'open', :now
        FROM citizen s JOIN citizen c ON {_MATCH}
        WHERE s.personal_id = :pid
          AND NOT EXISTS (SELECT 1 FROM duplicate_candidate d
              WHERE d.personal_id_a = CASE WHEN s.personal_id < c.personal_id
                                           THEN s.personal_id ELSE c.personal_id END
                AND d.personal_id_b = CASE WHEN s.personal_id < c.personal_id
                                           THEN c.personal_id ELSE s.personal_id END)
    """
    return session.execute(text(sql), {"now": now, "pid": personal_id}).rowcount


def list_open(session: Session, *, limit: int = 50, offset: int = 0) -> list[DuplicateCandidate]:
    """Open candidates, oldest first."""
    return list(
        session.scalars(
            select(DuplicateCandidate)
            .where(DuplicateCandidate.status == "open")
            .order_by(DuplicateCandidate.id)
            .limit(limit)
            .offset(offset)
        )
    )


def for_person(session: Session, personal_id: str) -> list[DuplicateCandidate]:
    """Every candidate pair that involves ``personal_id``."""
    return list(
        session.scalars(
            select(DuplicateCandidate).where(
                or_(
                    DuplicateCandidate.personal_id_a == personal_id,
                    DuplicateCandidate.personal_id_b == personal_id,
                )
            )
        )
    )
