"""Import and export through the public service functions (CONTRACTS.md section 2)."""

from __future__ import annotations

import codecs
import csv
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dancu.errors import ValidationFailed
from dancu.registry import exporter, importer
from dancu.registry.interchange import COLUMNS
from dancu.registry.models import (
    Citizen,
    DuplicateCandidate,
    Household,
    ImportBatch,
    Residence,
)
from tests.registry.factories import commune_codes, family, person, write_csv


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _import(session: Session, path: Path, **kwargs: object) -> importer.ImportReport:
    with session.begin_nested():
        return importer.import_file(session, path, actor="test", **kwargs)  # type: ignore[arg-type]


def _rejected(session: Session, path: Path, **kwargs: object) -> ValidationFailed:
    before = _count(session, Citizen)
    with pytest.raises(ValidationFailed) as info:
        _import(session, path, **kwargs)
    assert _count(session, Citizen) == before, "a failed import must change nothing"
    return info.value


def _problems(exc: ValidationFailed) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.field) for p in exc.problems}


def test_imports_a_family_with_households_and_residences(session: Session, tmp_path: Path) -> None:
    commune = commune_codes(session)[0]
    rows = family(commune)
    report = _import(session, write_csv(tmp_path / "f.csv", rows))
    assert (report.rows_read, report.inserted, report.unchanged, report.rejected) == (3, 3, 0, 0)
    child = session.get(Citizen, rows[2]["personal_id"])
    assert child is not None
    assert child.birth_date_precision == "month"
    assert child.birth_date.isoformat() == "2012-09-01"
    assert child.father_id == rows[0]["personal_id"]
    assert (child.family_name, child.middle_name, child.given_name) == ("Trần", "Thị", "Con")
    assert child.name_key == "tran thi con"
    household = session.get(Household, "HH-T1")
    assert household is not None and household.head_id == rows[0]["personal_id"]
    residences = session.scalars(
        select(Residence).where(Residence.personal_id == rows[1]["personal_id"])
    ).all()
    assert [(r.kind, r.commune_code) for r in residences] == [("permanent", commune)]


def test_second_import_of_the_same_file_changes_nothing(session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", family(commune_codes(session)[0]))
    _import(session, path)
    counts = (_count(session, Citizen), _count(session, Residence), _count(session, Household))
    again = _import(session, path)
    assert (again.inserted, again.unchanged) == (0, 3)
    assert counts == (
        _count(session, Citizen),
        _count(session, Residence),
        _count(session, Household),
    )


def test_names_are_stored_canonical(session: Session, tmp_path: Path) -> None:
    nfd = codecs.decode(b"NGUYE\xcc\x82\xcc\x83N  th\xe1\xbb\x8b hoa\xcc\x80", "utf-8")
    row = person(full_name=nfd, sex="F", personal_id="001185000777")
    _import(session, write_csv(tmp_path / "n.csv", [row]))
    stored = session.get(Citizen, "001185000777")
    assert stored is not None
    assert stored.full_name == "Nguyễn Thị Hòa"
    assert stored.name_key == "nguyen thi hoa"


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"personal_id": "12345678901"}, "personal_id", "12 digits"),
        ({"personal_id": "00108500000A"}, "personal_id", "12 digits"),
        ({"birth_date": "2023-02-30"}, "birth_date", "not a real date"),
        ({"birth_date": "14/03/1985"}, "birth_date", "YYYY-MM-DD"),
        ({"birth_date": "2999-01-01"}, "birth_date", "future"),
        ({"status": "deceased", "death_date": "1980-01-01"}, "death_date", "before the birth"),
        ({"permanent_commune_code": "99999"}, "permanent_commune_code", "commune code"),
        ({"sex": "X"}, "sex", "M or F"),
        ({"full_name": ""}, "full_name", "empty"),
        ({"father_id": "001060999999"}, "father_id", "nobody"),
        (
            {"relationship_to_head": "cousin", "household_id": "H1"},
            "relationship_to_head",
            "not a relationship",
        ),
        ({"legacy_id_number": "12345"}, "legacy_id_number", "CMND"),
    ],
)
def test_bad_rows_are_named_and_nothing_changes(
    session: Session, tmp_path: Path, override: dict[str, str], field: str, words: str
) -> None:
    rows = [person(), person(**override), person()]
    exc = _rejected(session, write_csv(tmp_path / "bad.csv", rows))
    matching = [p for p in exc.problems if p.row == 2 and p.field == field]
    assert matching, exc.problems
    assert words in matching[0].reason
    assert all(p.row == 2 for p in exc.problems), "only the bad row is reported"


