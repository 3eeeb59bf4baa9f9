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
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from dancu.errors import Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.vn import dates as vn_dates
from dancu.vn import names as vn_names
from dancu.vn import personal_id as vn_ids
from dancu.vn import sex as vn_sex

__all__ = ["CLAIM_FIELDS", "Claim", "ClaimReader", "RegisterRow", "compare", "parse_claim"]

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


class Claim(NamedTuple):
    """What a caller says about one person, read with the register's own rules.

    ``number`` is the 12-digit personal ID or a legacy CMND number (9 or 12 digits), with
    spaces, dots and hyphens removed. A field the caller did not give is None. (A named
    tuple rather than a frozen dataclass: a batch builds ten thousand, and a frozen
    dataclass costs several times more to build.)
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


_Name = tuple[str | None, str | None, bool]
_NO_NAME: _Name = (None, None, False)


class ClaimReader:
    """``parse_claim`` for the items of one batch, remembering every distinct name, date,
    sex and address it has read.

    The items of a batch repeat values (a date, a common name, the sex), and reading one
    costs far more than looking it up: a value seen before in the batch is taken from a
    dictionary, and an item with any value not seen yet goes through ``parse_claim``
    whole, so that every error and every result is exactly ``parse_claim``'s. Each field is
    read on its own (a field's result depends on its value only), which is what makes a
    remembered value safe to reuse.
    """

    __slots__ = ("_addresses", "_dates", "_names", "_sexes")

    def __init__(self) -> None:
        self._names: dict[str, _Name] = {}
        self._dates: dict[str, vn_dates.PartialDate] = {}
        self._sexes: dict[str, str] = {}
        self._addresses: dict[str, str] = {}

    def read(self, body: Mapping[str, Any], *, row: int | None = None) -> Claim:
        """The claim of ``body``, or ``ValidationFailed`` as ``parse_claim`` raises it."""
        number = body.get("personal_id")
        name = body.get("full_name")
        born = body.get("birth_date")
        sex = body.get("sex")
        address = body.get("address")
        # (a value that is not text is never remembered: ``parse_claim`` names it)
        parts = _NO_NAME if name is None else self._names.get(name) if type(name) is str else None
        birth = self._dates.get(born) if type(born) is str else None
        found_sex = self._sexes.get(sex) if type(sex) is str else None
        found_address = self._addresses.get(address) if type(address) is str else None
        if (
            type(number) is str
            and vn_ids.is_legacy_id(number)  # digits only: ``normalise_id`` would not change it
            and parts is not None
            and (born is None or birth is not None)
            and (sex is None or found_sex is not None)
            and (address is None or found_address is not None)
        ):
            return Claim(number, parts[0], parts[1], parts[2], birth, found_sex, found_address)
        claim = parse_claim(body, row=row)
        # every value of ``body`` was read without a problem: remember them (keys are the
        # values as given, which is what the next item will be looked up by)
        if name is not None:
            self._names[name] = (claim.full_name, claim.name_key, claim.name_marked)
        if born is not None and claim.birth_date is not None:
            self._dates[born] = claim.birth_date
        if sex is not None and claim.sex is not None:
            self._sexes[sex] = claim.sex
        if address is not None and claim.address is not None:
            self._addresses[address] = claim.address
        return claim


@lru_cache(maxsize=1 << 16)
def _address_agrees(given: str, commune_code: str | None) -> bool:
    """``communes_agree`` once per distinct (address, commune): parsing costs about 0.2 ms."""
    return geo.communes_agree(given, commune_code)


def _date_agrees(claimed: vn_dates.PartialDate, row: RegisterRow) -> bool:
    """``claimed.agrees`` the register's date kept to its precision, without building that
    ``PartialDate`` (a batch compares thousands)."""
    born = row.birth_date
    if isinstance(born, str):  # a raw SQLite value read without type conversion
        born = dt.date.fromisoformat(born)
    if claimed.year != born.year:
        return False
    precision = row.birth_date_precision
    if claimed.month is None or precision == "year":
        return True
    if claimed.month != born.month:
        return False
    return claimed.day is None or precision == "month" or claimed.day == born.day


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
        out["birth_date"] = _date_agrees(claim.birth_date, row)
    if claim.sex is not None:
        out["sex"] = claim.sex == row.sex
    if claim.address is not None:
        out["address"] = _address_agrees(claim.address, row.permanent_commune_code)
    return out
