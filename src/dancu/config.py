"""Typed settings, read from the environment with the ``DANCU_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-never-use-in-production"


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``DANCU_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DANCU_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default="sqlite:///./dancu.db",
        description="SQLAlchemy URL: SQLite (WAL) by default, PostgreSQL (psycopg) in production.",
    )
    import_chunk_rows: int = Field(default=50_000, ge=100, le=1_000_000)
    import_max_line_bytes: int = Field(default=1 << 20, ge=1024)
    demo_citizens: int = Field(default=10_000, ge=0)
    demo_seed: int = 2025
    sql_echo: bool = False
    # Back office (docs/backoffice.md). The secret key derives the CSRF tokens and the key
    # that encrypts officials' TOTP secrets; production refuses the development placeholder.
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    base_url: str = "http://127.0.0.1:8000"
    cookie_secure: bool = True
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 7)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1)
    login_ip_max_failures: int = Field(default=50, ge=1)
    enrolment_link_hours: int = Field(default=72, ge=1, le=24 * 30)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8)
    # Partner verification (docs/exchange.md). The issuer defaults to base_url; the ES256
    # signing keys are stored encrypted with a key derived from secret_key.
    oauth_issuer: str | None = None
    access_token_seconds: int = Field(default=300, ge=30, le=3600)
    verify_max_body_bytes: int = Field(default=16_384, ge=1024)
    verify_batch_max_body_bytes: int = Field(default=8 << 20, ge=1024)
    # batch requests answered at once by one worker process (PostgreSQL); more wait their
    # turn, each with its body read and checked
    verify_batch_concurrency: int = Field(default=4, ge=1, le=64)
    exchange_client_cache_seconds: float = Field(default=2.0, ge=0)
    # The access log's batch items (PostgreSQL): a generation is closed once its rows take
    # this much, checked at most this often after a batch; 0: never by the server (where its
    # role does not own the log: `dancu audit rotate` as the owner). docs/audit.md.
    audit_generation_mb: int = Field(default=256, ge=1)
    audit_rotate_seconds: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.environment == "production" and (secret == DEVELOPMENT_SECRET or len(secret) < 32):
            raise ValueError("DANCU_SECRET_KEY must be set to a random value of 32+ characters")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, built once."""
    return Settings()
