"""Sex as the register stores it: ``M`` or ``F``, from the forms sectoral files use."""

from __future__ import annotations

import unicodedata

_FORMS = {
    "m": "M", "male": "M", "nam": "M",
    "f": "F", "female": "F", "nu": "F", "nữ": "F",
}


def parse_sex(text: str) -> str:
    """``M``/``F``, ``Nam``/``Nữ`` (any case, NFC or NFD, with or without diacritics),
    ``male``/``female``. ``0``/``1`` are refused: sources disagree on which is which."""
    key = unicodedata.normalize("NFC", text).strip().casefold()
    if key in _FORMS:
        return _FORMS[key]
    bare = "".join(
        c for c in unicodedata.normalize("NFD", key) if not unicodedata.combining(c)
    )
    if bare in _FORMS:
        return _FORMS[bare]
    raise ValueError(f"{text!r} is not a sex; expected M/F, Nam/Nữ or male/female")
