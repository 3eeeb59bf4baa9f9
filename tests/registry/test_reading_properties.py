"""Property-based tests of the fast paths of reading: the UTF-8 scan of a CSV file (whatever
block boundaries cut its characters) and the memo of names across batches."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dancu.errors import Problem, ValidationFailed
from dancu.registry import interchange
from dancu.vn import names as vn_names
from tests.registry.factories import person, write_csv

# Letters of one, two, three and four bytes in UTF-8, and the separators of a CSV line.
_LETTERS = "aZ09 ,;\"'\tđĐơƯàÀảẢãẠạăằắẳẵặâầấẩẫậêềếểễệôồốổỗộ漢字😀"
lines = st.lists(st.text(alphabet=_LETTERS, max_size=40), min_size=1, max_size=25)
_FRESH = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write(path: Path, body: list[str]) -> bytes:
    data = ("personal_id,full_name\n" + "".join(f"{line}\n" for line in body)).encode()
    path.write_bytes(data)
    return data


@_FRESH
@given(body=lines, block=st.integers(1, 17))
def test_a_utf8_file_passes_whatever_the_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: list[str], block: int
) -> None:
    monkeypatch.setattr(interchange, "_SCAN_BLOCK", block)
    path = tmp_path / "ok.csv"
    data = _write(path, body)
    assert interchange.scan_text(path, 1 << 20) == (len(body), hashlib.sha256(data).hexdigest())


@_FRESH
@given(
    body=lines,
    block=st.integers(1, 17),
    where=st.data(),
    bad=st.sampled_from([b"\xff", b"\x80", b"\xe1\xba", b"\xc0\xaf", b"\xed\xa0\x80"]),
)
def test_bytes_that_are_not_utf8_are_found_on_their_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: list[str],
    block: int,
    where: st.DataObject,
    bad: bytes,
) -> None:
    monkeypatch.setattr(interchange, "_SCAN_BLOCK", block)
    row = where.draw(st.integers(0, len(body) - 1))
    cut = where.draw(st.integers(0, len(body[row])))
    encoded = [line.encode() for line in body]
    encoded[row] = body[row][:cut].encode() + bad + body[row][cut:].encode()
    path = tmp_path / "bad.csv"
    path.write_bytes(b"personal_id,full_name\n" + b"".join(e + b"\n" for e in encoded))
    with pytest.raises(ValidationFailed) as info:
        interchange.scan_text(path, 1 << 20)
    assert f"line {row + 2} has bytes that are not UTF-8" in info.value.message
    # the hashing thread ended with the scan
    assert not [t for t in threading.enumerate() if t.name == "dancu-sha256"]


def test_a_file_that_ends_inside_a_character(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes("personal_id,full_name\n001,Hoà".encode()[:-1])
    with pytest.raises(ValidationFailed, match="ends inside a character"):
        interchange.scan_text(path, 1 << 20)


names = st.one_of(st.none(), st.text(alphabet="nguyễn văn THỊ hoà Đ", max_size=20))


@settings(max_examples=100, deadline=None)
@given(
    batches=st.lists(st.lists(names, max_size=12), min_size=1, max_size=6),
    limit=st.integers(1, 8),
)
def test_the_name_memo_gives_what_each_name_gives_alone(
    batches: list[list[str | None]], limit: int
) -> None:
    memo = interchange.NameMemo(limit=limit)
    for batch in batches:
        spread = memo.spread(pa.array(batch, pa.string()))
        for i, raw in enumerate(batch):
            got = tuple(column[i].as_py() for column in spread)
            if raw is None:
                assert got == (None,) * 5
            else:
                name, key = vn_names.canonical_and_fold(raw)
                assert got == (name, *vn_names.split_name(name), key)


def test_a_failure_of_the_hashing_is_raised_never_a_partial_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _Broken:
        def __init__(self) -> None:
            self.blocks = 0

        def update(self, block: bytes) -> None:
            self.blocks += 1
            if self.blocks == 3:
                raise MemoryError("no memory for the digest")

        def hexdigest(self) -> str:
            return "a digest of part of the file"

    monkeypatch.setattr(interchange, "_SCAN_BLOCK", 8)
    monkeypatch.setattr(interchange.hashlib, "sha256", _Broken)
    path = tmp_path / "ok.csv"
    _write(path, [f"00108500000{i},Nguyễn Văn An" for i in range(10)])
    with pytest.raises(MemoryError, match="no memory for the digest"):
        interchange.scan_text(path, 1 << 20)
    assert not [t for t in threading.enumerate() if t.name == "dancu-sha256"]


def test_a_line_longer_than_the_read_block_but_within_the_limit_is_read(tmp_path: Path) -> None:
    """The reader's block grows with the line limit: a 9 MB line under a 16 MB limit is
    read, not refused by Arrow (its blocks are 4 MB)."""
    path = tmp_path / "long.csv"
    long_address = "a" * (9 << 20)
    write_csv(path, [person(), person(permanent_address=long_address), person()])
    malformed: list[Problem] = []
    total, _digest, batches = interchange.open_source(
        path, chunk_rows=100, max_line_bytes=16 << 20, malformed=malformed
    )
    addresses = [a for raw in batches for a in raw.batch.column("permanent_address").to_pylist()]
    assert total == 3 and malformed == []
    assert [len(a) for a in addresses][1] == 9 << 20
