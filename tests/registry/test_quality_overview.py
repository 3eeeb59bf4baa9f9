"""Data quality per unit: the six finding kinds, their counts (live and pre-aggregated) and
the people behind each count."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.errors import DancuError, ValidationFailed
from dancu.geo.models import Commune
from dancu.registry import merge, quality, scope
from dancu.registry.models import DuplicateCandidate, Residence
from dancu.registry.scope import Scope
from tests.registry.factories import person
from tests.registry.world import load, pick_communes, soon

COMPLETE = {
    "ethnicity": "Kinh",
    "religion": "Không",
    "nationality": "Việt Nam",
    "place_of_origin": "Hà Nội",
    "relationship_to_head": "head",
    "permanent_address": "Số 3, ngõ 4",
}


_serial = itertools.count(880001)
_GIVEN = ("An", "Bình", "Cường", "Dũng", "Giang", "Hải", "Khánh", "Lâm", "Minh", "Nam", "Phúc")


def _good(commune: str, household: str, **overrides: str) -> dict[str, str]:
    """A complete record whose ID agrees with its birth year and sex, unless overridden."""
    serial = next(_serial)
    row = {
        **COMPLETE,
        "full_name": f"Hoàng Văn {_GIVEN[serial % len(_GIVEN)]}",
        "permanent_commune_code": commune,
        "household_id": household,
    }
    row.update(overrides)
    year, sex = int(row.get("birth_date", "1985")[:4]), row.get("sex", "M")
    digit = (year // 100 - 19) * 2 + (sex == "F")
    row.setdefault("personal_id", f"001{digit}{year % 100:02d}{serial:06d}")
    return person(**row)


@pytest.fixture
def unit(session: Session, tmp_path: Path) -> dict[str, str]:
    """One commune with one person per finding kind (and a clean one); returns their IDs
    by kind, plus ``pa``/``a1``/``a2``/``b1`` for the units."""
    pa, _pb, a1, a2, b1 = pick_communes(session)
    clean = _good(a1, "HQ-1")
    incomplete = _good(a1, "HQ-2", ethnicity="", birth_date="1985-03")
    # 001 1 85: a woman born in 1985, recorded as a man.
    wrong_id = _good(a1, "HQ-3", personal_id="001185777001", sex="M")
    dead = _good(a1, "HQ-4", status="deceased", death_date="2020-01-01")
    father = _good(a1, "HQ-5", birth_date="1990-01-01")
    child = _good(
        a1, "HQ-5", birth_date="1995-06-01", relationship_to_head="child",
        father_id=father["personal_id"],
    )  # fmt: skip
    twin_a = _good(a1, "HQ-6", full_name="Lý Văn Đúp", birth_date="1970-01-01")
    twin_b = _good(a1, "HQ-7", full_name="Lý Văn Đúp", birth_date="1970-01-01")
    legacy = _good(a1, "HQ-8", permanent_address="Số 5, Phường Phúc Xá, Quận Ba Đình")
    elsewhere = _good(a2, "HQ-9", permanent_address="Tổ 2, TT. Đông Anh")
    far = _good(b1, "HQ-10", ethnicity="")
    rows = [clean, incomplete, wrong_id, dead, father, child, twin_a, twin_b, legacy, elsewhere]
    load(session, tmp_path / "quality.csv", [*rows, far])
    # A deceased person whose temporary residence was never closed.
    session.add(
        Residence(
            personal_id=dead["personal_id"],
            kind="temporary",
            commune_code=a2,
            address="Phòng 1",
            valid_from=dt.date(2019, 1, 1),
            valid_to=dt.date(2021, 1, 1),
            created_at=soon(),
        )
    )
    session.flush()
    return {
        "pa": pa,
        "a1": a1,
        "a2": a2,
        "b1": b1,
        "clean": clean["personal_id"],
        "incomplete": incomplete["personal_id"],
        "id_inconsistent": wrong_id["personal_id"],
        "deceased_with_residence": dead["personal_id"],
        "child_older_than_parent": child["personal_id"],
        "twin_a": twin_a["personal_id"],
        "twin_b": twin_b["personal_id"],
        "legacy_address": legacy["personal_id"],
        "elsewhere": elsewhere["personal_id"],
        "far": far["personal_id"],
    }


def _people(session: Session, s: Scope, kind: str, **kw: object) -> list[str]:
    page = quality.findings(session, s, kind, **kw)  # type: ignore[arg-type]
    return [f.person.personal_id for f in page.items]


def test_each_kind_finds_exactly_its_people(session: Session, unit: dict[str, str]) -> None:
    a1 = Scope.parse(unit["a1"])
    for kind in ("incomplete", "id_inconsistent", "deceased_with_residence", "legacy_address"):
        assert _people(session, a1, kind) == [unit[kind]], kind
    assert _people(session, a1, "child_older_than_parent") == [unit["child_older_than_parent"]]
    assert _people(session, a1, "duplicate_candidate") == sorted([unit["twin_a"], unit["twin_b"]])
    assert _people(session, Scope.parse(unit["a2"]), "legacy_address") == [unit["elsewhere"]]


def test_findings_say_what_is_wrong(session: Session, unit: dict[str, str]) -> None:
    a1 = Scope.parse(unit["a1"])

    def detail(kind: str) -> str:
        return quality.findings(session, a1, kind).items[0].detail

    assert detail("incomplete") == "missing: ethnicity, birth_date (known to the month only)"
    assert "sex" in detail("id_inconsistent")
    assert detail("child_older_than_parent").startswith("born 1995; father ")
    assert "Quận Ba Đình" in detail("legacy_address")
    assert "2020-01-01" in detail("deceased_with_residence")


def test_live_and_aggregated_overviews_agree_with_the_lists(
    session: Session, unit: dict[str, str]
) -> None:
    province = Scope.parse(unit["pa"])
    live = quality.overview(session, province, live=True)
    assert live.live and live.refreshed_at is not None
    by_code = {c.commune_code: c for c in live.communes}
    expected_codes = set(
        session.scalars(select(Commune.code).where(Commune.province_code == unit["pa"]))
    )
    assert by_code.keys() == expected_codes, "every commune of the province, even empty ones"
    a1 = by_code[unit["a1"]]
    assert (a1.people, a1.alive) == (9, 8)
    assert a1.counts == {
        "incomplete": 1,
        "id_inconsistent": 1,
        "deceased_with_residence": 1,
        "child_older_than_parent": 1,
        "duplicate_candidate": 2,
        "legacy_address": 1,
    }
    assert a1.completeness == pytest.approx(7 / 8)
    assert by_code[unit["a2"]].counts["legacy_address"] == 1
    for kind in quality.KINDS:
        listed = len(_people(session, province, kind, limit=500))
        assert listed == live.totals[kind], kind

    at = soon()
    assert quality.refresh_quality(session, now=at) >= 3
    stored = quality.overview(session, province)
    assert not stored.live and stored.refreshed_at == at
    assert [(c.commune_code, c.people, c.counts) for c in stored.communes] == [
        (c.commune_code, c.people, c.counts) for c in live.communes
    ]
    national = quality.overview(session, scope.NATIONAL)
    assert national.totals["incomplete"] == 2 and national.unplaced == 0
    assert {c.commune_code for c in national.communes} >= {unit["a1"], unit["b1"]}


def test_aggregates_are_as_fresh_as_their_last_refresh(
    session: Session, unit: dict[str, str]
) -> None:
    a1 = Scope.parse(unit["a1"])
    quality.refresh_quality(session, now=soon())
    candidate = session.scalars(
        select(DuplicateCandidate).where(DuplicateCandidate.personal_id_a == min(
            unit["twin_a"], unit["twin_b"]))
    ).one()  # fmt: skip
    merge.merge(session, candidate.id, unit["twin_a"], "officer", "trùng", now=soon())
    stale = quality.overview(session, a1)
    assert stale.communes[0].counts["duplicate_candidate"] == 2, "until the next refresh"
    assert _people(session, a1, "duplicate_candidate") == [], "the lists are live"
    # Refreshing one commune leaves the others' timestamps alone.
    later = soon() + dt.timedelta(minutes=1)
    assert quality.refresh_quality(session, a1, now=later) == 1
    fresh = quality.overview(session, a1)
    assert fresh.refreshed_at == later
    assert fresh.communes[0].counts["duplicate_candidate"] == 0
    assert fresh.communes[0].people == 8, "the merged record is no longer counted"
    province = quality.overview(session, Scope.parse(unit["pa"]))
    assert province.refreshed_at is not None and province.refreshed_at < later


def test_findings_check_their_arguments(session: Session, unit: dict[str, str]) -> None:
    province = Scope.parse(unit["pa"])
    with pytest.raises(ValidationFailed) as info:
        quality.findings(session, province, "everything")
    assert [p.field for p in info.value.problems] == ["kind"]
    with pytest.raises(scope.OutOfScope):
        quality.findings(session, province, "incomplete", unit["b1"])
    assert _people(session, province, "incomplete", commune_code=unit["a2"]) == []
    assert _people(session, scope.NATIONAL, "incomplete") == sorted(
        [unit["incomplete"], unit["far"]]
    )
    for bad in ({"limit": 0}, {"offset": -1}):
        with pytest.raises(DancuError):
            quality.findings(session, province, "incomplete", **bad)  # type: ignore[arg-type]


def test_findings_paginate(session: Session, unit: dict[str, str]) -> None:
    national = scope.NATIONAL
    first = quality.findings(session, national, "incomplete", limit=1)
    second = quality.findings(session, national, "incomplete", limit=1, offset=1)
    assert first.has_more and not second.has_more
    assert [f.person.personal_id for f in (*first.items, *second.items)] == sorted(
        [unit["incomplete"], unit["far"]]
    )


def test_every_legacy_word_and_case_counts_as_it_lists(session: Session, tmp_path: Path) -> None:
    """The aggregate writes some predicates its own way (fewer LIKEs on SQLite, parents by a
    join nationally); per word and per case, in ASCII lower case too, it must count exactly the
    people the list shows, nationally and for a province."""
    pa, _pb, a1, _a2, _b1 = pick_communes(session)
    addresses = [f"Số {i}, {word}Ba Đình" for i, word in enumerate(quality.LEGACY_UNIT_WORDS)]
    addresses += [a.lower() for a in addresses] + ["Số 1, Phường Ba Đình", "quan 1", "tt ab"]
    rows = [_good(a1, f"HL-{i}", permanent_address=address) for i, address in enumerate(addresses)]
    father = _good(a1, "HL-F", birth_date="1990-01-01")
    child = _good(
        a1, "HL-F", birth_date="1995-06-01", relationship_to_head="child",
        father_id=father["personal_id"],
    )  # fmt: skip
    mother = _good(a1, "HL-M", birth_date="1960-01-01", sex="F")
    grown = _good(
        a1, "HL-M", birth_date="1990-06-01", relationship_to_head="child",
        mother_id=mother["personal_id"],
    )  # fmt: skip
    load(session, tmp_path / "legacy.csv", [*rows, father, child, mother, grown])
    for unit in (scope.NATIONAL, Scope.parse(pa)):
        listed = {kind: len(_people(session, unit, kind, limit=500)) for kind in quality.KINDS}
        assert listed["legacy_address"] >= len(quality.LEGACY_UNIT_WORDS)
        assert listed["child_older_than_parent"] == 1
        assert quality.overview(session, unit, live=True).totals == listed, unit
        quality.refresh_quality(session, unit, now=soon())
        assert quality.overview(session, unit).totals == listed, unit
