"""Property: the exact track's per-field agreement (SQL over whole files) equals
``dancu.registry.agreement.compare`` (Python, one claim at a time) on random register rows and
random ways of writing them (CONTRACTS §3 field agreement)."""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dancu.reconcile.service import reconcile
from dancu.registry.agreement import compare, parse_claim
from dancu.registry.interchange import STRING_SCHEMA
from dancu.vn import names as vn_names
from tests.reconcile.helpers import (
    BA_DINH,
    HONG_HA,
    TAN_THANH_CT,
    TRUONG_THANH_CT,
    read_results,
    write_rows,
)

SYLLABLES = [
    "Nguyễn", "Trần", "Lê", "Đặng", "Văn", "Thị", "Hòa", "Thủy", "Quý", "Đức", "Anh", "Hùng",
    "Hưng", "Ngọc", "Khỏe", "Minh", "Gia", "Quyên",
]  # fmt: skip
COMMUNES = [HONG_HA, BA_DINH, TAN_THANH_CT, TRUONG_THANH_CT, None]
ADDRESSES = [
    "Phường Hồng Hà, Hà Nội",
    "Số 5, ngõ 12, Phường Phúc Xá, Quận Ba Đình, Thành phố Hà Nội",  # old ward, now Hồng Hà
    "Phường Ba Đình, Hà Nội",
    "Xã Trường Thành, Cần Thơ",
    "Xã Trường Thành, Huyện Thới Lai, Thành phố Cần Thơ",  # old, split: Trường Thành or Tân Thạnh
    "00001",
    HONG_HA,
    "Hà Nội",  # names no commune
]
SEXES = {"M": ["Nam", "M", "male", "nam"], "F": ["Nữ", "F", "female", "Nu"]}
_serial = itertools.count(1)


@dataclass(frozen=True)
class Person:
    """A register row as ``compare`` reads it."""

    personal_id: str
    full_name: str
    name_key: str
    birth_date: dt.date
    birth_date_precision: str
    sex: str
    permanent_commune_code: str | None

    def born(self) -> str:
        iso = self.birth_date.isoformat()
        return {"day": iso, "month": iso[:7], "year": iso[:4]}[self.birth_date_precision]


@st.composite
def people(draw: st.DrawFn) -> Person:
    words = draw(st.lists(st.sampled_from(SYLLABLES), min_size=2, max_size=4))
    canon = vn_names.canonical_name(" ".join(words))
    born = draw(st.dates(dt.date(1930, 1, 1), dt.date(2020, 12, 31)))
    return Person(
        personal_id=f"079{next(_serial):09d}",
        full_name=canon,
        name_key=vn_names.fold(canon),
        birth_date=born,
        birth_date_precision=draw(st.sampled_from(["day", "day", "day", "month", "year"])),
        sex=draw(st.sampled_from(["M", "F"])),
        permanent_commune_code=draw(st.sampled_from(COMMUNES)),
    )


def _new_tones(name: str) -> str:
    return unicodedata.normalize(
        "NFC",
        unicodedata.normalize("NFD", name)
        .replace("o\u0300a", "oa\u0300")
        .replace("u\u0309y", "uy\u0309"),
    )


@st.composite
def written_names(draw: st.DrawFn, p: Person) -> str:
    name = p.full_name
    words = name.split()
    return draw(
        st.sampled_from(
            [
                name,
                vn_names.fold(name),
                vn_names.fold(name).upper(),
                name.upper(),
                unicodedata.normalize("NFD", name),
                _new_tones(name),
                " ".join(reversed(words)),
                " ".join([vn_names.fold(words[0]), *words[1:]]),  # diacritics partly missing
                " ".join([*words[:-1], draw(st.sampled_from(SYLLABLES))]),
                f"  {name.lower()}  ",
            ]
        )
    )


@st.composite
def written_dates(draw: st.DrawFn, p: Person) -> str:
    d = p.birth_date
    other = d + dt.timedelta(days=draw(st.sampled_from([1, 31, 366])))
    day = draw(st.sampled_from([d, d, other]))
    return draw(
        st.sampled_from(
            [
                f"{day.day:02d}/{day.month:02d}/{day.year}",
                f"{day.day}/{day.month}/{day.year}",
                f"{day.day:02d}-{day.month:02d}-{day.year}",
                f"{day.day:02d}{day.month:02d}{day.year}",
                day.isoformat(),
                f"{day.month:02d}/{day.year}",
                str(day.year),
            ]
        )
    )


@st.composite
def claims(draw: st.DrawFn) -> tuple[Person, dict[str, str]]:
    p = draw(people())
    claim = {"personal_id": p.personal_id}
    if draw(st.booleans()):
        claim["full_name"] = draw(written_names(p))
    if draw(st.booleans()):
        claim["birth_date"] = draw(written_dates(p))
    if draw(st.booleans()):
        sex = draw(st.sampled_from(["M", "F", p.sex, p.sex]))
        claim["sex"] = draw(st.sampled_from(SEXES[sex]))
    if draw(st.booleans()):
        claim["address"] = draw(st.sampled_from(ADDRESSES))
    return p, claim


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(claims(), min_size=1, max_size=25))
def test_exact_track_agrees_with_compare(cases: list[tuple[Person, dict[str, str]]]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        register = pa.Table.from_pylist(
            [
                {
                    "personal_id": p.personal_id,
                    "full_name": p.full_name,
                    "birth_date": p.born(),
                    "sex": p.sex,
                    "status": "alive",
                    "permanent_commune_code": p.permanent_commune_code,
                }
                for p, _ in cases
            ],
            schema=STRING_SCHEMA,
        )
        pq.write_table(register, root / "register.parquet")
        fields = ("personal_id", "full_name", "birth_date", "sex", "address")
        path = write_rows(
            root / "in.csv",
            [[c.get(f, "") for f in fields] for _, c in cases],
            header=["so_cccd", "ho_ten", "ngay_sinh", "gioi_tinh", "dia_chi"],
        )
        reconcile(None, path, root / "out", register=root / "register.parquet")
        results = read_results(root / "out")
    for (p, claim), result in zip(cases, results, strict=True):
        expected = compare(parse_claim(claim), p)
        bad = {f for f, agrees in expected.items() if not agrees}
        assert result["status"] == ("mismatch" if bad else "match"), (claim, p, result)
        assert set(filter(None, result["mismatched_fields"].split(";"))) == bad, (claim, p)
