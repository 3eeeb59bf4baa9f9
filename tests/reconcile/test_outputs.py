"""The output files: contract columns, input order, reports, atomic writes, reruns."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pyarrow.parquet as pq
import pytest
import python_calamine
from sqlalchemy.orm import Session

from dancu.errors import ValidationFailed
from dancu.reconcile import report
from dancu.reconcile.exact import RESULT_COLUMNS, STATUSES, mask_id
from dancu.reconcile.service import OUTPUT_FILES, reconcile
from dancu.registry import exporter
from tests.reconcile.helpers import (
    ALIVE,
    DEAD,
    SPLIT_WARD,
    UNKNOWN,
    read_results,
    row,
    run,
    write_rows,
)

ROWS = [
    row(),
    row(pid=UNKNOWN),
    row(pid=DEAD),
    row(sex="Nữ"),
    row(pid=""),
    row(pid="12"),
    row(pid=SPLIT_WARD, name="Dang Thi Hoa", born="1985", sex="F", address=""),
    row(),
]


def _scratch(out: Path) -> list[Path]:
    return list(out.glob(".reconcile-*"))


def test_every_output_is_written(registered: Session, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary, results = run(registered, write_rows(tmp_path / "in.csv", ROWS), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert list(results[0]) == list(RESULT_COLUMNS)
    assert [r["row"] for r in results] == [str(i) for i in range(1, 9)]
    assert [r["status"] for r in results] == [
        "match", "not_found", "deceased", "mismatch", "missing_id", "invalid_id", "match", "match",
    ]  # fmt: skip
    parquet = pq.read_table(out / "results.parquet")
    assert parquet.column_names == list(RESULT_COLUMNS)
    assert parquet.column("row").to_pylist() == list(range(1, 9))
    assert parquet.column("status").to_pylist() == [r["status"] for r in results]
    # every row but 7 describes the person of row 1 (row 3 with a deceased person's ID); the
    # suggestion track finds that person for rows 2, 5 and 6, which carry no usable ID
    assert parquet.column("duplicate_of").to_pylist() == [None, 1, 1, 1, 1, 1, None, 1]
    assert parquet.column("suggested_id").to_pylist() == [
        None, ALIVE, None, ALIVE, ALIVE, ALIVE, None, None,
    ]  # fmt: skip
    assert summary.rows == 8 and summary.duplicates == 6


def test_summary_json(registered: Session, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(registered, write_rows(tmp_path / "in.csv", ROWS), out)
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert data["rows"] == 8
    assert data["statuses"] == {
        "match": 3, "mismatch": 1, "deceased": 1, "not_found": 1, "invalid_id": 1, "missing_id": 1,
    }  # fmt: skip
    assert data["rates"]["match"] == 0.375
    assert data["mismatched_fields"] == {"full_name": 0, "birth_date": 0, "sex": 1, "address": 0}
    assert set(data["timings"]) == {"read", "normalise", "exact", "suggestions", "write", "total"}
    assert data["suggestions"]["computed"] is True
    assert data["suggestions"]["rows_considered"] == 4  # not_found, mismatch, missing, invalid
    assert data["suggestions"]["suggested"] == 4
    assert set(data["suggestions"]["model"]) >= {"people", "m", "u", "prior_in_register"}
    assert data["input"]["columns"]["personal_id"] == "Số CCCD"
    assert data["register"] == {"source": "database", "snapshot": None, "rows_read": 3}
    assert {p["province"] for p in data["provinces"]} >= {"Thành phố Hà Nội"}
    assert data["examples"] == [
        {"row": 4, "personal_id": mask_id(ALIVE), "mismatched_fields": "sex"}
    ]


def test_report_is_self_contained_and_holds_no_personal_data(
    registered: Session, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run(registered, write_rows(tmp_path / "in.csv", ROWS), out)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert re.search(r"<script[^>]+src=", page) is None, "no script may load from the network"
    assert "Plotly.newPlot" in page and "plotly.js" in page.lower()
    for secret in (ALIVE, DEAD, UNKNOWN, "Nguyễn Văn Thử", "Trần Thị Mất"):
        assert secret not in page
    assert mask_id(ALIVE) in page


def test_results_xlsx(registered: Session, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(registered, write_rows(tmp_path / "in.csv", ROWS), out)
    book = python_calamine.CalamineWorkbook.from_path(str(out / "results.xlsx"))
    assert book.sheet_names == ["Tóm tắt", "Kết quả"]
    rows = book.get_sheet_by_name("Kết quả").to_python()
    assert rows[0][: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert rows[1][2] == ALIVE, "ID numbers stay text with their leading zero"
    assert [r[1] for r in rows[1:]] == [r["status"] for r in read_results(out)]
    # every cell as in results.csv: numbers as numbers, the rest as text
    expected = [
        [
            int(r["row"]), r["status"], r["personal_id"], r["mismatched_fields"],
            r["suggested_id"], float(r["suggestion_score"]) if r["suggestion_score"] else "",
            int(r["duplicate_of"]) if r["duplicate_of"] else "",
        ]
        for r in read_results(out)
    ]  # fmt: skip
    assert [r[: len(RESULT_COLUMNS)] for r in rows[1:]] == expected
    with zipfile.ZipFile(out / "results.xlsx") as archive:
        for name in archive.namelist():
            if name.endswith(".xml"):
                ElementTree.fromstring(archive.read(name))  # well-formed
    overview = book.get_sheet_by_name("Tóm tắt").to_python()
    assert any(r[0] == f"{report.STATUS_LABELS['match'][0]} (match)" for r in overview)


def test_a_failed_run_leaves_the_previous_results(
    registered: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    run(registered, write_rows(tmp_path / "in.csv", ROWS), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_html", broken)
    other = write_rows(tmp_path / "other.csv", [row(pid=DEAD)])
    with pytest.raises(OSError, match="disk full"):
        reconcile(registered, other, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _scratch(out) == []


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = write_rows(tmp_path / "bad.csv", [["1"]], header=["nothing"])
    with pytest.raises(ValidationFailed):
        reconcile(None, path, out, register=tmp_path / "none.parquet")
    assert list(out.iterdir()) == []


def test_a_rerun_gives_identical_results(registered: Session, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", ROWS * 50)
    out = tmp_path / "out"
    run(registered, path, out)
    first = (out / "results.csv").read_bytes(), pq.read_table(out / "results.parquet")
    # a killed run left its scratch directory behind (no such process any more)
    stale = out / ".reconcile-999999999-dead.tmp"
    (stale / "work").mkdir(parents=True)
    (out / "results.csv").write_text("half-written")
    run(registered, path, out)
    assert (out / "results.csv").read_bytes() == first[0]
    assert pq.read_table(out / "results.parquet").equals(first[1])
    assert _scratch(out) == []


def test_a_register_snapshot_gives_the_same_results(registered: Session, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", ROWS)
    _, from_database = run(registered, path, tmp_path / "a")
    for suffix in (".parquet", ".csv"):
        snapshot = tmp_path / f"register{suffix}"
        exporter.export_file(registered, snapshot)
        summary, from_snapshot = run(None, path, tmp_path / f"b{suffix}", register=snapshot)
        assert from_snapshot == from_database
        assert summary.data["register"]["source"] == "snapshot"


def test_statuses_are_the_contracts() -> None:
    assert set(STATUSES) == {
        "match",
        "mismatch",
        "deceased",
        "not_found",
        "invalid_id",
        "missing_id",
    }


def test_results_too_long_for_a_sheet_stay_in_csv(
    registered: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "_EXCEL_ROWS", 5)
    out = tmp_path / "out"
    run(registered, write_rows(tmp_path / "in.csv", ROWS), out)
    book = python_calamine.CalamineWorkbook.from_path(str(out / "results.xlsx"))
    results = book.get_sheet_by_name("Kết quả").to_python()
    assert results[1][0] == report.TOO_LARGE_NOTE
    assert len(read_results(out)) == len(ROWS)
