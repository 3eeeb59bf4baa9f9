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
import operator
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from dancu.errors import Problem, ValidationFailed
from dancu.geo import service as geo
from dancu.vn import dates as vn_dates
from dancu.vn import names as vn_names
from dancu.vn import personal_id as vn_ids
from dancu.vn import sex as vn_sex

__all__ = [
    "CLAIM_COLUMNS",
    "CLAIM_FIELDS",
    "Agreement",
    "Claim",
    "RegisterRow",
    "agreement",
    "compare",
    "parse_claim",
    "parse_claims",
    "read_claims",
]

CLAIM_FIELDS: tuple[str, ...] = ("full_name", "birth_date", "sex", "address")
"""The fields a claim may carry besides the number, in the order answers list them."""

CLAIM_COLUMNS: tuple[str, ...] = ("personal_id", *CLAIM_FIELDS)
""":func:`read_claims`' columns, in its parameters' order (the API's names)."""

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


# A named tuple made from its values without its generated ``__new__`` (a Python function, and
# the largest single cost of building ten thousand): ``tuple.__new__(Claim, values)``.
_new = tuple.__new__
# What reading one field gave: its value, and what is wrong with it (reasons, none if fine).
_Read = tuple[Any, tuple[str, ...]]
_Name = tuple[str | None, str | None, bool]  # canonical form, folded key, written with marks
_NO_NAME: _Name = (None, None, False)
_FINE: tuple[str, ...] = ()
_NOT_TEXT = ("must be text",)
_EMPTY = ("must not be empty; leave the field out instead",)
_TOO_LONG = (f"is longer than {_MAX_TEXT} characters",)
_NO_NUMBER = "is required"
_BAD_NUMBER = "must be a 12-digit personal ID or a 9-digit CMND number"


def _text(value: Any, *, may_be_empty: bool = False) -> tuple[str, tuple[str, ...]]:
    """A field's text, stripped; "" for a field not given, or with the reason it is refused."""
    if value is None:
        return "", _FINE
    if not isinstance(value, str):
        return "", _NOT_TEXT
    value = value.strip()
    if not value and not may_be_empty:
        return value, _EMPTY
    if len(value) > _MAX_TEXT:
        return "", _TOO_LONG
    return value, _FINE


def _read_number(value: Any) -> _Read:
    if type(value) is str and vn_ids.is_legacy_id(value):  # digits only: nothing to normalise
        return value, _FINE
    text, why = _text(value, may_be_empty=True)
    number = vn_ids.normalise_id(text)
    if not number:
        return number, (*why, _NO_NUMBER)
    if not vn_ids.is_legacy_id(number):
        return number, (*why, _BAD_NUMBER)
    return number, why


class _Memo(NamedTuple):
    """What a field's reader has read, by the value as sent (a result depends on the value
    alone): a plain dictionary, so that ``parse_claim`` looks a value up without a call (a
    batch reads 10,000 claims), emptied when it holds ``size`` values.

    Only values read without a problem are kept (a refused value need not be fast), and only
    values of at most ``longest`` characters (the longest a real value is, with some spaces:
    the keys are what callers send, and must not let them fill a worker's memory)."""

    seen: dict[str, _Read]
    size: int
    longest: int


# A Vietnamese full name is rarely past 50 characters. Names are many (the seed's million
# people have 194,465 distinct ones): the memo holds as many as ``vn.names``' cache of
# canonical forms (1 << 18), whose strings it shares; 51 MB a worker for those 194,465 names
# (keys included), about 70 MB when full. At 1 << 16 a batch over the whole register missed
# 37% of its names, about 1 µs of server CPU an item (docs/benchmarks.md, "One server for
# all three figures").
_NAMES = _Memo({}, 1 << 18, 100)
_BIRTHS = _Memo({}, 1 << 16, 32)  # "1985-03-14 00:00:00" is the longest form
_SEXES = _Memo({}, 1024, 16)
# The memos' dictionaries, for ``parse_claim`` to look in without an attribute lookup each
# (they are emptied in place, never replaced).
_NAMES_SEEN, _BIRTHS_SEEN, _SEXES_SEEN = _NAMES.seen, _BIRTHS.seen, _SEXES.seen


def _remembered(memo: _Memo, value: str, read: Callable[[str], _Read]) -> _Read:
    """``read(value)``, kept in ``memo`` if it was read without a problem and is short
    enough; a ``str`` subclass is read and not kept."""
    result = read(value)
    if not result[1] and len(value) <= memo.longest and type(value) is str:
        if len(memo.seen) >= memo.size:
            memo.seen.clear()
        memo.seen[value] = result
    return result


