"""Read a sectoral file (CSV, Excel or Parquet) as a stream of string batches.

Every format ends as :class:`RawBatch`: the 1-based data row numbers and one string column per
recognised field, empty cells as nulls. CSV is parsed by Arrow's streaming reader and Parquet
by row group, so memory stays bounded by the batch size whatever the file size; calamine loads
an Excel sheet whole (a sheet holds at most 1,048,576 rows) and hands it over row by row.

Row numbers count every row under the header, blank ones included, so that ``row`` in the
results points at the same row an official sees in the file; rows with none of the recognised
fields filled (blank lines, a signature block under the table) are left out of the results.

Spreadsheet cells are turned into text the way the register reads them: a date cell gives
``YYYY-MM-DD``; a number in the ID column that lost its leading zeros (10 or 11 digits) is
padded back to 12, since a number cannot hold them; a number in the birth-date column is a
year (4 digits), ``DDMMYYYY`` (7 or 8 digits) or an Excel date serial. A cell merged over
several rows gives its value to each of them (a household's shared address).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import python_calamine as calamine

from dancu.errors import Problem, ValidationFailed
from dancu.reconcile.columns import HEADER_SEARCH_ROWS, ColumnMap, find_header_row, recognise
from dancu.vn import encoding as vn_encoding
from dancu.vn import names as vn_names

__all__ = ["EXCEL_SUFFIXES", "RawBatch", "Source", "open_source"]

EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})
_HEAD_BYTES = 1 << 20
_ARROW_BLOCK = 16 << 20
_DELIMITERS = (",", ";", "\t", "|")
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_MAX_SERIAL = 73050  # 2099-12-31

Cell = Any  # calamine: str | int | float | bool | date | datetime | time | timedelta


@dataclass(slots=True)
class RawBatch:
    """Data row numbers (int64) and field -> string column (null where empty)."""

    rows: pa.Array
    values: dict[str, pa.Array]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(slots=True)
class Source:
    """An opened input: where its header is, which column is which, and its row stream."""

    path: Path
    kind: str
    header_line: int
    columns: ColumnMap
    batches: Iterator[RawBatch]
    total_rows: int | None = None
    sheet: str | None = None
    other_sheets: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------- encodings


def _not_utf8(path: Path, sample: bytes, line: int) -> ValidationFailed:
    guess, advice = vn_encoding.describe(sample)
    return ValidationFailed(
        f"{path.name} is not UTF-8: line {line} has bytes that are not UTF-8; "
        f"it looks like {guess}. To use it, {advice}.",
        [Problem(None, None, f"line {line}: not UTF-8 (looks like {guess})")],
    )


def _first_bad_utf8(path: Path) -> ValidationFailed:
    """Scan the file for its first non-UTF-8 byte and describe it (an error path only)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines = 1
    with path.open("rb") as fh:
        while block := fh.read(_HEAD_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                start = max(exc.start - 2000, 0)
                return _not_utf8(
                    path, block[start : exc.start + 2000], lines + block.count(b"\n", 0, exc.start)
                )
            lines += block.count(b"\n")
    return ValidationFailed(f"{path.name} is not UTF-8: it ends inside a character")


# ------------------------------------------------------------------------------- helpers


def _blank_to_null(values: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _batch(rows: pa.Array, values: dict[str, pa.Array]) -> RawBatch | None:
    """Drop rows where no recognised field is filled; None when nothing is left."""
    cleaned = {f: _blank_to_null(v) for f, v in values.items()}
    filled = None
    for column in cleaned.values():
        valid = pc.is_valid(column)
        filled = valid if filled is None else pc.or_(filled, valid)
    if filled is None:
        return None
    if pc.all(filled).as_py():
        return RawBatch(rows, cleaned)
    if not pc.any(filled).as_py():
        return None
    return RawBatch(rows.filter(filled), {f: v.filter(filled) for f, v in cleaned.items()})


def _counted(
    path: Path, batches: Iterator[RawBatch], counter: Callable[[], int]
) -> Iterator[RawBatch]:
    """Pass batches through; refuse a file that turns out to have no data rows."""
    produced = 0
    for batch in batches:
        produced += len(batch)
        yield batch
    if produced == 0:
        raise ValidationFailed(
            f"{path.name} has a header but no data rows"
            + (f" ({counter()} blank rows)" if counter() else "")
        )


# ------------------------------------------------------------------------------- CSV


def _sniff_delimiter(lines: Sequence[str]) -> str:
    """The candidate that splits the widest row (ties: comma)."""
    best, widest = ",", 0
    for delimiter in _DELIMITERS:
        width = max((len(r) for r in csv.reader(lines, delimiter=delimiter)), default=0)
        if width > widest:
            best, widest = delimiter, width
    return best


def _read_head(path: Path) -> tuple[str, bool]:
    """The first MiB decoded as UTF-8 (BOM dropped), and whether it is the whole file."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
        whole = not fh.read(1)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _not_utf8(path, head[:4000], 1)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head, final=whole)
    except UnicodeDecodeError as exc:
        start = max(exc.start - 2000, 0)
        raise _not_utf8(
            path, head[start : exc.start + 2000], head.count(b"\n", 0, exc.start) + 1
        ) from None
    if not whole:
        text = text[: text.rfind("\n") + 1]  # complete lines only
    return text, whole


def _open_csv(path: Path, columns: Mapping[str, str], chunk_rows: int) -> Source:
    text, _whole = _read_head(path)
    if not text.strip():
        raise ValidationFailed(f"{path.name} is empty: expected a header line and data rows")
    lines = text.splitlines(keepends=True)
    delimiter = _sniff_delimiter(lines[: HEADER_SEARCH_ROWS * 2])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[list[str]] = []
    ends: list[int] = []
    for row in reader:
        rows.append(row)
        ends.append(reader.line_num)
        if len(rows) >= HEADER_SEARCH_ROWS:
            break
    index = find_header_row(rows, columns)
    header = rows[index] if index is not None else next((r for r in rows if any(r)), [])
    mapped = recognise(header, columns, where=path.name)
    skip = ends[index] if index is not None else 0
    header_line = (ends[index - 1] if index else 0) + 1
    names = [f"c{i}" for i in range(len(header))]
    wanted = {f: names[p] for f, p in mapped.positions.items()}
    bad_rows: list[tuple[int, int]] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append((int(row.expected_columns), int(row.actual_columns)))
        return "skip"

    try:
        stream = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(
                skip_rows=skip, column_names=names, block_size=_ARROW_BLOCK
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(wanted.values(), pa.string()),
                include_columns=list(wanted.values()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_problem(path, exc, delimiter, header_line, len(names)) from None
    blank = [0]

    def batches() -> Iterator[RawBatch]:
        next_row = 1
        while True:
            try:
                record = stream.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise _csv_problem(path, exc, delimiter, header_line, len(names)) from None
            if bad_rows:
                raise _field_count_problem(path, delimiter, header_line, len(names))
            n = record.num_rows
            for start in range(0, n, chunk_rows):
                part = record.slice(start, chunk_rows)
                rows_arr = pa.array(range(next_row, next_row + part.num_rows), pa.int64())
                next_row += part.num_rows
                out = _batch(rows_arr, {f: part.column(c) for f, c in wanted.items()})
                if out is None or len(out) < part.num_rows:
                    blank[0] += part.num_rows - (0 if out is None else len(out))
                if out is not None:
                    yield out

    return Source(path, "csv", header_line, mapped, _counted(path, batches(), lambda: blank[0]))


def _csv_problem(
    path: Path, exc: pa.ArrowInvalid, delimiter: str, header_line: int, width: int
) -> ValidationFailed:
    message = str(exc)
    if "UTF8" in message or "UTF-8" in message:
        return _first_bad_utf8(path)
    if "columns" in message:
        return _field_count_problem(path, delimiter, header_line, width)
    return ValidationFailed(f"{path.name}: not a readable CSV file ({message.splitlines()[0]})")


def _field_count_problem(
    path: Path, delimiter: str, header_line: int, width: int
) -> ValidationFailed:
    """Find the first data line whose field count differs from the header's (error path)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        for row in reader:
            if reader.line_num > header_line and row and len(row) != width:
                line = reader.line_num
                return ValidationFailed(
                    f"{path.name}: line {line} has {len(row)} fields where the header "
                    f"(line {header_line}) has {width}",
                    [Problem(None, None, f"line {line}: {len(row)} fields, expected {width}")],
                )
    return ValidationFailed(f"{path.name}: a row has a different number of fields than the header")


# ------------------------------------------------------------------------------- Excel


def _number_text(value: int, field_name: str) -> str:
    text = str(value)
    if field_name == "personal_id" and len(text) in (10, 11):
        return text.zfill(12)  # a number cannot keep the leading zeros of 001..., 079...
    if field_name == "birth_date":
        if len(text) in (7, 8):
            return text.zfill(8)  # DDMMYYYY
        if len(text) != 4 and 0 < value <= _MAX_SERIAL:
            return (_EXCEL_EPOCH + dt.timedelta(days=value)).isoformat()
    return text


def _cell_text(value: Cell, field_name: str) -> str | None:
    """A spreadsheet cell as the text the register reads (see the module docstring)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            return repr(value)
        return _number_text(int(value), field_name)
    return str(value) if value is not None else None


def _pick_sheet(path: Path, book: calamine.CalamineWorkbook, sheet: str | None) -> str:
    names = list(book.sheet_names)
    if not names:
        raise ValidationFailed(f"{path.name} has no sheets")
    if sheet is None:
        visible = [
            m.name for m in book.sheets_metadata if m.visible == calamine.SheetVisibleEnum.Visible
        ]
        return (visible or names)[0]
    if sheet in names:
        return sheet
    folded = [n for n in names if vn_names.fold(n) == vn_names.fold(sheet)]
    if len(folded) == 1:
        return folded[0]
    raise ValidationFailed(
        f"{path.name} has no sheet {sheet!r}; its sheets are: " + ", ".join(repr(n) for n in names),
        [Problem(None, None, f"no sheet {sheet!r}")],
    )


class _MergedFill:
    """Copy the value of a cell merged over several rows down to each of those rows."""

    def __init__(self, ranges: Sequence[tuple[tuple[int, int], tuple[int, int]]], col0: int):
        self._starts: dict[int, list[tuple[int, int]]] = {}
        for (r0, c0), (r1, _c1) in ranges:
            if r1 > r0:
                self._starts.setdefault(r0, []).append((c0 - col0, r1))
        self._active: dict[int, tuple[int, Cell]] = {}

    def apply(self, r: int, cells: list[Cell]) -> list[Cell]:
        for c, r1 in self._starts.get(r, ()):
            if c < len(cells):
                self._active[c] = (r1, cells[c])
        if not self._active:
            return cells
        for c, (r1, value) in list(self._active.items()):
            if r > r1:
                del self._active[c]
            elif c < len(cells) and cells[c] in ("", None):
                cells[c] = value
        return cells


def _open_excel(path: Path, columns: Mapping[str, str], sheet: str | None, chunk: int) -> Source:
    try:
        book = calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several unrelated types for a broken file
        raise ValidationFailed(f"{path.name}: not a readable spreadsheet ({exc})") from None
    name = _pick_sheet(path, book, sheet)
    others = [n for n in book.sheet_names if n != name]
    data = book.get_sheet_by_name(name)
    start = data.start
    col0 = start[1] if start else 0
    fill = _MergedFill(data.merged_cell_ranges or [], col0)
    rows_iter = enumerate(data.iter_rows())
    head: list[tuple[int, list[Cell]]] = []
    for r, cells in rows_iter:
        head.append((r, fill.apply(r, list(cells))))
        if sum(1 for _, c in head if any(v not in ("", None) for v in c)) >= HEADER_SEARCH_ROWS:
            break
    texts = [[_cell_text(v, "") or "" for v in cells] for _, cells in head]
    filled = [t for t in texts if any(t)]
    if not filled:
        raise ValidationFailed(
            f"{path.name}: sheet {name!r} is empty"
            + (f"; the other sheets are {', '.join(map(repr, others))}" if others else "")
        )
    index = find_header_row(texts, columns)
    where = f"{path.name}, sheet {name!r}"
    try:
        mapped = recognise(texts[index] if index is not None else filled[0], columns, where=where)
    except ValidationFailed as exc:
        if not others or index is not None:
            raise
        hint = f" The workbook also has sheets {', '.join(map(repr, others))}: choose one with"
        raise ValidationFailed(exc.message + hint + " --sheet NAME.", exc.problems) from None
    assert index is not None  # recognise() refuses a header with nothing recognised
    header_abs = head[index][0]
    positions = mapped.positions
    end = data.end
    total = (end[0] - header_abs) if end else None

    def rows_after() -> Iterator[tuple[int, list[Cell]]]:
        yield from head[index + 1 :]
        for r, cells in rows_iter:
            yield r, fill.apply(r, list(cells))

    blank = [0]

    def batches() -> Iterator[RawBatch]:
        numbers: list[int] = []
        values: dict[str, list[str | None]] = {f: [] for f in positions}
        for r, cells in rows_after():
            numbers.append(r - header_abs)
            for f, p in positions.items():
                values[f].append(_cell_text(cells[p], f) if p < len(cells) else None)
            if len(numbers) >= chunk:
                out = _excel_batch(numbers, values, blank)
                if out is not None:
                    yield out
                numbers, values = [], {f: [] for f in positions}
        if numbers:
            out = _excel_batch(numbers, values, blank)
            if out is not None:
                yield out

    return Source(
        path,
        "excel",
        header_abs + 1,
        mapped,
        _counted(path, batches(), lambda: blank[0]),
        total,
        name,
        others,
    )


def _excel_batch(
    numbers: list[int], values: dict[str, list[str | None]], blank: list[int]
) -> RawBatch | None:
    out = _batch(
        pa.array(numbers, pa.int64()), {f: pa.array(v, pa.string()) for f, v in values.items()}
    )
    blank[0] += len(numbers) - (0 if out is None else len(out))
    return out


# ------------------------------------------------------------------------------- Parquet


def _as_text(column: pa.Array, field_name: str) -> pa.Array:
    """A Parquet column as strings, with the same rules as spreadsheet cells."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return column.cast(pa.date32()).cast(pa.string())
    if pa.types.is_floating(kind):
        integral = pc.equal(pc.floor(column), column)
        if pc.all(integral).as_py() is not False:
            column = column.cast(pa.int64(), safe=False)
            kind = column.type
    if pa.types.is_integer(kind):
        text = column.cast(pa.string())
        length = pc.utf8_length(text)
        if field_name == "personal_id":
            short = pc.and_(pc.greater_equal(length, 10), pc.less_equal(length, 11))
            return pc.if_else(short, pc.utf8_lpad(text, 12, "0"), text)
        if field_name == "birth_date":
            return pc.if_else(pc.equal(length, 7), pc.utf8_lpad(text, 8, "0"), text)
        return text
    if pa.types.is_large_string(kind) or pa.types.is_string(kind):
        return column.cast(pa.string())
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ValidationFailed(
            f"column for {field_name} has type {kind}, which cannot be read as text"
        ) from None


def _open_parquet(path: Path, columns: Mapping[str, str], chunk_rows: int) -> Source:
    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationFailed(f"{path.name}: not a readable Parquet file ({exc})") from None
    names = list(pfile.schema_arrow.names)
    if not names:
        raise ValidationFailed(f"{path.name} is empty: it has no columns")
    mapped = recognise(names, columns, where=path.name)
    wanted = {f: names[p] for f, p in mapped.positions.items()}
    if pfile.metadata.num_rows == 0:
        raise ValidationFailed(f"{path.name} has a header but no data rows")
    blank = [0]

    def batches() -> Iterator[RawBatch]:
        next_row = 1
        for record in pfile.iter_batches(batch_size=chunk_rows, columns=list(wanted.values())):
            rows_arr = pa.array(range(next_row, next_row + record.num_rows), pa.int64())
            next_row += record.num_rows
            values = {
                f: _as_text(record.column(record.schema.get_field_index(c)), f)
                for f, c in wanted.items()
            }
            out = _batch(rows_arr, values)
            blank[0] += record.num_rows - (0 if out is None else len(out))
            if out is not None:
                yield out

    return Source(
        path,
        "parquet",
        1,
        mapped,
        _counted(path, batches(), lambda: blank[0]),
        pfile.metadata.num_rows,
    )


# ------------------------------------------------------------------------------- entry


def open_source(
    path: Path,
    *,
    columns: Mapping[str, str] | None = None,
    sheet: str | None = None,
    chunk_rows: int = 50_000,
) -> Source:
    """Open ``path`` (.csv, .xlsx/.xlsm/.xls/.ods, .parquet): header found, columns mapped.

    Problems found before reading the data (missing, empty, wrong encoding, header with nothing
    recognisable, ambiguous columns) raise ValidationFailed here; a problem met later (a row
    with the wrong number of fields, bytes that are not UTF-8 deep in the file, no data rows)
    raises from the batch iterator.
    """
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValidationFailed(f"{path.name} is empty: expected a header line and data rows")
    suffix = path.suffix.lower()
    wanted = dict(columns or {})
    if sheet is not None and suffix not in EXCEL_SUFFIXES:
        raise ValidationFailed(f"{path.name}: --sheet applies to spreadsheets only")
    if suffix == ".csv":
        return _open_csv(path, wanted, chunk_rows)
    if suffix in EXCEL_SUFFIXES:
        return _open_excel(path, wanted, sheet, chunk_rows)
    if suffix == ".parquet":
        return _open_parquet(path, wanted, chunk_rows)
    raise ValidationFailed(
        f"{path.name}: unsupported file type {suffix!r}; use .csv, .xlsx or .parquet"
    )
