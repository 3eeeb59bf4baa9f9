"""The data-quality counts of a first load, made from its stream (``first_load.QualityTally``)
and written by ``quality.store_counts``, against ``quality.refresh_quality``'s SQL on the
loaded register: the same rows for every commune, with findings of every kind.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu import bootstrap
from dancu.registry import first_load, importer, quality, synth
from dancu.registry.models import QualityCommuneStats
from tests.registry.factories import write_csv

# Addresses naming an abolished unit in the cases each backend's LIKE tells apart: exact words,
# words in another ASCII case (found by SQLite's LIKE only) and in another non-ASCII case
# (found by neither), and words that only look alike.
_ADDRESSES = (
    "Số 3, Quận 1",
    "thôn 2, huyện Gia Lâm",
    "QUẬN 5",
    "Tổ 4, Thị xã Sơn Tây",
    "khu 1, THỊ TRẤN Đông Anh",
    "Số 9 Q.3",
    "Số 9 q.3",
    "ngõ 2, tx. Phú Thọ",
    "Tt. Văn Điển",
    "qUận 7",
    "HUYệN Mê Linh",
    "Quận",
    "Q 3",
    "Thị xã",
    "",
)


def _people(session: Session, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` synthetic people in a few communes, with findings of every kind mixed in."""
    weights = bootstrap.commune_weights(session)[:12]
    weights = [dataclasses.replace(w, weight=1.0) for w in weights]
    table = pa.Table.from_batches(list(synth.generate(n, seed, weights)))
    rows: list[dict[str, Any]] = [
        {k: ("" if v is None else v) for k, v in row.items()} for row in table.to_pylist()
    ]
    rng = random.Random(seed)
    by_id = {row["personal_id"]: row for row in rows}
    for row in rows:
        draw = rng.random()
        if draw < 0.05:
            # (A household and its relationship go together: either alone is refused.)
            row[rng.choice((*quality.REQUIRED_FIELDS[4:], "permanent_address"))] = ""
        elif draw < 0.08:
            row["birth_date"] = row["birth_date"][: rng.choice((4, 7))]
        elif draw < 0.11:
            row["sex"] = "F" if row["sex"] == "M" else "M"
        elif draw < 0.2:
            row["permanent_address"] = rng.choice(_ADDRESSES)
        elif draw < 0.23 and row["status"] == "alive" and row["birth_date"] < "2025":
            row["status"], row["death_date"] = "deceased", "2025-01-02"
        elif draw < 0.3 and (row["father_id"] or row["mother_id"]):
            parent = by_id[row["father_id"] or row["mother_id"]]
            year = int(parent["birth_date"][:4]) + rng.choice((-3, 0, 5, 12, 13))
            row["birth_date"] = f"{year}{row['birth_date'][4:]}"  # the ID's year differs too
        elif draw < 0.32 and row["relationship_to_head"] != "head":
            # Out of every commune (a household's head keeps its commune).
            row["permanent_commune_code"] = ""
    # Twins of name and birth date in the same commune: duplicate candidates.
    for row in rng.sample(rows, 20):
        if row["relationship_to_head"] == "head" or not row["permanent_commune_code"]:
            continue
        other = rng.choice(
            [r for r in rows if r["permanent_commune_code"] == row["permanent_commune_code"]]
        )
        if other is not row and other["relationship_to_head"] != "head":
            for name in ("full_name", "birth_date"):
                other[name] = row[name]
    return rows


def _stats(session: Session) -> dict[str, tuple[Any, ...]]:
    return {
        s.commune_code: (
            s.province_code,
            s.people,
            s.alive,
            *(getattr(s, kind) for kind in quality.KINDS),
        )
        for s in session.scalars(select(QualityCommuneStats))
    }


@pytest.mark.parametrize("parallel", [False, True], ids=["in process", "in a second process"])
def test_the_counts_from_the_stream_are_refresh_qualitys(
    session: Session, tmp_path: Path, parallel: bool
) -> None:
    rows = _people(session, 3000, seed=5)
    path = write_csv(tmp_path / "nation.csv", rows)
    report = importer.import_file(session, path, actor="test", chunk_rows=700, parallel=parallel)
    assert report.inserted == len(rows)
    assert report.quality is not None
    assert importer.refresh_quality(session, report) == len(report.quality)
    streamed = _stats(session)
    session.expire_all()
    assert quality.refresh_quality(session) == len(streamed)
    refreshed = _stats(session)
    assert streamed == refreshed
    # Every kind was found somewhere, so the comparison tested each (and the
    # deceased-with-residence count, which a first load never has).
    totals = {
        kind: sum(counts[3 + i] for counts in refreshed.values())
        for i, kind in enumerate(quality.KINDS)
    }
    assert totals.pop("deceased_with_residence") == 0
    assert all(totals.values()), totals


def test_the_legacy_words_as_each_backend_compares_them(session: Session) -> None:
    fold = session.get_bind().dialect.name == "sqlite"
    pattern = first_load._legacy_pattern(fold)
    found = [
        address
        for address in _ADDRESSES
        if pa.compute.match_substring_regex(
            pa.compute.ascii_lower(pa.array([address])) if fold else pa.array([address]), pattern
        )[0].as_py()
    ]
    expected = ["Số 3, Quận 1", "thôn 2, huyện Gia Lâm", "QUẬN 5", "Tổ 4, Thị xã Sơn Tây",
                "khu 1, THỊ TRẤN Đông Anh", "Số 9 Q.3"]  # fmt: skip
    if fold:
        expected += ["Số 9 q.3", "ngõ 2, tx. Phú Thọ", "Tt. Văn Điển", "qUận 7", "HUYệN Mê Linh"]
    assert found == expected


def test_a_load_the_survey_does_not_follow_is_refreshed_in_sql(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(first_load, "SURVEY_MAX_ROWS", 10)
    rows = _people(session, 60, seed=9)
    report = importer.import_file(session, write_csv(tmp_path / "n.csv", rows), actor="test")
    assert report.inserted == len(rows)
    assert report.quality is None
    assert importer.refresh_quality(session, report) > 0
    streamed = _stats(session)
    quality.refresh_quality(session)
    assert _stats(session) == streamed


def test_a_survey_of_no_batch_counts_nothing() -> None:
    # Every batch had a problem (the load gives way): the checking process still ends cleanly.
    survey = first_load.FileSurvey(first_load.QualityTally(fold_ascii_case=False))
    assert survey.finish() == first_load.Surveyed([], {})