def _name_text(value: str) -> _Read:
    text, why = _text(value)
    if not text:
        return _NO_NAME, why
    canon, key = vn_names.canonical_and_fold(text)
    parts = (canon, key, vn_names.has_diacritics(canon))
    return parts, _FINE if key else ("has no letters",)


def _parsed(value: str, parse: Callable[[str], Any]) -> _Read:
    """``value``'s text read by ``parse``, or the reason it is refused (its ValueError's)."""
    text, why = _text(value)
    if not text:
        return None, why
    try:
        return parse(text), _FINE
    except ValueError as exc:
        return None, (str(exc),)


def _birth_text(value: str) -> _Read:
    return _parsed(value, vn_dates.parse_lenient_date)


def _sex_text(value: str) -> _Read:
    return _parsed(value, vn_sex.parse_sex)


def _read_name(value: Any) -> _Read:
    if isinstance(value, str):
        return _NAMES.seen.get(value) or _remembered(_NAMES, value, _name_text)
    return _NO_NAME, _FINE if value is None else _NOT_TEXT


def _read_birth(value: Any) -> _Read:
    if isinstance(value, str):
        return _BIRTHS.seen.get(value) or _remembered(_BIRTHS, value, _birth_text)
    return None, _FINE if value is None else _NOT_TEXT


def _read_sex(value: Any) -> _Read:
    if isinstance(value, str):
        return _SEXES.seen.get(value) or _remembered(_SEXES, value, _sex_text)
    return None, _FINE if value is None else _NOT_TEXT


def _read_address(value: Any) -> _Read:
    text, why = _text(value)
    return text or None, why


# Each field and its reader, in the order problems are named. A reader's result depends on
# the value alone, so the readers of text that costs to read (names, dates, sex) remember
# what they read (bounded; a batch repeats dates and sexes, a register repeats names).
_READERS = (
    ("personal_id", _read_number),
    ("full_name", _read_name),
    ("birth_date", _read_birth),
    ("sex", _read_sex),
    ("address", _read_address),
)


def parse_claim(body: Mapping[str, Any], *, row: int | None = None) -> Claim:
    """Read a claim (``personal_id`` and any of ``full_name``, ``birth_date``, ``sex``,
    ``address``) or raise ``ValidationFailed`` naming every bad field (``row`` for a batch).

    Dates take the forms of CONTRACTS §3 (``DD/MM/YYYY``, ``YYYY-MM-DD``, a year...), sex
    ``M``/``F``, ``Nam``/``Nữ``, ``male``/``female``. Other keys are ignored here (the API's
    schema refuses unknown ones).
    """
    get = body.get
    number = get("personal_id")
    # plain digits and a remembered value as they are; anything else through its reader
    if type(number) is str and vn_ids.is_legacy_id(number):
        number_why = _FINE
    else:
        number, number_why = _read_number(number)
    name, born, said = get("full_name"), get("birth_date"), get("sex")
    (canon, key, marked), name_why = (type(name) is str and _NAMES_SEEN.get(name)) or _read_name(
        name
    )
    birth, birth_why = (type(born) is str and _BIRTHS_SEEN.get(born)) or _read_birth(born)
    sex, sex_why = (type(said) is str and _SEXES_SEEN.get(said)) or _read_sex(said)
    address, address_why = get("address"), _FINE
    if address is not None:  # most claims give no address: no call for them
        address, address_why = _read_address(address)
    if number_why or name_why or birth_why or sex_why or address_why:
        problems = [
            Problem(row, field, reason)
            for field, reader in _READERS
            for reason in reader(get(field))[1]
        ]
        raise ValidationFailed("; ".join(str(p) for p in problems), problems)
    return _new(Claim, (number, canon, key, marked, birth, sex, address))


_NAME_NOT_GIVEN: _Read = (_NO_NAME, _FINE)
_VALUE, _WHY = operator.itemgetter(0), operator.itemgetter(1)
_NOT_GIVEN: _Read = (None, _FINE)


def _read_column(
    values: list[Any], seen: dict[str, _Read], read: Callable[[Any], _Read], absent: _Read
) -> list[_Read]:
    """What ``read`` gives for each value: remembered ones looked up in one pass, the others
    (not remembered, not text, or not given) read one by one."""
    try:
        found: list[Any] = list(map(seen.get, values))  # a non-text value is never a key
    except TypeError:  # an unhashable value (a list, an object): read on its own below
        found = [seen.get(value) if type(value) is str else None for value in values]
    if None in found:
        found = [
            got if got is not None else (absent if value is None else read(value))
            for got, value in zip(found, values, strict=True)
        ]
    return found


