"""Why an official reads a person's data: a fixed list, chosen on every read (Law 26/2023 and
Decree 70/2024: every access must be traceable to a purpose).

The access log stores the purpose's code, followed by the official's note when one is given
(a dossier number, say): ``residence_procedure: hồ sơ 2026-000123``. Codes are stable; the
citizen portal and the back office show the label in the reader's language.
"""

from __future__ import annotations

from dancu.errors import Problem, ValidationFailed

PURPOSES: dict[str, dict[str, str]] = {
    "residence_procedure": {
        "vi": "Giải quyết thủ tục cư trú",
        "en": "Handling a residence procedure",
    },
    "civil_status": {
        "vi": "Đăng ký hộ tịch (khai sinh, khai tử, cải chính)",
        "en": "Civil status registration (birth, death, correction)",
    },
    "data_cleaning": {"vi": "Làm sạch dữ liệu dân cư", "en": "Cleaning the register"},
    "duplicate_review": {"vi": "Xử lý hồ sơ trùng", "en": "Reviewing duplicate records"},
    "citizen_request": {"vi": "Theo yêu cầu của công dân", "en": "At the citizen's request"},
    "inspection": {"vi": "Thanh tra, kiểm tra", "en": "Inspection and audit"},
    "investigation": {"vi": "Điều tra, xử lý vi phạm", "en": "Investigation of an offence"},
}
MAX_NOTE = 200


def label(code: str, locale: str = "vi") -> str:
    entry = PURPOSES.get(code)
    return entry.get(locale, entry["vi"]) if entry else code


def stated(code: str | None, note: str | None = None, *, field: str = "purpose") -> str:
    """The purpose as logged, or ValidationFailed naming ``field``."""
    code = (code or "").strip()
    if not code:
        raise ValidationFailed(
            "state why you read this person's data",
            [Problem(None, field, f"required: one of {', '.join(PURPOSES)}")],
        )
    if code not in PURPOSES:
        raise ValidationFailed(
            f"unknown purpose {code!r}",
            [Problem(None, field, f"expected one of {', '.join(PURPOSES)}")],
        )
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE:
        raise ValidationFailed(
            "the purpose note is too long",
            [Problem(None, "purpose_note", f"at most {MAX_NOTE} characters")],
        )
    return f"{code}: {note}" if note else code