def test_the_same_id_twice_in_a_file(session: Session, tmp_path: Path) -> None:
    first = person()
    exc = _rejected(session, write_csv(tmp_path / "d.csv", [first, person(), dict(first)]))
    assert _problems(exc) == {(3, "personal_id")}
    assert "row 1" in exc.problems[0].reason


def test_an_id_already_held_with_different_data(session: Session, tmp_path: Path) -> None:
    row = person()
    _import(session, write_csv(tmp_path / "a.csv", [row]))
    changed = {**row, "birth_date": "1986-03-14"}
    exc = _rejected(session, write_csv(tmp_path / "b.csv", [changed]))
    assert _problems(exc) == {(1, "personal_id")}
    assert "birth_date" in exc.problems[0].reason


def test_a_household_with_two_heads(session: Session, tmp_path: Path) -> None:
    commune = commune_codes(session)[0]
    rows = family(commune)
    rows[1]["relationship_to_head"] = "head"
    exc = _rejected(session, write_csv(tmp_path / "h.csv", rows))
    assert _problems(exc) == {(2, "relationship_to_head")}


def test_every_bad_row_is_reported(session: Session, tmp_path: Path) -> None:
    rows = [person(sex="?"), person(), person(birth_date="1990-13-01"), person(personal_id="1")]
    exc = _rejected(session, write_csv(tmp_path / "m.csv", rows))
    assert {p.row for p in exc.problems} == {1, 3, 4}


def test_missing_required_column(session: Session, tmp_path: Path) -> None:
    columns = tuple(c for c in COLUMNS if c != "birth_date")
    exc = _rejected(session, write_csv(tmp_path / "c.csv", [person()], columns))
    assert (None, "birth_date") in _problems(exc)


