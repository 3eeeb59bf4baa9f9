"""An app with its own database for the API tests (its committer commits for real, so it
must not share the rolled-back test database), a small synthetic register, and partners."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from dancu.app import create_app
from dancu.config import Settings
from dancu.db import make_engine, unit_of_work
from dancu.exchange.routes import Exchange
from dancu.geo import loader as geo_loader
from dancu.migrations import upgrade
from dancu.registry import importer
from tests.exchange.helpers import ISSUER, Partner, add_partner
from tests.reconcile.helpers import REGISTER
from tests.registry.factories import write_csv


@pytest.fixture(scope="session")
def api_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    base = os.environ.get("DANCU_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path_factory.mktemp('exchange') / f'api_{worker}.db'}"
    url = make_url(base)
    name = f"{url.database}_exchange_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def api_engine(api_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(api_database_url)
    upgrade(engine)
    path = write_csv(tmp_path_factory.mktemp("register") / "register.csv", list(REGISTER))
    with Session(engine) as session:
        geo_loader.load(session)
        importer.import_file(session, Path(path), actor="test")
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def api_settings(api_database_url: str, api_engine: Engine) -> Settings:
    return Settings(
        database_url=api_database_url, environment="test", base_url=ISSUER,
        exchange_client_cache_seconds=0.0,
    )  # fmt: skip


@pytest.fixture
def app(api_settings: Settings) -> Iterator[FastAPI]:
    application = create_app(api_settings)
    yield application
    exchange: Exchange = application.state.exchange
    exchange.committer.stop()
    application.state.engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the app (no credentials)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        yield client


@pytest.fixture
def partner(api_engine: Engine, app: FastAPI) -> Partner:
    """A bank's client_secret_basic client for population.verify with two purposes."""
    with unit_of_work(app.state.sessions) as session:
        return add_partner(session)
