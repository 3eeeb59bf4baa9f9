"""Factories for synthetic access log entries (every person and official is invented)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dancu.audit.service import AccessEntry
from dancu.enums import AccessChannel, ActorKind

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
PERSON_A = "001085000001"
PERSON_B = "079190000002"


def entry(**overrides: Any) -> AccessEntry:
    """An official of a synthetic ward police station reading a synthetic person's page."""
    values: dict[str, Any] = {
        "actor": "can-bo-01",
        "actor_kind": ActorKind.OFFICIAL,
        "organization": "Công an phường Thử Nghiệm",
        "personal_id": PERSON_A,
        "fields": ["full_name", "birth_date"],
        "purpose": "giải quyết thủ tục đăng ký thường trú",
        "channel": AccessChannel.WEB,
        "request_id": "req-0001",
    }
    values.update(overrides)
    return AccessEntry(**values)
