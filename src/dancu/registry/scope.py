"""The administrative scope of an official: the whole country, one province or one commune.

Commune police keep the register of their commune and provinces watch their communes (issue
3): an official reads and changes only people whose permanent residence lies in their scope.
Units are the 2025 ones (Decision 19/2025/QĐ-TTg: 2-digit province, 5-digit commune codes).

A person's place is ``citizen.permanent_commune_code``, the denormalised commune of the open
permanent residence, written in the same transaction as the residence by the importer, the
civil events and the workflows, and indexed. It is used instead of a join to ``residence``
for two reasons: a deceased person's residences are closed at death, but they stay in the
register of the commune that recorded the death (and must stay findable there); and a national
import drops and rebuilds every residence index, so one more index there would slow it down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from sqlalchemy import ColumnElement, exists, select, true
from sqlalchemy.orm import Session

from dancu.errors import DancuError, ForbiddenError, Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.registry import service as registry
from dancu.registry.models import Citizen
from dancu.vn import personal_id as vn_ids

Level = Literal["national", "province", "commune"]
NATIONAL_CODE = "VN"
_PROVINCE_RE = re.compile(r"\d{2}")
_COMMUNE_RE = re.compile(r"\d{5}")


class OutOfScope(ValidationFailed):
    """A value (a commune a person would move into) lies outside the official's scope.

    A ``ValidationFailed`` so that forms show it beside the field, with the 403 status of a
    refusal of authority rather than the 400 of a typing mistake.
    """

    code = "out_of_scope"
    status = 403


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an official may act: ``national`` (code None), a ``province`` or a ``commune``."""

    level: Level
    code: str | None = None

    @classmethod
    def parse(cls, unit_code: str | None) -> Scope:
        """``None``, ``""`` or ``"VN"``: national; 2 digits: a 2025 province; 5 digits: a 2025
        commune. Unknown codes (a legacy commune, a retired province) are refused."""
        code = (unit_code or "").strip()
        if code.upper() in ("", NATIONAL_CODE):
            return cls("national")
        index = geo.get_index()
        if _PROVINCE_RE.fullmatch(code):
            if index.province(code) is None:
                raise _bad_unit(f"{code} is not a province code of the 2025 units")
            return cls("province", code)
        if _COMMUNE_RE.fullmatch(code):
            if index.commune(code) is None:
                raise _bad_unit(f"{code} is not a commune code of the 2025 units")
            return cls("commune", code)
        raise _bad_unit("expected VN, a 2-digit province code or a 5-digit commune code")

    @property
    def unit_code(self) -> str:
        """The code ``parse`` reads back: ``VN``, the province or the commune code."""
        return self.code or NATIONAL_CODE

    @property
    def province_code(self) -> str | None:
        """The province this scope lies in (None for national)."""
        if self.level == "province":
            return self.code
        if self.level == "commune" and self.code:
            info = geo.get_index().commune(self.code)
            return info.province_code if info else None
        return None

    def covers(self, other: Scope) -> bool:
        """Whether everything in ``other`` is in this scope (an administrator may manage only
        officials whose scope theirs covers)."""
        if self.level == "national":
            return True
        if self.level == "province":
            return other.level != "national" and other.province_code == self.code
        return other == self

    def __str__(self) -> str:
        return self.unit_code


NATIONAL = Scope("national")


def _bad_unit(reason: str) -> ValidationFailed:
    return ValidationFailed(f"unit: {reason}", [Problem(None, "unit", reason)])


@cache
def province_communes(province_code: str) -> tuple[str, ...]:
    """The 2025 communes of a province, from the in-memory unit index."""
    return tuple(
        sorted(c.code for c in geo.get_index().communes() if c.province_code == province_code)
    )


def _province_communes(province_code: str) -> ColumnElement[bool]:
    # The codes as values, not a subquery: the planner then estimates from the statistics of
    # citizen.permanent_commune_code and walks the name index in order for a common name
    # instead of intersecting it with every commune's rows (480 ms -> a few ms at 1M).
    return Citizen.permanent_commune_code.in_(province_communes(province_code))


def where_in_scope(scope: Scope) -> ColumnElement[bool]:
    """A condition on ``Citizen``: people whose permanent commune lies in ``scope`` (served by
    the index on ``citizen.permanent_commune_code``)."""
    if scope.level == "national":
        return true()
    if scope.level == "province":
        return _province_communes(str(scope.code))
    return Citizen.permanent_commune_code == scope.code


def person_in_scope(session: Session, scope: Scope, personal_id: str) -> bool:
    """Whether this person exists and lives in ``scope``."""
    return bool(
        session.scalar(
            select(exists().where(Citizen.personal_id == personal_id, where_in_scope(scope)))
        )
    )


def commune_in_scope(scope: Scope, commune_code: str | None) -> bool:
    """Whether a 2025 commune lies in ``scope`` (False for an unknown code)."""
    if not commune_code:
        return False
    info = geo.get_index().commune(commune_code)
    if info is None:
        return False
    if scope.level == "national":
        return True
    if scope.level == "province":
        return info.province_code == scope.code
    return commune_code == scope.code


def require_person(session: Session, scope: Scope | None, personal_id: str) -> None:
    """Refuse (403) a person outside ``scope``; no check when ``scope`` is None (the CLI and
    batch jobs act for the whole register)."""
    if scope is not None and not person_in_scope(session, scope, personal_id):
        raise ForbiddenError(
            f"this person's permanent residence is outside your unit ({scope.unit_code})"
        )


def require_commune(scope: Scope | None, commune_code: str, field: str = "commune_code") -> None:
    """Refuse (403, naming ``field``) a commune outside ``scope``."""
    if scope is not None and not commune_in_scope(scope, commune_code):
        reason = f"is outside your unit ({scope.unit_code})"
        raise OutOfScope(f"{field} {reason}", [Problem(None, field, reason)])


def search(
    session: Session,
    scope: Scope,
    *,
    query: str | None = None,
    name: str | None = None,
    birth_year: int | None = None,
    commune_code: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> registry.Page:
    """Search the people in ``scope``, merged records left out.

    ``query`` is what an official types in one box: an ID number (12 digits, or a 9- or
    12-digit legacy number; spaces and dots allowed) finds that person, a merged number the
    kept one; anything else is a name (with or without diacritics, a prefix of the full name).
    ``name``, ``birth_year`` and ``commune_code`` narrow further. In a province or commune
    scope, no criterion lists everyone there by name; nationally a criterion is required.
    """
    if commune_code:
        require_commune(scope, commune_code)
    if query and query.strip():
        number = vn_ids.normalise_id(query)
        if number.isdigit() and (vn_ids.is_personal_id(number) or vn_ids.is_legacy_id(number)):
            return _by_number(session, scope, number, limit, offset)
        name = query
    conditions = [registry.not_merged()]
    if scope.level != "national":
        conditions.append(where_in_scope(scope))
    elif not (name or birth_year is not None or commune_code):
        raise DancuError(
            "give a name, an ID number, a birth year or a commune", code="empty_search"
        )
    return registry.search(
        session,
        name=name,
        birth_year=birth_year,
        commune_code=commune_code,
        limit=limit,
        offset=offset,
        where=conditions,
    )


def _by_number(
    session: Session, scope: Scope, number: str, limit: int, offset: int
) -> registry.Page:
    found = registry.lookup(session, number)
    items = []
    if found is not None and offset == 0 and person_in_scope(session, scope, found.personal_id):
        items = [found]
    return registry.Page(items=items, limit=limit, offset=offset, has_more=False)
