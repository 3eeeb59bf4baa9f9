"""The payloads' bytes between the checking and the loading process (``pipeline.Shared``):
through shared buffers when they fit, with the batch when they do not, the same bytes either
way and in order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from dancu.registry import pipeline
from tests.registry.factories import person, raw_batches


@dataclass(frozen=True, slots=True)
class _Payload:
    ids: tuple[str, ...]
    data: bytes | memoryview


def _prepare(table: pa.Table) -> _Payload:
    ids = tuple(table["personal_id"].to_pylist())
    # The first batch's bytes are too large for a (shrunk) buffer; the others fit.
    size = 5000 if ids[0].endswith("1") else 10
    return _Payload(ids, ("|".join(ids) * size).encode()[: 100 * size])


@pytest.mark.parametrize("parallel", [False, True], ids=["in process", "in a second process"])
def test_the_payloads_bytes_reach_the_loader_whole_and_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    monkeypatch.setattr(pipeline, "_SHARED_BYTES", 20_000)
    monkeypatch.setattr(pipeline, "_SHARED_BUFFERS", 2)  # the checking process waits for one
    rows = [person(personal_id=f"001085{i:06d}") for i in range(1, 25)]
    malformed, batches = raw_batches(tmp_path / "f.csv", rows, chunk_rows=3)
    seen: list[str] = []
    for checked in pipeline.checked_batches(
        batches,
        communes=frozenset(),
        today=dt.date.today(),
        malformed=malformed,
        parallel=parallel,
        prepare=_prepare,
    ):
        payload: _Payload = checked.payload
        expected = _prepare(pa.table({"personal_id": list(payload.ids)}))
        assert bytes(payload.data) == expected.data
        if parallel:  # a view of a shared buffer, or the bytes themselves
            fits = len(expected.data) <= 20_000
            assert isinstance(payload.data, memoryview if fits else bytes)
        seen.extend(payload.ids)
    assert seen == [row["personal_id"] for row in rows]
