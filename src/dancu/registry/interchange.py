"""The registry interchange format (CONTRACTS.md section 2): reading, checking, normalising.

Files are streamed in record batches (CSV through Arrow's streaming reader, Parquet by row
group), so memory stays bounded whatever the file size. Each batch is checked with Arrow's
vectorised kernels; only names go through Python, with per-word caches. Checks that need the
whole file (an ID twice, a father nobody has, a household with two heads) run later in SQL on
the staging table, see ``registry.importer``.

Row numbers in every message are 1-based data rows (the header is not a row), as in the
reconciliation contract.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from dancu.errors import Problem, ValidationFailed
from dancu.vn import encoding as vn_encoding
from dancu.vn import names as vn_names

COLUMNS: tuple[str, ...] = (
    "personal_id",
    "full_name",
    "birth_date",
    "sex",
    "status",
    "death_date",
    "legacy_id_number",
    "permanent_commune_code",
    "permanent_address",
    "household_id",
    "relationship_to_head",
    "father_id",
    "mother_id",
    "spouse_id",
    "ethnicity",
    "religion",
    "nationality",
    "place_of_origin",
    "phone",
)
REQUIRED: tuple[str, ...] = ("personal_id", "full_name", "birth_date", "sex")
# Every column as text: how the format travels in CSV, and how Parquet is read.
STRING_SCHEMA = pa.schema([(name, pa.string()) for name in COLUMNS])
RELATIONSHIPS = ("head", "spouse", "child", "parent", "sibling", "grandchild", "other")
TEXT_LIMITS = {
    "permanent_address": 300,
    "household_id": 64,
    "ethnicity": 60,
    "religion": 60,
    "nationality": 60,
    "place_of_origin": 200,
    "phone": 20,
}

# The normalised rows, as loaded into the staging table.
STAGING_SCHEMA = pa.schema(
    [
        ("row_no", pa.int64()),
        ("personal_id", pa.string()),
        ("full_name", pa.string()),
        ("family_name", pa.string()),
        ("middle_name", pa.string()),
        ("given_name", pa.string()),
        ("name_key", pa.string()),
        ("birth_date", pa.date32()),
        ("birth_date_precision", pa.string()),
        ("birth_year", pa.int32()),
        ("sex", pa.string()),
        ("status", pa.string()),
        ("death_date", pa.date32()),
        ("legacy_id_number", pa.string()),
        ("permanent_commune_code", pa.string()),
        ("permanent_address", pa.string()),
        ("household_id", pa.string()),
        ("relationship_to_head", pa.string()),
        ("father_id", pa.string()),
        ("mother_id", pa.string()),
        ("spouse_id", pa.string()),
        ("ethnicity", pa.string()),
        ("religion", pa.string()),
        ("nationality", pa.string()),
        ("place_of_origin", pa.string()),
        ("phone", pa.string()),
    ]
)

_PARTIAL_LENGTH = {"day": 10, "month": 7, "year": 4}


def format_partial(value: dt.date | str, precision: str) -> str:
    """A stored birth date (its first possible day) written back as ``YYYY-MM-DD``,
    ``YYYY-MM`` or ``YYYY`` according to its precision."""
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return text[: _PARTIAL_LENGTH[precision]]


_SCAN_BLOCK = 8 << 20
# Arrow parses a CSV block before it yields any of its rows: 4 MB (about 20,000 rows) gives a
# first batch in 0.04 s instead of 0.33 s for 16 MB, and reads a 1M-row file no slower
# (0.39 s against 0.78 s for the parse; 3.4 s against 3.1-3.9 s with the checks).
_ARROW_BLOCK = 4 << 20
_PRECISION_BY_LENGTH = {10: "day", 7: "month", 4: "year"}


@dataclass(slots=True)
class RawBatch:
    """A batch of raw string columns and the 1-based data row number of each row."""

    batch: pa.RecordBatch
    rows: np.ndarray


@dataclass(slots=True)
class Normalised:
    table: pa.Table
    problems: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Reading


def scan_text(path: Path, max_line_bytes: int) -> tuple[int, str]:
    """Check that a CSV file is non-empty UTF-8 with no over-long line; return its data rows
    and its SHA-256 (recorded with the import).

    Reads the file once in fixed blocks, so a single 100 MB line costs no more memory than
    a few blocks (the one being checked and at most two waiting to be hashed).
    """
    hasher = _Hasher()
    carry = b""  # the start of a character cut by the end of the previous block
    lines = 0
    current = 0  # bytes in the line being read
    total = 0
    last_byte = b""
    with path.open("rb") as fh, hasher:
        while block := fh.read(_SCAN_BLOCK):
            hasher.update(block)
            text = carry + block if carry else block
            whole = _whole_characters(text)
            if not _is_utf8(memoryview(text)[:whole]):
                _not_utf8(path, text, lines)
            carry = text[whole:]
            arr = np.frombuffer(block, dtype=np.uint8)
            newlines = np.flatnonzero(arr == 10)
            if newlines.size:
                first = current + int(newlines[0])
                gaps = np.diff(newlines) - 1 if newlines.size > 1 else np.empty(0, dtype=np.int64)
                longest = max(first, int(gaps.max()) if gaps.size else 0)
                if longest > max_line_bytes:
                    where = (
                        lines + 1 if first > max_line_bytes else lines + 2 + int(np.argmax(gaps))
                    )
                    _too_long(path, where, max_line_bytes)
                current = len(block) - int(newlines[-1]) - 1
                lines += int(newlines.size)
            else:
                current += len(block)
            if current > max_line_bytes:
                _too_long(path, lines + 1, max_line_bytes)
            total += len(block)
            last_byte = block[-1:]
        if carry:
            raise ValidationFailed(f"{path.name} is not UTF-8: it ends inside a character")
    if total == 0 or (total <= 3 and path.read_bytes() == codecs.BOM_UTF8):
        raise ValidationFailed(f"{path.name} is empty: expected a header line and data rows")
    if last_byte != b"\n":
        lines += 1
    return max(lines - 1, 0), hasher.hexdigest()


class _Hasher:
    """SHA-256 of the blocks given to ``update``, computed in a second thread while the caller
    checks them (``hashlib`` lets go of the interpreter for large buffers): 0.09 s of the
    0.29 s that checking a 200 MB file took (now 0.19 s). At most two blocks wait for it.

    ``hexdigest`` after the ``with`` block. Leaving the block by an exception ends the thread
    without hashing what is left; a failure of the hashing itself is raised by the next
    ``update`` or by ``hexdigest``, never a digest of part of the file."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._failed: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="dancu-sha256", daemon=True)

    def _run(self) -> None:
        try:
            while (block := self._blocks.get()) is not None:
                if not self._abandoned:
                    self._digest.update(block)
        except BaseException as exc:  # reported to the caller; the blocks still drain
            self._failed = exc
            while self._blocks.get() is not None:
                pass

    def __enter__(self) -> _Hasher:
        self._thread.start()
        return self

    def update(self, block: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        self._blocks.put(block)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._abandoned = exc_type is not None
        self._blocks.put(None)
        self._thread.join()

    def hexdigest(self) -> str:
        if self._failed is not None:
            raise self._failed
        return self._digest.hexdigest()


def _whole_characters(data: bytes) -> int:
    """The length of ``data`` without a multi-byte UTF-8 character cut at its end."""
    size = len(data)
    for back in range(1, min(4, size) + 1):
        byte = data[size - back]
        if byte < 0x80:  # ASCII
            return size
        if 0xC2 <= byte <= 0xF4:  # first byte of a character of 2, 3 or 4 bytes
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return size if back >= length else size - back
        if byte >= 0xC0:  # never in UTF-8: let the check report it where it is
            return size
    return size


def _is_utf8(data: memoryview) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow (several times faster than decoding
    it into a Python string)."""
    buffer = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, len(buffer)], dtype=np.int32))
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, offsets, buffer]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _not_utf8(path: Path, text: bytes, lines_before: int) -> None:
    """Raise the error for the first bytes of ``text`` that are not UTF-8, naming the line and
    the encoding the file seems to be in."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + text.count(b"\n", 0, exc.start) + 1
        start = max(exc.start - 2000, 0)
        encoding, advice = vn_encoding.describe(text[start : exc.start + 2000])
        raise ValidationFailed(
            f"{path.name} is not UTF-8: line {line} has bytes that are not UTF-8; "
            f"it looks like {encoding}. To use it, {advice}.",
            [Problem(max(line - 1, 0) or None, None, f"not UTF-8 (looks like {encoding})")],
        ) from None
    raise ValidationFailed(f"{path.name} is not UTF-8")  # pragma: no cover (Arrow disagrees)


def _too_long(path: Path, line: int, limit: int) -> None:
    row = line - 1
    raise ValidationFailed(
        f"{path.name}: line {line} (data row {row}) is longer than {limit:,} bytes; "
        "a register row is a few hundred bytes, so the file is probably not a CSV of citizens "
        "or has an unclosed quote",
        [Problem(row if row > 0 else None, None, f"line longer than {limit:,} bytes")],
    )


def _read_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
    header = next(csv.reader([first]), [])
    return [h.strip() for h in header]


def check_header(names: list[str], file_name: str) -> None:
    """Missing required, unknown or repeated columns: one error listing them all."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(Problem(None, name, "column appears twice in the header"))
        seen.add(name)
        if name not in COLUMNS:
            problems.append(
                Problem(None, name, f"unknown column; expected some of: {', '.join(COLUMNS)}")
            )
    for name in REQUIRED:
        if name not in seen:
            problems.append(Problem(None, name, "required column is missing"))
    if problems:
        raise ValidationFailed(f"{file_name}: the header is not the registry format", problems)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_SCAN_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def open_source(
    path: Path, *, chunk_rows: int, max_line_bytes: int, malformed: list[Problem]
) -> tuple[int, str, Iterator[RawBatch]]:
    """Check ``path`` (.csv or .parquet) and return (data rows, SHA-256, stream of string
    batches).

    The checks that need no parsing (encoding, empty file, header, over-long lines) run here,
    before anything is loaded. Rows with the wrong number of fields are appended to
    ``malformed`` as they are met and skipped.
    """
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            pfile = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationFailed(f"{path.name}: not a readable Parquet file: {exc}") from None
        check_header(list(pfile.schema_arrow.names), path.name)
        if pfile.metadata.num_rows == 0:
            raise ValidationFailed(f"{path.name} has a header but no data rows")
        return pfile.metadata.num_rows, sha256_file(path), _read_parquet(pfile, chunk_rows)
    if suffix == ".csv":
        total, digest = scan_text(path, max_line_bytes)
        header = _read_header(path)
        check_header(header, path.name)
        if total == 0:
            raise ValidationFailed(f"{path.name} has a header but no data rows")
        # Arrow needs a whole row in a block: the longest line the scan let through fits twice.
        block = max(_ARROW_BLOCK, 2 * max_line_bytes)
        return total, digest, _read_csv(path, header, chunk_rows, malformed, block)
    raise ValidationFailed(f"{path.name}: unsupported file type {suffix!r}; use .csv or .parquet")


def _read_csv(
    path: Path,
    header: list[str],
    chunk_rows: int,
    malformed: list[Problem],
    block_size: int,
) -> Iterator[RawBatch]:
    skipped: list[int] = []

    def on_invalid(row: pcsv.InvalidRow) -> str:
        data_row = (row.number or 0) - 1
        skipped.append(data_row)
        malformed.append(
            Problem(
                data_row,
                None,
                f"has {row.actual_columns} fields, the header has {row.expected_columns}",
            )
        )
        return "skip"

    reader = pcsv.open_csv(
        path,
        # Our own (trimmed) header names, so that " personal_id" is personal_id and every
        # column is read as text (leading zeros of ID numbers survive).
        read_options=pcsv.ReadOptions(
            block_size=block_size, use_threads=False, column_names=header, skip_rows=1
        ),
        parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=False
        ),
    )
    done = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise ValidationFailed(f"{path.name}: cannot be read as CSV: {exc}") from None
        for start in range(0, batch.num_rows, chunk_rows):
            part = batch.slice(start, chunk_rows)
            base = np.arange(done + 1, done + 1 + part.num_rows, dtype=np.int64)
            index = base
            if skipped:
                # Stream row k is data row k plus the malformed rows skipped before it.
                skips = np.sort(np.asarray(skipped, dtype=np.int64))
                while True:
                    shifted = base + np.searchsorted(skips, index, side="right")
                    if np.array_equal(shifted, index):
                        break
                    index = shifted
            yield RawBatch(part, index)
            done += part.num_rows


def _read_parquet(pfile: pq.ParquetFile, chunk_rows: int) -> Iterator[RawBatch]:
    done = 0
    for batch in pfile.iter_batches(batch_size=chunk_rows):
        columns = []
        for column in batch.columns:
            if pa.types.is_date(column.type):
                column = pc.strftime(column, format="%Y-%m-%d")
            elif not pa.types.is_string(column.type):
                column = column.cast(pa.string())
            columns.append(pc.fill_null(column, ""))
        strings = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
        yield RawBatch(strings, np.arange(done + 1, done + 1 + strings.num_rows, dtype=np.int64))
        done += strings.num_rows


def number_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[RawBatch]:
    """Number the rows of in-memory batches (the synthetic population) like a file's rows."""
    done = 0
    for batch in batches:
        yield RawBatch(batch, np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64))
        done += batch.num_rows


