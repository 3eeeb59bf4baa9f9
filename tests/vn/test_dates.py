"""Partial dates and their parsers (CONTRACTS §2 birth_date, §3 date forms)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.vn.dates import (
    MIN_YEAR,
    PartialDate,
    Precision,
    is_future,
    parse_iso_partial,
    parse_lenient_date,
)

TODAY = dt.date.today()
dates = st.dates(min_value=dt.date(MIN_YEAR, 1, 1), max_value=TODAY)
precisions: st.SearchStrategy[Precision] = st.sampled_from(["day", "month", "year"])


def test_precision_and_formats() -> None:
    assert PartialDate(1990, 5, 7).precision == "day"
    assert PartialDate(1990, 5).precision == "month"
    assert PartialDate(1990).precision == "year"
    assert PartialDate(1990, 5, 7).isoformat() == "1990-05-07"
    assert PartialDate(1990, 5).isoformat() == "1990-05"
    assert PartialDate(1990).isoformat() == "1990"
    assert str(PartialDate(1990, 12)) == "1990-12"
    assert PartialDate(1990).first_day() == dt.date(1990, 1, 1)
    assert PartialDate(1990, 5).first_day() == dt.date(1990, 5, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2023, 2, 29), "2023-02-29 is not a real date"),
        ((2023, 4, 31), "2023-04-31 is not a real date"),
        ((2023, 13), "2023-13 is not a real month"),
        ((2023, 0, 1), "2023-00-01 is not a real date"),
        ((2023, None, 1), "a day needs a month"),
    ],
)
def test_invalid_partial_dates(args: tuple[int, int | None, int | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PartialDate(*args)


def test_leap_days() -> None:
    assert PartialDate(2024, 2, 29).day == 29
    assert PartialDate(2000, 2, 29).day == 29
    with pytest.raises(ValueError):
        PartialDate(1900, 2, 29)


def test_agrees() -> None:
    day = PartialDate(1990, 5, 7)
    assert day.agrees(PartialDate(1990, 5, 7))
    assert day.agrees(PartialDate(1990, 5))
    assert day.agrees(PartialDate(1990))
    assert PartialDate(1990).agrees(day)
    assert not day.agrees(PartialDate(1990, 5, 8))
    assert not day.agrees(PartialDate(1990, 6))
    assert not day.agrees(PartialDate(1991))
    assert not PartialDate(1990, 5).agrees(PartialDate(1990, 4, 30))


@given(dates, dates, precisions, precisions)
def test_agrees_is_symmetric_and_truncation_based(
    a: dt.date, b: dt.date, pa: Precision, pb: Precision
) -> None:
    x = PartialDate.from_date(a, pa)
    y = PartialDate.from_date(b, pb)
    assert x.agrees(y) == y.agrees(x)
    common = min(("year", "month", "day").index(pa), ("year", "month", "day").index(pb))
    expected = (a.year, a.month, a.day)[: common + 1] == (b.year, b.month, b.day)[: common + 1]
    assert x.agrees(y) == expected


@given(dates, precisions)
def test_iso_round_trip(day: dt.date, precision: Precision) -> None:
    pd = PartialDate.from_date(day, precision)
    assert parse_iso_partial(pd.isoformat()) == pd
    assert parse_lenient_date(pd.isoformat()) == pd


@given(dates)
def test_lenient_forms_round_trip(day: dt.date) -> None:
    d, m, y = day.day, day.month, day.year
    expected = PartialDate(y, m, d)
    for text in (
        f"{d:02d}/{m:02d}/{y}",
        f"{d}/{m}/{y}",
        f"{d:02d}-{m:02d}-{y}",
        f"{d:02d}.{m:02d}.{y}",
        f"{d:02d}{m:02d}{y}",
        f"{y}-{m:02d}-{d:02d}",
        f" {d:02d}/{m:02d}/{y} ",
        f"{y}-{m:02d}-{d:02d} 00:00:00",
    ):
        assert parse_lenient_date(text) == expected, text
    assert parse_lenient_date(f"{m:02d}/{y}") == PartialDate(y, m)
    assert parse_lenient_date(f"{m}/{y}") == PartialDate(y, m)
    assert parse_lenient_date(str(y)) == PartialDate(y)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2023-02-30", "2023-02-30 is not a real date"),
        ("2023-13", "2023-13 is not a real month"),
        ("2023-1-5", "expected YYYY-MM-DD, YYYY-MM or YYYY"),
        ("05/01/2023", "expected YYYY-MM-DD, YYYY-MM or YYYY"),
        ("20230105", "expected YYYY-MM-DD, YYYY-MM or YYYY"),
        ("", "expected YYYY-MM-DD, YYYY-MM or YYYY"),
        ("２０２３", "expected YYYY-MM-DD, YYYY-MM or YYYY"),
        ("1849", "outside 1850"),
        ("1849-12-31", "outside 1850"),
    ],
)
def test_iso_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_iso_partial(text)


def test_iso_rejects_future_year_by_default() -> None:
    with pytest.raises(ValueError, match="outside"):
        parse_iso_partial(str(TODAY.year + 1))
    assert parse_iso_partial(str(TODAY.year + 1), max_year=TODAY.year + 5).year == TODAY.year + 1


@pytest.mark.parametrize(
    "text",
    [
        "30/02/2020",
        "31/04/2021",
        "29/02/2023",
        "31.06.2000",
        "00/01/2000",
        "13/2000",
        "32012000",
        "1/2/20",
        "01/02-2000",
        "2000/01/02",
        "12 tháng 5 năm 2000",
        "abc",
        "",
        "   ",
        "1700",
        "20001231",
    ],
)
def test_lenient_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_lenient_date(text)


def test_lenient_error_names_the_forms() -> None:
    with pytest.raises(ValueError, match="expected DD/MM/YYYY"):
        parse_lenient_date("soon")
    with pytest.raises(ValueError, match="2023-02-29 is not a real date"):
        parse_lenient_date("29/02/2023")


def test_leap_day_accepted() -> None:
    assert parse_lenient_date("29/02/2024") == PartialDate(2024, 2, 29)
    assert parse_lenient_date("29022000") == PartialDate(2000, 2, 29)


def test_is_future() -> None:
    today = dt.date(2025, 6, 15)
    assert is_future(PartialDate(2025, 6, 16), today)
    assert not is_future(PartialDate(2025, 6, 15), today)
    assert not is_future(PartialDate(2025, 6), today)
    assert not is_future(PartialDate(2025), today)
    assert is_future(PartialDate(2025, 7), today)
    assert is_future(PartialDate(2026), today)


def test_hashable_and_frozen() -> None:
    pd = PartialDate(2000, 1, 2)
    assert {pd: 1}[PartialDate(2000, 1, 2)] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(pd, "year", 2001)  # noqa: B010
