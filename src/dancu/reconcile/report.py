"""What an official reads: ``summary.json``, ``report.html`` and ``results.xlsx``.

The report opens offline: one HTML file with Plotly's JavaScript embedded inline (no CDN), the
charts (statuses, mismatches by field and by province, stage timings) and tables of figures.
It holds no personal data: counts, row numbers and masked ID numbers (``001******123``) only.
Labels are Vietnamese with the English term in brackets, as officials read them.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

from dancu.reconcile.exact import MISMATCH_FIELDS, RESULT_COLUMNS, STATUSES

__all__ = [
    "COLOURS",
    "FIELD_LABELS",
    "STAGES",
    "STATUS_LABELS",
    "write_html",
    "write_summary",
    "write_xlsx",
]

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "match": (
        "Khớp",
        "the ID is in the register, the person is alive and every given field agrees",
    ),
    "mismatch": (
        "Sai lệch",
        "the ID is in the register, the person is alive, and at least one given field disagrees",
    ),
    "deceased": ("Đã mất", "the ID is in the register and the person is deceased"),
    "not_found": (
        "Không tìm thấy",
        "a well-formed 12-digit number that the register does not hold, "
        "neither as a personal ID nor as an old CMND number",
    ),
    "invalid_id": (
        "Số không hợp lệ",
        "a number is given but is not 12 digits after removing spaces and dots",
    ),
    "missing_id": ("Thiếu số định danh", "no ID number is given"),
}
"""Vietnamese label and English meaning of each status (CONTRACTS §3)."""

FIELD_LABELS: dict[str, str] = {
    "full_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "sex": "Giới tính",
    "address": "Địa chỉ (xã, phường)",
}
COLOURS: dict[str, str] = {
    "match": "#2e7d32",
    "mismatch": "#f9a825",
    "deceased": "#616161",
    "not_found": "#c62828",
    "invalid_id": "#8e24aa",
    "missing_id": "#1565c0",
}
"""The colour of each status in the charts."""
STAGES: tuple[str, ...] = ("read", "normalise", "exact", "suggestions", "write")
"""The timed stages of a run, in order."""
_CHARTS = "dancu.reconcile.charts"  # Plotly, imported only when a report is written
_EXCEL_ROWS = 1_048_575  # data rows per sheet under a header row


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    """``summary.json``: UTF-8, keys in a stable order."""
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------ HTML


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem auto;
max-width:1100px;color:#212121;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:left}th{background:#f5f5f5}.note{background:#fff8e1;padding:.6rem;border-left:4px
solid #f9a825}.muted{color:#666;font-size:.9rem}
"""


