"""A batch's claims are read with ``ClaimReader``: the same claims and the same errors as
``parse_claim`` item by item, whatever repeats in the batch."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dancu.errors import ValidationFailed
from dancu.registry.agreement import Claim, ClaimReader, parse_claim

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


@given(items=_ITEMS)
def test_a_reader_reads_every_item_as_parse_claim_does(items: list[dict[str, Any]]) -> None:
    read = ClaimReader().read
    for row, item in enumerate(items, start=1):
        assert _outcome(read, item, row) == _outcome(parse_claim, item, row)


def test_a_remembered_value_is_reused_only_for_the_same_text() -> None:
    read = ClaimReader().read
    first = read({"personal_id": "001085000001", "full_name": "Nguyễn Văn Thử", "sex": "Nam"})
    again = read({"personal_id": "079190000002", "full_name": "Nguyễn Văn Thử", "sex": "Nam"})
    other = read({"personal_id": "079190000002", "full_name": "Nguyen Van Thu", "sex": "F"})
    assert (again.full_name, again.name_key, again.name_marked, again.sex) == (
        first.full_name, first.name_key, first.name_marked, "M",
    )  # fmt: skip
    assert again.number == "079190000002"
    assert (other.name_marked, other.sex) == (False, "F")
