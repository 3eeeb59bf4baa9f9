"""``parse_claim``'s field readers remember what they read: a claim read after others gives
the same claim and the same errors as when read first, whatever repeats in a batch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.errors import ValidationFailed
from dancu.registry import agreement
from dancu.registry.agreement import Claim, parse_claim

# Values readable and unreadable, repeated across the items so that later items find them
# remembered: names with and without diacritics, every date form, sex forms, addresses.
_NUMBERS = ["001085000001", "079190000002", "012345678", "001 085 000 003", "12345", "", 7]
_NAMES = [None, "Nguyễn Văn Thử", "NGUYEN VAN THU", "  lê   thị  hoa ", "", "123", 5, "Trần" * 80]
_DATES = [None, "14/03/1985", "1985-03-14", "1985", "03/1985", "14031985", "31/02/1985", "", "x"]
_SEXES = [None, "Nam", "Nữ", "M", "f", "male", "0", "", "?"]
_ADDRESSES = [None, "Phường Hồng Hà, Hà Nội", "00001", "", "  "]


def _item(draw: Any) -> dict[str, Any]:
    item = {"personal_id": draw(st.sampled_from(_NUMBERS))}
    for field, pool in (("full_name", _NAMES), ("birth_date", _DATES), ("sex", _SEXES),
                        ("address", _ADDRESSES)):  # fmt: skip
        value = draw(st.sampled_from(pool))
        if value is not None:
            item[field] = value
    return item


_ITEMS = st.lists(st.composite(_item)(), min_size=1, max_size=30)


def _outcome(read: Any, item: dict[str, Any], row: int) -> Claim | list[tuple[Any, ...]]:
    try:
        claim: Claim = read(item, row=row)
    except ValidationFailed as exc:
        return [(p.row, p.field, p.reason) for p in exc.problems]
    return claim


def _forget() -> None:
    for memo in (agreement._NAMES, agreement._BIRTHS, agreement._SEXES):
        memo.seen.clear()


@given(items=_ITEMS)
def test_a_claim_reads_the_same_after_others_as_first(items: list[dict[str, Any]]) -> None:
    _forget()
    in_turn = [_outcome(parse_claim, item, row) for row, item in enumerate(items, start=1)]
    fresh = []
    for row, item in enumerate(items, start=1):
        _forget()
        fresh.append(_outcome(parse_claim, item, row))
    assert in_turn == fresh


def test_problems_are_named_per_field_in_order() -> None:
    body = {"personal_id": 7, "full_name": "", "birth_date": "31/02/1985", "sex": "?",
            "address": "x" * 301}  # fmt: skip
    problems = _outcome(parse_claim, body, 3)
    assert [p[:2] for p in problems] == [
        (3, "personal_id"), (3, "personal_id"), (3, "full_name"), (3, "birth_date"), (3, "sex"),
        (3, "address"),
    ]  # fmt: skip
    assert [p[2] for p in problems][:3] == [
        "must be text", "is required", "must not be empty; leave the field out instead",
    ]  # fmt: skip


def test_a_remembered_value_is_reused_only_for_the_same_text() -> None:
    name = "Nguyễn Văn Thử"
    first = parse_claim({"personal_id": "001085000001", "full_name": name, "sex": "Nam"})
    again = parse_claim({"personal_id": "079190000002", "full_name": name, "sex": "Nam"})
    other = parse_claim({"personal_id": "079190000002", "full_name": "Nguyen Van Thu", "sex": "F"})
    assert (again.full_name, again.name_key, again.name_marked, again.sex) == (
        first.full_name, first.name_key, first.name_marked, "M",
    )  # fmt: skip
    assert again.number == "079190000002"
    assert (other.name_marked, other.sex) == (False, "F")


def test_long_text_is_read_but_not_remembered() -> None:
    _forget()
    pad = " " * 5_000  # valid once stripped
    body = {"personal_id": "001085000001", "full_name": f"{pad}Nguyễn Văn Thử{pad}",
            "birth_date": f"{pad}1985", "sex": f"Nam{pad}"}  # fmt: skip
    claim = parse_claim(body)
    year = parse_claim({"personal_id": "001085000001", "birth_date": "1985"}).birth_date
    assert (claim.full_name, claim.birth_date, claim.sex) == ("Nguyễn Văn Thử", year, "M")
    assert (len(agreement._NAMES.seen), len(agreement._SEXES.seen)) == (0, 0)
    assert list(agreement._BIRTHS.seen) == ["1985"]  # the short "1985" only


def test_refused_values_are_named_but_not_remembered() -> None:
    _forget()
    body = {"personal_id": "001085000001", "full_name": " " * 50, "birth_date": "\x07" * 300,
            "sex": "?" * 300}  # fmt: skip
    for _ in range(2):
        with pytest.raises(ValidationFailed) as refused:
            parse_claim(body)
        assert [p.field for p in refused.value.problems] == ["full_name", "birth_date", "sex"]
    assert all(not m.seen for m in (agreement._NAMES, agreement._BIRTHS, agreement._SEXES))


def test_text_of_a_str_subclass_is_read_as_text() -> None:
    class Text(str):
        pass

    _forget()
    body = {"personal_id": "001085000001", "full_name": Text("Nguyễn Văn Thử"),
            "birth_date": Text("14/03/1985"), "sex": Text("Nam")}  # fmt: skip
    claim = parse_claim(body)
    assert (claim.full_name, claim.sex) == ("Nguyễn Văn Thử", "M")
    assert all(not m.seen for m in (agreement._NAMES, agreement._BIRTHS, agreement._SEXES))


def test_a_full_memo_is_emptied_and_keeps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget()
    small = agreement._Memo({}, 2, 100)  # parse_claim looks in its dictionary directly
    monkeypatch.setattr(agreement, "_NAMES", small)
    monkeypatch.setattr(agreement, "_NAMES_SEEN", small.seen)
    names = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"]
    claims = [parse_claim({"personal_id": "001085000001", "full_name": n}) for n in names]
    assert [c.full_name for c in claims] == names
    assert list(agreement._NAMES.seen) == ["Lê Văn Cường"]  # emptied at the third, then kept
    assert parse_claim({"personal_id": "001085000001", "full_name": names[0]}) == claims[0]


def test_the_names_memo_keeps_more_names_than_a_register_of_a_million_holds() -> None:
    """The seed's million people have 194,465 distinct full names, and a batch over the whole
    register sends them all: the memo must keep that many without emptying itself (at 65,536
    it missed 37% of them)."""
    _forget()
    try:
        for n in range(200_000):
            agreement._remembered(agreement._NAMES, f"name {n}", lambda v: ((v, v, False), ()))
        assert len(agreement._NAMES.seen) == 200_000
        assert "name 0" in agreement._NAMES.seen
    finally:
        _forget()