def write_html(path: Path, summary: Mapping[str, Any]) -> None:
    """``report.html``: self-contained, charts inline, no personal data."""
    rows = int(summary["rows"])
    statuses: dict[str, int] = summary["statuses"]
    timings: dict[str, float] = summary["timings"]
    charts: list[str] = importlib.import_module(_CHARTS).charts_html(summary)
    source = summary["input"]
    status_table = _table(
        ["Trạng thái (status)", "Số dòng (rows)", "Tỷ lệ (rate)", "Ý nghĩa (meaning)"],
        (
            (f"{STATUS_LABELS[s][0]} ({s})", f"{statuses[s]:,}", f"{summary['rates'][s]:.2%}",
             STATUS_LABELS[s][1])
            for s in STATUSES
        ),
    )  # fmt: skip
    unreadable = summary["unreadable"]
    unreadable_table = _table(
        ["Trường (field)", "Số dòng (rows)", "Các dòng đầu tiên (first rows)"],
        (
            (f"{FIELD_LABELS[f]} ({f})", f"{v['count']:,}", ", ".join(map(str, v["first_rows"])))
            for f, v in unreadable.items()
        ),
    )
    examples = _table(
        ["Dòng (row)", "Số định danh (masked)", "Trường sai lệch (fields)"],
        ((e["row"], e["personal_id"], e["mismatched_fields"]) for e in summary["examples"]),
    )
    columns = _table(
        ["Trường (field)", "Cột trong tệp (column in the file)"], source["columns"].items()
    )
    suggestions = summary["suggestions"]["note"]
    title = f"Đối chiếu dữ liệu: {source['file']}"
    body = f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{rows:,} dòng đối chiếu với Cơ sở dữ liệu quốc gia về dân cư ({rows:,} rows checked
against the population register), {summary["duplicates"]:,} dòng trùng
(duplicates of an earlier row), {summary["found_by_legacy_number"]:,} tìm thấy qua số CMND cũ
(found by an old CMND number). Thời gian (time): {timings["total"]:.1f} s.</p>
<p class="muted">Tệp (file): {html.escape(source["file"])}
{f"— trang tính (sheet) {html.escape(str(source['sheet']))}" if source.get("sheet") else ""}
— dòng tiêu đề (header line) {source["header_line"]}. Báo cáo không chứa dữ liệu cá nhân
(no personal data: counts, row numbers and masked ID numbers only).</p>
<h2>Trạng thái (statuses)</h2>{status_table}{charts[0]}
<h2>Sai lệch (mismatches)</h2>{charts[1]}
<h3>Ví dụ (first mismatched rows)</h3>{examples}
<h2>Giá trị không đọc được (values that could not be read)</h2>
<p class="muted">A value that cannot be read counts as disagreeing with the register.</p>
{unreadable_table}
<h2>Theo tỉnh (by province)</h2>{charts[2]}{charts[3]}
<h2>Thời gian (timings)</h2>{charts[4]}
<h2>Cột đã nhận diện (columns recognised)</h2>{columns}
<p class="note">{html.escape(suggestions)}</p>
</body></html>
"""
    path.write_text(body, encoding="utf-8")


# ------------------------------------------------------------------------------ Excel


TOO_LARGE_NOTE = (
    "Kết quả có hơn 1.048.575 dòng, quá giới hạn một trang tính Excel: xem results.csv hoặc "
    "results.parquet. / The results have more rows than an Excel sheet holds: use results.csv "
    "or results.parquet."
)


def _overview(book: Any, summary: Mapping[str, Any], bold: Any, fits: bool) -> None:
    overview = book.add_worksheet("Tóm tắt")
    overview.set_column(0, 0, 34)
    overview.set_column(1, 1, 14)
    overview.set_column(2, 2, 90)
    status_head = ("Trạng thái (status)", "Số dòng (rows)", "Ý nghĩa (meaning)")
    field_head = ("Trường sai lệch (mismatched field)", "Số dòng (rows)")
    lines: list[tuple[Any, ...]] = [
        ("Tệp (file)", summary["input"]["file"]),
        ("Số dòng (rows)", summary["rows"]),
        () if fits else (TOO_LARGE_NOTE,),
        status_head,
        *(
            (f"{STATUS_LABELS[s][0]} ({s})", summary["statuses"][s], STATUS_LABELS[s][1])
            for s in STATUSES
        ),
        (),
        field_head,
        *((f"{FIELD_LABELS[f]} ({f})", summary["mismatched_fields"][f]) for f in MISMATCH_FIELDS),
        (),
        ("Dòng trùng (duplicates)", summary["duplicates"]),
        ("Thời gian, giây (seconds)", round(float(summary["timings"]["total"]), 2)),
        (),
        (summary["suggestions"]["note"],),
    ]
    for r, line in enumerate(lines):
        overview.write_row(r, 0, line, bold if line in (status_head, field_head) else None)


_SHEET = "xl/worksheets/sheet2.xml"
"""The results sheet inside the workbook (the second sheet, after the overview)."""


def _text_cells(column: str, rows: pa.Array, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(
        '<c r="', column, rows, '" t="inlineStr"><is><t>', values, "</t></is></c>", ""
    )


def _number_cells(column: str, rows: pa.Array, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(
        '<c r="', column, rows, '"><v>', pc.cast(values, pa.string()), "</v></c>", ""
    )


def _rows_xml(batch: pa.RecordBatch, first: int) -> bytes:
    """The sheet XML of a batch of results, built column-wise by Arrow (no per-cell Python):
    numbers as numbers, the rest as inline strings (an ID stays text, leading zero kept). The
    values are row numbers, statuses, digits and field names: nothing to escape."""
    rows = pc.cast(pa.array(range(first, first + batch.num_rows), pa.int64()), pa.string())
    number, status, pid, fields, suggested, score, duplicate = batch.columns
    cells = [
        _number_cells("A", rows, number),
        _text_cells("B", rows, status),
        _text_cells("C", rows, pid),
        _text_cells("D", rows, fields),
        _text_cells("E", rows, suggested),
        _number_cells("F", rows, score),
        _number_cells("G", rows, duplicate),
    ]
    xml = pc.binary_join_element_wise(
        '<row r="', rows, '">', *(pc.fill_null(c, "") for c in cells), "</row>", ""
    )
    return "".join(xml.to_pylist()).encode()


def _fill_results(path: Path, results: Iterable[pa.RecordBatch], rows: int) -> None:
    """Stream the results rows into the results sheet of the workbook xlsxwriter wrote (header
    only), rewriting the archive once."""
    partial = path.with_name(path.name + ".rows")
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename != _SHEET:
                target.writestr(info, data)
                continue
            head, tail = data.split(b"</sheetData>", 1)
            head = head.replace(
                b'<dimension ref="A1:G1"/>', f'<dimension ref="A1:G{rows + 1}"/>'.encode()
            )
            with target.open(_SHEET, "w", force_zip64=True) as sheet:
                sheet.write(head)
                first = 2
                for batch in results:
                    sheet.write(_rows_xml(batch, first))
                    first += batch.num_rows
                sheet.write(b"</sheetData>" + tail)
    os.replace(partial, path)


def write_xlsx(
    path: Path, summary: Mapping[str, Any], results: Iterable[pa.RecordBatch], *, rows: int
) -> None:
    """``results.xlsx``: a summary sheet, then the results on one sheet.

    xlsxwriter writes the workbook (overview, formats, the results header); the result rows,
    up to a million of them, are then streamed into the results sheet as XML built by Arrow
    (xlsxwriter costs about 7 µs a cell, a minute for a million rows). ID numbers are text so
    that Excel keeps their leading zeros. Results longer than a sheet (1,048,575 rows) are
    left to results.csv and results.parquet, and the summary sheet says so.
    """
    fits = rows <= _EXCEL_ROWS
    book = xlsxwriter.Workbook(str(path))
    try:
        bold = book.add_format({"bold": True})
        _overview(book, summary, bold, fits)
        sheet = book.add_worksheet("Kết quả")
        sheet.write_row(0, 0, RESULT_COLUMNS, bold)
        sheet.set_column(0, 0, 9)
        sheet.set_column(1, 1, 12)
        sheet.set_column(2, 2, 15, book.add_format({"num_format": "@"}))
        sheet.set_column(3, 3, 34)
        sheet.set_column(4, 4, 15, book.add_format({"num_format": "@"}))
        sheet.freeze_panes(1, 0)
        if not fits:
            sheet.write_string(1, 0, TOO_LARGE_NOTE)
    finally:
        book.close()
    if fits and rows:
        _fill_results(path, results, rows)
