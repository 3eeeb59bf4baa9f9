"""The 12-digit personal identification number: ``PPP G YY RRRRRR`` (DOMAIN.md).

PPP is the province (001-096, the 63-province codes) or country (101-295) where the birth was
registered; G gives century and sex (century = 19 + G // 2, female when G is odd); YY is the
birth year within the century; RRRRRR is random. There is no check digit. The law guarantees
only 12 digits (Law 26/2023, Decree 70/2024), so the structure explains and flags, never
refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

# The 63 provinces before 2025, by GSO code: the PPP prefixes. Numbers keep their prefix
# after the 2025 mergers.
PROVINCE_PREFIXES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu", "079": "TP Hồ Chí Minh", "080": "Long An",
    "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long",
    "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}
ABROAD_RANGE = range(101, 296)
_DIGITS = frozenset("0123456789")
_STRIP = str.maketrans("", "", " .-\u00a0\t")


def normalise_id(value: str) -> str:
    """Remove spaces, dots and hyphens (``001 085.000 123`` → ``001085000123``); no validation."""
    return value.translate(_STRIP)


def is_personal_id(value: str) -> bool:
    """12 ASCII digits."""
    return len(value) == 12 and _DIGITS.issuperset(value)


def is_legacy_id(value: str) -> bool:
    """A CMND number: 9 or 12 ASCII digits."""
    return len(value) in (9, 12) and _DIGITS.issuperset(value)


@dataclass(frozen=True, slots=True)
class IdExplanation:
    place_code: str
    place_name: str | None
    born_abroad: bool
    century: int
    sex: str
    birth_year: int
    serial: str


def explain(pid: str) -> IdExplanation:
    """What the structure of ``pid`` says; ValueError when it is not 12 digits."""
    if not is_personal_id(pid):
        raise ValueError(f"{pid!r} is not a 12-digit personal ID number")
    place = pid[:3]
    g = int(pid[3])
    century = 19 + g // 2
    abroad = int(place) in ABROAD_RANGE
    name = PROVINCE_PREFIXES.get(place) or (f"abroad (country code {place})" if abroad else None)
    return IdExplanation(
        place_code=place,
        place_name=name,
        born_abroad=abroad,
        century=century,
        sex="F" if g % 2 else "M",
        birth_year=century * 100 + int(pid[4:6]),
        serial=pid[6:],
    )


def check_consistency(pid: str, birth_year: int, sex: str) -> list[str]:
    """Data-quality findings for ``pid`` against the record's birth year and sex (empty if none)."""
    info = explain(pid)
    findings = []
    if info.birth_year != birth_year:
        findings.append(
            f"the number says born in {info.birth_year}, the record says {birth_year}"
        )
    if info.sex != sex:
        findings.append(f"the number says sex {info.sex}, the record says {sex}")
    if info.place_name is None:
        findings.append(f"place code {info.place_code} is neither a province nor a country")
    return findings


def prefix_for(place_code: str, birth_year: int, sex: str) -> str:
    """The ``PPPGYY`` prefix for a number allocated at birth registration."""
    if not (len(place_code) == 3 and place_code.isdigit()):
        raise ValueError(f"place code {place_code!r} is not 3 digits")
    if place_code not in PROVINCE_PREFIXES and int(place_code) not in ABROAD_RANGE:
        raise ValueError(f"place code {place_code} is neither a province nor a country")
    if not 1900 <= birth_year <= 2399:
        raise ValueError(f"birth year {birth_year} is outside 1900-2399")
    if sex not in ("M", "F"):
        raise ValueError(f"sex {sex!r} is not M or F")
    g = (birth_year // 100 - 19) * 2 + (1 if sex == "F" else 0)
    return f"{place_code}{g}{birth_year % 100:02d}"
