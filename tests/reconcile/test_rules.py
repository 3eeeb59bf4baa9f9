"""Status, register ID, mismatched fields and duplicates exactly as CONTRACTS §3 says."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.reconcile.helpers import (
    ALIVE,
    DEAD,
    MONTH_ONLY,
    NINE_DIGIT_LEGACY,
    NO_COMMUNE,
    OLD_CARD,
    OLD_CARD_LEGACY,
    SPLIT_WARD,
    UNKNOWN,
    YEAR_ONLY,
    row,
    run,
    write_rows,
)


def _check(session: Session, tmp_path: Path, rows: list[list[str]]) -> list[dict[str, str]]:
    path = write_rows(tmp_path / "in.csv", rows)
    return run(session, path, tmp_path / "out")[1]


def _one(session: Session, tmp_path: Path, given: list[str]) -> dict[str, str]:
    (result,) = _check(session, tmp_path, [given])
    return result


def test_every_status(registered: Session, tmp_path: Path) -> None:
    results = _check(
        registered,
        tmp_path,
        [
            row(),
            row(sex="Nữ"),
            row(pid=DEAD, name="Someone Else", sex="Nam"),
            row(pid=UNKNOWN),
            row(pid="07908500000"),
            row(pid=""),
        ],
    )
    assert [(r["row"], r["status"]) for r in results] == [
        ("1", "match"),
        ("2", "mismatch"),
        ("3", "deceased"),
        ("4", "not_found"),
        ("5", "invalid_id"),
        ("6", "missing_id"),
    ]
    assert [r["personal_id"] for r in results] == [ALIVE, ALIVE, DEAD, "", "", ""]
    assert [r["mismatched_fields"] for r in results] == ["", "sex", "", "", "", ""]
    # every row but the deceased one describes ALIVE: suggested for all but match and deceased
    assert [r["suggested_id"] for r in results] == ["", ALIVE, "", ALIVE, ALIVE, ALIVE]
    assert [r["suggestion_score"] != "" for r in results] == [False, True, False, True, True, True]


@pytest.mark.parametrize(
    "given", ["079 085 000 001", "079.085.000.001", "079-085-000-001", " 079085000001 "]
)
def test_ids_with_spaces_dots_or_hyphens_are_found(
    registered: Session, tmp_path: Path, given: str
) -> None:
    result = _one(registered, tmp_path, row(pid=given))
    assert (result["status"], result["personal_id"]) == ("match", ALIVE)


@pytest.mark.parametrize(
    "given", ["07908500000", "0790850000011", "07908500000x", "...", NINE_DIGIT_LEGACY]
)
def test_an_id_that_is_not_12_digits_is_invalid(
    registered: Session, tmp_path: Path, given: str
) -> None:
    """A 9-digit CMND number too: the contract's rule is 12 digits after spaces and dots."""
    assert _one(registered, tmp_path, row(pid=given))["status"] == "invalid_id"


def test_a_legacy_cmnd_number_finds_the_person(registered: Session, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "in.csv",
        [row(pid=OLD_CARD_LEGACY, name="Lê Văn Cũ", born="20/07/1990", address="")],
    )
    summary, (result,) = run(registered, path, tmp_path / "out")
    assert (result["status"], result["personal_id"]) == ("match", OLD_CARD)
    assert summary.data["found_by_legacy_number"] == 1


def test_deceased_whatever_the_other_fields_say(registered: Session, tmp_path: Path) -> None:
    result = _one(registered, tmp_path, row(pid=DEAD, name="X", born="1901", sex="Nam"))
    assert (result["status"], result["personal_id"], result["mismatched_fields"]) == (
        "deceased",
        DEAD,
        "",
    )


def test_mismatched_fields_are_listed_in_contract_order(
    registered: Session, tmp_path: Path
) -> None:
    result = _one(
        registered,
        tmp_path,
        row(name="Nguyễn Văn Khác", born="1986", sex="F", address="Phường Ba Đình, Hà Nội"),
    )
    assert result["status"] == "mismatch"
    assert result["mismatched_fields"] == "full_name;birth_date;sex;address"


def test_fields_not_given_are_not_compared(registered: Session, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [[ALIVE], [DEAD]], header=["so_cccd"])
    _, results = run(registered, path, tmp_path / "out")
    assert [r["status"] for r in results] == ["match", "deceased"]
    assert _one(registered, tmp_path, row(name="", born="", sex="", address=""))["status"] == (
        "match"
    )


NFD = unicodedata.normalize("NFD", "Nguyễn Văn Thử")


