"""Address parsing, legacy conversion and address agreement (CONTRACTS §3)."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

from dancu.geo.service import (
    CommuneInfo,
    Conversion,
    communes_agree,
    get_index,
    parse_address,
)

# Official codes: 2025 (Decision 19/2025/QĐ-TTg) and legacy.
BA_DINH = "00004"  # Phường Ba Đình, Thành phố Hà Nội (2025)
HONG_HA = "00097"  # Phường Hồng Hà (2025), where legacy Phường Phúc Xá (00001) went
TAN_THANH_CT = "31666"  # Xã Tân Thạnh, Thành phố Cần Thơ (2025)
TRUONG_THANH_CT = "31288"  # Xã Trường Thành, Cần Thơ: the default for split legacy 31268
SPLIT_LEGACY = "31268"  # Xã Tân Thạnh, Huyện Thới Lai, Cần Thơ (legacy), split in two


@pytest.mark.parametrize(
    "text",
    [
        "Phường Ba Đình, Thành phố Hà Nội",
        "Phuong Ba Dinh, Thanh pho Ha Noi",
        "P. Ba Dinh, Ha Noi",
        "P.Ba Đình, TP.Hà Nội",
        "phường ba đình, hà nội, việt nam",
        "PHƯỜNG BA ĐÌNH, HN",
        "Phường Ba Đình Hà Nội",
        "phuongbadinh, hanoi",
        "Phu\u031bo\u031b\u0300ng Ba \u0110i\u0300nh, Ha\u0300 N\u00f4\u0323i",  # decomposed (NFD)
    ],
)
def test_new_units_with_and_without_diacritics(text: str) -> None:
    parsed = parse_address(text)
    assert parsed.status == "parsed"
    assert parsed.commune_code == parsed.default_code == BA_DINH
    assert parsed.candidates == [BA_DINH]
    assert parsed.era == "2025"
    assert parsed.province_code == "01"
    assert parsed.legacy_commune_code is None


@pytest.mark.parametrize(
    "text",
    ["xa Tan Thanh, Can Tho", "X. Tân Thạnh, TP. Cần Thơ", "Xã Tân Thạnh, Thành phố Cần Thơ"],
)
def test_new_commune_abbreviated(text: str) -> None:
    parsed = parse_address(text)
    assert (parsed.status, parsed.commune_code, parsed.era) == ("parsed", TAN_THANH_CT, "2025")


@pytest.mark.parametrize(
    "text",
    [
        "Phường Phúc Xá, Quận Ba Đình, Hà Nội",
        "Phuong Phuc Xa, Quan Ba Dinh, Ha Noi",
        "P. Phúc Xá, Q. Ba Đình, TP. Hà Nội",
        "Phúc Xá, Ba Đình, Hà Nội",
        "Phường Phúc Xá, Hà Nội",  # the district left out
        "Phường Phúc Xá Quận Ba Đình Hà Nội",
    ],
)
def test_legacy_units_convert(text: str) -> None:
    parsed = parse_address(text)
    assert parsed.status == "parsed"
    assert parsed.era == "legacy"
    assert parsed.legacy_commune_code == "00001"
    assert parsed.commune_code == HONG_HA
    assert parsed.candidates == [HONG_HA]


def test_numbered_legacy_wards_and_glued_abbreviations() -> None:
    for text in ("Phường 1, Quận 3, TP Hồ Chí Minh", "P1, Q3, TP.HCM", "p.01 q.3 hcm"):
        parsed = parse_address(text)
        assert parsed.status == "parsed", text
        assert parsed.legacy_commune_code == "27160", text
        assert parsed.commune_code == "27154", text  # Phường Bàn Cờ


def test_split_ward_gives_every_candidate_and_the_default() -> None:
    index = get_index()
    assert index.convert_legacy(SPLIT_LEGACY) == [
        Conversion(TRUONG_THANH_CT, True),
        Conversion(TAN_THANH_CT, False),
    ]
    parsed = parse_address("Ấp Tân Phú, X. Tân Thạnh, H. Thới Lai, TP Cần Thơ")
    assert parsed.status == "parsed"
    assert parsed.era == "legacy"
    assert parsed.legacy_commune_code == SPLIT_LEGACY
    assert parsed.commune_code == parsed.default_code == TRUONG_THANH_CT
    assert parsed.candidates == [TRUONG_THANH_CT, TAN_THANH_CT]
    assert parsed.street == "Ấp Tân Phú"


def test_street_is_the_text_before_the_units() -> None:
    parsed = parse_address("Số 12 đường 3/2, P. Bến Nghé, Q.1, TP.HCM")
    assert parsed.street == "Số 12 đường 3/2"
    assert parsed.legacy_commune_code == "26740"
    parsed = parse_address("  Ngõ 5 Phố Huế, Phường Ba Đình, Hà Nội ")
    assert (parsed.street, parsed.commune_code) == ("Ngõ 5 Phố Huế", BA_DINH)


def test_island_district_without_communes_maps_to_its_special_zone() -> None:
    parsed = parse_address("Huyện Côn Đảo, Tỉnh Bà Rịa - Vũng Tàu")
    assert (parsed.status, parsed.era, parsed.commune_code) == ("parsed", "legacy", "26732")
    assert parse_address("Đặc khu Côn Đảo, TP Hồ Chí Minh").commune_code == "26732"


def test_diacritics_separate_names_that_fold_alike() -> None:
    assert parse_address("Xã Cẩm Giàng, Hải Phòng").commune_code == "10903"
    assert parse_address("Xã Cẩm Giang, Hải Phòng").commune_code == "10888"
    parsed = parse_address("Xa Cam Giang, Hai Phong")
    assert parsed.status == "ambiguous"
    assert parsed.commune_code is None
    assert parsed.candidates == ["10888", "10903"]
    assert parsed.province_code == "31"


def test_a_type_word_of_another_level_is_not_dropped() -> None:
    # Quận Hai Bà Trưng was a district; Phường Hai Bà Trưng is a 2025 ward.
    parsed = parse_address("Quận Hai Bà Trưng, Hà Nội")
    assert (parsed.status, parsed.province_code, parsed.era) == ("province_only", "01", "legacy")
    assert parse_address("Phường Hai Bà Trưng, Hà Nội").status == "parsed"


@pytest.mark.parametrize("text", ["Hà Nội", "Thôn 3, Tỉnh Nghệ An", "12 Nowhere St, TP.HCM"])
def test_province_only(text: str) -> None:
    parsed = parse_address(text)
    assert parsed.status == "province_only"
    assert parsed.commune_code is None and parsed.candidates == []
    assert parsed.province_code in {"01", "40", "79"}


@pytest.mark.parametrize(
    "text", ["", "   ", ",,,", "asdf qwer", "123456", "Main Street 5, Springfield"]
)
def test_unparseable_text_is_reported(text: str) -> None:
    parsed = parse_address(text)
    assert parsed.status == "unparsed"
    assert parsed.commune_code is None and parsed.default_code is None
    assert parsed.candidates == []


def test_parsing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # A split ward with a street: the case where the package's converter geocodes online.
    parsed = parse_address("Số 5, đường 30/4, Xã Tân Thạnh, Huyện Thới Lai, Thành phố Cần Thơ")
    assert parsed.candidates == [TRUONG_THANH_CT, TAN_THANH_CT]
    assert parsed.street == "Số 5, đường 30/4"
    assert communes_agree("Xã Tân Thạnh, Huyện Thới Lai, Cần Thơ", TAN_THANH_CT)


def test_the_package_code_that_geocodes_is_never_imported() -> None:
    code = (
        "import sys\n"
        "from dancu.geo.service import parse_address\n"
        "parse_address('Số 5, Xã Tân Thạnh, Huyện Thới Lai, Cần Thơ')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('geopy', 'shapely', 'vietnamadminunits')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_index_lookups() -> None:
    index = get_index()
    assert index.commune(BA_DINH) == CommuneInfo(BA_DINH, "01", "Phường Ba Đình", "ward", 2.97)
    assert index.commune("99999") is None
    assert index.is_commune_code(BA_DINH) and not index.is_commune_code("00001")
    province = index.province("79")
    assert province is not None and province.name == "Thành phố Hồ Chí Minh"
    rows = list(index.communes())
    assert len(rows) == 3321
    code, province_code, name, kind, area = rows[0]
    assert (len(code), len(province_code), kind in {"ward", "commune", "special_zone"}) == (
        5,
        2,
        True,
    )
    assert name and (area is None or area > 0)
    assert index.convert_legacy("nope") == []
    legacy = index.legacy_commune("00001")
    assert legacy is not None and legacy.name == "Phường Phúc Xá"


class TestCommunesAgree:
    def test_same_commune_by_code_or_text(self) -> None:
        assert communes_agree(BA_DINH, BA_DINH)
        assert communes_agree("P. Ba Dinh, Ha Noi", BA_DINH)
        assert not communes_agree("Phường Ba Đình, Hà Nội", HONG_HA)

    def test_legacy_units_are_converted(self) -> None:
        assert communes_agree("Phường Phúc Xá, Quận Ba Đình, Hà Nội", HONG_HA)
        assert communes_agree("00001", HONG_HA)  # a legacy code, not a 2025 one
        assert not communes_agree("00001", BA_DINH)

    def test_any_candidate_of_a_split_ward_agrees(self) -> None:
        text = "Xã Tân Thạnh, Huyện Thới Lai, Cần Thơ"
        assert communes_agree(text, TRUONG_THANH_CT)
        assert communes_agree(text, TAN_THANH_CT)
        assert communes_agree(SPLIT_LEGACY, TAN_THANH_CT)
        assert not communes_agree(text, BA_DINH)

    def test_street_is_ignored(self) -> None:
        assert communes_agree("Số 99 Phố Khác, Phường Ba Đình, Hà Nội", BA_DINH)

    def test_province_only_or_unparsed_or_missing_do_not_agree(self) -> None:
        assert not communes_agree("Hà Nội", BA_DINH)
        assert not communes_agree("no idea", BA_DINH)
        assert not communes_agree("", BA_DINH)
        assert not communes_agree("Phường Ba Đình, Hà Nội", None)
