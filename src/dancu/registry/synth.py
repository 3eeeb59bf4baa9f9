"""A deterministic, realistic and fast synthetic population (``dancu seed``, the demo, benches).

Every person is invented: names are drawn from frequency tables, numbers from a keyed
permutation, nothing comes from a real register.

How it works
------------
People are made in *blocks* of ``_BLOCK_HOUSEHOLDS`` households. Each block has its own random
generator, ``PCG64(SeedSequence(seed, spawn_key=(block,)))``, and is computed with numpy over
whole arrays (no per-person Python loop). The only state carried from block to block is the
counters that make numbers unique:

* personal IDs ``PPP G YY RRRRRR``: for each bucket ``(PPP, G, YY)`` a counter ``c`` of the
  people already numbered in it, and ``RRRRRR = permutation_bucket(c)``, a keyed Feistel
  permutation of ``0..999999``; IDs are therefore unique by construction (no set of issued IDs
  is kept, so memory stays bounded however many people are made);
* legacy 9-digit CMND numbers: a counter per issuing area, permuted the same way;
* household numbers: a plain counter (``HH0000000001``...).

The output does not depend on ``batch_size``: blocks are re-cut into record batches at
household boundaries, so the same ``(n, seed, communes)`` always gives the same rows, and a
smaller ``n`` gives a prefix of a larger one (except the last household, which is cut to make
exactly ``n`` rows; links to the members cut away are left empty).

Households are singles, couples, nuclear families, single parents and two kinds of
three-generation households (the head's parents living with the head; an elderly head with a
married child and grandchildren), plus the odd sibling or unrelated member. Ages follow a
five-year-band pyramid resembling Vietnam's; parents are 18 to 45 years older than their
children; children carry their father's family name, ethnicity and place of origin.

Temporary residence is not part of the interchange columns: ``registry.seeding`` registers
temporary stays for some adults once they are loaded.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from dancu.registry import interchange

__all__ = [
    "INTERCHANGE_COLUMNS",
    "SCHEMA",
    "CommuneWeight",
    "generate",
]

Arr = NDArray[Any]

# The registry interchange format (CONTRACTS.md section 2), defined once in ``interchange``.
INTERCHANGE_COLUMNS: tuple[str, ...] = interchange.COLUMNS
SCHEMA: pa.Schema = interchange.STRING_SCHEMA


@dataclass(frozen=True, slots=True)
class CommuneWeight:
    """A 2025 commune, its relative population, and the ID prefixes of people born there."""

    commune_code: str  # 5-digit 2025 commune code
    province_code: str  # 2-digit 2025 province code
    weight: float  # relative population share
    birth_place_codes: tuple[str, ...]  # 3-digit legacy province codes ("001".."096")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------------------------------------
# Reference tables (synthetic-data parameters; frequencies are plausible approximations)

# Regions used to vary ethnicity, religion, family names and address style.
_NE, _NW, _RRD, _NC, _SCC, _CH, _SE, _MK = range(8)
_SOUTH_REGIONS = (_SCC, _CH, _SE, _MK)

# Legacy (63-province) codes: ID prefix, name, region, 2-digit area of the old 9-digit CMND.
_PROVINCES: tuple[tuple[str, str, int, int], ...] = (
    ("001", "Hà Nội", _RRD, 1),
    ("002", "Hà Giang", _NE, 7),
    ("004", "Cao Bằng", _NE, 8),
    ("006", "Bắc Kạn", _NE, 9),
    ("008", "Tuyên Quang", _NE, 7),
    ("010", "Lào Cai", _NE, 6),
    ("011", "Điện Biên", _NW, 4),
    ("012", "Lai Châu", _NW, 4),
    ("014", "Sơn La", _NW, 5),
    ("015", "Yên Bái", _NE, 6),
    ("017", "Hòa Bình", _NW, 11),
    ("019", "Thái Nguyên", _NE, 9),
    ("020", "Lạng Sơn", _NE, 8),
    ("022", "Quảng Ninh", _RRD, 10),
    ("024", "Bắc Giang", _NE, 12),
    ("025", "Phú Thọ", _NE, 13),
    ("026", "Vĩnh Phúc", _RRD, 13),
    ("027", "Bắc Ninh", _RRD, 12),
    ("030", "Hải Dương", _RRD, 14),
    ("031", "Hải Phòng", _RRD, 3),
    ("033", "Hưng Yên", _RRD, 14),
    ("034", "Thái Bình", _RRD, 15),
    ("035", "Hà Nam", _RRD, 16),
    ("036", "Nam Định", _RRD, 16),
    ("037", "Ninh Bình", _RRD, 16),
    ("038", "Thanh Hóa", _NC, 17),
    ("040", "Nghệ An", _NC, 18),
    ("042", "Hà Tĩnh", _NC, 18),
    ("044", "Quảng Bình", _NC, 19),
    ("045", "Quảng Trị", _NC, 19),
    ("046", "Thừa Thiên Huế", _NC, 19),
    ("048", "Đà Nẵng", _SCC, 20),
    ("049", "Quảng Nam", _SCC, 20),
    ("051", "Quảng Ngãi", _SCC, 21),
    ("052", "Bình Định", _SCC, 21),
    ("054", "Phú Yên", _SCC, 22),
    ("056", "Khánh Hòa", _SCC, 22),
    ("058", "Ninh Thuận", _SCC, 26),
    ("060", "Bình Thuận", _SCC, 26),
    ("062", "Kon Tum", _CH, 23),
    ("064", "Gia Lai", _CH, 23),
    ("066", "Đắk Lắk", _CH, 24),
    ("067", "Đắk Nông", _CH, 24),
    ("068", "Lâm Đồng", _CH, 25),
    ("070", "Bình Phước", _SE, 28),
    ("072", "Tây Ninh", _SE, 29),
    ("074", "Bình Dương", _SE, 28),
    ("075", "Đồng Nai", _SE, 27),
    ("077", "Bà Rịa - Vũng Tàu", _SE, 27),
    ("079", "TP Hồ Chí Minh", _SE, 2),
    ("080", "Long An", _MK, 30),
    ("082", "Tiền Giang", _MK, 31),
    ("083", "Bến Tre", _MK, 32),
    ("084", "Trà Vinh", _MK, 33),
    ("086", "Vĩnh Long", _MK, 33),
    ("087", "Đồng Tháp", _MK, 34),
    ("089", "An Giang", _MK, 35),
    ("091", "Kiên Giang", _MK, 37),
    ("092", "Cần Thơ", _MK, 36),
    ("093", "Hậu Giang", _MK, 36),
    ("094", "Sóc Trăng", _MK, 36),
    ("095", "Bạc Liêu", _MK, 38),
    ("096", "Cà Mau", _MK, 38),
)
_PROVINCE_NAMES: tuple[str, ...] = tuple(_nfc(p[1]) for p in _PROVINCES)
_PROVINCE_INDEX = {p[0]: i for i, p in enumerate(_PROVINCES)}
_PROVINCE_CODE_NUM = np.array([int(p[0]) for p in _PROVINCES], dtype=np.int64)
_PROVINCE_REGION = np.array([p[2] for p in _PROVINCES], dtype=np.int64)
_PROVINCE_CMND_AREA = np.array([p[3] for p in _PROVINCES], dtype=np.int64)

# Population share (%) by five-year age band, 0-4 ... 100-104: a pyramid resembling Vietnam's
# in the mid-2020s (narrowing base, bulge at 30-44, short old-age tail).
_PYRAMID = np.array(
    [
        6.6,
        7.4,
        8.1,
        7.6,
        6.9,
        7.0,
        7.7,
        8.1,
        7.8,
        7.0,
        6.3,
        5.6,
        4.8,
        3.9,
        2.8,
        1.7,
        1.1,
        0.7,
        0.3,
        0.1,
        0.02,
    ],
    dtype=np.float64,
)
_BAND_EDGES = np.arange(0, 5 * len(_PYRAMID), 5, dtype=np.float64)
# The band weights used to draw the age of the adult each household is built around (and of
# unrelated members): _PYRAMID corrected by a few rounds of calibration so that, once children,
# parents and spouses are derived from that adult, the whole output follows _PYRAMID.
_ANCHOR_PYRAMID = np.array(
    [
        7.73,
        5.45,
        9.44,
        8.83,
        4.49,
        3.5,
        5.87,
        7.0,
        6.83,
        5.09,
        7.47,
        11.2,
        9.44,
        7.35,
        4.21,
        1.69,
        1.53,
        1.4,
        0.6,
        0.1,
        0.02,
    ],
    dtype=np.float64,
)

_ETHNICITIES: tuple[str, ...] = tuple(
    _nfc(e)
    for e in (
        "Kinh",
        "Tày",
        "Thái",
        "Mường",
        "Khmer",
        "Hoa",
        "Nùng",
        "H'Mông",
        "Dao",
        "Gia Rai",
        "Ê Đê",
        "Ba Na",
        "Sán Chay",
        "Chăm",
        "Cơ Ho",
        "Xơ Đăng",
        "Sán Dìu",
        "Hrê",
        "Mnông",
        "Ra Glai",
        "Xtiêng",
        "Khơ Mú",
        "Bru-Vân Kiều",
        "Cơ Tu",
    )
)
_E = {name: i for i, name in enumerate(_ETHNICITIES)}


def _eth_dist(pairs: dict[str, float]) -> Arr:
    p = np.zeros(len(_ETHNICITIES))
    for name, share in pairs.items():
        p[_E[_nfc(name)]] = share
    out: Arr = p / p.sum()
    return out


_REGION_ETHNICITY = np.stack(
    [
        _eth_dist(
            {
                "Kinh": 45,
                "Tày": 19,
                "Nùng": 12,
                "H'Mông": 10,
                "Dao": 8,
                "Sán Chay": 2.5,
                "Sán Dìu": 2,
                "Mường": 1.5,
            }
        ),
        _eth_dist(
            {"Thái": 37, "Kinh": 24, "H'Mông": 19, "Mường": 12, "Dao": 4, "Khơ Mú": 3, "Tày": 1}
        ),
        _eth_dist(
            {"Kinh": 98.5, "Mường": 0.5, "Tày": 0.4, "Nùng": 0.3, "Hoa": 0.2, "Sán Dìu": 0.1}
        ),
        _eth_dist(
            {"Kinh": 89, "Thái": 5, "Mường": 4, "Khơ Mú": 0.5, "H'Mông": 0.7, "Bru-Vân Kiều": 0.8}
        ),
        _eth_dist({"Kinh": 95, "Chăm": 1.5, "Ra Glai": 1, "Cơ Tu": 0.8, "Hrê": 1, "Ba Na": 0.7}),
        _eth_dist(
            {
                "Kinh": 66,
                "Gia Rai": 10,
                "Ê Đê": 8,
                "Ba Na": 5,
                "Xơ Đăng": 3,
                "Cơ Ho": 3,
                "Nùng": 2,
                "Tày": 2,
                "Mnông": 1,
            }
        ),
        _eth_dist(
            {"Kinh": 93, "Hoa": 4.5, "Khmer": 1, "Xtiêng": 1, "Chăm": 0.3, "Tày": 0.1, "Nùng": 0.1}
        ),
        _eth_dist({"Kinh": 90, "Khmer": 8.5, "Hoa": 1.2, "Chăm": 0.3}),
    ]
)
_REGION_ETHNICITY_CDF = np.cumsum(_REGION_ETHNICITY, axis=1)

_RELIGIONS: tuple[str, ...] = tuple(
    _nfc(r)
    for r in (
        "Không",
        "Phật giáo",
        "Công giáo",
        "Tin lành",
        "Cao Đài",
        "Phật giáo Hòa Hảo",
        "Hồi giáo",
        "Bà La Môn",
    )
)


def _rel_dist(*shares: float) -> Arr:
    p = np.zeros(len(_RELIGIONS))
    p[: len(shares)] = shares
    return np.cumsum(p / p.sum())


_REL_DEFAULT = _rel_dist(86, 5, 7, 1, 1)
_REL_SOUTHEAST = _rel_dist(78, 8, 10, 1, 3)
_REL_MEKONG = _rel_dist(75, 8, 4, 1, 4, 8)
_REL_KHMER = _rel_dist(14, 85, 0.5, 0.5)
_REL_HOA = _rel_dist(58, 35, 5, 2)
_REL_CHAM = _rel_dist(40, 0, 0, 0, 0, 0, 30, 30)
_REL_HIGHLAND = _rel_dist(55, 2, 18, 25)  # also H'Mông: many Protestants

# Family-name groups: a name table per group of ethnicities (one word each, so that the
# first word of a full name is always the family name).
# Kinh family names: the frequent names in per cent of Kinh people (set a little above the
# national shares, since minorities mostly carry other names), then a long tail.
_KINH_TOP_NORTH = {
    "Nguyễn": 42.0,
    "Trần": 12.0,
    "Lê": 10.3,
    "Phạm": 7.6,
    "Hoàng": 4.4,
    "Huỳnh": 0.6,
    "Phan": 4.6,
    "Vũ": 3.5,
    "Võ": 0.5,
    "Đặng": 2.2,
    "Bùi": 2.1,
    "Đỗ": 1.5,
    "Hồ": 1.4,
    "Ngô": 1.4,
    "Dương": 1.1,
    "Lý": 0.5,
}
_KINH_TOP_SOUTH = {
    **_KINH_TOP_NORTH,
    "Hoàng": 0.9,
    "Huỳnh": 4.1,
    "Vũ": 0.6,
    "Võ": 3.4,
    "Hồ": 1.6,
    "Lý": 0.7,
}
_KINH_TAIL = {
    "Đinh": 0.4,
    "Đào": 0.35,
    "Mai": 0.25,
    "Trương": 0.3,
    "Lương": 0.25,
    "Lâm": 0.2,
    "Cao": 0.2,
    "Tạ": 0.12,
    "Hà": 0.25,
    "Châu": 0.1,
    "Trịnh": 0.3,
    "Đoàn": 0.25,
    "Tô": 0.12,
    "Lưu": 0.12,
    "Kiều": 0.07,
    "Thái": 0.1,
    "Tăng": 0.05,
    "Mạc": 0.04,
    "Quách": 0.05,
    "Triệu": 0.07,
    "Hứa": 0.05,
    "Chu": 0.12,
    "Khúc": 0.02,
    "Phùng": 0.12,
    "Lại": 0.08,
    "Doãn": 0.04,
    "Từ": 0.04,
    "Vương": 0.08,
    "Kim": 0.03,
    "La": 0.05,
    "Tống": 0.04,
    "Khổng": 0.02,
    "Thân": 0.04,
    "Giáp": 0.04,
    "Nghiêm": 0.04,
    "Ninh": 0.04,
    "Lục": 0.02,
    "Âu": 0.03,
    "Diệp": 0.03,
    "Lữ": 0.04,
    "Kha": 0.02,
    "Văn": 0.03,
}
_FAMILY_GROUPS: dict[str, dict[str, float]] = {
    "kinh_north": {**_KINH_TOP_NORTH, **_KINH_TAIL},
    "kinh_south": {**_KINH_TOP_SOUTH, **_KINH_TAIL},
    "tay_nung": {
        "Hoàng": 18,
        "Nông": 15,
        "Nguyễn": 10,
        "Lương": 8,
        "Hà": 7,
        "Lục": 6,
        "Triệu": 6,
        "Vi": 6,
        "Ma": 4,
        "Lý": 5,
        "Hứa": 4,
        "Bế": 4,
        "Lăng": 3,
        "Chu": 3,
        "Đinh": 3,
    },
    "thai": {
        "Lò": 18,
        "Lường": 14,
        "Cầm": 10,
        "Quàng": 8,
        "Vì": 8,
        "Hà": 10,
        "Tòng": 7,
        "Điêu": 5,
        "Lự": 4,
        "Vi": 5,
        "Sầm": 4,
        "Lê": 4,
        "Nguyễn": 3,
    },
    "muong": {"Bùi": 35, "Đinh": 24, "Quách": 10, "Hà": 10, "Nguyễn": 10, "Xa": 5, "Cao": 6},
    "hmong": {
        "Giàng": 20,
        "Vàng": 20,
        "Sùng": 14,
        "Lý": 12,
        "Thào": 12,
        "Mùa": 6,
        "Hầu": 5,
        "Lầu": 5,
        "Hạng": 6,
    },
    "dao": {"Triệu": 35, "Bàn": 25, "Đặng": 20, "Lý": 10, "Chảo": 10},
    "khmer": {
        "Thạch": 20,
        "Sơn": 15,
        "Danh": 15,
        "Kim": 10,
        "Lâm": 8,
        "Lý": 8,
        "Trần": 8,
        "Châu": 6,
        "Kiên": 5,
        "Huỳnh": 5,
    },
    "hoa": {
        "Lâm": 15,
        "Trương": 12,
        "Lý": 12,
        "Trần": 10,
        "Hoàng": 9,
        "Quách": 8,
        "Lưu": 8,
        "Hứa": 8,
        "Diệp": 6,
        "Mã": 6,
        "Tăng": 6,
    },
    "cham": {
        "Thành": 20,
        "Đàng": 18,
        "Lưu": 12,
        "Thuận": 10,
        "Quảng": 10,
        "Châu": 10,
        "Bá": 8,
        "Trượng": 6,
        "Nguyễn": 6,
    },
    "highland": {
        "Ksor": 12,
        "Siu": 10,
        "Rmah": 8,
        "Nay": 7,
        "Niê": 10,
        "Đinh": 14,
        "Nguyễn": 8,
        "Hồ": 6,
        "Mlô": 5,
        "Byă": 4,
        "Kpă": 6,
        "Hdok": 5,
        "Bhnướch": 3,
        "Êban": 2,
    },
}
_FAMILY_GROUP_NAMES = tuple(_FAMILY_GROUPS)
_FG = {name: i for i, name in enumerate(_FAMILY_GROUP_NAMES)}
# Family-name group of each ethnicity (Kinh is north or south by region, set at run time).
_ETH_FAMILY_GROUP = np.array(
    [
        _FG[g]
        for g in (
            "kinh_north",
            "tay_nung",
            "thai",
            "muong",
            "khmer",
            "hoa",
            "tay_nung",
            "hmong",
            "dao",
            "highland",
            "highland",
            "highland",
            "tay_nung",
            "cham",
            "highland",
            "highland",
            "tay_nung",
            "highland",
            "highland",
            "cham",
            "highland",
            "thai",
            "highland",
            "highland",
        )
    ],
    dtype=np.int64,
)

# Middle and given names with (weight for people born before ~1965, weight for those born
# after ~2005); in between the two are mixed linearly.
_MALE_MIDDLE: dict[str, tuple[float, float]] = {
    "Văn": (60, 12),
    "Đức": (6, 8),
    "Hữu": (6, 4),
    "Minh": (4, 12),
    "Quang": (4, 6),
    "Công": (4, 3),
    "Thành": (3, 4),
    "Xuân": (3, 2),
    "Đình": (4, 2),
    "Ngọc": (3, 3),
    "Quốc": (2, 6),
    "Hoàng": (2, 6),
    "Gia": (0.5, 7),
    "Bảo": (0.5, 6),
    "Tuấn": (1, 4),
    "Anh": (1, 4),
    "Duy": (1, 4),
    "Tiến": (1, 2),
    "Mạnh": (1, 2),
    "Trọng": (2, 3),
    "Thanh": (3, 2),
    "Hải": (1, 3),
    "Nhật": (0.5, 4),
    "Trung": (1, 3),
    "Huy": (0.5, 3),
    "Khánh": (0.5, 3),
    "Đăng": (0.5, 4),
    "Viết": (1, 0.5),
    "Bá": (1.5, 0.5),
    "Thế": (2, 2),
    "Chí": (1, 2),
    "Tấn": (1.5, 1),
    "Phước": (0.5, 0.5),
    "Kim": (1, 0.3),
}
_FEMALE_MIDDLE: dict[str, tuple[float, float]] = {
    "Thị": (75, 20),
    "Ngọc": (4, 10),
    "Thu": (3, 6),
    "Thanh": (3, 5),
    "Phương": (1, 5),
    "Hồng": (2, 3),
    "Kim": (2, 5),
    "Mai": (1, 4),
    "Bích": (2, 2),
    "Thùy": (1, 5),
    "Minh": (0.5, 6),
    "Bảo": (0.3, 6),
    "Khánh": (0.3, 4),
    "Hoài": (1, 2),
    "Diệu": (0.5, 3),
    "Mỹ": (1, 3),
    "Tuyết": (1, 1),
    "Quỳnh": (0.5, 3),
    "Hải": (0.5, 2),
    "Như": (0.5, 3),
    "Lan": (0.5, 2),
    "Huyền": (0.5, 1),
    "Thảo": (0.3, 2),
    "Gia": (0.1, 4),
    "An": (0.1, 2),
    "Hà": (0.3, 2),
    "Cẩm": (1, 1.5),
    "Xuân": (1.5, 0.5),
}
_MALE_SECOND = ("Minh", "Anh", "Gia", "Bảo", "Hoàng", "Nhật", "Quang", "Đức", "Tuấn", "Thanh")
_FEMALE_SECOND_AFTER_THI = (
    "Thu",
    "Ngọc",
    "Kim",
    "Thanh",
    "Hồng",
    "Minh",
    "Phương",
    "Bích",
    "Mỹ",
    "Hoài",
    "Thúy",
)
_FEMALE_SECOND = ("Ngọc", "Minh", "Bảo", "Khánh", "Phương", "Thanh", "Thu", "Diệu")
_MALE_GIVEN: dict[str, tuple[float, float]] = {
    "Hùng": (3, 1),
    "Dũng": (3, 1),
    "Tuấn": (3, 2),
    "Hải": (2.5, 1.5),
    "Sơn": (2.5, 1),
    "Thắng": (2, 0.8),
    "Cường": (2, 0.8),
    "Hòa": (1.5, 0.3),
    "Bình": (2, 1),
    "Long": (2, 1.5),
    "Thành": (2, 1.5),
    "Trung": (2, 1.2),
    "Minh": (2.5, 3),
    "Nam": (2.5, 2),
    "Quang": (1.5, 1),
    "Hưng": (1.5, 1),
    "Việt": (1.2, 1),
    "Vinh": (1.5, 0.6),
    "Tâm": (1.2, 0.6),
    "Hiếu": (1, 1.5),
    "Đức": (2, 2),
    "Phong": (1, 1.2),
    "Toàn": (1.5, 0.8),
    "Tùng": (1.5, 1),
    "Kiên": (1, 1),
    "Lâm": (1, 1.5),
    "Khánh": (1, 1.5),
    "Hoàng": (1, 1.5),
    "Huy": (1, 3),
    "Anh": (2, 2.5),
    "Duy": (1, 2),
    "Đạt": (1, 2.5),
    "Khoa": (0.5, 2),
    "Khang": (0.2, 2.5),
    "Phúc": (0.8, 2.5),
    "Bảo": (0.3, 2),
    "Quân": (0.8, 3),
    "Nghĩa": (1.5, 0.8),
    "Tài": (1.2, 0.8),
    "Lộc": (1, 0.8),
    "Phát": (0.3, 2),
    "Thịnh": (1, 1),
    "Trí": (0.8, 1.5),
    "Nhân": (0.8, 1),
    "Tiến": (1.5, 0.8),
    "Mạnh": (1.5, 0.6),
    "Lực": (1, 0.3),
    "Chiến": (1.5, 0.3),
    "Thanh": (1.5, 0.3),
    "Hậu": (1, 0.5),
    "Sang": (0.6, 0.8),
    "Tú": (0.8, 0.6),
    "Quý": (1, 0.5),
    "Công": (1, 0.3),
    "Thái": (0.8, 0.5),
    "Hào": (0.3, 0.8),
    "Đăng": (0.3, 1.5),
    "Vũ": (0.5, 1.2),
    "Nhật": (0.3, 1.5),
    "Thuận": (1, 0.4),
    "Lợi": (1, 0.2),
    "Tấn": (0.8, 0.3),
    "Hiệp": (0.8, 0.3),
    "Cảnh": (0.7, 0.2),
    "Đông": (0.8, 0.3),
    "Tín": (0.5, 0.5),
    "Khôi": (0.2, 2),
    "Kiệt": (0.2, 1.5),
    "Thiện": (0.5, 1),
    "Danh": (0.6, 0.5),
}
_FEMALE_GIVEN: dict[str, tuple[float, float]] = {
    "Lan": (2.5, 0.6),
    "Hương": (3, 1),
    "Hoa": (2.5, 0.5),
    "Hồng": (2, 0.5),
    "Hà": (2.5, 1.5),
    "Hạnh": (2, 0.8),
    "Hằng": (2.5, 1),
    "Hiền": (2, 1),
    "Huyền": (2, 1.5),
    "Linh": (1.5, 3),
    "Loan": (1.5, 0.4),
    "Ly": (0.5, 1.2),
    "Mai": (2, 1.5),
    "My": (0.3, 2),
    "Nga": (2, 0.4),
    "Ngân": (0.8, 2),
    "Ngọc": (1.5, 2),
    "Nhung": (2, 0.6),
    "Nhi": (0.2, 2.5),
    "Oanh": (1.5, 0.4),
    "Phương": (2, 1.5),
    "Quỳnh": (1, 1.8),
    "Tâm": (1, 1),
    "Thảo": (1.5, 2.5),
    "Thanh": (1.5, 0.5),
    "Thủy": (2.5, 0.6),
    "Thư": (0.3, 2.5),
    "Trang": (2, 2.5),
    "Trâm": (0.3, 1.5),
    "Tuyết": (1.5, 0.3),
    "Uyên": (0.3, 1.8),
    "Vân": (2, 1),
    "Vy": (0.1, 2.5),
    "Yến": (2, 1),
    "Hân": (0.1, 2.5),
    "Châu": (0.5, 1.2),
    "Giang": (1, 1.5),
    "Dung": (2, 0.5),
    "Diệp": (0.3, 0.8),
    "Đào": (1, 0.2),
    "Liên": (1.5, 0.3),
    "Lụa": (0.8, 0.05),
    "Xuân": (1.5, 0.3),
    "Hoài": (0.8, 0.6),
    "Nhàn": (1, 0.1),
    "Huệ": (1.5, 0.3),
    "Khuê": (0.2, 0.6),
    "Trinh": (1, 1),
    "Diễm": (0.5, 0.8),
    "Anh": (1, 3),
    "An": (0.3, 2),
    "Thu": (1.5, 0.4),
    "Lý": (0.8, 0.2),
    "Sen": (0.8, 0.1),
    "Cúc": (1, 0.05),
    "Tươi": (0.8, 0.1),
    "Thơm": (0.7, 0.05),
    "Nhiên": (0.05, 1),
    "Kim": (0.4, 0.4),
    "Chi": (0.5, 2),
    "Tiên": (0.5, 1.5),
    "Như": (0.3, 1.2),
    "Hậu": (0.8, 0.3),
    "Bích": (0.8, 0.3),
}
_HMONG_MALE_MIDDLE = ("A", "A", "A", "Seo", "Mí", "Văn")
_HMONG_MALE_GIVEN = (
    "Páo",
    "Sính",
    "Chứ",
    "Dế",
    "Lử",
    "Pó",
    "Sử",
    "Mua",
    "Tủa",
    "Chính",
    "Của",
    "Vừ",
    "Chư",
    "Pao",
)
_HMONG_FEMALE_GIVEN = (
    "Mỷ",
    "Dợ",
    "Pằng",
    "Sua",
    "Chú",
    "Mai",
    "Xá",
    "Dua",
    "Mí",
    "Say",
    "Chở",
    "Súa",
)

_STREETS = (
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Quang Trung",
    "Lê Duẩn",
    "Nguyễn Huệ",
    "Điện Biên Phủ",
    "Cách Mạng Tháng Tám",
    "Phan Đình Phùng",
    "Hoàng Diệu",
    "Trần Phú",
    "Nguyễn Du",
    "Bà Triệu",
    "Lê Thánh Tông",
    "Võ Thị Sáu",
    "Nguyễn Văn Cừ",
    "Hùng Vương",
    "Lạc Long Quân",
    "Phạm Văn Đồng",
    "Võ Nguyên Giáp",
    "Tôn Đức Thắng",
    "Nguyễn Thị Minh Khai",
    "Chu Văn An",
    "Lê Lai",
    "Ngô Quyền",
    "Đinh Tiên Hoàng",
    "Lý Thái Tổ",
    "Trần Quang Khải",
    "Hàm Nghi",
    "Phan Chu Trinh",
    "Phan Bội Châu",
    "Nguyễn Công Trứ",
    "Lê Hồng Phong",
    "Nguyễn Chí Thanh",
    "Trường Chinh",
    "Nguyễn Văn Linh",
    "Hoàng Văn Thụ",
    "Trần Nhân Tông",
    "Lý Tự Trọng",
    "Nguyễn Đình Chiểu",
    "Bạch Đằng",
    "Thống Nhất",
    "Độc Lập",
    "Hòa Bình",
    "Nguyễn Thái Học",
    "Yết Kiêu",
    "Phạm Ngũ Lão",
    "Lê Quý Đôn",
    "Nguyễn Khuyến",
    "Tô Hiến Thành",
    "Mạc Đĩnh Chi",
    "Hồ Tùng Mậu",
    "Xuân Thủy",
    "Kim Mã",
    "Giải Phóng",
    "Láng Hạ",
    "An Dương Vương",
    "Nguyễn Tất Thành",
)
_VILLAGE_WORDS = (
    "Đông",
    "Tây",
    "Nam",
    "Bắc",
    "Thượng",
    "Hạ",
    "Trung",
    "An Lạc",
    "Phú Mỹ",
    "Tân Lập",
    "Đồng Tâm",
    "Thắng Lợi",
    "Quyết Tiến",
    "Tân Thành",
    "An Bình",
    "Hưng Thịnh",
    "Bình An",
    "Phú Lợi",
    "Tân Phú",
    "Mỹ Hòa",
    "Long Thạnh",
    "Vĩnh Phước",
    "Hòa Lợi",
    "Phước Thạnh",
)
_BAN_FIRST = ("Nà", "Pác", "Khuổi", "Phiêng", "Huổi", "Nậm", "Cốc", "Tà", "Hua")
_BAN_SECOND = ("Mòn", "Lùng", "Cáy", "Pục", "Chang", "Sản", "Phìn", "Lếch", "Hin", "Nưa")
_BUON_FIRST = ("Ea", "Krông", "Kơ", "Đăk", "Plei")
_BUON_SECOND = ("Tu", "Kmar", "Pắc", "Sơ", "Yang", "Bông", "Drai", "Ktur")

_PHONE_PREFIXES = np.array(
    [
        32,
        33,
        34,
        35,
        36,
        37,
        38,
        39,
        52,
        56,
        58,
        59,
        70,
        76,
        77,
        78,
        79,
        81,
        82,
        83,
        84,
        85,
        86,
        88,
        89,
        90,
        91,
        92,
        93,
        94,
        96,
        97,
        98,
        99,
    ],
    dtype=np.int64,
)

# Household types and their shares.
_SINGLE, _COUPLE, _NUCLEAR, _LONE_PARENT, _WITH_PARENTS, _WITH_GRANDCHILDREN = range(6)
_TYPE_P = np.array([0.12, 0.15, 0.45, 0.06, 0.08, 0.14])

# Roles inside a household, in the order members are listed.
_HEAD, _SPOUSE, _PARENT, _MCHILD, _CHILD, _CSPOUSE, _GCHILD, _SIBLING, _OTHER = range(9)
_N_ROLES = 9
_ROLE_RELATIONSHIP = (
    "head",
    "spouse",
    "parent",
    "child",
    "child",
    "other",
    "grandchild",
    "sibling",
    "other",
)

_BLOCK_HOUSEHOLDS = 8192
_YEAR = 365.2425
_D18 = int(18 * _YEAR) + 1
_D45 = int(45 * _YEAR)
_MAX_KIDS = 4
_ID_BUCKETS = 1000 * 10 * 100  # PPP x G x YY
_ID_SPACE = 1_000_000
_CMND_SPACE = 10_000_000


# ---------------------------------------------------------------------------------------------
# Name vocabulary: every token once, with a trailing-space variant for joining.


def _build_vocab() -> tuple[list[str], dict[str, int]]:
    tokens: set[str] = set()
    for table in _FAMILY_GROUPS.values():
        tokens.update(table)
    for d in (_MALE_MIDDLE, _FEMALE_MIDDLE, _MALE_GIVEN, _FEMALE_GIVEN):
        tokens.update(d)
    for seq in (
        _MALE_SECOND,
        _FEMALE_SECOND_AFTER_THI,
        _FEMALE_SECOND,
        _HMONG_MALE_MIDDLE,
        _HMONG_MALE_GIVEN,
        _HMONG_FEMALE_GIVEN,
    ):
        tokens.update(seq)
    words = sorted(_nfc(t) for t in tokens)
    return words, {w: i for i, w in enumerate(words)}


_VOCAB, _VOCAB_ID = _build_vocab()
_NONE = len(_VOCAB)  # index of the empty token
_VOCAB_SPACED = pa.array([w + " " for w in _VOCAB] + [""], type=pa.string())
_VOCAB_BARE = pa.array([*_VOCAB, ""], type=pa.string())


def _ids(names: Sequence[str]) -> Arr:
    return np.array([_VOCAB_ID[_nfc(n)] for n in names], dtype=np.int64)


def _cdf(weights: Sequence[float] | Arr) -> Arr:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


class _Table:
    """Names with an old-generation and a young-generation cumulative distribution."""

    def __init__(self, table: dict[str, tuple[float, float]]) -> None:
        self.ids = _ids(list(table))
        self.old = _cdf([v[0] for v in table.values()])
        self.young = _cdf([v[1] for v in table.values()])

    def draw(self, rng: np.random.Generator, birth_year: Arr) -> Arr:
        n = len(birth_year)
        young = rng.random(n) < np.clip((birth_year - 1965) / 40.0, 0.0, 1.0)
        u = rng.random(n)
        i_old = np.searchsorted(self.old, u, side="right")
        i_young = np.searchsorted(self.young, u, side="right")
        idx = np.minimum(np.where(young, i_young, i_old), len(self.ids) - 1)
        return self.ids[idx]


_MALE_MIDDLE_T = _Table(_MALE_MIDDLE)
_FEMALE_MIDDLE_T = _Table(_FEMALE_MIDDLE)
_MALE_GIVEN_T = _Table(_MALE_GIVEN)
_FEMALE_GIVEN_T = _Table(_FEMALE_GIVEN)
_FAMILY_IDS = [_ids(list(t)) for t in _FAMILY_GROUPS.values()]
_FAMILY_CDF = [_cdf(list(t.values())) for t in _FAMILY_GROUPS.values()]
_THI = _VOCAB_ID["Thị"]
_VAN = _VOCAB_ID["Văn"]
_MALE_SECOND_IDS = _ids(_MALE_SECOND)
_FEMALE_SECOND_AFTER_THI_IDS = _ids(_FEMALE_SECOND_AFTER_THI)
_FEMALE_SECOND_IDS = _ids(_FEMALE_SECOND)
_HMONG_MALE_MIDDLE_IDS = _ids(_HMONG_MALE_MIDDLE)
_HMONG_MALE_GIVEN_IDS = _ids(_HMONG_MALE_GIVEN)
_HMONG_FEMALE_GIVEN_IDS = _ids(_HMONG_FEMALE_GIVEN)

_ETHNICITY_ARRAY = pa.array(list(_ETHNICITIES), type=pa.string())
_RELIGION_ARRAY = pa.array(list(_RELIGIONS), type=pa.string())
_PROVINCE_NAME_ARRAY = pa.array(list(_PROVINCE_NAMES), type=pa.string())
_RELATIONSHIP_ARRAY = pa.array(list(_ROLE_RELATIONSHIP), type=pa.string())
_SEX_ARRAY = pa.array(["M", "F"], type=pa.string())
_STATUS_ARRAY = pa.array(["alive", "deceased"], type=pa.string())
_STREET_ARRAY = pa.array([_nfc(s) for s in _STREETS], type=pa.string())
_VILLAGE_ARRAY = pa.array([_nfc(s) for s in _VILLAGE_WORDS], type=pa.string())
_BAN_ARRAY = pa.array(
    [_nfc(f"Bản {a} {b}") for a in _BAN_FIRST for b in _BAN_SECOND], type=pa.string()
)
_BUON_ARRAY = pa.array(
    [_nfc(f"Buôn {a} {b}") for a in _BUON_FIRST for b in _BUON_SECOND], type=pa.string()
)


# ---------------------------------------------------------------------------------------------
# Small numeric helpers

_U64 = np.uint64


def _mix(x: Arr) -> Arr:
    """splitmix64 finaliser over a uint64 array (wrapping arithmetic)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    out: Arr = x ^ (x >> _U64(31))
    return out


