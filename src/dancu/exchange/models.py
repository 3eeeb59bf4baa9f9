"""Partner organisations, their API clients, the ES256 signing keys and used client assertions.

Secrets are never stored: a client secret is kept as its SHA-256 (it is 256 bits of random,
so a slow password hash adds nothing but cost on the token path; docs/exchange.md), and a
signing key's private half only encrypted with a key derived from ``DANCU_SECRET_KEY``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dancu.audit.models import UtcDateTime
from dancu.db import Base


class Organization(Base):
    """A partner: a ministry, a locality, a bank, a telecom operator, a hospital, an insurer."""

    __tablename__ = "organization"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('ministry', 'locality', 'bank', 'telecom', 'hospital', 'insurer', 'other')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ApiClient(Base):
    """An OAuth 2 client of a partner: its products (scopes), the purposes it may state, its
    quota, how it authenticates, and whether it is suspended."""

    __tablename__ = "api_client"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint(
            "auth_method IN ('client_secret_basic', 'private_key_jwt')", name="auth_method"
        ),
        CheckConstraint("per_minute > 0 AND per_day > 0", name="quota"),
    )

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    auth_method: Mapped[str] = mapped_column(String(20))
    # Hex SHA-256 of the secret (client_secret_basic); None for private_key_jwt clients.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    # The client's public keys (RFC 7517 JWK Set) for private_key_jwt (RFC 7523).
    jwks: Mapped[dict[str, object] | None] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    per_minute: Mapped[int] = mapped_column(Integer)
    per_day: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class SigningKey(Base):
    """An ES256 key pair that signs access tokens (RFC 9068). The newest key signs; older
    ones stay published in the JWKS until every token they signed has expired, so rotating
    never breaks a token still valid."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default="ES256")
    public_jwk: Mapped[dict[str, object]] = mapped_column(JSON)
    # PKCS#8 PEM, encrypted (BestAvailableEncryption) with a key derived from secret_key.
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    # When a newer key took over signing; published until retired_at + the token lifetime.
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class ClientAssertion(Base):
    """A ``jti`` of a private_key_jwt assertion already used (RFC 7523 §3 item 7): refused
    if seen again before it expires, in every worker process."""

    __tablename__ = "client_assertion"
    __table_args__ = (Index("ix_client_assertion_expires_at", "expires_at"),)

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ClientUsage(Base):
    """Verifications counted against a client's quota in one period (``m:<minute>`` or
    ``d:<day>`` since the epoch, UTC), shared by every worker process and kept across
    restarts; rows are deleted once their period has passed."""

    __tablename__ = "client_usage"
    __table_args__ = (Index("ix_client_usage_expires_at", "expires_at"),)

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
