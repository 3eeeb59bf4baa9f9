"""Sex forms (CONTRACTS §3: Nam/Nữ, M/F, male/female)."""

from __future__ import annotations

import unicodedata

import pytest

from dancu.vn.sex import parse_sex


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("M", "M"),
        ("m", "M"),
        ("F", "F"),
        ("f", "F"),
        ("Nam", "M"),
        ("NAM", "M"),
        (" nam ", "M"),
        ("Nữ", "F"),
        ("NỮ", "F"),
        ("nữ", "F"),
        (unicodedata.normalize("NFD", "Nữ"), "F"),
        ("Nu", "F"),
        ("NU", "F"),
        ("Male", "M"),
        ("FEMALE", "F"),
        ("N÷", "F"),  # TCVN3
        ("Nöõ", "F"),  # VNI
    ],
)
def test_accepted_forms(text: str, expected: str) -> None:
    assert parse_sex(text) == expected


@pytest.mark.parametrize("text", ["0", "1", " 1 "])
def test_zero_one_refused_as_ambiguous(text: str) -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        parse_sex(text)


@pytest.mark.parametrize("text", ["", "x", "Nư", "Nũ", "nam giới", "MF", "trai", "?"])
def test_other_values_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected M/F, Nam/Nữ or male/female"):
        parse_sex(text)
