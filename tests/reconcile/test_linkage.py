"""The record-linkage model's pieces: the SQL fold, comparison levels, m estimation."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dancu.reconcile import linkage
from dancu.reconcile.suggest import fold_sql
from dancu.vn import names as vn_names

SYLLABLES = [
    "Nguyễn", "Trần", "Đặng", "Văn", "Thị", "Hòa", "Thủy", "Khỏe", "Quý", "Đức", "Ánh", "Hưng",
    "Ngọc", "Ưng", "Yến", "Ơn", "Giàu", "H'Hen", "Anh-Thư", "Mỹ", "Nguyệt",
]  # fmt: skip


_CON = duckdb.connect()


@settings(deadline=None)
@given(st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=5))
def test_sql_fold_is_vn_fold_for_canonical_names(words: list[str]) -> None:
    canon = vn_names.canonical_name(" ".join(words))
    ((folded,),) = _CON.execute(f"SELECT {fold_sql('?')}", [canon]).fetchall()
    assert folded == vn_names.fold(canon)


def _name_level(given: str, person: str) -> str:
    g = vn_names.canonical_name(given)
    r = vn_names.canonical_name(person)
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE g AS SELECT ? AS name_fold, ? AS name_lower, ? AS name_marked,
        array_to_string(list_sort(string_split(?, ' ')), ' ') AS name_sorted,
        string_split(?, ' ')[1] AS name_first, string_split(?, ' ')[-1] AS name_last,
        len(string_split(?, ' ')) AS name_words""",
        [vn_names.fold(g), g.lower(), vn_names.has_diacritics(g), *[vn_names.fold(g)] * 4],
    )
    con.execute(
        """CREATE TABLE r AS SELECT ? AS fold, ? AS canon,
        array_to_string(list_sort(string_split(?, ' ')), ' ') AS sorted,
        string_split(?, ' ')[1] AS first, string_split(?, ' ')[-1] AS last,
        len(string_split(?, ' ')) AS words""",
        [vn_names.fold(r), r.lower(), *[vn_names.fold(r)] * 4],
    )
    ((level,),) = con.execute(f"SELECT {linkage.name_level_sql('g', 'r')} FROM g, r").fetchall()
    return str(level)


@pytest.mark.parametrize(
    ("given", "person", "level"),
    [
        ("Nguyễn Văn Hùng", "Nguyễn Văn Hùng", "exact"),
        ("NGUYEN VAN HUNG", "Nguyễn Văn Hùng", "exact"),
        ("Nguyễn Văn Hoà", "Nguyễn Văn Hòa", "exact"),  # tone placement
        ("Nguyễn Văn Hưng", "Nguyễn Văn Hùng", "fold"),  # another name under the same fold
        ("Hùng Nguyễn Văn", "Nguyễn Văn Hùng", "reordered"),
        ("Nguyễn Văn Hùnh", "Nguyễn Văn Hùng", "typo"),
        ("Guyễn Văn Hùng", "Nguyễn Văn Hùng", "typo"),  # first letter lost
        ("Nguyễn Hùng", "Nguyễn Văn Hùng", "dropped"),
        ("Nguyễn Văn Hùng", "Nguyễn Thị Hùng", "close"),  # the same given name, close
        ("Trần Văn Hùng", "Nguyễn Văn Hùng", "given"),
        ("Trần Thị Lan", "Nguyễn Văn Hùng", "else"),
        ("Nguyễn Văn Bình", "Nguyễn Văn Hùng", "else"),  # brothers: not 'close'
    ],
)
def test_name_levels(given: str, person: str, level: str) -> None:
    assert _name_level(given, person) == level


@given(
    st.dictionaries(st.sampled_from(linkage.NAME_LEVELS), st.integers(min_value=0, max_value=10**6))
)
def test_m_is_a_distribution_with_a_floor(counts: dict[str, int]) -> None:
    m = linkage.m_from_counts("name", counts, levels=linkage.NAME_LEVELS)
    assert set(m) == set(linkage.NAME_LEVELS)
    assert abs(sum(m.values()) - 1) < 1e-9
    assert min(m.values()) > 0.0005  # a level never seen is not impossible


def test_m_follows_the_file_once_it_has_enough_rows() -> None:
    m = linkage.m_from_counts("sex", {"same": 90_000, "diff": 10_000}, levels=("same", "diff"))
    assert m["diff"] == pytest.approx(0.1, abs=0.002)
