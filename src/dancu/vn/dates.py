"""Partial dates: a birth date may be known to the day, the month or only the year.

``parse_iso_partial`` reads the interchange format (CONTRACTS.md §2: ``YYYY-MM-DD``, ``YYYY-MM``,
``YYYY``); ``parse_lenient_date`` reads every form sectoral files use (CONTRACTS.md §3). Both
reject years before :data:`MIN_YEAR` or after ``max_year`` (default: the current year); whether a
date lies after today is the caller's question (:func:`is_future`). Parsed strings are cached.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "MIN_YEAR",
    "PartialDate",
    "Precision",
    "is_future",
    "parse_iso_partial",
    "parse_lenient_date",
]

MIN_YEAR = 1850
"""Earliest year accepted by the parsers: no living or recently deceased person is older."""

Precision = Literal["day", "month", "year"]

_ISO_FORMS = "expected YYYY-MM-DD, YYYY-MM or YYYY"
_LENIENT_FORMS = (
    "expected DD/MM/YYYY, D/M/YYYY, DD-MM-YYYY, DD.MM.YYYY, DDMMYYYY, MM/YYYY, YYYY-MM-DD or YYYY"
)
_MIDNIGHT = (" 00:00:00", "T00:00:00", " 00:00")


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _label(year: int, month: int | None, day: int | None) -> str:
    if month is None:
        return f"{year:04d}"
    if day is None:
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date known to the day, the month or only the year (CONTRACTS §2 ``birth_date``)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise ValueError(f"{self.year} is not a year")
        if self.day is not None and self.month is None:
            raise ValueError("a day needs a month")
        if self.month is not None and not 1 <= self.month <= 12:
            kind = "date" if self.day is not None else "month"
            raise ValueError(f"{_label(self.year, self.month, self.day)} is not a real {kind}")
        if self.day is not None and self.month is not None:
            if not 1 <= self.day <= _days_in_month(self.year, self.month):
                raise ValueError(f"{_label(self.year, self.month, self.day)} is not a real date")

    @property
    def precision(self) -> Precision:
        """``"day"``, ``"month"`` or ``"year"``: how much of the date is known."""
        if self.day is not None:
            return "day"
        return "month" if self.month is not None else "year"

    def first_day(self) -> dt.date:
        """The earliest calendar day the partial date may stand for."""
        return dt.date(self.year, self.month or 1, self.day or 1)

    def isoformat(self) -> str:
        """``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY`` (the interchange format, CONTRACTS §2)."""
        return _label(self.year, self.month, self.day)

    def __str__(self) -> str:
        return _label(self.year, self.month, self.day)

    def agrees(self, other: PartialDate) -> bool:
        """Equal as far as both are known (CONTRACTS §3: the same date, or the same year/month
        where only that much is known)."""
        if self.year != other.year:
            return False
        if self.month is None or other.month is None:
            return True
        if self.month != other.month:
            return False
        return self.day is None or other.day is None or self.day == other.day

    @classmethod
    def from_date(cls, value: dt.date, precision: Precision = "day") -> PartialDate:
        """``value`` kept to the given precision."""
        if precision == "year":
            return cls(value.year)
        if precision == "month":
            return cls(value.year, value.month)
        return cls(value.year, value.month, value.day)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _build(
    year: int, month: int | None, day: int | None, text: str, max_year: int | None
) -> PartialDate:
    limit = dt.date.today().year if max_year is None else max_year
    if not MIN_YEAR <= year <= limit:
        raise ValueError(f"{text!r}: year {year} is outside {MIN_YEAR}..{limit}")
    return PartialDate(year, month, day)


@lru_cache(maxsize=1 << 16)
def _parse_iso(text: str, max_year: int | None) -> PartialDate:
    s = text.strip()
    n = len(s)
    if n == 4 and _digits(s):
        return _build(int(s), None, None, text, max_year)
    if n in (7, 10) and s[4] == "-" and _digits(s[:4]) and _digits(s[5:7]):
        if n == 7:
            return _build(int(s[:4]), int(s[5:7]), None, text, max_year)
        if s[7] == "-" and _digits(s[8:]):
            return _build(int(s[:4]), int(s[5:7]), int(s[8:]), text, max_year)
    raise ValueError(f"{text!r} is not a date: {_ISO_FORMS}")


def parse_iso_partial(text: str, *, max_year: int | None = None) -> PartialDate:
    """Strict interchange form ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY`` (CONTRACTS §2).

    Surrounding spaces are ignored; ValueError names the problem ("2023-02-30 is not a real
    date", "expected YYYY-MM-DD, YYYY-MM or YYYY", a year out of range).
    """
    return _parse_iso(text, max_year)


@lru_cache(maxsize=1 << 16)
def _parse_lenient(text: str, max_year: int | None) -> PartialDate:
    s = text.strip()
    for suffix in _MIDNIGHT:  # spreadsheets export dates as midnight timestamps
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    if not s:
        raise ValueError("the date is empty")
    if _digits(s):
        if len(s) == 4:
            return _build(int(s), None, None, text, max_year)
        if len(s) == 8:  # DDMMYYYY (never YYYYMMDD: CONTRACTS §3 lists only this order)
            return _build(int(s[4:]), int(s[2:4]), int(s[:2]), text, max_year)
        raise ValueError(f"{text!r} is not a date: {_LENIENT_FORMS}")
    if len(s) in (7, 10) and s[4] == "-" and _digits(s[:4]):
        return _parse_iso(s, max_year)
    sep = next((c for c in "/-." if c in s), None)
    if sep is not None:
        parts = s.split(sep)
        if all(_digits(p) for p in parts) and len(parts[-1]) == 4:
            if len(parts) == 3 and 1 <= len(parts[0]) <= 2 and 1 <= len(parts[1]) <= 2:
                return _build(int(parts[2]), int(parts[1]), int(parts[0]), text, max_year)
            if len(parts) == 2 and 1 <= len(parts[0]) <= 2:
                return _build(int(parts[1]), int(parts[0]), None, text, max_year)
    raise ValueError(f"{text!r} is not a date: {_LENIENT_FORMS}")


def parse_lenient_date(text: str, *, max_year: int | None = None) -> PartialDate:
    """Any date form of CONTRACTS §3 plus ``MM/YYYY`` and ``DD.MM.YYYY``; ValueError otherwise.

    Forms: ``DD/MM/YYYY``, ``D/M/YYYY``, ``DD-MM-YYYY``, ``DD.MM.YYYY``, ``DDMMYYYY``,
    ``YYYY-MM-DD`` (or ``YYYY-MM``), ``MM/YYYY``, ``YYYY``; a trailing midnight time is ignored.
    """
    return _parse_lenient(text, max_year)


def is_future(value: PartialDate, today: dt.date) -> bool:
    """True when even the earliest day ``value`` may stand for is after ``today``."""
    return value.first_day() > today