def test_unknown_column_is_named(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("personal_id,full_name,birth_date,sex,nickname\n001085000001,A B,1985,M,x\n")
    exc = _rejected(session, path)
    assert (None, "nickname") in _problems(exc)


def test_header_only_and_empty_files(session: Session, tmp_path: Path) -> None:
    header_only = write_csv(tmp_path / "h.csv", [])
    assert "no data rows" in _rejected(session, header_only).message
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    assert "empty" in _rejected(session, empty).message


def test_a_file_that_is_not_utf8_names_the_expected_encoding(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "w.csv"
    content = "personal_id,full_name,birth_date,sex\n001085000001,Nguyễn Văn Ánh,1985,M\n"
    path.write_bytes(content.encode("cp1258", errors="replace"))
    exc = _rejected(session, path)
    assert "UTF-8" in exc.message
    assert "line 2" in exc.message


def test_bom_and_crlf_are_accepted(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    row = person()
    body = "personal_id,full_name,birth_date,sex\r\n" + (
        f"{row['personal_id']},{row['full_name']},{row['birth_date']},M\r\n"
    )
    path.write_bytes(codecs.BOM_UTF8 + body.encode())
    assert _import(session, path).inserted == 1


def test_a_row_with_the_wrong_number_of_fields(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    a, b = person(), person()
    path.write_text(
        "personal_id,full_name,birth_date,sex\n"
        f"{a['personal_id']},{a['full_name']},1985,M\n"
        "001085999999,Only Three,1985\n"
        f"{b['personal_id']},{b['full_name']},1985,M\n"
    )
    exc = _rejected(session, path)
    assert _problems(exc) == {(2, None)}


def test_a_100_megabyte_line_is_refused_without_loading_it(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "long.csv"
    with path.open("wb") as fh:
        fh.write(b"personal_id,full_name,birth_date,sex\n001085000001,")
        chunk = b"a" * (1 << 20)
        for _ in range(100):
            fh.write(chunk)
        fh.write(b",1985,M\n")
    exc = _rejected(session, path)
    assert "line 2" in exc.message and "longer than" in exc.message


def test_skip_invalid_loads_the_rest_and_writes_rejects(session: Session, tmp_path: Path) -> None:
    commune = commune_codes(session)[0]
    rows = family(commune)
    rows[0]["sex"] = "?"  # the father is rejected, so his daughter's father_id points to nobody
    good = person()
    path = write_csv(tmp_path / "s.csv", [*rows, good])
    rejects = tmp_path / "rejects.csv"
    report = _import(session, path, skip_invalid=True, rejects_path=rejects)
    assert report.inserted == 1
    assert session.get(Citizen, good["personal_id"]) is not None
    with rejects.open(encoding="utf-8") as fh:
        rejected = list(csv.DictReader(fh))
    assert [r["row"] for r in rejected] == ["1", "2", "3"]
    assert "sex" in rejected[0]["error"]
    assert "father_id" in rejected[2]["error"]


def test_duplicate_candidates_are_flagged_not_merged(session: Session, tmp_path: Path) -> None:
    commune = commune_codes(session)[0]
    a = person(permanent_commune_code=commune, full_name="Phạm Văn Trùng")
    b = person(permanent_commune_code=commune, full_name="PHẠM VĂN TRÙNG")
    report = _import(session, write_csv(tmp_path / "dup.csv", [a, b]))
    assert report.inserted == 2 and report.duplicate_candidates == 1
    pair = session.scalars(select(DuplicateCandidate)).one()
    assert {pair.personal_id_a, pair.personal_id_b} == {a["personal_id"], b["personal_id"]}
    assert pair.status == "open"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_then_import_round_trips_exactly(
    session: Session, tmp_path: Path, suffix: str
) -> None:
    commune = commune_codes(session)[0]
    rows = family(commune)
    rows.append(
        person(
            legacy_id_number="123456789",
            status="deceased",
            death_date="2020-05-05",
            ethnicity="Kinh",
            religion="Không",
            nationality="Việt Nam",
            place_of_origin="Hà Nội",
            phone="0912000000",
            birth_date="1931",
        )
    )
    _import(session, write_csv(tmp_path / "in.csv", rows))
    first = tmp_path / f"out1{suffix}"
    exporter.export_file(session, first)
    report = _import(session, first)
    assert report.unchanged == report.rows_read == 4
    second = tmp_path / f"out2{suffix}"
    exporter.export_file(session, second)
    table = pq.read_table(first) if suffix == ".parquet" else None
    if table is not None:
        assert table.schema == pa.schema([(c, pa.string()) for c in COLUMNS])
    assert first.read_bytes() == second.read_bytes()
    exported = {
        r["personal_id"]: r
        for r in (
            table.to_pylist() if table is not None else csv.DictReader(first.open(encoding="utf-8"))
        )
    }
    for row in rows:
        got = {k: (v or "") for k, v in exported[row["personal_id"]].items()}
        assert got == {**row, "status": row["status"] or "alive"}


@pytest.mark.parametrize("parallel", [False, True])
def test_checking_in_a_second_process_reports_the_same(
    session: Session, tmp_path: Path, parallel: bool
) -> None:
    path = tmp_path / "p.csv"
    good, bad = person(), person(birth_date="1990-02-30")
    path.write_text(
        "personal_id,full_name,birth_date,sex\n"
        f"{good['personal_id']},{good['full_name']},1985,M\n"
        "001085999998,Only Three,1985\n"
        f"{bad['personal_id']},{bad['full_name']},{bad['birth_date']},M\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as info, session.begin_nested():
        importer.import_file(session, path, actor="test", parallel=parallel)
    assert _problems(info.value) == {(2, None), (3, "birth_date")}
    report = _import(
        session, path, parallel=parallel, skip_invalid=True, rejects_path=tmp_path / "r.csv"
    )
    assert (report.inserted, report.rejected) == (1, 2)


def test_header_names_are_trimmed_and_ids_keep_leading_zeros(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        ' personal_id , full_name ,birth_date, sex\n001085000321,"Vũ Thị Ánh",1985,F\n',
        encoding="utf-8",
    )
    assert _import(session, path).inserted == 1
    assert session.get(Citizen, "001085000321") is not None


def test_a_nul_character_is_refused_on_every_backend(session: Session, tmp_path: Path) -> None:
    row = person(permanent_address="Số 1\x00ngõ 2")
    exc = _rejected(session, write_csv(tmp_path / "nul.csv", [person(), row]))
    assert _problems(exc) == {(2, "permanent_address")}


def test_the_import_batch_records_who_what_and_the_file_digest(
    session: Session, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "d.csv", [person()])
    report = _import(session, path)
    batch = session.get(ImportBatch, report.batch_id)
    assert batch is not None
    assert (batch.source, batch.file_name, batch.actor) == ("import", "d.csv", "test")
    assert batch.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (batch.rows_read, batch.rows_inserted, batch.rows_rejected) == (1, 1, 0)
