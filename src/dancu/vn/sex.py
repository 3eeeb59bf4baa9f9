"""Sex as the register stores it: ``M`` or ``F`` (CONTRACTS §2), from the forms of CONTRACTS §3."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Literal

from dancu.vn.names import repair_legacy_encoding

__all__ = ["Sex", "parse_sex"]

Sex = Literal["M", "F"]

_FORMS: dict[str, Sex] = {
    "m": "M",
    "male": "M",
    "nam": "M",
    "f": "F",
    "female": "F",
    "nữ": "F",
    "nu": "F",
}
_AMBIGUOUS = frozenset({"0", "1"})


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().lower()


@lru_cache(maxsize=1024)
def _parse(text: str) -> Sex:
    key = _key(text)
    sex = _FORMS.get(key)
    if sex is None:
        sex = _FORMS.get(_key(repair_legacy_encoding(text.strip())))  # "N÷", "Nöõ"
    if sex is not None:
        return sex
    if key in _AMBIGUOUS:
        raise ValueError(f"sex {text!r} is ambiguous (sources disagree on 0/1): use M/F or Nam/Nữ")
    raise ValueError(f"{text!r} is not a sex: expected M/F, Nam/Nữ or male/female")


def parse_sex(text: str) -> Sex:
    """``M``/``F`` from ``M``/``F``, ``Nam``/``Nữ`` (any case, NFC or NFD, ``Nu`` without marks,
    legacy-encoded), ``male``/``female``; ``0``/``1`` and anything else raise ValueError."""
    return _parse(text)
