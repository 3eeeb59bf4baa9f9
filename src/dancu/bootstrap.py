"""Bring a database to a usable state: schema at head, administrative units loaded, and (for
the demo) a synthetic population when the register is empty."""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dancu.config import get_settings
from dancu.db import make_engine
from dancu.geo import loader as geo_loader
from dancu.geo.models import Commune, CommuneConversion, LegacyCommune, Province
from dancu.migrations import upgrade
from dancu.registry import synth

log = logging.getLogger(__name__)


def open_engine() -> Engine:
    """The engine of ``DANCU_DATABASE_URL`` (echoing SQL if ``DANCU_SQL_ECHO``), made ready by
    :func:`prepare`: what a command that changes the database starts with."""
    settings = get_settings()
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    prepare(engine)
    return engine


def prepare(engine: Engine) -> bool:
    """Create or upgrade the schema, then load the administrative units unless they were
    loaded from the same data (``geo.loader.load_if_changed``). Returns whether they were
    loaded now."""
    upgrade(engine)
    with Session(engine) as session:
        loaded = geo_loader.load_if_changed(session) is not None
        session.commit()
    return loaded


def commune_weights(session: Session) -> list[synth.CommuneWeight]:
    """Each 2025 commune with its share of its province's population, and the legacy province
    codes (ID prefixes) of the old communes it was made from."""
    prefixes: dict[str, set[str]] = defaultdict(set)
    for commune_code, province_code in session.execute(
        select(CommuneConversion.commune_code, LegacyCommune.province_code).join(
            LegacyCommune, LegacyCommune.code == CommuneConversion.legacy_commune_code
        )
    ):
        prefixes[commune_code].add("0" + province_code)
    counts = dict(
        session.execute(
            select(Commune.province_code, func.count()).group_by(Commune.province_code)
        ).all()
    )
    population = dict(session.execute(select(Province.code, Province.population)).all())
    weights = []
    for code, province_code, kind in session.execute(
        select(Commune.code, Commune.province_code, Commune.kind).order_by(Commune.code)
    ):
        share = (population.get(province_code) or 1) / counts[province_code]
        # Urban wards hold more people than rural communes of the same province.
        factor = 2.0 if kind == "ward" else 1.0
        codes = tuple(sorted(prefixes.get(code) or {"0" + province_code}))
        weights.append(synth.CommuneWeight(code, province_code, share * factor, codes))
    return weights
