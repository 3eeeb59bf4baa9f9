"""Factories for synthetic register rows and interchange files (never a real person)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.errors import Problem
from dancu.geo.models import Commune
from dancu.registry.interchange import COLUMNS, RawBatch, open_source

_serial = itertools.count(1)


def commune_codes(session: Session, n: int = 2) -> list[str]:
    return list(session.scalars(select(Commune.code).order_by(Commune.code).limit(n)))


def person(**overrides: str) -> dict[str, str]:
    """A valid interchange row for a synthetic adult man born in Hà Nội in 1985."""
    serial = next(_serial)
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        personal_id=f"001085{serial:06d}",
        full_name="Nguyễn Văn Thử",
        birth_date="1985-03-14",
        sex="M",
    )
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def family(commune: str, household: str = "HH-T1") -> list[dict[str, str]]:
    """A household of three: father (head), mother (spouse) and a daughter."""
    father = person(
        full_name="Trần Văn Bố",
        household_id=household,
        relationship_to_head="head",
        permanent_commune_code=commune,
        permanent_address="Số 1, ngõ 2",
    )
    mother = person(
        personal_id=f"001187{next(_serial):06d}",
        full_name="Lê Thị Mẹ",
        birth_date="1987-06-01",
        sex="F",
        household_id=household,
        relationship_to_head="spouse",
        permanent_commune_code=commune,
        permanent_address="Số 1, ngõ 2",
    )
    father["spouse_id"] = mother["personal_id"]
    mother["spouse_id"] = father["personal_id"]
    child = person(
        personal_id=f"001312{next(_serial):06d}",
        full_name="Trần Thị Con",
        birth_date="2012-09",
        sex="F",
        household_id=household,
        relationship_to_head="child",
        father_id=father["personal_id"],
        mother_id=mother["personal_id"],
        permanent_commune_code=commune,
        permanent_address="Số 1, ngõ 2",
    )
    return [father, mother, child]


def raw_batches(
    path: Path, rows: list[dict[str, str]], *, chunk_rows: int
) -> tuple[list[Problem], Iterator[RawBatch]]:
    """``rows`` written to the CSV ``path`` and opened as the importer opens a file: the list
    its malformed rows go to, and its stream of batches of ``chunk_rows``."""
    malformed: list[Problem] = []
    _, _, batches = open_source(
        write_csv(path, rows), chunk_rows=chunk_rows, max_line_bytes=1 << 20, malformed=malformed
    )
    return malformed, batches
