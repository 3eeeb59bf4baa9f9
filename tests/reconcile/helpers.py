"""Synthetic registers and sectoral files for the reconciliation tests (never a real person)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dancu.reconcile.service import ReconcileSummary, reconcile
from dancu.registry import importer
from tests.registry.factories import person, write_csv

# Official 2025 commune codes (Decision 19/2025/QĐ-TTg) and a legacy one (see tests/geo).
HONG_HA = "00097"  # Phường Hồng Hà, Hà Nội: where legacy Phường Phúc Xá (00001) went
BA_DINH = "00004"  # Phường Ba Đình, Hà Nội
TAN_THANH_CT = "31666"  # Xã Tân Thạnh, Cần Thơ: the non-default part of split legacy 31268
TRUONG_THANH_CT = "31288"  # Xã Trường Thành, Cần Thơ: the default part of 31268

ALIVE = "079085000001"  # Nguyễn Văn Thử, 1985-03-14, M, Phường Hồng Hà
DEAD = "079185000002"  # Trần Thị Mất, deceased
OLD_CARD = "079090000003"  # Lê Văn Cũ, legacy CMND numbers below
OLD_CARD_LEGACY = "012345678901"
MONTH_ONLY = "079190000004"  # Phạm Thị Tháng, born 1990-05 (month known, not the day)
YEAR_ONLY = "079070000005"  # Hoàng Văn Năm, born 1970 (year only)
SPLIT_WARD = "092185000006"  # Đặng Thị Hòa, Xã Tân Thạnh (Cần Thơ)
NINE_DIGIT_LEGACY = "123456789"
NO_COMMUNE = "079085000007"  # Bùi Văn Không, no permanent commune
UNKNOWN = "079099999999"

REGISTER: list[dict[str, str]] = [
    person(
        personal_id=ALIVE, full_name="Nguyễn Văn Thử", birth_date="1985-03-14", sex="M",
        permanent_commune_code=HONG_HA,
    ),
    person(
        personal_id=DEAD, full_name="Trần Thị Mất", birth_date="1985-01-01", sex="F",
        status="deceased", death_date="2020-01-01", permanent_commune_code=HONG_HA,
    ),
    person(
        personal_id=OLD_CARD, full_name="Lê Văn Cũ", birth_date="1990-07-20", sex="M",
        legacy_id_number=OLD_CARD_LEGACY, permanent_commune_code=BA_DINH,
    ),
    person(
        personal_id=MONTH_ONLY, full_name="Phạm Thị Tháng", birth_date="1990-05", sex="F",
    ),
    person(personal_id=YEAR_ONLY, full_name="Hoàng Văn Năm", birth_date="1970", sex="M"),
    person(
        personal_id=SPLIT_WARD, full_name="Đặng Thị Hòa", birth_date="1985-02-02", sex="F",
        permanent_commune_code=TAN_THANH_CT,
    ),
    person(
        personal_id="079185000008", full_name="Vũ Thị Chín", birth_date="1985-09-09", sex="F",
        legacy_id_number=NINE_DIGIT_LEGACY,
    ),
    person(personal_id=NO_COMMUNE, full_name="Bùi Văn Không", birth_date="1985-04-04", sex="M"),
]  # fmt: skip

HEADER = ["STT", "Số CCCD", "Họ và tên", "Ngày sinh", "Giới tính", "Địa chỉ"]


def load_register(session: Session, tmp_path: Path, rows: Sequence[dict[str, str]]) -> None:
    """Import ``rows`` (interchange format) into the test's register."""
    path = write_csv(tmp_path / "register.csv", list(rows))
    with session.begin_nested():
        importer.import_file(session, path, actor="test")


def write_rows(
    path: Path,
    rows: Sequence[Sequence[Any]],
    header: Sequence[str] = HEADER,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> Path:
    """A sectoral CSV file; ``encoding="utf-8-sig"`` writes a BOM."""
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_results(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def run(
    session: Session | None, path: Path, out: Path, **kwargs: Any
) -> tuple[ReconcileSummary, list[dict[str, str]]]:
    """Reconcile ``path`` into ``out``; the summary and the rows of results.csv."""
    summary = reconcile(session, path, out, **kwargs)
    return summary, read_results(out)


def row(
    pid: str = ALIVE,
    name: str = "Nguyễn Văn Thử",
    born: str = "14/03/1985",
    sex: str = "Nam",
    address: str = "Phường Hồng Hà, Hà Nội",
) -> list[str]:
    """One sectoral row in :data:`HEADER` order; defaults describe ALIVE exactly."""
    return ["", pid, name, born, sex, address]
