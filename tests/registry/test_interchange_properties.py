"""Property-based tests: the vectorised row checks agree with the scalar parsers in ``dancu.vn``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dancu.registry.interchange import COLUMNS, RawBatch, normalise
from dancu.vn import dates as vn_dates
from dancu.vn import names as vn_names

TODAY = dt.date(2026, 11, 24)
COMMUNES = frozenset({"00004", "00097"})

date_text = st.one_of(
    st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2100, 12, 31)).map(
        lambda d: d.isoformat()
    ),
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1800, 2100), st.integers(0, 13)),
    st.integers(1800, 2100).map(str),
    st.builds(
        lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
        st.integers(1800, 2100),
        st.integers(0, 13),
        st.integers(0, 32),
    ),
    st.text(alphabet="0123456789-/. ", max_size=12),
)


def _batch(rows: list[dict[str, str]]) -> RawBatch:
    columns = {c: pa.array([r.get(c, "") for r in rows], pa.string()) for c in COLUMNS}
    return RawBatch(
        pa.RecordBatch.from_pydict(columns), np.arange(1, len(rows) + 1, dtype=np.int64)
    )


def _scalar_birth(text: str) -> vn_dates.PartialDate | None:
    try:
        parsed = vn_dates.parse_iso_partial(text)
    except ValueError:
        return None
    if parsed.first_day() > TODAY:
        return None
    return parsed


@settings(max_examples=300, deadline=None)
@given(st.lists(date_text, min_size=1, max_size=30))
def test_vectorised_birth_dates_agree_with_the_scalar_parser(values: list[str]) -> None:
    rows = [
        {"personal_id": f"{i:012d}", "full_name": "Lê Văn A", "birth_date": v, "sex": "M"}
        for i, v in enumerate(values)
    ]
    result = normalise(_batch(rows), communes=COMMUNES, today=TODAY)
    accepted = dict(
        zip(
            result.table.column("row_no").to_pylist(),
            zip(
                result.table.column("birth_date").to_pylist(),
                result.table.column("birth_date_precision").to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
    for row, value in enumerate(values, start=1):
        expected = _scalar_birth(value.strip())
        if expected is None:
            assert row not in accepted, value
            assert any(p.row == row and p.field == "birth_date" for p in result.problems), value
        else:
            assert accepted[row] == (expected.first_day(), expected.precision), value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=20))
def test_names_are_stored_exactly_as_the_canonical_form(raw_names: list[str]) -> None:
    rows = [
        {"personal_id": f"{i:012d}", "full_name": n, "birth_date": "1990", "sex": "F"}
        for i, n in enumerate(raw_names)
    ]
    result = normalise(_batch(rows), communes=COMMUNES, today=TODAY)
    stored = dict(
        zip(
            result.table.column("row_no").to_pylist(),
            zip(
                result.table.column("full_name").to_pylist(),
                result.table.column("name_key").to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
    for row, raw in enumerate(raw_names, start=1):
        trimmed = raw.strip()
        canonical = vn_names.canonical_name(trimmed) if trimmed else ""
        if not canonical or len(canonical) > 200 or "\x00" in raw:
            assert row not in stored
        else:
            assert stored[row] == (canonical, vn_names.fold(canonical))
