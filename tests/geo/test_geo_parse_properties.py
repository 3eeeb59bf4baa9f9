"""Property-based tests of the address parser over every unit in the data."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from dancu.geo.loader import SourceUnit, read_source
from dancu.geo.service import ParsedAddress, get_index, parse_address

SOURCE = read_source()
PROVINCES = {p.code: p for p in SOURCE.provinces}
LEGACY_PROVINCES = {p.code: p for p in SOURCE.legacy_provinces}
DISTRICTS = {d.code: d for d in SOURCE.legacy_districts}
SETTINGS = settings(max_examples=300, deadline=None, database=None)
ABBREVIATIONS = {
    "Phường ": "P. ",
    "Xã ": "X. ",
    "Thị trấn ": "TT. ",
    "Quận ": "Q. ",
    "Huyện ": "H. ",
    "Thị xã ": "TX. ",
    "Thành phố ": "TP. ",
    "Tỉnh ": "T. ",
}


def strip_diacritics(text: str) -> str:
    nfd = unicodedata.normalize("NFD", text)
    plain = "".join(c for c in nfd if not unicodedata.combining(c))
    return plain.replace("đ", "d").replace("Đ", "D")


def abbreviate(text: str) -> str:
    for full, short in ABBREVIATIONS.items():
        text = text.replace(full, short)
    return text


def finds(parsed: ParsedAddress, code: str) -> bool:
    """Parsed to ``code``, or ambiguous with ``code`` among the candidates.

    Ambiguity is allowed only where diacritics are gone: a few names differ by them alone
    (Xã Cẩm Giang and Xã Cẩm Giàng, both in Hải Phòng).
    """
    if parsed.status == "parsed":
        return bool(parsed.commune_code == code)
    return parsed.status == "ambiguous" and code in parsed.candidates


streets = st.builds(
    "Số {}/{} {}".format,
    st.integers(1, 999),
    st.integers(1, 99),
    st.sampled_from(["Lê Lợi", "đường 30/4", "Ngõ 7", "Tổ 12", "Ấp Bình An"]),
)


@SETTINGS
@given(st.sampled_from(SOURCE.communes), streets)
def test_any_commune_parses_back_from_its_name(commune: SourceUnit, street: str) -> None:
    text = f"{street}, {commune.name}, {PROVINCES[commune.province_code].name}"
    parsed = parse_address(text)
    assert parsed.status == "parsed", text
    assert parsed.commune_code == parsed.default_code == commune.code
    assert parsed.candidates == [commune.code]
    assert (parsed.era, parsed.province_code) == ("2025", commune.province_code)
    assert parsed.street == street
    plain = strip_diacritics(text)
    assert finds(parse_address(plain), commune.code), plain
    assert finds(parse_address(abbreviate(plain).lower()), commune.code), plain


@SETTINGS
@given(st.sampled_from(SOURCE.communes))
def test_short_names_parse_too(commune: SourceUnit) -> None:
    text = f"{commune.short_name}, {PROVINCES[commune.province_code].short_name}"
    assert finds(parse_address(text), commune.code), text
    assert finds(parse_address(strip_diacritics(text)), commune.code), text


@SETTINGS
@given(st.sampled_from(SOURCE.legacy_communes))
def test_any_legacy_commune_converts(commune: SourceUnit) -> None:
    district = DISTRICTS[commune.district_code]
    province = LEGACY_PROVINCES[commune.province_code]
    text = f"{commune.name}, {district.name}, {province.name}"
    expected = [c.code for c in get_index().convert_legacy(commune.code)]
    parsed = parse_address(text)
    assert parsed.status == "parsed", text
    assert parsed.era == "legacy"
    assert parsed.legacy_commune_code == commune.code
    assert parsed.candidates == expected
    assert parsed.commune_code == expected[0]
    plain = abbreviate(strip_diacritics(text))
    found = parse_address(plain)
    # Without diacritics a few wards share a name with another in their district (Phường Sa
    # Pa and Phường Sà Pả); then every candidate is still listed.
    assert set(expected) <= set(found.candidates), plain


@SETTINGS
@given(st.text(max_size=80))
def test_junk_never_raises(text: str) -> None:
    parsed = parse_address(text)
    assert parsed.status in {"parsed", "ambiguous", "province_only", "unparsed"}
    index = get_index()
    assert all(index.is_commune_code(code) for code in parsed.candidates)
    if parsed.status == "parsed":
        assert parsed.commune_code in parsed.candidates
    else:
        assert parsed.commune_code is None
    if parsed.status in {"province_only", "unparsed"}:
        assert parsed.candidates == []


@SETTINGS
@given(
    st.lists(
        st.sampled_from(
            [
                "Phường",
                "Xã",
                "P.",
                "Q.",
                "TP",
                "Hà Nội",
                ",",
                "1",
                "Tân",
                "Thành",
                "Huyện",
                "đặc khu",
                "-",
                "Việt Nam",
                "0",
            ]
        ),
        max_size=12,
    )
)
def test_keyword_soup_never_raises(words: list[str]) -> None:
    parsed = parse_address(" ".join(words))
    assert parsed.status in {"parsed", "ambiguous", "province_only", "unparsed"}
    assert all(get_index().is_commune_code(code) for code in parsed.candidates)
