"""The first rows of a parallel read reach the loader in small batches (``pipeline.sooner``):
the same rows, numbered the same, in the same order, whatever the reader's batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from dancu.registry import pipeline
from dancu.registry.interchange import RawBatch


def _batches(sizes: list[int]) -> list[RawBatch]:
    out, done = [], 0
    for size in sizes:
        ids = pa.array([f"{done + i:012d}" for i in range(size)], pa.string())
        out.append(
            RawBatch(
                pa.RecordBatch.from_arrays([ids], names=["personal_id"]),
                np.arange(done + 1, done + 1 + size, dtype=np.int64),
            )
        )
        done += size
    return out


@given(
    reader=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
    first=st.lists(st.integers(min_value=1, max_value=15), max_size=3),
)
def test_the_same_rows_in_the_same_order(reader: list[int], first: list[int]) -> None:
    out = list(pipeline.sooner(_batches(reader), tuple(first)))
    ids = [v for raw in out for v in raw.batch.column(0).to_pylist()]
    rows = [int(n) for raw in out for n in raw.rows]
    total = sum(reader)
    assert ids == [f"{i:012d}" for i in range(total)]
    assert rows == list(range(1, total + 1))
    for raw in out:
        assert raw.batch.num_rows == len(raw.rows)


def test_the_first_batch_is_cut_into_the_first_sizes() -> None:
    out = list(pipeline.sooner(_batches([50_000, 50_000]), (2_000, 8_000)))
    assert [raw.batch.num_rows for raw in out] == [2_000, 8_000, 40_000, 50_000]
    assert [int(raw.rows[0]) for raw in out] == [1, 2_001, 10_001, 50_001]


def test_a_small_first_batch_is_left_whole_and_the_cutting_ends() -> None:
    out = list(pipeline.sooner(_batches([1_500, 50_000]), (2_000, 8_000)))
    assert [raw.batch.num_rows for raw in out] == [1_500, 50_000]
