"""Property-based checks: header recognition and the bulk normalisers agree with dancu.vn/geo."""

from __future__ import annotations

import datetime as dt
import unicodedata

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dancu.geo.service import communes_agree
from dancu.reconcile.columns import ALIASES, field_of, header_key
from dancu.reconcile.exact import DATE_AGREES_SQL
from dancu.reconcile.normalise import (
    Normaliser,
    address_candidates,
    address_key,
    address_tail,
    address_tails,
    normalise_batch,
)
from dancu.reconcile.reader import RawBatch
from dancu.vn.dates import PartialDate, parse_lenient_date
from dancu.vn.names import canonical_and_fold, has_diacritics
from dancu.vn.personal_id import is_personal_id, normalise_id
from dancu.vn.sex import parse_sex

DISPLAY_HEADERS = {
    "personal_id": ["Số CCCD", "Số định danh", "Số định danh cá nhân", "Căn cước công dân"],
    "full_name": ["Họ và tên", "Họ tên", "Họ tên đầy đủ"],
    "birth_date": ["Ngày sinh", "Ngày tháng năm sinh", "Sinh ngày"],
    "sex": ["Giới tính", "Phái"],
    "address": ["Địa chỉ", "Địa chỉ thường trú", "Nơi thường trú"],
}
SEPARATORS = st.sampled_from(["", " ", "  ", "_", "-", ".", "\u00a0"])


@st.composite
def spelled(draw: st.DrawFn, text: str) -> str:
    """``text`` with random case, NFC or NFD, and separators between the words or letters."""
    words = text.split()
    glue = draw(SEPARATORS)
    out = (glue if glue or draw(st.booleans()) else " ").join(words)
    out = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in out)
    form = draw(st.sampled_from(["NFC", "NFD"]))
    return (
        draw(st.sampled_from(["", " "]))
        + unicodedata.normalize(form, out)
        + draw(st.sampled_from(["", " ", " (bắt buộc)"]))
    )


@given(st.data())
def test_display_headers_are_recognised_however_written(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(DISPLAY_HEADERS)))
    header = data.draw(spelled(data.draw(st.sampled_from(DISPLAY_HEADERS[field]))))
    hit = field_of(header)
    assert hit is not None and hit[0] == field, header


@given(st.data())
def test_every_alias_is_recognised_with_separators(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(ALIASES)))
    alias = data.draw(st.sampled_from([a for tier in ALIASES[field] for a in tier]))
    glue = data.draw(SEPARATORS)
    header = glue.join(alias) if data.draw(st.booleans()) else alias.upper()
    assert header_key(header) == alias
    hit = field_of(header)
    assert hit is not None and hit[0] == field


ID_PIECES = st.lists(
    st.one_of(
        st.text("0123456789", min_size=1, max_size=4),
        st.sampled_from([" ", ".", "-", "\u00a0", "\u2013", "\t", "x", "٣"]),
    ),
    max_size=8,
).map("".join)
NAMES = st.lists(
    st.sampled_from(
        ["Nguyễn", "NGUYỄN", "nguyen", "Văn", "van", "Thị", "Hoà", "Hòa", "hoa", "Đức", "duc",
         "Thủy", "Thuỷ", "Quý", "Khỏe", "Anh-Thư", "H'Hen"]
    ),
    min_size=1,
    max_size=4,
).map(" ".join)  # fmt: skip
DATES = st.one_of(
    st.sampled_from(["14/03/1985", "1/1/2000", "1985", "31/02/1985", "abc", "2001-02-03"]),
    st.sampled_from(["03/1985", "14.03.1985", "14-3-1985"]),
    st.dates(min_value=dt.date(1900, 1, 1)).map(lambda d: d.strftime("%d%m%Y")),
)
SEXES = st.sampled_from(["Nam", "Nữ", "nu", "M", "F", "male", "female", "X", "0"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ID_PIECES, NAMES, DATES, SEXES), min_size=1, max_size=30))
def test_bulk_normalisation_equals_the_registers_functions(
    rows: list[tuple[str, str, str, str]],
) -> None:
    """Per-distinct and vectorised paths give what the vn functions give row by row."""
    ids, names, dates, sexes = (list(c) for c in zip(*rows, strict=True))
    batch = RawBatch(
        pa.array(range(1, len(rows) + 1), pa.int64()),
        {
            "personal_id": pa.array([i or None for i in ids], pa.string()),
            "full_name": pa.array(names, pa.string()),
            "birth_date": pa.array(dates, pa.string()),
            "sex": pa.array(sexes, pa.string()),
        },
    )
    out = normalise_batch(batch).to_pylist()
    for given_id, name, date, sex, got in zip(ids, names, dates, sexes, out, strict=True):
        if given_id:
            assert got["id_norm"] == normalise_id(given_id)
            assert got["id_ok"] == is_personal_id(normalise_id(given_id))
        else:
            assert not got["id_given"]
        canon, key = canonical_and_fold(name)
        assert (got["name_canon"], got["name_fold"]) == (canon, key)
        assert got["name_marked"] == has_diacritics(canon)
        try:
            expected_sex: str | None = parse_sex(sex)
        except ValueError:
            expected_sex = None
        assert got["sex"] == expected_sex
        try:
            parsed: PartialDate | None = parse_lenient_date(date)
        except ValueError:
            parsed = None
        assert got["date_ok"] == (parsed is not None)
        if parsed is not None:
            assert (got["birth_year"], got["birth_month"], got["birth_day"]) == (
                parsed.year, parsed.month, parsed.day,
            )  # fmt: skip


