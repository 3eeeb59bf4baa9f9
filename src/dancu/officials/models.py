"""Officials, their server-side sessions and failed sign-in attempts.

Nothing secret is stored in the clear: passwords as argon2id hashes, TOTP secrets encrypted
with a key derived from the server's secret key, session and enrolment tokens as SHA-256
hashes (they are 256-bit random values, so a fast hash is sound and a database leak does not
hand out live sessions).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dancu.audit.models import UtcDateTime
from dancu.db import Base, code_type


class Official(Base):
    """A back-office account: a role, a unit that scopes it, a password and a TOTP factor."""

    __tablename__ = "official"
    __table_args__ = (
        CheckConstraint(
            "role IN ('commune_officer', 'province_officer', 'ministry_auditor', 'system_admin')",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # "VN" (national), a 2-digit province code or a 5-digit commune code (2025 units).
    unit_code: Mapped[str] = mapped_column(code_type(5))
    # Written into the access log as the reader's organisation.
    organization: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(String(300))
    # The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    enrolled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    enrolment_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(60))


class OfficialSession(Base):
    """A signed-in browser. ``stage`` is ``password`` between the two factors, then ``full``.

    Revoking every row of an official signs them out everywhere.
    """

    __tablename__ = "official_session"
    __table_args__ = (CheckConstraint("stage IN ('password', 'full')", name="stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    official_id: Mapped[int] = mapped_column(ForeignKey("official.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    client_ip: Mapped[str | None] = mapped_column(String(45))


class LoginFailure(Base):
    """One failed sign-in (wrong password, wrong code, unknown name): the throttle counts them
    per client address and per username over a sliding window."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_client_ip_at", "client_ip", "at"),
        Index("ix_login_failure_username_at", "username", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    username: Mapped[str] = mapped_column(String(60))
    client_ip: Mapped[str] = mapped_column(String(45))
