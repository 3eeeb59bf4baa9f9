"""The loader fills the six unit tables from the package data, once, consistently."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.db import make_engine
from dancu.geo import loader
from dancu.geo.models import (
    Commune,
    CommuneConversion,
    LegacyCommune,
    LegacyDistrict,
    LegacyProvince,
    Province,
    UnitSource,
)
from dancu.geo.service import get_index
from dancu.migrations import upgrade


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_counts_match_the_package(session: Session) -> None:
    assert _count(session, Province) == 34
    assert _count(session, Commune) == 3321
    assert _count(session, LegacyProvince) == 63
    assert _count(session, LegacyDistrict) == 696
    # The package lists 10,040 legacy rows: 10,035 communes and 5 island districts without any.
    assert _count(session, LegacyCommune) == 10035
    assert _count(session, CommuneConversion) == 10597
    kinds = Counter(session.scalars(select(Commune.kind)))
    assert kinds == {"commune": 2621, "ward": 687, "special_zone": 13}


def test_second_load_inserts_nothing(session: Session) -> None:
    summary = loader.load(session)
    assert summary.total_inserted == 0
    assert summary.populations_updated == 0
    assert summary.unmapped_legacy_communes == ()
    assert summary.communeless_legacy_districts == ("318", "471", "498", "536", "755")


def test_load_if_changed_loads_once_per_fingerprint(session: Session) -> None:
    """Units loaded by ``load`` alone (the suite's fixture) have no fingerprint: the first
    call loads (nothing new) and stores it, the next one reads it and does nothing."""
    session.execute(UnitSource.__table__.delete())
    first = loader.load_if_changed(session)
    assert first is not None and first.total_inserted == 0
    stored = session.get(UnitSource, loader.PACKAGE)
    assert stored is not None and stored.fingerprint == loader.fingerprint()
    assert loader.load_if_changed(session) is None


def test_load_if_changed_loads_again_for_other_data(session: Session) -> None:
    """A fingerprint from other package data or another loader revision loads again, and a
    unit that went missing is back."""
    loader.load_if_changed(session)
    session.execute(CommuneConversion.__table__.delete().where(
        CommuneConversion.legacy_commune_code == "00004"))  # fmt: skip
    stored = session.get(UnitSource, loader.PACKAGE)
    assert stored is not None
    stored.fingerprint = "vietnamadminunits 1.0.3; loader 1"
    session.flush()
    again = loader.load_if_changed(session)
    assert again is not None and again.inserted["commune_conversion"] == 1
    assert session.get(UnitSource, loader.PACKAGE).fingerprint == loader.fingerprint()  # type: ignore[union-attr]
    assert session.scalar(select(func.count()).select_from(UnitSource)) == 1


def test_fingerprint_names_the_data_and_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    text = loader.fingerprint()
    assert text.startswith("vietnamadminunits ")
    assert " data " in text
    assert text.endswith(f"loader {loader.LOADER_REVISION}")
    # a province population typed into the loader is part of what it loads
    changed = {**loader.LEGACY_POPULATION_THOUSANDS}
    first = next(iter(changed))
    changed[first] += 1
    monkeypatch.setattr(loader, "LEGACY_POPULATION_THOUSANDS", changed)
    assert loader.fingerprint() != text


def test_every_legacy_commune_has_exactly_one_default(session: Session) -> None:
    defaults: dict[str, int] = dict(
        session.execute(
            select(CommuneConversion.legacy_commune_code, func.count())
            .where(CommuneConversion.is_default)
            .group_by(CommuneConversion.legacy_commune_code)
        ).all()
    )
    assert len(defaults) == 10035
    assert set(defaults.values()) == {1}
    split = session.scalar(
        select(func.count()).select_from(
            select(CommuneConversion.legacy_commune_code)
            .group_by(CommuneConversion.legacy_commune_code)
            .having(func.count() > 1)
            .subquery()
        )
    )
    assert split == 471


def test_database_and_index_agree(session: Session) -> None:
    index = get_index()
    rows: dict[str, set[tuple[str, bool]]] = {}
    for old, new, is_default in session.execute(
        select(
            CommuneConversion.legacy_commune_code,
            CommuneConversion.commune_code,
            CommuneConversion.is_default,
        )
    ):
        rows.setdefault(old, set()).add((new, is_default))
    assert rows == {old: set(index.convert_legacy(old)) for old in rows}
    names: dict[str, str] = dict(session.execute(select(Commune.code, Commune.name)).all())
    assert names == {c.code: c.name for c in index.communes()}


def test_provinces_carry_an_approximate_population(session: Session) -> None:
    populations: dict[str, int] = dict(
        session.execute(select(Province.code, Province.population)).all()
    )
    assert all(p > 300_000 for p in populations.values())
    assert 95_000_000 < sum(populations.values()) < 106_000_000
    # Ho Chi Minh City (with Bình Dương and Bà Rịa - Vũng Tàu) is the largest, then Hà Nội.
    ranked = sorted(populations, key=populations.__getitem__, reverse=True)
    assert ranked[:2] == ["79", "01"]
    assert {p.code: p.population for p in get_index().provinces()} == populations


def test_fresh_load_inserts_every_unit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(engine)
    loader.read_source.cache_clear()
    try:
        with Session(engine) as s:
            summary = loader.load(s)
            s.commit()
        assert summary.inserted == {
            "province": 34,
            "legacy_province": 63,
            "commune": 3321,
            "legacy_district": 696,
            "legacy_commune": 10035,
            "commune_conversion": 10597,
        }
    finally:
        engine.dispose()


def test_prepare_loads_the_units_on_the_first_command_only(tmp_path: Path) -> None:
    from dancu import bootstrap

    engine = make_engine(f"sqlite:///{tmp_path / 'commands.db'}")
    try:
        assert bootstrap.prepare(engine) is True
        assert bootstrap.prepare(engine) is False
        with Session(engine) as s:
            assert _count(s, Commune) == 3321
    finally:
        engine.dispose()