def _plain_numbers(numbers: list[Any]) -> bool:
    """Every number is text of 9 or 12 ASCII digits (``vn_ids.is_legacy_id``), checked a
    column at a time: a batch's numbers nearly always are."""
    if not numbers:
        return True
    if set(map(type, numbers)) != {str} or not set(map(len, numbers)) <= {9, 12}:
        return False
    joined = "".join(numbers)
    return vn_ids.all_digits(joined)


def parse_claims(bodies: Sequence[Mapping[str, Any]]) -> list[Claim] | None:
    """:func:`parse_claim` of every body, in order, read a field at a time: :func:`read_claims`
    of the bodies' columns."""
    return read_claims(*([body.get(field) for body in bodies] for field in CLAIM_COLUMNS))


def read_claims(
    numbers: list[Any], names: list[Any], births: list[Any], sexes: list[Any], addresses: list[Any]
) -> list[Claim] | None:
    """The claims of a batch given as columns (each item's ``personal_id``, ``full_name``,
    ``birth_date``, ``sex`` and ``address``; None where not given), as :func:`parse_claim`
    reads each, in order: each check one pass in C where it can be (a batch's 10,000
    claims). None if any item has a problem: the caller then reads them one by one, for the
    report naming each."""
    if not _plain_numbers(numbers):
        reads = [_read_number(number) for number in numbers]
        if any(map(_WHY, reads)):
            return None
        numbers = list(map(_VALUE, reads))
    name_reads = _read_column(names, _NAMES_SEEN, _read_name, _NAME_NOT_GIVEN)
    birth_reads = _read_column(births, _BIRTHS_SEEN, _read_birth, _NOT_GIVEN)
    sex_reads = _read_column(sexes, _SEXES_SEEN, _read_sex, _NOT_GIVEN)
    if any(map(_WHY, name_reads)) or any(map(_WHY, birth_reads)) or any(map(_WHY, sex_reads)):
        return None
    if addresses.count(None) != len(addresses):  # most claims give no address
        address_reads = [_NOT_GIVEN if a is None else _read_address(a) for a in addresses]
        if any(map(_WHY, address_reads)):
            return None
        addresses = list(map(_VALUE, address_reads))
    new, claim = _new, Claim
    return [
        new(claim, (number, canon, key, marked, birth, sex, address))
        for number, ((canon, key, marked), _), (birth, _), (sex, _), address in zip(
            numbers, name_reads, birth_reads, sex_reads, addresses, strict=True
        )
    ]


@lru_cache(maxsize=1 << 16)
def _address_agrees(given: str, commune_code: str | None) -> bool:
    """``communes_agree`` once per distinct (address, commune): parsing costs about 0.2 ms."""
    return geo.communes_agree(given, commune_code)


Agreement = tuple[bool | None, bool | None, bool | None, bool | None]
"""Whether each of :data:`CLAIM_FIELDS` agrees with the register, None where not given."""


def agreement(claim: Claim, row: RegisterRow) -> Agreement:
    """Whether each field of ``claim`` agrees with the register's ``row`` (CONTRACTS §3), in
    :data:`CLAIM_FIELDS` order, None for a field not given: a few hundred distinct values,
    which a caller can look its answer up by.

    A batch compares ten thousand: the claim is unpacked once (a tuple, where each field
    read is a descriptor call), and the date is compared to the register's precision
    without building a ``PartialDate`` of the register's value."""
    _, full_name, name_key, marked, claimed, said, given_address = claim
    name = born = sex = address = None
    if full_name is not None:
        if marked:  # equal canonical forms (most answers) need no lower()
            held = row.full_name
            name = full_name == held or full_name.lower() == held.lower()
        else:
            name = name_key == row.name_key
    if claimed is not None:  # ``claimed.agrees`` the register's date, to its precision
        date = row.birth_date
        if isinstance(date, str):  # a raw SQLite value read without type conversion
            date = dt.date.fromisoformat(date)
        if claimed.year != date.year:
            born = False
        else:
            precision = row.birth_date_precision
            born = (
                claimed.month is None or precision == "year"
                or (claimed.month == date.month
                    and (claimed.day is None or precision == "month" or claimed.day == date.day))
            )  # fmt: skip
    if said is not None:
        sex = said == row.sex
    if given_address is not None:
        address = _address_agrees(given_address, row.permanent_commune_code)
    return name, born, sex, address


def compare(claim: Claim, row: RegisterRow) -> dict[str, bool]:
    """Whether each given field agrees with the register's ``row`` (CONTRACTS §3), one entry
    per given field in :data:`CLAIM_FIELDS` order."""
    return {
        field: agrees
        for field, agrees in zip(CLAIM_FIELDS, agreement(claim, row), strict=True)
        if agrees is not None
    }