PARTIAL = st.builds(
    lambda y, m, d, p: PartialDate(y, m if p != "year" else None, d if p == "day" else None),
    st.integers(1980, 1982),
    st.integers(1, 3),
    st.integers(1, 28),
    st.sampled_from(["day", "month", "year"]),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(PARTIAL, PARTIAL), min_size=1, max_size=40))
def test_date_agreement_sql_is_partial_date_agrees(
    pairs: list[tuple[PartialDate, PartialDate]],
) -> None:
    table = pa.table(
        {
            "gy": [a.year for a, _ in pairs], "gm": [a.month for a, _ in pairs],
            "gd": [a.day for a, _ in pairs], "ry": [b.year for _, b in pairs],
            "rm": [b.month for _, b in pairs], "rd": [b.day for _, b in pairs],
        }
    )  # fmt: skip
    con = duckdb.connect()
    con.register("pairs", table)
    sql = (
        DATE_AGREES_SQL.replace("g.birth_year", "gy").replace("g.birth_month", "gm")
        .replace("g.birth_day", "gd").replace("r.birth_year", "ry")
        .replace("r.birth_month", "rm").replace("r.birth_day", "rd")
    )  # fmt: skip
    got = [bool(r[0]) for r in con.execute(f"SELECT {sql} FROM pairs").fetchall()]
    con.close()
    assert got == [a.agrees(b) for a, b in pairs]


STREETS = st.lists(
    st.sampled_from(
        [
            "Số 5",
            "ngõ 12",
            "phố Hàng Gà",
            "Tổ 3",
            "thôn Đông",
            "ấp 2",
            "đường 30/4",
            "Ấp Nam",
            "Bản Hua Lếch",
            "Buôn Đăk Yang",
            "Xóm Bắc",
            "Khu phố 3",
            "12 Lê Lợi",
        ]
    ),
    max_size=3,
)
UNITS = st.sampled_from(
    [
        "Xã Tân Thạnh, Thành phố Cần Thơ",
        "X. Tân Thạnh, TP Cần Thơ",
        "Phường Ba Đình, Hà Nội",
        "Thị trấn Phong Điền, Huyện Phong Điền, Cần Thơ",
        "Phường Phúc Xá, Quận Ba Đình, Hà Nội",
        "Phường Hồng Hà, Hà Nội",
        "Xã Tân Thạnh, Huyện Thới Lai, Cần Thơ",
        "P. Bến Nghé, Q.1, TP.HCM",
        "Xa Cam Giang, Hai Phong",
        "Hà Nội",
        "00001",
        "31268",
        "nowhere",
    ]
)
CODES = st.sampled_from(["00097", "00004", "31288", "31666", "26740", "10888", "10903"])


@settings(max_examples=80, deadline=None)
@given(STREETS, UNITS, CODES)
def test_address_candidates_agree_with_communes_agree(
    streets: list[str], units: str, code: str
) -> None:
    text = ", ".join([*streets, units])
    assert (code in address_candidates(address_key(text))) == communes_agree(text, code)


@settings(max_examples=80, deadline=None)
@given(STREETS, UNITS, st.sampled_from(["", " ", ",", " , "]))
def test_the_address_tail_keeps_the_key(streets: list[str], units: str, junk: str) -> None:
    text = junk + ", ".join([*streets, units]) + junk
    assert address_key(address_tail(text)) == address_key(text)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(NAMES, DATES, SEXES), min_size=1, max_size=20), st.integers(1, 3))
def test_a_run_normalises_each_batch_as_a_batch_alone(
    rows: list[tuple[str, str, str]], batches: int
) -> None:
    """Remembering values across batches (Normaliser) changes nothing in the results."""
    normaliser = Normaliser()
    size = -(-len(rows) // batches)
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        names, dates, sexes = (list(c) for c in zip(*chunk, strict=True))
        batch = RawBatch(
            pa.array(range(start + 1, start + len(chunk) + 1), pa.int64()),
            {
                "full_name": pa.array(names, pa.string()),
                "birth_date": pa.array(dates, pa.string()),
                "sex": pa.array(sexes, pa.string()),
                "address": pa.array([", ".join(["Số 5", "Phường Hồng Hà, Hà Nội"])] * len(chunk)),
            },
        )
        assert normaliser.batch(batch).to_pylist() == normalise_batch(batch).to_pylist()


PIECES = st.lists(
    st.sampled_from(["Số 5", " ", "", "\u00a0", "\t", "Phường Hồng Hà", "Hà Nội", "x", "\u3000"]),
    max_size=7,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), PIECES.map(",".join), st.text(max_size=12)), max_size=20))
def test_address_tails_in_bulk_are_address_tail(texts: list[str | None]) -> None:
    got = address_tails(pa.array(texts, pa.string())).to_pylist()
    assert got == [None if t is None else address_tail(t) for t in texts]
