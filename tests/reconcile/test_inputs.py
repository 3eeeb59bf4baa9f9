"""Input formats, header recognition and bad input (CONTRACTS §3, the issue's bad-input list)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from sqlalchemy.orm import Session

from dancu.errors import ValidationFailed
from dancu.reconcile.columns import find_header_row, recognise
from dancu.reconcile.service import reconcile
from tests.reconcile.helpers import (
    ALIVE,
    DEAD,
    HEADER,
    row,
    run,
    write_rows,
)


def _refused(session: Session | None, path: Path, out: Path, **kwargs: object) -> str:
    with pytest.raises(ValidationFailed) as info:
        reconcile(session, path, out, **kwargs)  # type: ignore[arg-type]
    exc = info.value
    return exc.message + "\n" + "\n".join(str(p) for p in exc.problems)


# ------------------------------------------------------------------- header recognition


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Số CCCD", "personal_id"),
        ("so_cccd", "personal_id"),
        ("SO CCCD", "personal_id"),
        ("SốCCCD", "personal_id"),
        ("CCCD", "personal_id"),
        ("Số định danh cá nhân", "personal_id"),
        ("so_dinh_danh", "personal_id"),
        ("personal_id", "personal_id"),
        ("Personal ID", "personal_id"),
        ("Họ và tên", "full_name"),
        ("ho_va_ten", "full_name"),
        ("HỌ TÊN", "full_name"),
        ("ho_ten", "full_name"),
        ("full_name", "full_name"),
        ("Full name", "full_name"),
        ("Ngày sinh", "birth_date"),
        ("ngay_sinh", "birth_date"),
        ("Ngày sinh (dd/mm/yyyy)", "birth_date"),
        ("Ngày, tháng, năm sinh", "birth_date"),
        ("birth_date", "birth_date"),
        ("Date of birth", "birth_date"),
        ("Giới tính", "sex"),
        ("gioi_tinh", "sex"),
        ("sex", "sex"),
        ("Gender", "sex"),
        ("Địa chỉ", "address"),
        ("dia_chi", "address"),
        ("Địa chỉ thường trú", "address"),
        ("address", "address"),
    ],
)
def test_headers_are_recognised(header: str, field: str) -> None:
    headers = ["STT", header] if field == "personal_id" else ["STT", "Số CCCD", header]
    assert recognise(headers, where="t").headers[field] == header


def test_the_new_card_wins_over_the_old_one() -> None:
    columns = recognise(["Số CMND", "Số CCCD", "Họ tên"], where="t")
    assert columns.headers["personal_id"] == "Số CCCD"
    assert recognise(["Số CMND", "Họ tên"], where="t").headers["personal_id"] == "Số CMND"


def test_two_columns_for_one_field_are_ambiguous() -> None:
    with pytest.raises(ValidationFailed) as info:
        recognise(["Số CCCD", "Số định danh", "Họ tên"], where="t.csv")
    problem = str(info.value.problems[0])
    assert "'Số CCCD'" in problem and "'Số định danh'" in problem and "--column" in problem


def test_explicit_mapping_wins_and_resolves_ambiguity() -> None:
    columns = recognise(
        ["Số CCCD", "Số định danh", "Tên KH"],
        {"personal_id": "Số định danh", "full_name": "tên kh"},
        where="t",
    )
    assert columns.positions == {"personal_id": 1, "full_name": 2}


def test_a_column_mapped_twice_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        recognise(["A", "B"], {"personal_id": "A", "full_name": "A"}, where="t")
    assert "mapped twice" in str(info.value.problems[0])


def test_a_mapping_to_a_missing_header_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        recognise(["A", "B"], {"personal_id": "C"}, where="t")
    assert str(info.value.problems[0]) == "column C: no such column for personal_id"


def test_nothing_recognised_lists_the_headers_found(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "x.csv", [["1", "2", "3"]], header=["Mã KH", "Tên", "SĐT"])
    message = _refused(None, path, tmp_path / "out", register=tmp_path / "unused.parquet")
    assert "'Mã KH', 'Tên', 'SĐT'" in message
    assert "--column" in message


def test_name_without_birth_date_is_not_enough() -> None:
    with pytest.raises(ValidationFailed) as info:
        recognise(["Họ tên", "Giới tính"], where="t.csv")
    assert "full_name ('Họ tên'), sex ('Giới tính')" in info.value.message


def test_header_row_is_found_below_a_title_block() -> None:
    rows = [["DANH SÁCH NGƯỜI LAO ĐỘNG"], [], ["Ngày 1/1/2026", ""], HEADER, row()]
    assert find_header_row(rows, {}) == 3


def test_column_mapping_end_to_end(registered: Session, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "in.csv", [[ALIVE, "Nguyễn Văn Thử", "1985"]], header=["Mã", "Tên KH", "NS"]
    )
    _, results = run(
        registered,
        path,
        tmp_path / "out",
        columns={"personal_id": "Mã", "full_name": "Tên KH", "birth_date": "NS"},
    )
    assert results[0]["status"] == "match"


# ------------------------------------------------------------------- CSV


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_with_or_without_bom_and_any_delimiter(
    registered: Session, tmp_path: Path, encoding: str, delimiter: str
) -> None:
    path = write_rows(
        tmp_path / "in.csv", [row(), row(pid=DEAD)], encoding=encoding, delimiter=delimiter
    )
    _, results = run(registered, path, tmp_path / "out")
    assert [r["status"] for r in results] == ["match", "deceased"]


def test_csv_title_block_and_blank_lines_keep_row_numbers(
    registered: Session, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    lines = [
        "DANH SÁCH ĐỐI CHIẾU,,,,,",
        ",,,,,",
        ",".join(HEADER),
        ",".join(row(address="")),
        "",
        ",,,,,",
        ",".join(row(pid=DEAD, address="")),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary, results = run(registered, path, tmp_path / "out")
    assert [(r["row"], r["status"]) for r in results] == [("1", "match"), ("4", "deceased")]
    assert summary.data["input"]["header_line"] == 3


def test_a_quoted_value_may_hold_commas_and_newlines(registered: Session, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "in.csv", [row(address="Số 5,\nngõ 2, Phường Hồng Hà, Hà Nội"), row()]
    )
    _, results = run(registered, path, tmp_path / "out")
    assert [(r["row"], r["status"]) for r in results] == [("1", "match"), ("2", "match")]


def test_small_batches_give_the_same_results(registered: Session, tmp_path: Path) -> None:
    rows = [row(), row(pid=DEAD), row(pid="1"), row(sex="F"), row(pid="")] * 7
    path = write_rows(tmp_path / "in.csv", rows)
    _, whole = run(registered, path, tmp_path / "a")
    _, streamed = run(registered, path, tmp_path / "b", chunk_rows=3)
    assert whole == streamed and len(whole) == 35


_TONES = "\u0300\u0301\u0303\u0309\u0323"


def _cp1258(text: str) -> bytes:
    """Windows-1258: letters with shape marks are precomposed, tone marks combine."""
    out = []
    for ch in text:
        nfd = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in nfd if c not in _TONES))
        out.append(base + "".join(c for c in nfd if c in _TONES))
    return "".join(out).encode("cp1258")


def _latin1_csv(path: Path, data: bytes) -> Path:
    path.write_bytes(b"so_cccd,ho_ten,ngay_sinh\n" + data)
    return path


@pytest.mark.parametrize(
    ("data", "expected", "advice"),
    [
        (_cp1258("079085000001,Nguyễn Văn Thử,1985\n"), "Windows-1258", "iconv -f CP1258"),
        (
            "079085000001,NguyÔn V¨n An,1985\n079085000002,Lª ThÞ Hoa,1985\n".encode("latin-1"),
            "TCVN3",
            "UniKey",
        ),
        (
            "079085000001,Nguyeãn Vaên An,1985\n079085000002,Leâ Thò Hoa,1985\n".encode("latin-1"),
            "VNI",
            "UniKey",
        ),
    ],
)
def test_a_csv_not_in_utf8_names_its_encoding(
    tmp_path: Path, data: bytes, expected: str, advice: str
) -> None:
    path = _latin1_csv(tmp_path / "legacy.csv", data)
    message = _refused(None, path, tmp_path / "out", register=tmp_path / "r.parquet")
    assert "not UTF-8" in message and f"looks like {expected}" in message and advice in message
    assert "line 2" in message


def test_utf16_is_named(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_text("so_cccd,ho_ten\n079085000001,Nguyễn Văn Thử\n", encoding="utf-16")
    message = _refused(None, path, tmp_path / "out", register=tmp_path / "r.parquet")
    assert "looks like UTF-16" in message


def test_bad_bytes_deep_in_a_file_are_found(registered: Session, tmp_path: Path) -> None:
    good = ",".join(row(address="")) + "\n"
    path = tmp_path / "deep.csv"
    body = (",".join(HEADER) + "\n" + good * 60_000).encode("utf-8")
    path.write_bytes(body + _cp1258("1,079085000001,Nguyễn Văn Thử,1985,Nam,\n"))
    message = _refused(registered, path, tmp_path / "out")
    assert "line 60002" in message and "Windows-1258" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"\n\n  \n", "is empty"),
        ("Số CCCD,Họ tên\n".encode(), "has a header but no data rows"),
        ("Số CCCD,Họ tên\n,\n\n".encode(), "has a header but no data rows"),
    ],
)
def test_empty_and_header_only_files(
    registered: Session, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(content)
    assert expected in _refused(registered, path, tmp_path / "out")


def test_a_row_with_the_wrong_number_of_fields_is_named(
    registered: Session, tmp_path: Path
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("Số CCCD,Họ tên\n079085000001,Nguyễn Văn Thử\n079085000001\n", encoding="utf-8")
    message = _refused(registered, path, tmp_path / "out")
    assert "line 3 has 1 fields where the header (line 1) has 2" in message


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    assert "no such file" in _refused(
        None, tmp_path / "nope.csv", tmp_path / "o", register=tmp_path
    )
    other = tmp_path / "x.json"
    other.write_text("{}")
    assert "unsupported file type" in _refused(None, other, tmp_path / "o", register=tmp_path)


# ------------------------------------------------------------------- Excel


def _workbook(path: Path, *, notes_first: bool) -> Path:
    """Notes sheet, and a list with a merged title block, merged cells and typed cells."""
    book = xlsxwriter.Workbook(str(path))
    date = book.add_format({"num_format": "dd/mm/yyyy"})
    if notes_first:
        book.add_worksheet("Ghi chú").write(0, 0, "Tệp gửi kèm công văn số 12")
    sheet = book.add_worksheet("Danh sách")
    sheet.merge_range(0, 0, 0, 5, "DANH SÁCH NGƯỜI THAM GIA BẢO HIỂM")
    sheet.merge_range(1, 0, 1, 5, "(kèm theo công văn số 12)")
    sheet.write_row(3, 0, HEADER)
    sheet.write_row(4, 0, [1, ALIVE, "Nguyễn Văn Thử"])
    sheet.write_datetime(4, 3, dt.datetime(1985, 3, 14), date)
    sheet.write(4, 4, "Nam")
    # an address merged over two rows: both rows live there
    sheet.merge_range(4, 5, 5, 5, "Phường Phúc Xá, Quận Ba Đình, Hà Nội")
    # the ID typed as a number: Excel drops the leading zero
    sheet.write_row(5, 0, [2, int(ALIVE), "Nguyễn Văn Thử", 14031985, "Nam"])
    sheet.write_row(7, 0, [3, "079 185 000 002", "Trần Thị Mất", 1985, "Nữ"])
    sheet.write_row(8, 0, [4, DEAD, "Trần Thị Mất", 31048, "Nữ"])  # an Excel date serial
    sheet.write(10, 0, "Người lập biểu")  # a signature block: no recognised field
    if not notes_first:
        book.add_worksheet("Ghi chú").write(0, 0, "ghi chú")
    book.close()
    return path


def test_xlsx_with_title_block_merged_cells_and_typed_cells(
    registered: Session, tmp_path: Path
) -> None:
    path = _workbook(tmp_path / "in.xlsx", notes_first=False)
    summary, results = run(registered, path, tmp_path / "out")
    assert [(r["row"], r["status"], r["personal_id"]) for r in results] == [
        ("1", "match", ALIVE),
        ("2", "match", ALIVE),
        ("4", "deceased", DEAD),
        ("5", "deceased", DEAD),
    ]
    assert results[1]["duplicate_of"] == "1"
    assert summary.data["input"]["sheet"] == "Danh sách"
    assert summary.data["input"]["other_sheets"] == ["Ghi chú"]
    assert summary.data["input"]["header_line"] == 4


def test_xlsx_first_sheet_by_default_and_sheet_option(registered: Session, tmp_path: Path) -> None:
    path = _workbook(tmp_path / "in.xlsx", notes_first=True)
    message = _refused(registered, path, tmp_path / "out")
    assert "sheet 'Ghi chú'" in message and "'Danh sách'" in message and "--sheet" in message
    _, results = run(registered, path, tmp_path / "out", sheet="Danh sách")
    assert len(results) == 4
    _, again = run(registered, path, tmp_path / "out2", sheet="danh sach")
    assert again == results
    assert "no sheet 'Khác'" in _refused(registered, path, tmp_path / "out", sheet="Khác")


def test_sheet_is_only_for_spreadsheets(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row()])
    assert "--sheet" in _refused(None, path, tmp_path / "o", sheet="A", register=tmp_path)


# ------------------------------------------------------------------- Parquet


def test_parquet_with_typed_columns(registered: Session, tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    table = pa.table(
        {
            "so_cccd": pa.array([int(ALIVE), None, int(DEAD)], pa.int64()),
            "ho_ten": ["Nguyễn Văn Thử", "Ai Đó", "Trần Thị Mất"],
            "ngay_sinh": pa.array([dt.date(1985, 3, 14), dt.date(2000, 1, 1), None], pa.date32()),
            "gioi_tinh": ["Nam", "Nữ", None],
        }
    )
    pq.write_table(table, path)
    _, results = run(registered, path, tmp_path / "out")
    assert [(r["status"], r["personal_id"]) for r in results] == [
        ("match", ALIVE),
        ("missing_id", ""),
        ("deceased", DEAD),
    ]


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"so_cccd": pa.array([], pa.string())}), path)
    assert "no data rows" in _refused(None, path, tmp_path / "o", register=tmp_path)
