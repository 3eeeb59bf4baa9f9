"""Duplicate candidates: the same canonical name and birth date, with matching parents or place.

Candidates are flagged for an official's review and never merged automatically: two people
may share a name, a birth date and a commune (twins are the common case, and they differ by
given name), so only a person can decide.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from dancu.db import execute_count
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


def flag_from_table(session: Session, source: str, now: dt.datetime, *, bulk: bool = False) -> int:
    """Flag candidates between the people in ``source`` (a table with citizen columns; the
    staging table of an import) and the whole register. Returns how many new pairs.

    ``bulk`` suits a load that is large next to the register: instead of probing the register
    once per loaded person, one pass over the (name_key, birth_year, birth_date) index finds
    the few name-and-birth-date groups with more than one person, and only those are paired.
    """
    if bulk:
        session.execute(text("DROP TABLE IF EXISTS dup_group"))
        session.execute(
            text(
                """CREATE TEMP TABLE dup_group AS
                   SELECT name_key, birth_year, birth_date FROM citizen
                   GROUP BY name_key, birth_year, birth_date HAVING COUNT(*) > 1"""
            )
        )
        people = """(SELECT c.* FROM citizen c JOIN dup_group g ON g.name_key = c.name_key
                     AND g.birth_year = c.birth_year AND g.birth_date = c.birth_date)"""
        pairs_from = f"{people} s JOIN {people} c ON {_MATCH} AND s.personal_id < c.personal_id"
    else:
        pairs_from = f"{source} s JOIN citizen c ON {_MATCH}"
    sql = f"""
        INSERT INTO duplicate_candidate (personal_id_a, personal_id_b, reason, status, found_at)
        SELECT a, b, MIN(reason), 'open', :now FROM (
            SELECT CASE WHEN s.personal_id < c.personal_id THEN s.personal_id
                        ELSE c.personal_id END AS a,
                   CASE WHEN s.personal_id < c.personal_id THEN c.personal_id
                        ELSE s.personal_id END AS b,
                   'same name and birth date; same ' || {_WHAT} AS reason
            FROM {pairs_from}
        ) pairs
        WHERE NOT EXISTS (SELECT 1 FROM duplicate_candidate d
                          WHERE d.personal_id_a = pairs.a AND d.personal_id_b = pairs.b)
        GROUP BY a, b
    """
    count = execute_count(session, text(sql), {"now": now})
    if bulk:
        session.execute(text("DROP TABLE dup_group"))
    return count


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
    return execute_count(session, text(sql), {"now": now, "pid": personal_id})


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
