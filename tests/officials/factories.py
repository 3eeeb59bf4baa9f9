"""Synthetic officials for tests: enrolled, with a known password and TOTP secret."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyotp
from sqlalchemy.orm import Session

from dancu.config import Settings
from dancu.officials import crypto
from dancu.officials import service as officials
from dancu.officials.models import Official

PASSWORD = "ngựa-đúng-pin-ghim-kẹp-giấy"


def settings_for(database_url: str, **overrides: object) -> Settings:
    """Cheap argon2 (tests hash many passwords), secure cookies, a fixed secret key."""
    values: dict[str, object] = {
        "database_url": database_url,
        "environment": "test",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "base_url": "https://testserver",
        "secret_key": "test-secret-key-0123456789-abcdefghij",
        "demo_citizens": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Enrolled:
    official: Official
    secret: str

    def code(self, at: dt.datetime) -> str:
        return pyotp.TOTP(self.secret).at(at)


def enrolled(
    session: Session,
    settings: Settings,
    *,
    username: str,
    role: str,
    unit_code: str,
    full_name: str | None = None,
) -> Enrolled:
    """An official who enrolled ten minutes ago (so a code of now is a new one)."""
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    enrolment = officials.create(
        session,
        settings,
        username=username,
        role=role,
        unit_code=unit_code,
        full_name=full_name,
        actor="test",
        now=then,
    )
    secret = crypto.decrypt_secret(settings, enrolment.official.totp_secret_encrypted or "")
    assert secret is not None
    officials.complete_enrolment(
        session,
        settings,
        token=enrolment.token,
        password=PASSWORD,
        password_again=PASSWORD,
        code=pyotp.TOTP(secret).at(then),
        now=then,
    )
    return Enrolled(enrolment.official, secret)


def sign_in(session: Session, settings: Settings, who: Enrolled) -> str:
    """A full session's token, through both factors. A code is never accepted twice, so a
    second sign-in of the same official uses the next time step (a little in the future)."""
    at = dt.datetime.now(dt.UTC)
    first = officials.sign_in_password(
        session,
        settings,
        username=who.official.username,
        password=PASSWORD,
        client_ip="192.0.2.1",
        now=at,
    )
    last = who.official.totp_last_step or 0
    step_time = max(at, dt.datetime.fromtimestamp((last + 1) * 30, dt.UTC))
    full = officials.sign_in_totp(
        session,
        settings,
        token=first.token,
        code=who.code(step_time),
        client_ip="192.0.2.1",
        now=step_time,
    )
    return full.token