@pytest.mark.parametrize(
    ("given", "agrees"),
    [
        ("Nguyễn Văn Thử", True),
        ("NGUYỄN VĂN THỬ", True),
        ("  nguyễn   văn  thử ", True),
        (NFD, True),
        ("nguyen van thu", True),  # no diacritics at all: compared folded
        ("NGUYEN VAN THU", True),
        ("Nguyễn Văn Thủ", False),  # another tone is another name
        ("Nguyen Van Thử", False),  # some diacritics: compared canonically
        ("Văn Thử Nguyễn", False),  # word order matters
        ("Nguyễn Thử", False),
    ],
)
def test_full_name_agreement(registered: Session, tmp_path: Path, given: str, agrees: bool) -> None:
    result = _one(registered, tmp_path, row(name=given))
    assert result["status"] == ("match" if agrees else "mismatch")
    assert result["mismatched_fields"] == ("" if agrees else "full_name")


@pytest.mark.parametrize(
    ("given", "agrees"),
    [
        ("Đặng Thị Hòa", True),
        ("Đặng Thị Hoà", True),
        ("Dang Thi Hoa", True),
        ("Dang Thi Hoà", False),
    ],
)
def test_old_and_new_tone_placement_and_d_for_đ(
    registered: Session, tmp_path: Path, given: str, agrees: bool
) -> None:
    result = _one(
        registered,
        tmp_path,
        row(pid=SPLIT_WARD, name=given, born="02/02/1985", sex="Nữ", address=""),
    )
    assert result["status"] == ("match" if agrees else "mismatch")


@pytest.mark.parametrize(
    ("given", "agrees"),
    [
        ("14/03/1985", True),
        ("14/3/1985", True),
        ("14-03-1985", True),
        ("14031985", True),
        ("1985-03-14", True),
        ("1985", True),  # a year alone agrees as far as it goes
        ("03/1985", True),
        ("15/03/1985", False),
        ("14/03/1986", False),
        ("1986", False),
        ("31/02/1985", False),  # not a real date: cannot agree
        ("not a date", False),
    ],
)
def test_birth_date_forms(registered: Session, tmp_path: Path, given: str, agrees: bool) -> None:
    result = _one(registered, tmp_path, row(born=given))
    assert result["mismatched_fields"] == ("" if agrees else "birth_date")


@pytest.mark.parametrize(
    ("pid", "given", "agrees"),
    [
        (MONTH_ONLY, "05/05/1990", True),  # the register knows only 1990-05
        (MONTH_ONLY, "31/05/1990", True),
        (MONTH_ONLY, "1990", True),
        (MONTH_ONLY, "01/06/1990", False),
        (YEAR_ONLY, "12/12/1970", True),  # the register knows only 1970
        (YEAR_ONLY, "1970", True),
        (YEAR_ONLY, "01/01/1971", False),
    ],
)
def test_birth_date_agrees_as_far_as_the_register_knows(
    registered: Session, tmp_path: Path, pid: str, given: str, agrees: bool
) -> None:
    result = _one(registered, tmp_path, row(pid=pid, name="", born=given, sex="", address=""))
    assert result["status"] == ("match" if agrees else "mismatch")


def test_an_unreadable_date_is_reported(registered: Session, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row(), row(born="abc"), row(born="32/01/1985")])
    summary, results = run(registered, path, tmp_path / "out")
    assert [r["status"] for r in results] == ["match", "mismatch", "mismatch"]
    assert summary.unreadable["birth_date"] == {"count": 2, "first_rows": [2, 3]}


@pytest.mark.parametrize(
    ("given", "agrees"),
    [
        ("Nam", True),
        ("nam", True),
        ("NAM", True),
        ("M", True),
        ("male", True),
        ("Male", True),
        ("Nữ", False),
        ("nu", False),
        ("F", False),
        ("female", False),
        ("X", False),  # unreadable: cannot agree
        ("1", False),
    ],
)
def test_sex_forms(registered: Session, tmp_path: Path, given: str, agrees: bool) -> None:
    result = _one(registered, tmp_path, row(sex=given))
    assert result["mismatched_fields"] == ("" if agrees else "sex")


def test_sex_female_forms_match_a_woman(registered: Session, tmp_path: Path) -> None:
    rows = [
        row(pid=SPLIT_WARD, name="Đặng Thị Hòa", born="02/02/1985", sex=s, address="")
        for s in ("Nữ", "NỮ", "nu", "F", "female", unicodedata.normalize("NFD", "Nữ"))
    ]
    assert {r["status"] for r in _check(registered, tmp_path, rows)} == {"match"}


@pytest.mark.parametrize(
    ("given", "agrees"),
    [
        ("Phường Hồng Hà, Hà Nội", True),
        ("P. Hong Ha, Ha Noi", True),
        ("Phường Phúc Xá, Quận Ba Đình, Hà Nội", True),  # old units, converted
        ("Số 5, ngõ 2, phố Hàng Gà, Phường Phúc Xá, Quận Ba Đình, Hà Nội", True),
        ("00097", True),  # a 2025 commune code
        ("00001", True),  # a legacy commune code, converted
        ("Phường Ba Đình, Hà Nội", False),
        ("Hà Nội", False),  # a province alone names no commune
        ("somewhere else", False),
    ],
)
def test_address_agreement(registered: Session, tmp_path: Path, given: str, agrees: bool) -> None:
    result = _one(registered, tmp_path, row(address=given))
    assert result["mismatched_fields"] == ("" if agrees else "address")