def _permute(values: Arr, keys: Arr, a: int, b: int, rounds: int = 4) -> Arr:
    """A keyed bijection of ``0 .. a*b-1`` (alternating Feistel network over Z_a x Z_b)."""
    left = values // b
    right = values % b
    for r in range(rounds):  # an even number of rounds brings the domains back to (a, b)
        round_key = keys + _U64((0x632BE59BD9B4E019 * (r + 1)) & 0xFFFFFFFFFFFFFFFF)
        f = _mix(right.astype(np.uint64) ^ round_key) % _U64(a)
        left, right = right, (left + f.astype(np.int64)) % a
        a, b = b, a
    out: Arr = left * b + right
    return out


def _seed_key(seed: int, salt: int) -> Arr:
    return _mix(np.array([(seed * 0x9E3779B1 + salt) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))


def _rank_in_groups(keys: Arr) -> Arr:
    """For each element, how many earlier elements share its key (stable)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    n = len(keys)
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - group_start
    return rank


def _ages(rng: np.random.Generator, n: int, lo: float, hi: float) -> Arr:
    """Ages in years within [lo, hi), distributed like the population pyramid."""
    overlap = np.clip(np.minimum(_BAND_EDGES + 5, hi) - np.maximum(_BAND_EDGES, lo), 0, None)
    w = _ANCHOR_PYRAMID * overlap
    band = np.searchsorted(_cdf(w), rng.random(n), side="right")
    band = np.minimum(band, len(w) - 1)
    a = np.maximum(_BAND_EDGES[band], lo)
    b = np.minimum(_BAND_EDGES[band] + 5, hi)
    out: Arr = a + rng.random(n) * (b - a)
    return out


def _mixture(rng: np.random.Generator, n: int, parts: Sequence[tuple[float, float, float]]) -> Arr:
    """Ages from a mixture of pyramid-shaped ranges ``(share, lo, hi)``."""
    shares = _cdf([p[0] for p in parts])
    which = np.searchsorted(shares, rng.random(n), side="right")
    out = np.zeros(n)
    for i, (_, lo, hi) in enumerate(parts):
        m = which == i
        out[m] = _ages(rng, int(m.sum()), lo, hi)
    return out


def _between(rng: np.random.Generator, lo: Arr, hi: Arr, a: float = 1.0, b: float = 1.0) -> Arr:
    """Integer days in [lo, hi] (hi < lo gives lo), beta(a, b)-shaped."""
    span = np.maximum(hi - lo, 0)
    u = rng.beta(a, b, len(lo)) if (a, b) != (1.0, 1.0) else rng.random(len(lo))
    out: Arr = lo + np.floor(u * (span + 1)).astype(np.int64).clip(0, span)
    return out


def _digits(values: Arr, width: int) -> Any:
    return pc.utf8_lpad(pc.cast(pa.array(values, type=pa.int64()), pa.string()), width, "0")


def _take(table: Any, idx: Arr) -> Any:
    return pc.take(table, pa.array(idx, type=pa.int64()))


def _take_nullable(table: Any, idx: Arr) -> Any:
    return pc.take(table, pa.array(idx, type=pa.int64(), mask=idx < 0))


# ---------------------------------------------------------------------------------------------
# The generator


class _Communes:
    """The commune table in array form."""

    def __init__(self, communes: Sequence[CommuneWeight]) -> None:
        if not communes:
            raise ValueError("at least one commune is needed")
        weights = np.array([float(c.weight) for c in communes], dtype=np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("commune weights must be finite, non-negative and not all zero")
        self.cdf = _cdf(weights)
        self.codes = pa.array([c.commune_code for c in communes], type=pa.string())
        flat: list[int] = []
        offsets: list[int] = []
        lengths: list[int] = []
        main_province: list[int] = []
        for c in communes:
            codes = [p for p in c.birth_place_codes if len(p) == 3 and p.isdigit()]
            if not codes:
                codes = [f"0{c.province_code[-2:]}"] if c.province_code.isdigit() else ["001"]
            offsets.append(len(flat))
            lengths.append(len(codes))
            flat.extend(int(p) for p in codes)
            main_province.append(_PROVINCE_INDEX.get(codes[0], -1))
        self.ppp_flat = np.array(flat, dtype=np.int64)
        self.ppp_offset = np.array(offsets, dtype=np.int64)
        self.ppp_len = np.array(lengths, dtype=np.int64)
        province = np.array(main_province, dtype=np.int64)
        # Unknown prefixes: a stable but arbitrary province for region, origin and CMND area.
        unknown = province < 0
        province[unknown] = self.ppp_flat[self.ppp_offset[unknown]] % len(_PROVINCES)
        self.province = province
        self.region = _PROVINCE_REGION[province]
        # The most populous 35% of communes (by weight, ties by order) are treated as urban.
        order = np.lexsort((np.arange(len(weights)), -weights))
        self.urban = np.zeros(len(weights), dtype=bool)
        self.urban[order[: max(1, math.ceil(0.35 * len(weights)))]] = True

    def pick(self, rng: np.random.Generator, n: int) -> Arr:
        out: Arr = np.minimum(
            np.searchsorted(self.cdf, rng.random(n), side="right"), len(self.cdf) - 1
        )
        return out


class _Generator:
    def __init__(self, seed: int, communes: Sequence[CommuneWeight], today: dt.date) -> None:
        self.seed = seed
        self.communes = _Communes(communes)
        self.today = (today - dt.date(1970, 1, 1)).days
        self.id_counts = np.zeros(_ID_BUCKETS, dtype=np.int64)
        self.cmnd_counts = np.zeros(100, dtype=np.int64)
        self.households = 0
        self.id_key = _seed_key(seed, 0x1D)
        self.cmnd_key = _seed_key(seed, 0xC3)

    # -- one block ------------------------------------------------------------------------

    def block(self, index: int, limit: int) -> tuple[pa.RecordBatch, Arr]:
        """Generate one block; keep at most ``limit`` people. Returns the batch and the
        household end offsets within it."""
        ss = np.random.SeedSequence(entropy=self.seed & ((1 << 128) - 1), spawn_key=(index,))
        rng = np.random.Generator(np.random.PCG64(ss))
        today = self.today
        H = _BLOCK_HOUSEHOLDS
        cm = self.communes

        # Household level ------------------------------------------------------------------
        htype = np.minimum(np.searchsorted(_cdf(_TYPE_P), rng.random(H), side="right"), 5)
        commune = cm.pick(rng, H)
        region = cm.region[commune]
        u = rng.random((H, 8))
        cnt = np.zeros((H, _N_ROLES), dtype=np.int64)
        cnt[:, _HEAD] = 1
        couple_type = np.isin(htype, (_COUPLE, _NUCLEAR))
        cnt[:, _SPOUSE] = (
            couple_type
            | ((htype == _WITH_PARENTS) & (u[:, 0] < 0.9))
            | ((htype == _WITH_GRANDCHILDREN) & (u[:, 0] < 0.78))
        )
        cnt[:, _PARENT] = np.where(htype == _WITH_PARENTS, 1 + (u[:, 1] < 0.55), 0)
        cnt[:, _MCHILD] = htype == _WITH_GRANDCHILDREN
        n_child = np.select(
            [
                htype == _NUCLEAR,
                htype == _LONE_PARENT,
                htype == _WITH_PARENTS,
                htype == _WITH_GRANDCHILDREN,
            ],
            [
                1 + np.searchsorted(_cdf([18, 45, 25, 12]), u[:, 2], side="right"),
                1 + np.searchsorted(_cdf([55, 35, 10]), u[:, 2], side="right"),
                np.searchsorted(_cdf([20, 35, 35, 10]), u[:, 2], side="right"),
                np.searchsorted(_cdf([70, 22, 8]), u[:, 2], side="right"),
            ],
            0,
        )
        cnt[:, _CSPOUSE] = (htype == _WITH_GRANDCHILDREN) & (u[:, 3] < 0.93)
        cnt[:, _SIBLING] = (htype <= _WITH_PARENTS) & (htype != _LONE_PARENT) & (u[:, 5] < 0.03)
        cnt[:, _OTHER] = u[:, 6] < 0.02

        # Anchor ages: the wife (or the only adult) and the husband.
        wife_age = np.zeros(H)
        for t, parts in (
            (_SINGLE, ((18, 18, 35), (22, 35, 60), (60, 60, 98))),
            (_COUPLE, ((20, 20, 30), (80, 50, 85))),
            (_NUCLEAR, ((1, 23, 52),)),
            (_LONE_PARENT, ((1, 25, 60),)),
            (_WITH_PARENTS, ((1, 25, 50),)),
            (_WITH_GRANDCHILDREN, ((1, 45, 92),)),
        ):
            m = htype == t
            wife_age[m] = _mixture(rng, int(m.sum()), parts)
        gap = np.clip(rng.normal(3.5, 3.5, H), -4, 15)
        single_adult = (htype == _SINGLE) | (htype == _LONE_PARENT)
        husband_age = np.where(single_adult, wife_age, np.clip(wife_age + gap, 20, 99))
        wife_b = today - np.floor(wife_age * _YEAR).astype(np.int64)
        husband_b = today - np.floor(husband_age * _YEAR).astype(np.int64)
        head_male = np.select(
            [htype == _SINGLE, htype == _LONE_PARENT, cnt[:, _SPOUSE] == 0],
            [u[:, 7] < 0.5, u[:, 7] < 0.2, u[:, 7] < 0.35],
            u[:, 7] < 0.78,
        )
        head_b = np.where(head_male, husband_b, wife_b)

        # Head's parents (three generations, upwards).
        mab = 18 + 27 * rng.beta(2.0, 3.0, H)
        hp_mother_b = head_b - np.floor(mab * _YEAR).astype(np.int64)
        hp_gap = np.floor(np.clip(rng.normal(3.5, 3.5, H), -4, 15) * _YEAR).astype(np.int64)
        hp_father_b = np.clip(hp_mother_b - hp_gap, head_b - _D45, head_b - _D18)
        lone_parent_male = rng.random(H) < 0.3

        # Married child (three generations, downwards) and their spouse.
        young = np.maximum(husband_b, wife_b)
        old = np.minimum(husband_b, wife_b)
        mchild_b = _between(
            rng, young + _D18, np.minimum(old + _D45, today - int(21 * _YEAR)), 2.0, 2.5
        )
        mchild_male = rng.random(H) < 0.8
        cs_gap = np.floor(np.clip(rng.normal(3.0, 3.0, H), -3, 12) * _YEAR).astype(np.int64)
        cspouse_b = np.where(mchild_male, mchild_b + cs_gap, mchild_b - cs_gap)
        cspouse_b = np.minimum(cspouse_b, today - int(19 * _YEAR))

        # Children: the mother's first birth at ~25, then one every few years, kept within
        # both parents' 18th to 45th years and not in the future; those not born yet are not
        # counted. The head's other children in an elderly household follow the married child.
        down = htype == _WITH_GRANDCHILDREN
        c_lo = np.maximum(husband_b, wife_b) + _D18
        c_hi = np.minimum(np.minimum(husband_b, wife_b) + _D45, today)
        kid_b = self._births(rng, np.where(down, mchild_b, wife_b), c_lo, down)
        born = np.minimum(n_child, (kid_b <= c_hi[:, None]).sum(axis=1))
        # Grown-up children have mostly left home (they head households of their own).
        leave_b = today - np.floor((18 + rng.gamma(2.0, 4.0, H)) * _YEAR).astype(np.int64)
        left = np.where(down, 0, np.minimum((kid_b < leave_b[:, None]).sum(axis=1), born))
        cnt[:, _CHILD] = born - left
        g_mother_b = np.where(mchild_male, cspouse_b, mchild_b)
        g_lo = np.maximum(mchild_b, cspouse_b) + _D18
        g_hi = np.minimum(np.minimum(mchild_b, cspouse_b) + _D45, today)
        gkid_b = self._births(rng, g_mother_b, g_lo, np.zeros(H, dtype=bool))
        n_gchild = np.where(down, np.searchsorted(_cdf([10, 35, 40, 15]), u[:, 4], side="right"), 0)
        cnt[:, _GCHILD] = np.minimum(n_gchild, (gkid_b <= g_hi[:, None]).sum(axis=1))
        sizes = cnt.sum(axis=1)

        # Member level -----------------------------------------------------------------------
        flat = cnt.ravel()
        total = int(sizes.sum())
        hh = np.repeat(np.arange(H), sizes)
        role = np.repeat(np.tile(np.arange(_N_ROLES), H), flat)
        group_start = np.cumsum(flat) - flat  # position of each (household, role) group
        k = np.arange(total) - np.repeat(group_start, flat)
        role_pos = group_start.reshape(H, _N_ROLES)  # first member of each role
        has = cnt > 0

        male = np.zeros(total, dtype=bool)
        rnd_sex = rng.random(total) < 0.512
        hm = head_male[hh]
        two_parents = cnt[hh, _PARENT] == 2
        male = np.select(
            [role == _HEAD, role == _SPOUSE, role == _PARENT, role == _MCHILD, role == _CSPOUSE],
            [
                hm,
                ~hm,
                np.where(two_parents, k == 0, lone_parent_male[hh]),
                mchild_male[hh],
                ~mchild_male[hh],
            ],
            rnd_sex,
        )

        # Birth dates.
        birth = np.zeros(total, dtype=np.int64)
        hb = head_b[hh]
        birth = np.where(role == _HEAD, hb, birth)
        birth = np.where(role == _SPOUSE, np.where(hm, wife_b[hh], husband_b[hh]), birth)
        birth = np.where(role == _PARENT, np.where(male, hp_father_b[hh], hp_mother_b[hh]), birth)
        birth = np.where(role == _MCHILD, mchild_b[hh], birth)
        birth = np.where(role == _CSPOUSE, cspouse_b[hh], birth)
        m = role == _SIBLING
        sib = hb[m] + rng.integers(-int(8 * _YEAR), int(8 * _YEAR), int(m.sum()))
        with_parents = has[hh[m], _PARENT]
        p_young = np.maximum(hp_father_b, hp_mother_b)[hh[m]] + _D18
        p_old = np.minimum(hp_father_b, hp_mother_b)[hh[m]] + _D45
        sib = np.where(with_parents, np.clip(sib, p_young, p_old), sib)
        birth[m] = np.minimum(sib, today)
        m = role == _OTHER
        birth[m] = today - np.floor(_ages(rng, int(m.sum()), 0, 90) * _YEAR).astype(np.int64)

        m = role == _CHILD
        birth[m] = kid_b[hh[m], np.minimum(k[m] + left[hh[m]], _MAX_KIDS - 1)]
        m = role == _GCHILD
        birth[m] = gkid_b[hh[m], np.minimum(k[m], _MAX_KIDS - 1)]

        # Links (local indices, -1 for none).
        pos_head = role_pos[:, _HEAD]
        pos_spouse = np.where(has[:, _SPOUSE], role_pos[:, _SPOUSE], -1)
        pos_husband = np.where(head_male, pos_head, pos_spouse)
        pos_wife = np.where(head_male, pos_spouse, pos_head)
        two = cnt[:, _PARENT] == 2
        one = cnt[:, _PARENT] == 1
        pos_hp_father = np.where(two | (one & lone_parent_male), role_pos[:, _PARENT], -1)
        pos_hp_mother = np.where(
            two,
            role_pos[:, _PARENT] + 1,
            np.where(one & ~lone_parent_male, role_pos[:, _PARENT], -1),
        )
        pos_mchild = np.where(has[:, _MCHILD], role_pos[:, _MCHILD], -1)
        pos_cspouse = np.where(has[:, _CSPOUSE], role_pos[:, _CSPOUSE], -1)
        pos_g_father = np.where(mchild_male, pos_mchild, pos_cspouse)
        pos_g_mother = np.where(mchild_male, pos_cspouse, pos_mchild)

        is_head = role == _HEAD
        is_child = (role == _CHILD) | (role == _MCHILD)
        is_gchild = role == _GCHILD
        of_head = is_head | (role == _SIBLING)
        father = np.select(
            [of_head, is_child, is_gchild],
            [pos_hp_father[hh], pos_husband[hh], pos_g_father[hh]],
            -1,
        )
        mother = np.select(
            [of_head, is_child, is_gchild], [pos_hp_mother[hh], pos_wife[hh], pos_g_mother[hh]], -1
        )
        hp_spouse_of = np.where(k == 0, pos_hp_mother[hh], pos_hp_father[hh])
        spouse = np.select(
            [
                is_head,
                role == _SPOUSE,
                (role == _PARENT) & two[hh],
                role == _MCHILD,
                role == _CSPOUSE,
            ],
            [pos_spouse[hh], pos_head[hh], hp_spouse_of, pos_cspouse[hh], pos_mchild[hh]],
            -1,
        )

        # The block is computed whole (so that a smaller population is a prefix of a larger
        # one) and cut at the end to the number of people still wanted.
        n = total
        keep = min(total, limit)
        kept = np.arange(n) < keep
        n_households = int(hh[keep - 1]) + 1 if keep else 0
        sizes = sizes[:n_households].copy()
        if n_households:
            sizes[-1] -= int(sizes.sum()) - keep
        for link in (father, mother, spouse):
            link[link >= keep] = -1
        hh_first = self.households
        self.households += n_households

        age_days = today - birth
        age = age_days / _YEAR
        birth_year = birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970

        # Deaths: never the head; more likely with age; after birth and after the youngest
        # child's birth, within the last twelve years, not in the future.
        p_death = np.select(
            [age < 40, age < 60, age < 75, age < 85], [0.004, 0.015, 0.08, 0.22], 0.38
        )
        dead = (rng.random(n) < p_death) & ~is_head
        last_child = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        for link in (father, mother):
            ok = link >= 0
            np.maximum.at(last_child, link[ok], birth[ok])
        lo = np.maximum(np.maximum(birth, last_child), today - int(12 * _YEAR))
        death = _between(rng, lo, np.full(n, today - 1, dtype=np.int64))
        death = np.minimum(death, today)

        # Partial birth dates, more frequent among the old.
        p_partial = np.select([birth_year < 1960, birth_year < 1990], [0.05, 0.012], 0.003)
        partial = rng.random(n) < p_partial
        year_only = partial & (rng.random(n) < 0.55)
        month_only = partial & ~year_only

        # Place of birth (ID prefix) and personal IDs.
        c_of = commune[hh]
        r = rng.random(n)
        local = cm.ppp_flat[
            cm.ppp_offset[c_of]
            + (rng.random(n) * cm.ppp_len[c_of]).astype(np.int64).clip(0, cm.ppp_len[c_of] - 1)
        ]
        elsewhere = _PROVINCE_CODE_NUM[rng.integers(0, len(_PROVINCES), n)]
        abroad = rng.integers(101, 296, n)
        ppp = np.where(r < 0.002, abroad, np.where(r < 0.102, elsewhere, local))
        g = (birth_year // 100 - 19) * 2 + (~male).astype(np.int64)
        g = np.clip(g, 0, 9)
        yy = birth_year % 100
        bucket = ppp * 1000 + g * 100 + yy
        counter = self.id_counts[bucket] + _rank_in_groups(bucket)
        if keep and int(counter[:keep].max()) >= _ID_SPACE:
            raise RuntimeError("too many people in one ID bucket (PPP G YY)")
        self.id_counts += np.bincount(bucket[:keep], minlength=_ID_BUCKETS)
        rrr = _permute(counter, _mix(self.id_key ^ bucket.astype(np.uint64)), 1000, 1000)
        pid_num = ppp * 1_000_000_000 + g * 100_000_000 + yy * 1_000_000 + rrr
        pid = _digits(pid_num, 12)

        # Legacy 9-digit CMND for most of those old enough before 2016-2021.
        p_cmnd = np.select([birth_year <= 2000, birth_year <= 2003], [0.9, 0.35], 0.0)
        has_cmnd = rng.random(n) < p_cmnd
        known = _PPP_PROVINCE[ppp]
        birth_province = np.where(known >= 0, known, cm.province[c_of])
        area = _PROVINCE_CMND_AREA[
            np.where(rng.random(n) < 0.75, birth_province, cm.province[c_of])
        ]
        area_c = area[has_cmnd]
        cmnd_counter = self.cmnd_counts[area_c] + _rank_in_groups(area_c)
        if len(area_c) and int(cmnd_counter.max()) >= _CMND_SPACE:
            raise RuntimeError("too many legacy numbers in one issuing area")
        self.cmnd_counts += np.bincount(area[has_cmnd & kept], minlength=100)
        cmnd_num = np.full(n, -1, dtype=np.int64)
        cmnd_num[has_cmnd] = area_c * _CMND_SPACE + _permute(
            cmnd_counter, _mix(self.cmnd_key ^ area_c.astype(np.uint64)), 1000, 10_000
        )

        # Ethnicity, religion, names, origin (children follow their father).
        h_region = region[hh]
        h_eth = self._ethnicity(rng, region)
        own_eth = self._ethnicity(rng, h_region)
        same = rng.random(n) < np.where(role == _OTHER, 0.0, 0.9)
        eth = np.where(same, h_eth[hh], own_eth)
        head_row = pos_head[hh]
        orphan_sibling = (role == _SIBLING) & (father < 0) & (mother < 0)
        eth = np.where(orphan_sibling, eth[head_row], eth)
        eth = self._follow(eth, father, mother)

        religion = self._religion(rng, region, h_eth)[hh]

        south = np.isin(h_region, _SOUTH_REGIONS)
        fgroup = _ETH_FAMILY_GROUP[eth]
        fgroup = np.where((eth == 0) & south, _FG["kinh_south"], fgroup)
        fam = self._family(rng, fgroup)
        # Brothers and sisters whose father is not in the household share one family name.
        absent_father_fam = self._family(rng, fgroup)
        is_child_row = (role == _CHILD) | (role == _MCHILD)
        fam = np.where(is_child_row & (father < 0), absent_father_fam[head_row], fam)
        second = absent_father_fam[np.minimum(head_row + 1, n - 1)]
        fam = np.where((role == _GCHILD) & (father < 0), second, fam)
        fam = np.where((role == _SIBLING) & (father < 0), fam[head_row], fam)
        fam = self._follow(fam, father, np.full(n, -1, dtype=np.int64))

        origin_own = np.where(rng.random(n) < 0.7, birth_province, cm.province[c_of])
        origin_own = np.where(orphan_sibling, origin_own[head_row], origin_own)
        origin = self._follow(origin_own, father, mother)

        middle1, middle2, given = self._given_names(rng, male, birth_year, eth)
        # Some children born since 2000 also carry their mother's family name.
        extra = np.full(n, _NONE, dtype=np.int64)
        with_mother = (mother >= 0) & (birth_year >= 2000) & (rng.random(n) < 0.06)
        extra[with_mother] = fam[mother[with_mother]]
        extra = np.where(extra == fam, _NONE, extra)

        full_name = pc.binary_join_element_wise(
            _take(_VOCAB_SPACED, fam),
            _take(_VOCAB_SPACED, extra),
            _take(_VOCAB_SPACED, middle1),
            _take(_VOCAB_SPACED, middle2),
            _take(_VOCAB_BARE, given),
            "",
        )

        # Dates as text.
        birth_full = pc.cast(pa.array(birth.astype(np.int32), type=pa.date32()), pa.string())
        birth_text = pc.if_else(
            pa.array(year_only),
            pc.utf8_slice_codeunits(birth_full, 0, 4),
            pc.if_else(pa.array(month_only), pc.utf8_slice_codeunits(birth_full, 0, 7), birth_full),
        )
        death_text = pc.cast(
            pa.array(death.astype(np.int32), type=pa.date32(), mask=~dead), pa.string()
        )

        # Phones for most living adults.
        p_phone = np.select([age < 16, age < 75], [0.0, 0.74], 0.35)
        has_phone = (rng.random(n) < p_phone) & ~dead
        phone_num = _PHONE_PREFIXES[
            rng.integers(0, len(_PHONE_PREFIXES), n)
        ] * 10_000_000 + rng.integers(0, 10_000_000, n)
        phone = pc.utf8_lpad(
            pc.cast(pa.array(phone_num, type=pa.int64(), mask=~has_phone), pa.string()), 10, "0"
        )

        # Household-level text.
        hh_ids = pc.binary_join_element_wise(
            "HH", _digits(np.arange(hh_first + 1, hh_first + 1 + H), 10), ""
        )
        address = self._addresses(rng, commune, region)

        columns = {
            "personal_id": pid,
            "full_name": full_name,
            "birth_date": birth_text,
            "sex": _take(_SEX_ARRAY, (~male).astype(np.int64)),
            "status": _take(_STATUS_ARRAY, dead.astype(np.int64)),
            "death_date": death_text,
            "legacy_id_number": _digits_nullable(cmnd_num, 9),
            "permanent_commune_code": _take(cm.codes, c_of),
            "permanent_address": _take(address, hh),
            "household_id": _take(hh_ids, hh),
            "relationship_to_head": _take(_RELATIONSHIP_ARRAY, role),
            "father_id": _take_nullable(pid, father),
            "mother_id": _take_nullable(pid, mother),
            "spouse_id": _take_nullable(pid, spouse),
            "ethnicity": _take(_ETHNICITY_ARRAY, eth),
            "religion": _take(_RELIGION_ARRAY, religion),
            "nationality": _take(_NATIONALITY, np.zeros(n, dtype=np.int64)),
            "place_of_origin": _take(_PROVINCE_NAME_ARRAY, origin),
            "phone": phone,
        }
        batch = pa.RecordBatch.from_arrays([columns[c] for c in INTERCHANGE_COLUMNS], schema=SCHEMA)
        return batch.slice(0, keep), np.cumsum(sizes)

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _births(rng: np.random.Generator, base: Arr, lo: Arr, after_base: Arr) -> Arr:
        """Birth days of up to ``_MAX_KIDS`` children per household, eldest first: the first
        at the mother's age ~25 after ``base`` (or a few years after ``base`` where
        ``after_base``: younger siblings of a child born on ``base``), then every few years;
        never before ``lo``."""
        n = len(base)
        gaps = 1.2 + rng.gamma(2.0, 0.9, (n, _MAX_KIDS))
        gaps[:, 0] = np.where(after_base, gaps[:, 0], 19.0 + rng.gamma(3.0, 1.8, n))
        out: Arr = np.maximum(
            base[:, None] + np.floor(np.cumsum(gaps, axis=1) * _YEAR).astype(np.int64),
            lo[:, None],
        )
        return out

    @staticmethod
    def _follow(values: Arr, father: Arr, mother: Arr) -> Arr:
        """Children take their father's value, or their mother's when the father is not in
        the household (three generations deep at most)."""
        parent = np.where(father >= 0, father, mother)
        has_parent = parent >= 0
        idx = np.where(has_parent, parent, 0)
        for _ in range(3):
            values = np.where(has_parent, values[idx], values)
        return values

    @staticmethod
    def _ethnicity(rng: np.random.Generator, region: Arr) -> Arr:
        u = rng.random(len(region))
        cdf = _REGION_ETHNICITY_CDF[region]
        out: Arr = np.minimum((u[:, None] > cdf).sum(axis=1), len(_ETHNICITIES) - 1)
        return out

    @staticmethod
    def _religion(rng: np.random.Generator, region: Arr, eth: Arr) -> Arr:
        table = np.where(
            (region == _MK)[:, None],
            _REL_MEKONG,
            np.where((region == _SE)[:, None], _REL_SOUTHEAST, _REL_DEFAULT),
        )
        for names, cdf in (
            (("Khmer",), _REL_KHMER),
            (("Hoa",), _REL_HOA),
            (("Chăm", "Ra Glai"), _REL_CHAM),
            (
                ("H'Mông", "Gia Rai", "Ê Đê", "Ba Na", "Xơ Đăng", "Cơ Ho", "Mnông", "Xtiêng"),
                _REL_HIGHLAND,
            ),
        ):
            m = np.isin(eth, [_E[_nfc(x)] for x in names])
            table[m] = cdf
        u = rng.random(len(region))
        out: Arr = np.minimum((u[:, None] > table).sum(axis=1), len(_RELIGIONS) - 1)
        return out

    @staticmethod
    def _family(rng: np.random.Generator, group: Arr) -> Arr:
        u = rng.random(len(group))
        out = np.empty(len(group), dtype=np.int64)
        for gi in range(len(_FAMILY_GROUP_NAMES)):
            m = group == gi
            if m.any():
                idx = np.searchsorted(_FAMILY_CDF[gi], u[m], side="right")
                out[m] = _FAMILY_IDS[gi][np.minimum(idx, len(_FAMILY_IDS[gi]) - 1)]
        return out

    @staticmethod
    def _given_names(
        rng: np.random.Generator, male: Arr, birth_year: Arr, eth: Arr
    ) -> tuple[Arr, Arr, Arr]:
        n = len(male)
        female = ~male
        m1 = np.where(
            male, _MALE_MIDDLE_T.draw(rng, birth_year), _FEMALE_MIDDLE_T.draw(rng, birth_year)
        )
        given = np.where(
            male, _MALE_GIVEN_T.draw(rng, birth_year), _FEMALE_GIVEN_T.draw(rng, birth_year)
        )
        u = rng.random(n)
        pick = rng.integers(0, 1 << 30, n)
        m2 = np.full(n, _NONE, dtype=np.int64)
        second_m = male & (u < 0.06)
        m2[second_m] = _MALE_SECOND_IDS[pick[second_m] % len(_MALE_SECOND_IDS)]
        second_thi = female & (m1 == _THI) & (u < 0.15)
        m2[second_thi] = _FEMALE_SECOND_AFTER_THI_IDS[
            pick[second_thi] % len(_FEMALE_SECOND_AFTER_THI_IDS)
        ]
        second_f = female & (m1 != _THI) & (u < 0.06)
        m2[second_f] = _FEMALE_SECOND_IDS[pick[second_f] % len(_FEMALE_SECOND_IDS)]
        # H'Mông naming: "A"/"Seo"/"Mí" for men, own given names.
        hmong = eth == _E[_nfc("H'Mông")]
        hm_m = hmong & male & (u < 0.85)
        m1[hm_m] = _HMONG_MALE_MIDDLE_IDS[pick[hm_m] % len(_HMONG_MALE_MIDDLE_IDS)]
        m2[hmong] = _NONE
        hm_g = hmong & (rng.random(n) < 0.7)
        given[hm_g & male] = _HMONG_MALE_GIVEN_IDS[pick[hm_g & male] % len(_HMONG_MALE_GIVEN_IDS)]
        given[hm_g & female] = _HMONG_FEMALE_GIVEN_IDS[
            pick[hm_g & female] % len(_HMONG_FEMALE_GIVEN_IDS)
        ]
        # No middle name at all for a few; no repeated word.
        m1 = np.where(u > 0.98, _NONE, m1)
        m1 = np.where(m1 == given, np.where(male, _VAN, _THI), m1)
        m2 = np.where((m2 == given) | (m2 == m1), _NONE, m2)
        return m1, m2, given

    def _addresses(self, rng: np.random.Generator, commune: Arr, region: Arr) -> Any:
        """A street part of the permanent residence for each household."""
        H = len(commune)
        urban = self.communes.urban[commune]
        south = pa.array(np.isin(region, _SOUTH_REGIONS))
        u = rng.random(H)
        # 0 house in an alley, 1 house on a street, 2 residential group, 3 flat, 4 village.
        kind = np.where(
            urban,
            np.searchsorted(_cdf([45, 30, 15, 10, 0]), u, side="right"),
            np.searchsorted(_cdf([4, 8, 3, 0, 85]), u, side="right"),
        )
        kind = np.minimum(kind, 4)

        def num(values: Arr) -> Any:
            return pc.cast(pa.array(values, type=pa.int64()), pa.string())

        join = pc.binary_join_element_wise
        house = num(1 + np.floor(rng.gamma(1.3, 35.0, H)).astype(np.int64).clip(0, 998))
        street = _take(_STREET_ARRAY, rng.integers(0, len(_STREETS), H))
        alley = join(pc.if_else(south, "hẻm", "ngõ"), num(rng.integers(1, 400, H)), " ")
        k0 = join("Số ", house, ", ", alley, ", đường ", street, "")
        k1 = join("Số ", house, ", đường ", street, "")
        k2 = join(pc.if_else(south, "Khu phố", "Tổ dân phố"), num(rng.integers(1, 40, H)), " ")
        tower = join(
            _take(_TOWER_LETTERS, rng.integers(0, len(_TOWER_LETTERS), H)),
            num(rng.integers(1, 7, H)),
            "",
        )
        k3 = join(
            "Căn hộ ",
            num(rng.integers(2, 35, H) * 100 + rng.integers(1, 25, H)),
            ", tòa ",
            tower,
            "",
        )
        v = rng.random(H)
        numbered = num(rng.integers(1, 25, H))
        named = _take(_VILLAGE_ARRAY, rng.integers(0, len(_VILLAGE_WORDS), H))
        word = pc.if_else(south, "Ấp", pc.if_else(pa.array(v < 0.25), "Xóm", "Thôn"))
        village = join(word, pc.if_else(pa.array(rng.random(H) < 0.65), numbered, named), " ")
        mountain = pa.array(np.isin(region, (_NE, _NW)) & (v > 0.5))
        highland = pa.array((region == _CH) & (v > 0.6))
        village = pc.if_else(
            mountain, _take(_BAN_ARRAY, rng.integers(0, len(_BAN_ARRAY), H)), village
        )
        village = pc.if_else(
            highland, _take(_BUON_ARRAY, rng.integers(0, len(_BUON_ARRAY), H)), village
        )
        candidates = pa.concat_arrays([k0, k1, k2, k3, village])
        return _take(candidates, kind * H + np.arange(H))


_NATIONALITY = pa.array([_nfc("Việt Nam")], type=pa.string())
_TOWER_LETTERS = pa.array(list("ABCDE"), type=pa.string())
# Legacy province index of each ID prefix (-1 for countries and unknown codes).
_PPP_PROVINCE = np.full(1000, -1, dtype=np.int64)
_PPP_PROVINCE[_PROVINCE_CODE_NUM] = np.arange(len(_PROVINCES))


def _digits_nullable(values: Arr, width: int) -> Any:
    return pc.utf8_lpad(
        pc.cast(pa.array(values, type=pa.int64(), mask=values < 0), pa.string()), width, "0"
    )


# ---------------------------------------------------------------------------------------------
# Public API


def generate(
    n: int,
    seed: int,
    communes: Sequence[CommuneWeight],
    *,
    batch_size: int = 100_000,
    today: dt.date = dt.date(2026, 1, 1),
) -> Iterator[pa.RecordBatch]:
    """Yield exactly ``n`` synthetic people as record batches of :data:`SCHEMA`.

    Batches hold at most ``batch_size`` rows (a single household larger than that is never
    split) and always whole households. The rows depend only on ``(n, seed, communes, today)``,
    not on ``batch_size``.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    gen = _Generator(seed, communes, today)
    done = 0
    block = 0
    pending: list[pa.RecordBatch] = []
    bounds = np.zeros(0, dtype=np.int64)  # household ends within the pending rows
    pending_rows = 0
    while done < n:
        batch, ends = gen.block(block, n - done)
        block += 1
        done += batch.num_rows
        pending.append(batch)
        bounds = np.concatenate([bounds, ends + pending_rows])
        pending_rows += batch.num_rows
        while pending_rows >= batch_size or (done >= n and pending_rows):
            fits = int(np.searchsorted(bounds, batch_size, side="right"))
            cut = int(bounds[fits - 1]) if fits else int(bounds[0])
            table = pa.Table.from_batches(pending, schema=SCHEMA)
            head = table.slice(0, cut).combine_chunks()
            yield head.to_batches(max_chunksize=cut)[0]
            rest = table.slice(cut)
            pending = rest.to_batches() if rest.num_rows else []
            bounds = bounds[fits if fits else 1 :] - cut
            pending_rows -= cut
