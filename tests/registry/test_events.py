"""Civil events, history, as-of reads and ID allocation through the registry services."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dancu.enums import CivilEventKind
from dancu.errors import DancuError, ValidationFailed
from dancu.geo.models import Commune
from dancu.registry import events, importer, quality
from dancu.registry import service as registry
from dancu.registry.models import Citizen, CitizenHistory, PersonalIdAllocation, Residence
from dancu.vn import personal_id as vn_ids
from dancu.vn.dates import PartialDate
from tests.registry.factories import commune_codes, family, person, write_csv


def _soon() -> dt.datetime:
    """A moment just after now: events are recorded after the records they change exist."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)


@pytest.fixture
def household(session: Session, tmp_path: Path) -> list[dict[str, str]]:
    rows = family(commune_codes(session)[0], household="HH-EV")
    rows[0]["legacy_id_number"] = "012345678"
    with session.begin_nested():
        importer.import_file(session, write_csv(tmp_path / "f.csv", rows), actor="test")
    return rows


def _birth(session: Session, rows: list[dict[str, str]], **kw: object) -> Citizen:
    birth = events.Birth(
        full_name="trần  văn em",
        birth_date=PartialDate(2026, 1, 2),
        sex="M",
        birth_place_code="001",
        permanent_commune_code=rows[0]["permanent_commune_code"],
        father_id=rows[0]["personal_id"],
        mother_id=rows[1]["personal_id"],
        household_code="HH-EV",
    )
    for key, value in kw.items():
        setattr(birth, key, value)
    event = events.Event(
        CivilEventKind.BIRTH,
        dt.date(2026, 1, 5),
        actor="officer-1",
        legal_basis="Luật Hộ tịch 2014",
        birth=birth,
    )
    return events.apply(session, event, now=_soon())


def test_birth_allocates_a_structured_number_and_joins_the_household(
    session: Session, household: list[dict[str, str]]
) -> None:
    child = _birth(session, household)
    info = vn_ids.explain(child.personal_id)
    assert (info.place_code, info.birth_year, info.sex) == ("001", 2026, "M")
    assert child.full_name == "Trần Văn Em"
    assert child.household_code == "HH-EV" and child.relationship_to_head == "child"
    assert session.get(PersonalIdAllocation, child.personal_id) is not None
    residence = session.scalars(
        select(Residence).where(Residence.personal_id == child.personal_id)
    ).one()
    assert residence.kind == "permanent" and residence.ended_at is None


def test_birth_with_bad_input_names_each_field(
    session: Session, household: list[dict[str, str]]
) -> None:
    with pytest.raises(ValidationFailed) as info:
        _birth(
            session,
            household,
            sex="X",
            permanent_commune_code="99999",
            father_id="001000000000",
            birth_date=PartialDate(2099, 1, 1),
        )
    fields = {p.field for p in info.value.problems}
    assert {"sex", "permanent_commune_code", "father_id", "birth_date"} <= fields