@pytest.mark.parametrize(
    "given",
    [
        "Xã Tân Thạnh, Huyện Thới Lai, Thành phố Cần Thơ",
        "Ấp Tân Phú, X. Tân Thạnh, H. Thới Lai, TP Cần Thơ",
        "Số 5, đường 30/4, ấp 2, Xã Tân Thạnh, Huyện Thới Lai, Cần Thơ",
        "31268",
    ],
)
def test_any_commune_of_a_split_ward_agrees(
    registered: Session, tmp_path: Path, given: str
) -> None:
    """Legacy Xã Tân Thạnh went to two communes; the register holds the non-default one."""
    result = _one(
        registered,
        tmp_path,
        row(pid=SPLIT_WARD, name="Đặng Thị Hòa", born="02/02/1985", sex="Nữ", address=given),
    )
    assert result["status"] == "match"


def test_an_address_disagrees_with_a_register_without_commune(
    registered: Session, tmp_path: Path
) -> None:
    result = _one(
        registered,
        tmp_path,
        row(
            pid=NO_COMMUNE,
            name="Bùi Văn Không",
            born="04/04/1985",
            address="Phường Hồng Hà, Hà Nội",
        ),
    )
    assert result["mismatched_fields"] == "address"


def test_duplicates_point_at_the_first_earlier_row(registered: Session, tmp_path: Path) -> None:
    newcomer = ["", "", "Lê Thị Mới", "01/01/2000", "Nữ", ""]
    results = _check(
        registered,
        tmp_path,
        [
            row(),  # 1
            row(pid=UNKNOWN),  # 2: ALIVE again, found by the suggestion track
            row(pid="079 085 000 001", sex="Nữ"),  # 3: same person as 1, even mismatching
            newcomer,  # 4: no ID
            ["", "", "LÊ THỊ MỚI", "2000-01-01", "F", ""],  # 5: same as 4
            ["", "123", "Lê Thị Mới", "1/1/2000", "nữ", ""],  # 6: invalid ID, same as 4
            # 7: the same name and birth date, sex typed wrong (Thị names a woman): same as 4
            ["", "", "Lê Thị Mới", "01/01/2000", "Nam", ""],
            ["", OLD_CARD_LEGACY, "Lê Văn Cũ", "20/07/1990", "", ""],  # 8
            ["", OLD_CARD, "Lê Văn Cũ", "20/07/1990", "", ""],  # 9: same person as 8
            row(),  # 10
            ["", "", "Lê Thị Mới", "", "Nữ", ""],  # 11: no birth date, never a duplicate
        ],
    )
    assert [r["duplicate_of"] for r in results] == [
        "",
        "1",
        "1",
        "",
        "4",
        "4",
        "4",
        "",
        "8",
        "1",
        "",
    ]


def test_a_file_without_ids_gives_missing_id_and_identity_duplicates(
    registered: Session, tmp_path: Path
) -> None:
    path = write_rows(
        tmp_path / "in.csv",
        [["Lê Thị Mới", "01/01/2000"], ["le thi moi", "01/01/2000"], ["Lê Thị Mới", "01/01/2000"]],
        header=["ho_ten", "ngay_sinh"],
    )
    _, results = run(registered, path, tmp_path / "out")
    assert [r["status"] for r in results] == ["missing_id"] * 3
    # a name without diacritics is the same name (CONTRACTS §3 field agreement)
    assert [r["duplicate_of"] for r in results] == ["", "1", "1"]


def test_the_same_name_and_birth_date_under_two_unknown_numbers_are_two_people(
    registered: Session, tmp_path: Path
) -> None:
    # Nobody in the register is called so; in a national file the same name, birth date and
    # sex under two well-formed numbers is two outsiders, each with an ID of their own.
    results = _check(
        registered,
        tmp_path,
        [
            ["", "001190000123", "Lê Thị Mới", "01/01/2000", "Nữ", "Phường Hồng Hà, Hà Nội"],
            ["", "036190000456", "Lê Thị Mới", "01/01/2000", "Nữ", "Xã Tân Hòa, Tỉnh Hưng Yên"],
            ["", "001190000123", "Lê Thị Mới", "01/01/2000", "Nữ", "Phường Hồng Hà, Hà Nội"],
            # one digit off the second's: the same outsider, the number mistyped
            ["", "036190000459", "Lê Thị Mới", "01/01/2000", "Nữ", "Xã Tân Hòa, Tỉnh Hưng Yên"],
        ],
    )
    assert [r["status"] for r in results] == ["not_found"] * 4
    assert [r["duplicate_of"] for r in results] == ["", "", "1", "2"]