# ---------------------------------------------------------------------------------------------
# Checking and normalising one batch


class _Checker:
    """Collects problems for the rows of one batch; only bad rows reach Python."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.bad = np.zeros(len(rows), dtype=bool)
        self.problems: list[Problem] = []

    def flag(
        self,
        mask: pa.Array,
        column: str,
        reason: str | None = None,
        values: pa.Array | None = None,
        describe: Callable[[str | None], str] | None = None,
    ) -> None:
        """Mark the rows where ``mask`` is true; the reason is ``describe(value)`` or ``reason``.

        Values are converted to Python only for the flagged rows.
        """
        hits = pc.indices_nonzero(pc.fill_null(mask, False)).to_numpy()
        for i in hits:
            self.bad[i] = True
            if describe is not None:
                text = describe(values[int(i)].as_py() if values is not None else None)
            else:
                text = reason or "invalid"
            self.problems.append(Problem(int(self.rows[i]), column, text))


def _clean(batch: pa.RecordBatch, name: str) -> pa.Array:
    """The column trimmed, with empty strings as nulls (absent columns are all null)."""
    if name not in batch.schema.names:
        return pa.nulls(batch.num_rows, pa.string())
    col = pc.utf8_trim_whitespace(batch.column(name))
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def per_distinct(
    values: pa.Array, fn: Callable[[str], tuple[Any, ...]], types: Sequence[pa.DataType]
) -> list[pa.Array]:
    """Apply ``fn`` to each distinct non-null value and spread its results over the rows.

    Files repeat values (common names, the same dates and addresses), so the Python work of a
    batch is per distinct value, not per row.
    """
    encoded = pc.dictionary_encode(values)
    results = [fn(v) for v in encoded.dictionary.to_pylist()]
    columns = [pa.array([r[i] for r in results], t) for i, t in enumerate(types)]
    return [c.take(encoded.indices) for c in columns]


def _name_fields(raw: str) -> tuple[str, str, str, str, str]:
    """(canonical, family, middle, given, folded key) of a raw name."""
    name, key = vn_names.canonical_and_fold(raw)
    family, middle, given = vn_names.split_name(name)
    return name, family, middle, given, key


_NAME_FIELDS = 5


class NameMemo:
    """The name fields of every distinct raw name met so far in a load, kept as Arrow arrays.

    A national file repeats names across batches (1,000,000 synthetic people have about
    195,000 distinct names), so each distinct name goes through Python once per load rather
    than once per batch, and the fields reach the rows by Arrow ``take`` without a Python
    object per row. Bounded: past ``limit`` names the memo starts afresh.
    """

    def __init__(self, limit: int = 1 << 19) -> None:
        self.limit = limit
        self._reset()

    def _reset(self) -> None:
        self.known = pa.array([], pa.string())
        self.fields = [pa.array([], pa.string()) for _ in range(_NAME_FIELDS)]

    def spread(self, raw: pa.Array) -> list[pa.Array]:
        """(canonical, family, middle, given, key) of each row of ``raw``; null stays null."""
        encoded = pc.dictionary_encode(raw)
        distinct = encoded.dictionary
        where = pc.index_in(distinct, value_set=self.known)
        new_mask = pc.is_null(where)
        new = distinct.filter(new_mask)
        if len(new):
            if len(self.known) + len(new) > self.limit:
                self._reset()
                where, new_mask, new = pa.nulls(len(distinct), pa.int32()), None, distinct
            results = [_name_fields(v) for v in new.to_pylist()]
            base = len(self.known)
            self.known = pa.concat_arrays([self.known, new])
            self.fields = [
                pa.concat_arrays([old, pa.array([r[i] for r in results], pa.string())])
                for i, old in enumerate(self.fields)
            ]
            positions = pc.fill_null(where, 0).to_numpy(zero_copy_only=False).astype(np.int64)
            fresh = (
                np.ones(len(distinct), dtype=bool)
                if new_mask is None
                else new_mask.to_numpy(zero_copy_only=False)
            )
            positions[fresh] = np.arange(base, base + len(new), dtype=np.int64)
            where = pa.array(positions)
        rows = where.take(encoded.indices)
        return [f.take(rows) for f in self.fields]


def _may_hold_nul(column: pa.Array) -> bool:
    """False when no byte of the column's text is NUL: one pass at memory speed, so the
    per-row search runs only for the rare column that has one (or that is not plain text)."""
    if column.type != pa.string():
        return True
    data = column.buffers()[2]
    return data is not None and bool(np.frombuffer(data, dtype=np.uint8).min(initial=1) == 0)


def _not_in(col: pa.Array, allowed: pa.Array) -> pa.Array:
    """True where a value is present and not one of ``allowed`` (absent values are not flagged)."""
    return pc.and_(pc.is_valid(col), pc.invert(pc.is_in(col, allowed)))


def _parse_partial_dates(col: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(date32 first day, precision, is-bad mask) for ``YYYY-MM-DD`` / ``YYYY-MM`` / ``YYYY``."""
    shape_ok = pc.match_substring_regex(col, r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$")
    length = pc.utf8_length(col)
    full = pc.if_else(
        pc.equal(length, 4),
        pc.binary_join_element_wise(col, "01-01", "-"),
        pc.if_else(pc.equal(length, 7), pc.binary_join_element_wise(col, "01", "-"), col),
    )
    full = pc.if_else(shape_ok, full, pa.scalar(None, pa.string()))
    stamp = pc.strptime(full, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2023-02-30 over to 2023-03-02: a real date formats back to itself
    # (a cast to text: strftime is twenty times slower).
    days = pc.cast(stamp, pa.date32())
    real = pc.equal(pc.cast(days, pa.string()), full)
    dates = pc.if_else(real, days, pa.scalar(None, pa.date32()))
    precision = pc.if_else(
        pc.equal(length, 4), "year", pc.if_else(pc.equal(length, 7), "month", "day")
    )
    bad = pc.and_(pc.is_valid(col), pc.invert(pc.fill_null(real, False)))
    return dates, precision, bad


def _date_reason(value: str | None, *, partial: bool) -> str:
    forms = "YYYY-MM-DD, YYYY-MM or YYYY" if partial else "YYYY-MM-DD"
    if value is None:
        return f"expected a date as {forms}"
    pattern = r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$" if partial else r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    if re.match(pattern, value):
        return f"{value!r} is not a real date"
    return f"{value!r} is not a date; expected {forms}"


def normalise(
    raw: RawBatch,
    *,
    communes: frozenset[str],
    today: dt.date,
    names: NameMemo | None = None,
) -> Normalised:
    """Check every row of ``raw`` and return the valid rows in staging form, with problems.

    ``names`` carries the names already normalised earlier in the same load.
    """
    batch = raw.batch
    check = _Checker(raw.rows)

    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        # PostgreSQL cannot store NUL in text, and no register value contains one.
        if _may_hold_nul(column):
            check.flag(pc.match_substring(column, "\x00"), name, "contains a NUL character")

    pid = _clean(batch, "personal_id")
    check.flag(pc.is_null(pid), "personal_id", "required value is empty")
    check.flag(
        pc.invert(pc.match_substring_regex(pid, r"^[0-9]{12}$")),
        "personal_id",
        values=pid,
        describe=lambda v: f"{v!r} is not 12 digits",
    )

    # Names go through Python once per distinct value of the batch, not once per row.
    raw_names = _clean(batch, "full_name")
    check.flag(pc.is_null(raw_names), "full_name", "required value is empty")
    by_name = dict(
        zip(
            ("full_name", "family", "middle", "given", "key"),
            (names or NameMemo()).spread(raw_names),
            strict=True,
        )
    )
    name_length = pc.utf8_length(by_name["full_name"])
    check.flag(pc.equal(name_length, 0), "full_name", "is empty after normalisation")
    check.flag(pc.greater(name_length, 200), "full_name", "is longer than 200 characters")

    bd_raw = _clean(batch, "birth_date")
    check.flag(pc.is_null(bd_raw), "birth_date", "required value is empty")
    birth, precision, bad_birth = _parse_partial_dates(bd_raw)
    check.flag(
        bad_birth, "birth_date", values=bd_raw, describe=lambda v: _date_reason(v, partial=True)
    )
    today_scalar = pa.scalar(today, pa.date32())
    check.flag(
        pc.greater(birth, today_scalar),
        "birth_date",
        values=bd_raw,
        describe=lambda v: f"{v} is in the future",
    )
    check.flag(
        pc.less(birth, pa.scalar(dt.date(1850, 1, 1), pa.date32())),
        "birth_date",
        values=bd_raw,
        describe=lambda v: f"{v} is before 1850",
    )

    sex = _clean(batch, "sex")
    check.flag(pc.is_null(sex), "sex", "required value is empty")
    check.flag(
        _not_in(sex, pa.array(["M", "F"])),
        "sex",
        values=sex,
        describe=lambda v: f"{v!r} is not a sex; expected M or F",
    )

    dd_raw = _clean(batch, "death_date")
    death, death_precision, bad_death = _parse_partial_dates(dd_raw)
    check.flag(
        pc.or_(bad_death, pc.not_equal(death_precision, "day")),
        "death_date",
        values=dd_raw,
        describe=lambda v: _date_reason(v, partial=False),
    )
    check.flag(
        pc.greater(death, today_scalar),
        "death_date",
        values=dd_raw,
        describe=lambda v: f"{v} is in the future",
    )
    # A death in the birth month/year of a partial birth date is possible: compare with the
    # last possible birth day, so only a death certainly before birth is refused.
    check.flag(
        pc.less(death, birth),
        "death_date",
        values=dd_raw,
        describe=lambda v: f"{v} is before the birth date",
    )

    status_raw = _clean(batch, "status")
    check.flag(
        _not_in(status_raw, pa.array(["alive", "deceased"])),
        "status",
        values=status_raw,
        describe=lambda v: f"{v!r} is not a status; expected alive or deceased",
    )
    status = pc.if_else(
        pc.is_valid(status_raw),
        status_raw,
        pc.if_else(pc.is_valid(death), "deceased", "alive"),
    )
    check.flag(
        pc.and_(pc.equal(status, "alive"), pc.is_valid(death)),
        "death_date",
        "a death date is given but status is alive",
    )

    legacy = _clean(batch, "legacy_id_number")
    check.flag(
        pc.invert(pc.match_substring_regex(legacy, r"^([0-9]{9}|[0-9]{12})$")),
        "legacy_id_number",
        values=legacy,
        describe=lambda v: f"{v!r} is not a CMND number (9 or 12 digits)",
    )

    commune = _clean(batch, "permanent_commune_code")
    check.flag(
        _not_in(commune, pa.array(sorted(communes), pa.string())),
        "permanent_commune_code",
        values=commune,
        describe=lambda v: f"{v!r} is not a commune code of the 2025 units",
    )

    household = _clean(batch, "household_id")
    relation = _clean(batch, "relationship_to_head")
    check.flag(
        _not_in(relation, pa.array(RELATIONSHIPS)),
        "relationship_to_head",
        values=relation,
        describe=lambda v: f"{v!r} is not a relationship; expected {', '.join(RELATIONSHIPS)}",
    )
    check.flag(
        pc.and_(pc.is_valid(household), pc.is_null(relation)),
        "relationship_to_head",
        "required when household_id is given",
    )
    check.flag(
        pc.and_(pc.is_null(household), pc.is_valid(relation)),
        "household_id",
        "required when relationship_to_head is given",
    )

    links = {}
    for name in ("father_id", "mother_id", "spouse_id"):
        col = _clean(batch, name)
        check.flag(
            pc.invert(pc.match_substring_regex(col, r"^[0-9]{12}$")),
            name,
            values=col,
            describe=lambda v: f"{v!r} is not 12 digits",
        )
        check.flag(pc.equal(col, pid), name, "points to the person themself")
        links[name] = col

    texts = {}
    for name, limit in TEXT_LIMITS.items():
        col = _clean(batch, name)
        check.flag(
            pc.greater(pc.utf8_length(col), limit), name, f"is longer than {limit} characters"
        )
        texts[name] = col

    table = pa.Table.from_arrays(
        [
            pa.array(raw.rows, pa.int64()),
            pid,
            by_name["full_name"],
            by_name["family"],
            by_name["middle"],
            by_name["given"],
            by_name["key"],
            birth,
            precision,
            pc.cast(pc.year(birth), pa.int32()),
            sex,
            status,
            death,
            legacy,
            commune,
            texts["permanent_address"],
            household,
            relation,
            links["father_id"],
            links["mother_id"],
            links["spouse_id"],
            texts["ethnicity"],
            texts["religion"],
            texts["nationality"],
            texts["place_of_origin"],
            texts["phone"],
        ],
        schema=STAGING_SCHEMA,
    )
    if check.bad.any():
        table = table.filter(pa.array(~check.bad))
    return Normalised(table, check.problems)
