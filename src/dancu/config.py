"""Typed settings, read from the environment with the ``DANCU_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, built once."""
    return Settings()
