"""The 12-digit personal identification number ``PPP G YY RRRRRR`` (DOMAIN.md).

PPP is the province (the 63-province GSO codes, 001-096) or country (101-295) where the birth was
registered; G gives century and sex (century = 19 + G // 2, female when G is odd); YY is the
birth year within the century; RRRRRR is random. There is no check digit. The law guarantees
only "12 digits" (Law 26/2023, Decree 70/2024), so the structure explains and flags
(:func:`check_consistency`), never refuses a record.
"""

from __future__ import annotations

from dataclasses import dataclass

from dancu.vn.sex import Sex, parse_sex

__all__ = [
    "ABROAD_RANGE",
    "PROVINCE_PREFIXES",
    "IdExplanation",
    "check_consistency",
    "explain",
    "is_legacy_id",
    "is_personal_id",
    "normalise_id",
    "place_name",
    "prefix_for",
]

# The 63 provinces before the 2025 mergers, by GSO province code prefixed with 0: the PPP of
# the number. Numbers keep their prefix after the mergers. (Cross-checked in the tests against
# the admin_units_legacy table shipped by vietnamadminunits.)
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
}  # fmt: skip

ABROAD_RANGE = range(101, 296)
"""PPP codes of countries, for births registered abroad."""

_SEPARATORS = str.maketrans("", "", ".-\u2010\u2011\u2012\u2013")


def normalise_id(value: str) -> str:
    """Remove whitespace, dots and hyphens (``001 085.000-123`` -> ``001085000123``).

    CONTRACTS §3 ``invalid_id`` is judged after this; nothing is validated here.
    """
    return "".join(value.split()).translate(_SEPARATORS)


def is_personal_id(value: str) -> bool:
    """True for exactly 12 ASCII digits (DOMAIN.md: the law guarantees only that)."""
    return len(value) == 12 and value.isascii() and value.isdigit()


def is_legacy_id(value: str) -> bool:
    """True for an old CMND number: 9 or 12 ASCII digits."""
    return len(value) in (9, 12) and value.isascii() and value.isdigit()


def all_digits(text: str) -> bool:
    """True if ``text`` is ASCII digits only (and not empty): for many numbers joined, as a
    batch checks its 10,000 at once. The check runs on the bytes, a table look-up a byte,
    about a tenth of ``str.isdigit``'s time (which asks Unicode's tables a character)."""
    return text.isascii() and text.encode("ascii").isdigit()


def place_name(place_code: str) -> str | None:
    """Province name for 001-096, ``abroad (country code NNN)`` for 101-295, else None."""
    name = PROVINCE_PREFIXES.get(place_code)
    if name is not None:
        return name
    if len(place_code) == 3 and place_code.isascii() and place_code.isdigit():
        if int(place_code) in ABROAD_RANGE:
            return f"abroad (country code {place_code})"
    return None


@dataclass(frozen=True, slots=True)
class IdExplanation:
    """What the structure ``PPP G YY RRRRRR`` of a personal ID says (DOMAIN.md)."""

    place_code: str
    place_name: str | None
    born_abroad: bool
    century: int
    sex: Sex
    birth_year: int
    serial: str


def explain(pid: str) -> IdExplanation:
    """Decode ``pid``: place, century (19 + G // 2), sex (G odd = F), birth year, serial.

    ValueError unless ``pid`` is 12 ASCII digits (apply :func:`normalise_id` first).
    """
    if not is_personal_id(pid):
        raise ValueError(f"{pid!r} is not a 12-digit personal ID number")
    place = pid[:3]
    g = ord(pid[3]) - 48
    century = 19 + g // 2
    return IdExplanation(
        place_code=place,
        place_name=place_name(place),
        born_abroad=int(place) in ABROAD_RANGE,
        century=century,
        sex="F" if g % 2 else "M",
        birth_year=century * 100 + int(pid[4:6]),
        serial=pid[6:],
    )


def check_consistency(pid: str, birth_year: int, sex: str) -> list[str]:
    """Data-quality findings of ``pid`` against a record's birth year and sex; [] if consistent.

    DOMAIN.md: a finding, never a refusal. A number that is not 12 digits is itself a finding.
    """
    if not is_personal_id(pid):
        return [f"{pid!r} is not a 12-digit personal ID number"]
    info = explain(pid)
    findings: list[str] = []
    if birth_year // 100 != info.century:
        findings.append(
            f"century digit {pid[3]} means born {info.century}00-{info.century}99, "
            f"the record says {birth_year}"
        )
    elif info.birth_year != birth_year:
        findings.append(
            f"year digits {pid[4:6]} mean born {info.birth_year}, the record says {birth_year}"
        )
    try:
        recorded: Sex | None = parse_sex(sex)
    except ValueError:
        recorded = None  # an unreadable sex is the record's problem, not the number's
    if recorded is not None and info.sex != recorded:
        findings.append(f"digit {pid[3]} means sex {info.sex}, the record says {recorded}")
    if info.place_name is None:
        findings.append(f"place code {info.place_code} is neither a province nor a country")
    return findings


def prefix_for(place_code: str, birth_year: int, sex: str) -> str:
    """The 6-digit ``PPPGYY`` prefix of a number allocated at birth registration.

    ValueError for an unknown place code, a year outside 1900..2399 or a sex other than M/F.
    """
    if place_name(place_code) is None:
        raise ValueError(
            f"place code {place_code!r} is neither a province (001-096) nor a country (101-295)"
        )
    if not 1900 <= birth_year <= 2399:
        raise ValueError(f"birth year {birth_year} is outside 1900..2399")
    if sex not in ("M", "F"):
        raise ValueError(f"sex {sex!r} is not M or F")
    g = (birth_year // 100 - 19) * 2 + (1 if sex == "F" else 0)
    return f"{place_code}{g}{birth_year % 100:02d}"
