"""Field agreement between what a caller claims about a person and the register (CONTRACTS §3).

One implementation for every door that compares: the partner verification API
(``dancu.exchange``) calls it per request, and it gives the same answers as the reconciliation's
exact track (``dancu.reconcile.exact``), which applies the same rules in SQL to whole files; a
test runs a table of cases through both.

* ``full_name``: canonical forms equal (NFC, traditional tone placement, case and spaces
  folded); when the given name carries no diacritics at all, folded keys equal (``đ`` as ``d``).
  Word order matters.
* ``birth_date``: the same date, or the same year/month where either side knows only that much
  (:meth:`dancu.vn.dates.PartialDate.agrees`).
* ``sex``: the same (``M``/``F``, ``Nam``/``Nữ``, ``male``/``female``).
* ``address``: the register's permanent commune is the given commune after converting old
  (pre-2025) units; any new commune of a split ward agrees (:func:`dancu.geo.service.
  communes_agree`). The street is not compared.

``parse_claim`` refuses a value it cannot read with ``ValidationFailed`` naming the field: an
API caller gets a 400 it can act on, where a sectoral file's unreadable cell counts as a
disagreement instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from dancu.errors import Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.vn import dates as vn_dates
from dancu.vn import names as vn_names
from dancu.vn import personal_id as vn_ids
from dancu.vn import sex as vn_sex

__all__ = ["CLAIM_FIELDS", "Claim", "RegisterRow", "compare", "parse_claim"]

CLAIM_FIELDS: tuple[str, ...] = ("full_name", "birth_date", "sex", "address")
"""The fields a claim may carry besides the number, in the order answers list them."""

_MAX_TEXT = 300


class RegisterRow(Protocol):
    """The register columns ``compare`` reads (a ``Citizen`` or a Core row of these columns)."""

    @property
    def full_name(self) -> str: ...
    @property
    def name_key(self) -> str: ...
    @property
    def birth_date(self) -> dt.date: ...
    @property
    def birth_date_precision(self) -> str: ...
    @property
    def sex(self) -> str: ...
    @property
    def permanent_commune_code(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """What a caller says about one person, read with the register's own rules.

    ``number`` is the 12-digit personal ID or a legacy CMND number (9 or 12 digits), with
    spaces, dots and hyphens removed. A field the caller did not give is None.
    """

    number: str
    full_name: str | None = None
    name_key: str | None = None
    name_marked: bool = False
    birth_date: vn_dates.PartialDate | None = None
    sex: str | None = None
    address: str | None = None

    @property
    def given(self) -> tuple[str, ...]:
        """The names of the given fields, in :data:`CLAIM_FIELDS` order."""
        values = (self.full_name, self.birth_date, self.sex, self.address)
        return tuple(f for f, v in zip(CLAIM_FIELDS, values, strict=True) if v is not None)


def _text(body: Mapping[str, Any], field: str, problems: list[Problem], row: int | None) -> str:
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(Problem(row, field, "must be text"))
        return ""
    value = value.strip()
    if not value and field != "personal_id":
        problems.append(Problem(row, field, "must not be empty; leave the field out instead"))
    elif len(value) > _MAX_TEXT:
        problems.append(Problem(row, field, f"is longer than {_MAX_TEXT} characters"))
        return ""
    return value


def parse_claim(body: Mapping[str, Any], *, row: int | None = None) -> Claim:
    """Read a claim (``personal_id`` and any of ``full_name``, ``birth_date``, ``sex``,
    ``address``) or raise ``ValidationFailed`` naming every bad field (``row`` for a batch).

    Dates take the forms of CONTRACTS §3 (``DD/MM/YYYY``, ``YYYY-MM-DD``, a year...), sex
    ``M``/``F``, ``Nam``/``Nữ``, ``male``/``female``. Other keys are ignored here (the API's
    schema refuses unknown ones).
    """
    problems: list[Problem] = []
    number = vn_ids.normalise_id(_text(body, "personal_id", problems, row))
    if not number:
        problems.append(Problem(row, "personal_id", "is required"))
    elif not vn_ids.is_legacy_id(number):
        problems.append(
            Problem(row, "personal_id", "must be a 12-digit personal ID or a 9-digit CMND number")
        )
    name = _text(body, "full_name", problems, row)
    canon = key = None
    marked = False
    if name:
        canon, key = vn_names.canonical_and_fold(name)
        if not key:
            problems.append(Problem(row, "full_name", "has no letters"))
        marked = vn_names.has_diacritics(canon)
    birth = None
    born = _text(body, "birth_date", problems, row)
    if born:
        try:
            birth = vn_dates.parse_lenient_date(born)
        except ValueError as exc:
            problems.append(Problem(row, "birth_date", str(exc)))
    sex = None
    given_sex = _text(body, "sex", problems, row)
    if given_sex:
        try:
            sex = vn_sex.parse_sex(given_sex)
        except ValueError as exc:
            problems.append(Problem(row, "sex", str(exc)))
    address = _text(body, "address", problems, row) or None
    if problems:
        raise ValidationFailed("; ".join(str(p) for p in problems), problems)
    return Claim(
        number=number,
        full_name=canon,
        name_key=key,
        name_marked=marked,
        birth_date=birth,
        sex=sex,
        address=address,
    )


@lru_cache(maxsize=1 << 16)
def _address_agrees(given: str, commune_code: str | None) -> bool:
    """``communes_agree`` once per distinct (address, commune): parsing costs about 0.2 ms."""
    return geo.communes_agree(given, commune_code)


def _register_date(row: RegisterRow) -> vn_dates.PartialDate:
    precision = row.birth_date_precision
    born = row.birth_date
    if isinstance(born, str):  # a raw SQLite value read without type conversion
        born = dt.date.fromisoformat(born)
    if precision == "year":
        return vn_dates.PartialDate(born.year)
    if precision == "month":
        return vn_dates.PartialDate(born.year, born.month)
    return vn_dates.PartialDate(born.year, born.month, born.day)


def compare(claim: Claim, row: RegisterRow) -> dict[str, bool]:
    """Whether each given field agrees with the register's ``row`` (CONTRACTS §3), one entry
    per given field in :data:`CLAIM_FIELDS` order."""
    out: dict[str, bool] = {}
    if claim.full_name is not None:
        if claim.name_marked:
            out["full_name"] = claim.full_name.lower() == row.full_name.lower()
        else:
            out["full_name"] = claim.name_key == row.name_key
    if claim.birth_date is not None:
        out["birth_date"] = claim.birth_date.agrees(_register_date(row))
    if claim.sex is not None:
        out["sex"] = claim.sex == row.sex
    if claim.address is not None:
        out["address"] = _address_agrees(claim.address, row.permanent_commune_code)
    return out
