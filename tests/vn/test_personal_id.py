"""Personal ID numbers: PPP G YY RRRRRR (DOMAIN.md). All numbers here are synthetic."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.vn.personal_id import (
    PROVINCE_PREFIXES,
    all_digits,
    check_consistency,
    explain,
    is_legacy_id,
    is_personal_id,
    normalise_id,
    prefix_for,
)


def test_normalise_id() -> None:
    assert normalise_id("001 090.000-123") == "001090000123"
    assert normalise_id("\u00a0001090000123\t") == "001090000123"
    assert normalise_id("00109000012x") == "00109000012x"  # no validation


@pytest.mark.parametrize(
    ("value", "personal", "legacy"),
    [
        ("001090000123", True, True),
        ("123456789", False, True),
        ("12345678", False, False),
        ("0010900001234", False, False),
        ("00109000012a", False, False),
        ("００１０９００００１２３", False, False),  # full-width digits are not ASCII
        ("", False, False),
    ],
)
def test_shapes(value: str, personal: bool, legacy: bool) -> None:
    assert is_personal_id(value) is personal
    assert is_legacy_id(value) is legacy


@given(text=st.text(max_size=40) | st.text("0123456789", max_size=40))
def test_all_digits_is_ascii_digits_only(text: str) -> None:
    """The bytes check agrees with the definition, character by character: full-width,
    Arabic-Indic and superscript digits are not ASCII digits, and nothing is not digits."""
    assert all_digits(text) is (text != "" and all(c in "0123456789" for c in text))


def test_explain_examples() -> None:
    hanoi_man_1990 = explain("001090000123")
    assert hanoi_man_1990.place_code == "001"
    assert hanoi_man_1990.place_name == "Hà Nội"
    assert not hanoi_man_1990.born_abroad
    assert hanoi_man_1990.century == 19
    assert hanoi_man_1990.sex == "M"
    assert hanoi_man_1990.birth_year == 1990
    assert hanoi_man_1990.serial == "000123"

    hcmc_woman_2005 = explain("079305999999")
    assert hcmc_woman_2005.place_name == "TP Hồ Chí Minh"
    assert (hcmc_woman_2005.century, hcmc_woman_2005.sex) == (20, "F")
    assert hcmc_woman_2005.birth_year == 2005

    abroad = explain("250499000001")
    assert abroad.born_abroad
    assert abroad.place_name == "abroad (country code 250)"
    assert (abroad.birth_year, abroad.sex) == (2199, "M")

    unknown = explain("097190000001")
    assert unknown.place_name is None and not unknown.born_abroad
    assert unknown.sex == "F" and unknown.birth_year == 1990


@pytest.mark.parametrize("value", ["", "00109000012", "0010900001234", "00109000012a", "001 090"])
def test_explain_rejects_non_12_digits(value: str) -> None:
    with pytest.raises(ValueError, match="12-digit"):
        explain(value)


def test_check_consistency() -> None:
    assert check_consistency("001090000123", 1990, "M") == []
    assert check_consistency("001090000123", 1990, "Nam") == []
    century = check_consistency("001090000123", 2090, "M")
    assert len(century) == 1 and "century digit 0" in century[0]
    year = check_consistency("001090000123", 1991, "M")
    assert len(year) == 1 and "year digits 90" in year[0]
    sex = check_consistency("001090000123", 1990, "F")
    assert len(sex) == 1 and "sex M" in sex[0]
    place = check_consistency("099190000123", 1990, "F")
    assert len(place) == 1 and "place code 099" in place[0]
    assert len(check_consistency("099190000123", 1991, "M")) == 3
    assert check_consistency("12345", 1990, "M") == ["'12345' is not a 12-digit personal ID number"]


def test_prefix_for() -> None:
    assert prefix_for("001", 1990, "M") == "001090"
    assert prefix_for("079", 2005, "F") == "079305"
    assert prefix_for("048", 2100, "M") == "048400"
    assert prefix_for("250", 2399, "F") == "250999"


@pytest.mark.parametrize(
    ("place", "year", "sex"),
    [
        ("001", 1899, "M"),
        ("001", 2400, "M"),
        ("003", 1990, "M"),  # no province 003
        ("100", 1990, "M"),
        ("296", 1990, "M"),
        ("1", 1990, "M"),
        ("0a1", 1990, "M"),
        ("001", 1990, "X"),
    ],
)
def test_prefix_for_rejects(place: str, year: int, sex: str) -> None:
    with pytest.raises(ValueError):
        prefix_for(place, year, sex)


places = st.one_of(
    st.sampled_from(sorted(PROVINCE_PREFIXES)),
    st.integers(101, 295).map(lambda n: f"{n:03d}"),
)


@given(places, st.integers(1900, 2399), st.sampled_from(["M", "F"]), st.integers(0, 999_999))
def test_prefix_explain_round_trip(place: str, year: int, sex: str, serial: int) -> None:
    pid = prefix_for(place, year, sex) + f"{serial:06d}"
    assert is_personal_id(pid)
    info = explain(pid)
    assert (info.place_code, info.birth_year, info.sex) == (place, year, sex)
    assert info.century == year // 100
    assert info.serial == f"{serial:06d}"
    assert info.born_abroad == (place not in PROVINCE_PREFIXES)
    assert check_consistency(pid, year, sex) == []
    assert check_consistency(pid, year + 1, sex) != []


def _fold(text: str) -> str:
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return bare.replace("đ", "d").replace("Đ", "D").lower()


def test_province_table_matches_vietnamadminunits() -> None:
    import vietnamadminunits

    db = Path(vietnamadminunits.__file__).parent / "data" / "dataset.db"
    if not db.exists():
        pytest.skip("vietnamadminunits ships no dataset.db")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT DISTINCT provinceCode, province FROM admin_units_legacy"
        ).fetchall()
    shipped = {f"{int(code):03d}": name for code, name in rows}
    assert len(PROVINCE_PREFIXES) == 63
    assert set(shipped) == set(PROVINCE_PREFIXES)
    for code, name in PROVINCE_PREFIXES.items():
        short = name.removeprefix("TP ").removeprefix("Thừa Thiên ")
        assert _fold(short) in _fold(shipped[code]), (code, name, shipped[code])