def test_allocation_retries_when_a_number_is_taken(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    serials = iter([123, 123, 456])
    monkeypatch.setattr(events.secrets, "randbelow", lambda _n: next(serials))
    first = events.allocate_personal_id(
        session, place_code="079", birth_year=2026, sex="F", actor="t"
    )
    second = events.allocate_personal_id(
        session, place_code="079", birth_year=2026, sex="F", actor="t"
    )
    assert (first, second) == ("079326000123", "079326000456")


def test_concurrent_allocations_never_share_a_number(engine: Engine) -> None:
    got: list[str] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            for _ in range(20):
                with Session(engine) as s:
                    got.append(
                        events.allocate_personal_id(
                            s, place_code="048", birth_year=2025, sex="M", actor="thread"
                        )
                    )
                    s.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(got) == 40 == len(set(got))
    finally:
        with Session(engine) as s:
            s.execute(delete(PersonalIdAllocation).where(PersonalIdAllocation.actor == "thread"))
            s.commit()


def test_death_closes_the_record_and_ends_residences(
    session: Session, household: list[dict[str, str]]
) -> None:
    mother = household[1]["personal_id"]
    event = events.Event(
        CivilEventKind.DEATH,
        dt.date(2025, 12, 1),
        actor="officer-1",
        personal_id=mother,
        legal_basis="Luật Hộ tịch 2014",
    )
    events.apply(session, event, now=_soon())
    person_ = registry.get_or_raise(session, mother)
    assert (person_.status, person_.death_date) == ("deceased", dt.date(2025, 12, 1))
    assert all(
        r.ended_at is not None
        for r in session.scalars(select(Residence).where(Residence.personal_id == mother))
    )
    assert registry.lookup(session, mother) is not None, "the deceased stay findable"
    with pytest.raises(ValidationFailed):
        events.apply(session, event, now=_soon())


def test_death_before_birth_is_refused(session: Session, household: list[dict[str, str]]) -> None:
    event = events.Event(
        CivilEventKind.DEATH,
        dt.date(1970, 1, 1),
        actor="o",
        personal_id=household[2]["personal_id"],
    )
    with pytest.raises(ValidationFailed, match="before the birth"):
        events.apply(session, event, now=_soon())


def test_head_with_members_cannot_die_without_a_new_head(
    session: Session, household: list[dict[str, str]]
) -> None:
    event = events.Event(
        CivilEventKind.DEATH,
        dt.date(2025, 1, 1),
        actor="o",
        personal_id=household[0]["personal_id"],
    )
    with pytest.raises(ValidationFailed, match="head"):
        events.apply(session, event, now=_soon())


def test_correction_writes_history_and_as_of_reads_the_past(
    session: Session, household: list[dict[str, str]]
) -> None:
    pid = household[2]["personal_id"]
    before = registry.get_or_raise(session, pid)
    event = events.Event(
        CivilEventKind.CORRECTION,
        dt.date(2026, 1, 9),
        actor="officer-2",
        personal_id=pid,
        legal_basis="Nghị định 123/2015/NĐ-CP",
        details={
            "field": "full_name",
            "value": "Trần Thị Con Gái",
            "reason": "sai chính tả",
            "expected_version": before.version,
        },
    )
    when = _soon()
    events.apply(session, event, now=when)
    rows = registry.history(session, pid)
    assert [(h.field, h.old_value, h.new_value, h.source, h.actor) for h in rows] == [
        ("full_name", "Trần Thị Con", "Trần Thị Con Gái", "event", "officer-2")
    ]
    assert rows[0].legal_basis == "Nghị định 123/2015/NĐ-CP"
    past = registry.as_of(session, pid, when - dt.timedelta(seconds=1))
    assert past is not None and past["full_name"] == "Trần Thị Con"
    now = registry.as_of(session, pid, when)
    assert now is not None and now["full_name"] == "Trần Thị Con Gái"
    assert registry.get_or_raise(session, pid).name_key == "tran thi con gai"


def test_a_stale_version_is_refused(session: Session, household: list[dict[str, str]]) -> None:
    pid = household[2]["personal_id"]
    citizen = registry.get_or_raise(session, pid)
    read_version = citizen.version
    registry.update(
        session,
        citizen,
        {"phone": "0900000001"},
        actor="a",
        source="official",
        expected_version=read_version,
    )
    with pytest.raises(registry.StaleRecord):
        registry.update(
            session,
            citizen,
            {"phone": "0900000002"},
            actor="b",
            source="official",
            expected_version=read_version,
        )
    assert citizen.phone == "0900000001"


def test_marriage_and_divorce_keep_both_links(
    session: Session, household: list[dict[str, str]], tmp_path: Path
) -> None:
    a, b = (
        person(),
        person(personal_id="001190123456", sex="F", full_name="Đỗ Thị Vợ", birth_date="1990"),
    )
    with session.begin_nested():
        importer.import_file(session, write_csv(tmp_path / "p.csv", [a, b]), actor="t")
    marry = events.Event(
        CivilEventKind.MARRIAGE,
        dt.date(2025, 6, 1),
        actor="o",
        personal_id=a["personal_id"],
        other_personal_id=b["personal_id"],
    )
    events.apply(session, marry, now=_soon())
    assert registry.get_or_raise(session, a["personal_id"]).spouse_id == b["personal_id"]
    assert registry.get_or_raise(session, b["personal_id"]).spouse_id == a["personal_id"]
    with pytest.raises(ValidationFailed, match="already married"):
        events.apply(session, marry, now=_soon())
    divorce = events.Event(
        CivilEventKind.DIVORCE,
        dt.date(2025, 12, 1),
        actor="o",
        personal_id=a["personal_id"],
        other_personal_id=b["personal_id"],
    )
    events.apply(session, divorce, now=_soon())
    assert registry.get_or_raise(session, a["personal_id"]).spouse_id is None
    assert session.scalar(
        select(CitizenHistory.id).where(CitizenHistory.personal_id == b["personal_id"]).limit(1)
    )


def test_lookup_by_legacy_number_and_search(
    session: Session, household: list[dict[str, str]]
) -> None:
    found = registry.lookup(session, "012 345 678")
    assert found is not None and found.personal_id == household[0]["personal_id"]
    for query in ("Trần Thị Con", "tran thi con", "TRAN THI", "trần"):
        page = registry.search(session, name=query, birth_year=2012)
        assert [c.personal_id for c in page.items] == [household[2]["personal_id"]], query
    assert registry.search(session, name="tran thi con", birth_year=2013).items == []


def test_id_inconsistency_is_a_finding_not_a_refusal(session: Session, tmp_path: Path) -> None:
    # 001 0 85: a man born in 1985; the record says a woman born in 1990.
    row = person(personal_id="001085123456", sex="F", birth_date="1990-01-01")
    with session.begin_nested():
        report = importer.import_file(session, write_csv(tmp_path / "q.csv", [row]), actor="t")
    assert report.inserted == 1
    findings = events.consistency_findings(registry.get_or_raise(session, "001085123456"))
    assert len(findings) == 2
    assert any("1985" in f for f in findings) and any("sex" in f for f in findings)


def test_id_inconsistencies_are_listed_per_unit(session: Session, tmp_path: Path) -> None:
    commune, other = commune_codes(session, 2)
    rows = [
        person(personal_id="001085000901", permanent_commune_code=commune),  # consistent
        person(personal_id="001185000902", permanent_commune_code=commune),  # says F
        person(personal_id="001090000903", permanent_commune_code=commune),  # says 1990
        person(personal_id="001185000904", permanent_commune_code=other),
    ]
    with session.begin_nested():
        importer.import_file(session, write_csv(tmp_path / "q.csv", rows), actor="t")
    found = quality.id_inconsistencies(session, commune_code=commune)
    assert [(f.personal_id, f.year_differs, f.sex_or_century_differs) for f in found] == [
        ("001090000903", True, False),
        ("001185000902", False, True),
    ]
    province = session.get(Commune, commune)
    assert province is not None
    in_province = quality.id_inconsistencies(session, province_code=province.province_code)
    assert {f.personal_id for f in in_province} >= {"001090000903", "001185000902"}
    with pytest.raises(DancuError):
        quality.id_inconsistencies(session, limit=0)
