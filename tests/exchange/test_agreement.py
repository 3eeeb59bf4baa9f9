"""Field agreement (CONTRACTS §3): the Python rules give the reconciliation's answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from dancu.errors import ValidationFailed
from dancu.registry import service as registry
from dancu.registry.agreement import CLAIM_FIELDS, Claim, compare, parse_claim, parse_claims
from dancu.vn import names as vn_names
from dancu.vn.dates import PartialDate
from tests.reconcile.helpers import (
    ALIVE,
    DEAD,
    HONG_HA,
    MONTH_ONLY,
    OLD_CARD,
    OLD_CARD_LEGACY,
    REGISTER,
    SPLIT_WARD,
    TRUONG_THANH_CT,
    YEAR_ONLY,
    load_register,
    run,
    write_rows,
)


@pytest.fixture
def registered(session: Session, tmp_path: Path) -> Session:
    load_register(session, tmp_path, REGISTER)
    return session


# (personal_id, full_name, birth_date, sex, address): every value readable, so that both
# doors compare instead of refusing (the API refuses an unreadable value with a 400 naming
# it; reconciliation counts it as a disagreement).
CASES: list[tuple[str, str, str, str, str]] = [
    (ALIVE, "Nguyễn Văn Thử", "14/03/1985", "Nam", "Phường Hồng Hà, Hà Nội"),
    (ALIVE, "NGUYEN VAN THU", "1985-03-14", "M", HONG_HA),
    (ALIVE, "Nguyen Van Thu", "14031985", "male", ""),
    (ALIVE, "Nguyễn Văn Thu", "1985", "", ""),  # diacritics given: must match exactly
    (ALIVE, "Văn Thử Nguyễn", "", "", ""),  # word order matters
    (ALIVE, "nguyễn  văn   thử", "03/1985", "", ""),
    (ALIVE, "", "15/03/1985", "Nữ", ""),
    (ALIVE, "", "", "", "Phường Phúc Xá, Quận Ba Đình, Hà Nội"),  # old ward, now Hồng Hà
    (ALIVE, "", "", "", "00001"),  # the legacy code of Phúc Xá
    (ALIVE, "", "", "", "Phường Ba Đình, Hà Nội"),
    (OLD_CARD_LEGACY, "Lê Văn Cũ", "20/07/1990", "Nam", ""),
    (OLD_CARD, "Le Van Cu", "1990-07", "F", ""),
    (MONTH_ONLY, "Phạm Thị Tháng", "17/05/1990", "Nữ", ""),
    (MONTH_ONLY, "", "17/06/1990", "", ""),
    (YEAR_ONLY, "Hoàng Văn Năm", "01/01/1970", "Nam", ""),
    (YEAR_ONLY, "", "1971", "", ""),
    (SPLIT_WARD, "Đặng Thị Hoà", "02/02/1985", "F", "Xã Tân Thạnh, Thành phố Cần Thơ"),
    (SPLIT_WARD, "Dang Thi Hoa", "", "", TRUONG_THANH_CT),
    (SPLIT_WARD, "Đang Thi Hoa", "", "", ""),  # đ typed as d but other marks missing
]


def _through_agreement(session: Session, case: tuple[str, ...]) -> tuple[str, str]:
    body = dict(zip(("personal_id", *CLAIM_FIELDS), case, strict=True))
    claim = parse_claim({k: v for k, v in body.items() if v})
    citizen = registry.lookup(session, claim.number)
    assert citizen is not None
    fields = compare(claim, citizen)
    bad = ";".join(f for f in CLAIM_FIELDS if f in fields and not fields[f])
    return ("mismatch" if bad else "match"), bad


def test_the_api_rules_are_the_reconciliations(registered: Session, tmp_path: Path) -> None:
    """The same table through the reconciliation's exact track (SQL on DuckDB) and through
    ``dancu.registry.agreement``: the same status and the same mismatched fields."""
    rows = [["", pid, name, born, sex, address] for pid, name, born, sex, address in CASES]
    rows = [r if r[1] != OLD_CARD_LEGACY else [*r[:1], OLD_CARD, *r[2:]] for r in rows]
    _summary, results = run(registered, write_rows(tmp_path / "in.csv", rows), tmp_path / "out")
    reconciled = [(r["status"], r["mismatched_fields"]) for r in results]
    ours = [_through_agreement(registered, case) for case in CASES]
    assert ours == reconciled
    assert {status for status, _ in ours} == {"match", "mismatch"}


def test_a_deceased_person_still_compares(registered: Session) -> None:
    citizen = registry.lookup(registered, DEAD)
    assert citizen is not None
    assert compare(parse_claim({"personal_id": DEAD, "full_name": "Trần Thị Mất"}), citizen) == {
        "full_name": True
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "personal_id"),
        ({"personal_id": "07908500000"}, "personal_id"),
        ({"personal_id": "0790850000x1"}, "personal_id"),
        ({"personal_id": ALIVE, "birth_date": "31/02/1985"}, "birth_date"),
        ({"personal_id": ALIVE, "birth_date": "yesterday"}, "birth_date"),
        ({"personal_id": ALIVE, "sex": "1"}, "sex"),
        ({"personal_id": ALIVE, "full_name": "   "}, "full_name"),
        ({"personal_id": ALIVE, "full_name": 42}, "full_name"),
        ({"personal_id": ALIVE, "address": "x" * 301}, "address"),
    ],
)
def test_unreadable_values_are_refused_naming_the_field(
    body: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_claim(body)
    assert [p.field for p in caught.value.problems] == [field]


def test_every_bad_field_is_named_with_its_row() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_claim({"personal_id": "1", "sex": "x", "birth_date": "y"}, row=7)
    assert [(p.row, p.field) for p in caught.value.problems] == [
        (7, "personal_id"), (7, "birth_date"), (7, "sex"),
    ]  # fmt: skip


def test_numbers_are_read_with_spaces_dots_and_hyphens() -> None:
    assert parse_claim({"personal_id": " 079.085-000 001 "}).number == ALIVE
    assert parse_claim({"personal_id": "123456789"}).number == "123456789"


def _row(name: str, born: dt.date, precision: str = "day", sex: str = "M") -> SimpleNamespace:
    canon, key = vn_names.canonical_and_fold(name)
    return SimpleNamespace(
        full_name=canon, name_key=key, birth_date=born, birth_date_precision=precision, sex=sex,
        permanent_commune_code=None,
    )  # fmt: skip


_VIETNAMESE = st.sampled_from(
    ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Đặng", "Văn", "Thị", "Hòa", "Thủy", "Quý", "Đức",
     "An", "Bình", "Khỏe", "Ngọc", "Tuấn", "Hương", "Yến"]
)  # fmt: skip
_NAMES = st.lists(_VIETNAMESE, min_size=2, max_size=4).map(" ".join)


@given(name=_NAMES)
def test_a_name_agrees_with_itself_in_any_case_and_without_marks(name: str) -> None:
    row = _row(name, dt.date(1990, 1, 2))
    for given_name in (name, name.upper(), name.lower(), vn_names.fold(name)):
        claim = parse_claim({"personal_id": ALIVE, "full_name": given_name})
        assert compare(claim, row) == {"full_name": True}


@given(name=_NAMES, other=_NAMES)
def test_different_folded_names_never_agree(name: str, other: str) -> None:
    if vn_names.fold(name) == vn_names.fold(other):
        return
    claim = parse_claim({"personal_id": ALIVE, "full_name": other})
    assert compare(claim, _row(name, dt.date(1990, 1, 2))) == {"full_name": False}


@given(
    born=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    given_day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    precision=st.sampled_from(["day", "month", "year"]),
)
def test_dates_agree_as_far_as_the_register_knows(
    born: dt.date, given_day: dt.date, precision: str
) -> None:
    claim = parse_claim({"personal_id": ALIVE, "birth_date": f"{given_day:%d/%m/%Y}"})
    agrees = compare(claim, _row("An", born, precision))["birth_date"]
    expected = {
        "day": given_day == born,
        "month": (given_day.year, given_day.month) == (born.year, born.month),
        "year": given_day.year == born.year,
    }[precision]
    assert agrees is expected


@given(
    sex=st.sampled_from(["M", "F"]),
    said=st.sampled_from(["M", "F", "Nam", "Nữ", "nu", "male", "FEMALE"]),
)
def test_sex_agrees_in_every_spelling(sex: str, said: str) -> None:
    claim = parse_claim({"personal_id": ALIVE, "sex": said})
    spelled = "M" if said.lower() in ("m", "nam", "male") else "F"
    assert compare(claim, _row("An", dt.date(1990, 1, 1), sex=sex)) == {"sex": spelled == sex}


def test_only_given_fields_are_answered_in_contract_order() -> None:
    claim = parse_claim({"personal_id": ALIVE, "sex": "F", "full_name": "An"})
    assert claim.given == ("full_name", "sex")
    assert list(compare(claim, _row("An", dt.date(1990, 1, 1)))) == ["full_name", "sex"]
    assert Claim(number=ALIVE).given == ()


# Field values as partners send them: readable and not (spaced or short numbers, empty or
# over-long text, unknown dates and sexes, non-text values), absent or null.
_NUMBER = st.sampled_from(
    [ALIVE, "001085000002", "012345678", "001 085 000 003", "001.085-000004", "12345", "", "abc"]
)
_TEXT_OR_NOT = st.one_of(st.none(), st.integers(0, 9), st.lists(st.just("x"), max_size=1))
_FIELD = {
    "personal_id": st.one_of(_NUMBER, _TEXT_OR_NOT),
    "full_name": st.one_of(
        _NAMES, st.sampled_from(["", "  ", "123", "Nguyen Van A"]), _TEXT_OR_NOT
    ),
    "birth_date": st.one_of(
        st.sampled_from(["14/03/1985", "1985-03-14", "03/1985", "1985", "31/02/1985", "soon"]),
        _TEXT_OR_NOT,
    ),
    "sex": st.one_of(st.sampled_from(["M", "F", "Nam", "Nữ", "x"]), _TEXT_OR_NOT),
    "address": st.one_of(st.sampled_from(["Phường Ba Đình, Hà Nội", " ", "x" * 301]), st.none()),
}
_BODY = st.fixed_dictionaries({}, optional=_FIELD)


@given(bodies=st.lists(_BODY, max_size=12))
def test_claims_read_together_are_the_claims_read_one_by_one(
    bodies: list[dict[str, object]],
) -> None:
    one_by_one: list[Claim] | None = []
    for body in bodies:
        try:
            one_by_one.append(parse_claim(body))  # type: ignore[union-attr]
        except ValidationFailed:
            one_by_one = None
            break
    assert parse_claims(bodies) == one_by_one


_READABLE = {
    "personal_id": _NUMBER.filter(lambda n: n not in ("12345", "", "abc")),
    "full_name": _NAMES,
    "birth_date": st.sampled_from(["14/03/1985", "1985-03-14", "03/1985", "1985", None]),
    "sex": st.sampled_from(["M", "F", "Nam", "Nữ", None]),
    "address": st.sampled_from(["Phường Ba Đình, Hà Nội", None]),
}


@given(
    bodies=st.lists(
        st.fixed_dictionaries(
            {"personal_id": _READABLE["personal_id"]},
            optional={k: v for k, v in _READABLE.items() if k != "personal_id"},
        ),
        max_size=20,
    )
)
def test_readable_claims_read_together_are_read_as_one_by_one(
    bodies: list[dict[str, object]],
) -> None:
    assert parse_claims(bodies) == [parse_claim(body) for body in bodies]


def _partial(day: dt.date, precision: str) -> PartialDate:
    if precision == "year":
        return PartialDate(day.year)
    return PartialDate(day.year, day.month, day.day if precision == "day" else None)


_PRECISION = st.sampled_from(["day", "month", "year"])
_DAY = st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31))


@given(claimed=_DAY, claimed_precision=_PRECISION, held=_DAY, held_precision=_PRECISION,
       near=st.booleans(), raw=st.booleans())  # fmt: skip
def test_a_birth_date_agrees_as_partial_dates_agree(
    claimed: dt.date,
    claimed_precision: str,
    held: dt.date,
    held_precision: str,
    near: bool,
    raw: bool,
) -> None:
    """The comparison to the register's precision (inlined for batches) is
    ``PartialDate.agrees``, whatever either side knows; the register's date may be a
    ``date`` or, read raw from SQLite, its ISO text."""
    if near:  # the same year or month more often than chance would give
        held = held.replace(year=claimed.year, day=min(held.day, 28))
    claim = Claim("079085000001", birth_date=_partial(claimed, claimed_precision))
    row = SimpleNamespace(
        birth_date=held.isoformat() if raw else held, birth_date_precision=held_precision
    )
    expected = claim.birth_date.agrees(_partial(held, held_precision))  # type: ignore[union-attr]
    assert compare(claim, row)["birth_date"] is expected  # type: ignore[arg-type]
