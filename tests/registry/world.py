"""A small synthetic world for the back-office services: families in three communes, two of
them in one province and the third in another (every person invented)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.geo.models import Commune
from dancu.registry import importer
from dancu.registry.models import Citizen
from tests.registry.factories import family, person, write_csv


def soon() -> dt.datetime:
    """A moment just after now: changes are recorded after the records they change exist."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class World:
    """Where everyone lives: ``a1`` and ``a2`` in province ``pa``, ``b1`` in province ``pb``."""

    pa: str
    pb: str
    a1: str
    a2: str
    b1: str
    home: list[dict[str, str]]  # father (head), mother, daughter in a1, household HH-W1
    neighbour: dict[str, str]  # a man living alone in a2, household HH-W2
    far: dict[str, str]  # a woman living alone in b1, household HH-W3


def pick_communes(session: Session) -> tuple[str, str, str, str, str]:
    """Two communes of the first province and one of another: (pa, pb, a1, a2, b1)."""
    rows = session.execute(select(Commune.code, Commune.province_code).order_by(Commune.code))
    by_province: dict[str, list[str]] = {}
    for code, province in rows:
        by_province.setdefault(province, []).append(code)
    pa, pb = sorted(by_province)[:2]
    return pa, pb, by_province[pa][0], by_province[pa][1], by_province[pb][0]


def load(session: Session, path: Path, rows: list[dict[str, str]]) -> None:
    """Import ``rows`` through the real importer (households, residences, duplicates)."""
    with session.begin_nested():
        importer.import_file(session, write_csv(path, rows), actor="test")


def build(session: Session, tmp_path: Path) -> World:
    pa, pb, a1, a2, b1 = pick_communes(session)
    home = family(a1, household="HH-W1")
    home[0]["legacy_id_number"] = "023456789"
    neighbour = person(
        full_name="Phạm Văn Hàng Xóm",
        household_id="HH-W2",
        relationship_to_head="head",
        permanent_commune_code=a2,
        permanent_address="Thôn 3",
    )
    far = person(
        personal_id=neighbour["personal_id"][:3] + "1" + neighbour["personal_id"][4:],
        full_name="Đỗ Thị Xa",
        sex="F",
        household_id="HH-W3",
        relationship_to_head="head",
        permanent_commune_code=b1,
        permanent_address="Số 9, đường Hoa",
    )
    load(session, tmp_path / "world.csv", [*home, neighbour, far])
    return World(pa, pb, a1, a2, b1, home, neighbour, far)


def citizen(session: Session, row: dict[str, str]) -> Citizen:
    found = session.get(Citizen, row["personal_id"])
    assert found is not None
    return found
