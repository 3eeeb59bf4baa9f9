"""The synthetic population generator: determinism, shape and realism (no database needed)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter

import pyarrow as pa
import pytest

from dancu.registry import synth
from dancu.registry.synth import CommuneWeight

TODAY = dt.date(2026, 1, 1)
COMMUNES = [
    CommuneWeight("00004", "01", 10.0, ("001",)),
    CommuneWeight("26734", "79", 8.0, ("079", "074")),
    CommuneWeight("02341", "08", 1.5, ("002", "008")),
    CommuneWeight("30307", "91", 3.0, ("089", "091")),
    CommuneWeight("24121", "66", 2.0, ("066", "067")),
    CommuneWeight("14005", "38", 4.0, ("038",)),
    CommuneWeight("19999", "40", 0.0, ("040",)),  # weight zero: nobody lives there
]
N = 50_000
ISO_PARTIAL = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def _table(n: int, seed: int = 42, **kwargs: object) -> pa.Table:
    return pa.Table.from_batches(
        list(synth.generate(n, seed, COMMUNES, **kwargs)),  # type: ignore[arg-type]
        schema=synth.SCHEMA,
    )


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str | None]]:
    return _table(N).to_pylist()


@pytest.fixture(scope="module")
def by_id(rows: list[dict[str, str | None]]) -> dict[str, dict[str, str | None]]:
    return {r["personal_id"]: r for r in rows}  # type: ignore[misc]


def _date(text: str) -> dt.date:
    """A full date, or the first day of a partial one."""
    parts = [int(p) for p in text.split("-")] + [1, 1]
    return dt.date(parts[0], parts[1], parts[2])


def _year(text: str | None) -> int:
    assert text is not None
    return int(text[:4])


def test_schema_and_columns() -> None:
    assert synth.INTERCHANGE_COLUMNS == tuple(synth.SCHEMA.names)
    assert synth.INTERCHANGE_COLUMNS[:4] == ("personal_id", "full_name", "birth_date", "sex")
    assert len(synth.INTERCHANGE_COLUMNS) == 19
    assert all(f.type == pa.string() and f.nullable for f in synth.SCHEMA)
    for batch in synth.generate(100, 1, COMMUNES):
        assert batch.schema == synth.SCHEMA


def test_deterministic_and_independent_of_batch_size() -> None:
    a = _table(12_345, seed=7)
    b = _table(12_345, seed=7)
    c = _table(12_345, seed=7, batch_size=1_000)
    assert a.equals(b)
    assert a.equals(c)


def test_different_seeds_differ() -> None:
    a = _table(2_000, seed=1)
    b = _table(2_000, seed=2)
    assert a.column("personal_id").to_pylist() != b.column("personal_id").to_pylist()
    assert a.column("full_name").to_pylist() != b.column("full_name").to_pylist()


@pytest.mark.parametrize("n", [0, 1, 2, 7, 999, 8_192, 30_001])
def test_exactly_n_rows(n: int) -> None:
    batches = list(synth.generate(n, 3, COMMUNES, batch_size=5_000))
    assert sum(b.num_rows for b in batches) == n
    assert all(b.num_rows > 0 for b in batches)


def test_batches_hold_whole_households_and_respect_the_size() -> None:
    seen: set[str] = set()
    for batch in synth.generate(20_000, 5, COMMUNES, batch_size=777):
        assert batch.num_rows <= 777
        households = set(batch.column("household_id").to_pylist())
        assert not households & seen, "a household is split across batches"
        seen |= households


def test_a_smaller_population_is_a_prefix_of_a_larger_one() -> None:
    small = _table(5_000, seed=9).to_pylist()
    large = _table(20_000, seed=9).to_pylist()
    last = small[-1]["household_id"]
    whole = [r for r in small if r["household_id"] != last]
    assert whole == large[: len(whole)]


def test_unique_well_formed_ids(rows: list[dict[str, str | None]]) -> None:
    ids = [r["personal_id"] for r in rows]
    assert len(set(ids)) == len(ids) == N
    assert all(i is not None and len(i) == 12 and i.isdigit() for i in ids)
    legacy = [r["legacy_id_number"] for r in rows if r["legacy_id_number"] is not None]
    assert len(set(legacy)) == len(legacy)
    assert all(len(x) == 9 and x.isdigit() for x in legacy)


def test_id_structure_matches_birth_and_sex(rows: list[dict[str, str | None]]) -> None:
    local = {p for c in COMMUNES for p in c.birth_place_codes}
    legacy = {p[0] for p in synth._PROVINCES}
    origins: Counter[str] = Counter()
    for r in rows:
        pid, year = r["personal_id"], _year(r["birth_date"])
        assert pid is not None
        g = int(pid[3])
        assert 19 + g // 2 == year // 100, r
        assert (g % 2 == 1) == (r["sex"] == "F"), r
        assert pid[4:6] == f"{year % 100:02d}", r
        ppp = pid[:3]
        if ppp in local:
            origins["local"] += 1
        elif ppp in legacy:
            origins["elsewhere"] += 1
        else:
            assert 101 <= int(ppp) <= 295, r
            origins["abroad"] += 1
    assert 0.8 < origins["local"] / N < 0.95
    assert origins["elsewhere"] > 0.03 * N
    assert 0 < origins["abroad"] < 0.01 * N


def test_people_born_before_2000_mostly_have_a_legacy_number(
    rows: list[dict[str, str | None]],
) -> None:
    old = [r for r in rows if _year(r["birth_date"]) < 2000]
    share = sum(r["legacy_id_number"] is not None for r in old) / len(old)
    assert share > 0.8
    assert all(r["legacy_id_number"] is None for r in rows if _year(r["birth_date"]) > 2005)


def test_every_household_has_exactly_one_living_head(rows: list[dict[str, str | None]]) -> None:
    heads: Counter[str | None] = Counter()
    members: Counter[str | None] = Counter()
    for r in rows:
        assert r["household_id"] is not None and re.fullmatch(r"HH\d{10}", r["household_id"])
        members[r["household_id"]] += 1
        assert r["relationship_to_head"] in synth._ROLE_RELATIONSHIP
        if r["relationship_to_head"] == "head":
            heads[r["household_id"]] += 1
            assert r["status"] == "alive"
    assert all(heads[h] == 1 for h in members)
    sizes = list(members.values())
    assert 3.0 < sum(sizes) / len(sizes) < 4.0
    assert 0.08 < sizes.count(1) / len(sizes) < 0.2
    kinds = Counter(r["relationship_to_head"] for r in rows)
    assert set(kinds) == {"head", "spouse", "child", "parent", "sibling", "grandchild", "other"}


def test_members_of_a_household_share_commune_and_address(
    rows: list[dict[str, str | None]],
) -> None:
    where: dict[str | None, tuple[str | None, str | None]] = {}
    for r in rows:
        place = (r["permanent_commune_code"], r["permanent_address"])
        assert where.setdefault(r["household_id"], place) == place
        assert r["permanent_address"]


def test_links_point_to_people_in_the_output(
    rows: list[dict[str, str | None]], by_id: dict[str, dict[str, str | None]]
) -> None:
    links = 0
    for r in rows:
        for column in ("father_id", "mother_id", "spouse_id"):
            if r[column] is not None:
                links += 1
                assert r[column] in by_id, (column, r)
    assert links > N // 2


def test_parents_are_old_enough_and_of_the_right_sex(
    rows: list[dict[str, str | None]], by_id: dict[str, dict[str, str | None]]
) -> None:
    for r in rows:
        for column, sex in (("father_id", "M"), ("mother_id", "F")):
            parent_id = r[column]
            if parent_id is None:
                continue
            parent = by_id[parent_id]
            assert parent["sex"] == sex
            assert parent["household_id"] == r["household_id"]
            assert _year(r["birth_date"]) - _year(parent["birth_date"]) >= 15, (r, parent)
            assert _year(r["birth_date"]) - _year(parent["birth_date"]) <= 47, (r, parent)


def test_children_carry_their_fathers_family_name(
    rows: list[dict[str, str | None]], by_id: dict[str, dict[str, str | None]]
) -> None:
    checked = 0
    for r in rows:
        if r["father_id"] is not None:
            father = by_id[r["father_id"]]
            assert r["full_name"].split()[0] == father["full_name"].split()[0]  # type: ignore[union-attr]
            assert r["ethnicity"] == father["ethnicity"]
            assert r["place_of_origin"] == father["place_of_origin"]
            checked += 1
    assert checked > N // 4


def test_spouses_are_symmetric(
    rows: list[dict[str, str | None]], by_id: dict[str, dict[str, str | None]]
) -> None:
    couples = 0
    for r in rows:
        if r["spouse_id"] is not None:
            spouse = by_id[r["spouse_id"]]
            assert spouse["spouse_id"] == r["personal_id"]
            assert spouse["sex"] != r["sex"]
            assert spouse["household_id"] == r["household_id"]
            assert _year(r["birth_date"]) <= TODAY.year - 18
            couples += 1
    assert couples > N // 5
    heads_with_spouse = [r for r in rows if r["relationship_to_head"] == "spouse"]
    assert all(
        by_id[r["spouse_id"]]["relationship_to_head"] == "head"  # type: ignore[index]
        for r in heads_with_spouse
    )


def test_dates_are_valid_iso_partials(rows: list[dict[str, str | None]]) -> None:
    partial = 0
    for r in rows:
        birth = r["birth_date"]
        assert birth is not None and ISO_PARTIAL.match(birth), birth
        _date(birth)  # a real date
        if len(birth) < 10:
            partial += 1
        assert _date(birth) <= TODAY
    assert 0.003 * N < partial < 0.03 * N


def test_partial_dates_are_more_frequent_among_the_old(
    rows: list[dict[str, str | None]],
) -> None:
    def share(group: list[dict[str, str | None]]) -> float:
        return sum(len(r["birth_date"] or "") < 10 for r in group) / len(group)

    old = [r for r in rows if _year(r["birth_date"]) < 1960]
    young = [r for r in rows if _year(r["birth_date"]) >= 1990]
    assert share(old) > 2 * share(young)


def test_deaths(rows: list[dict[str, str | None]]) -> None:
    dead = [r for r in rows if r["status"] == "deceased"]
    assert 0.005 * N < len(dead) < 0.03 * N
    for r in rows:
        assert r["status"] in ("alive", "deceased")
        if r["status"] == "alive":
            assert r["death_date"] is None
            continue
        death = r["death_date"]
        assert death is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", death)
        died = dt.date.fromisoformat(death)
        birth = r["birth_date"]
        assert birth is not None and death[: len(birth)] >= birth
        assert died <= TODAY
        assert r["relationship_to_head"] != "head"
        assert r["phone"] is None


def test_family_names_follow_national_frequencies(rows: list[dict[str, str | None]]) -> None:
    names = Counter(r["full_name"].split()[0] for r in rows)  # type: ignore[union-attr]
    assert 0.34 < names["Nguyễn"] / N < 0.42
    assert 0.08 < names["Trần"] / N < 0.14
    assert 0.07 < names["Lê"] / N < 0.12
    assert names.most_common(4)[0][0] == "Nguyễn"
    assert len(names) > 60  # a long tail


def test_names_are_nfc_with_gendered_middle_names(rows: list[dict[str, str | None]]) -> None:
    middles: dict[str, Counter[str]] = {"M": Counter(), "F": Counter()}
    words = Counter()
    for r in rows:
        name = r["full_name"]
        assert name is not None
        assert unicodedata.normalize("NFC", name) == name
        assert name == name.strip() and "  " not in name
        parts = name.split()
        assert 2 <= len(parts) <= 5
        words[len(parts)] += 1
        middles[r["sex"]].update(parts[1:-1])  # type: ignore[index]
    assert middles["F"]["Thị"] > 0.2 * sum(1 for r in rows if r["sex"] == "F")
    assert middles["M"]["Văn"] > 0.15 * sum(1 for r in rows if r["sex"] == "M")
    assert middles["M"]["Thị"] == 0
    assert middles["F"]["Văn"] == 0
    assert words[2] > 0 and words[4] > 0  # some without, some with two middle names


def test_sex_balance_and_age_pyramid(rows: list[dict[str, str | None]]) -> None:
    women = sum(r["sex"] == "F" for r in rows) / N
    assert 0.47 < women < 0.53
    ages = [(TODAY - _date(r["birth_date"])).days / 365.2425 for r in rows]  # type: ignore[arg-type]
    children = sum(a < 15 for a in ages) / N
    elderly = sum(a >= 65 for a in ages) / N
    assert 0.17 < children < 0.28
    assert 0.05 < elderly < 0.14
    assert max(ages) < 106


def test_residence_follows_commune_weights(rows: list[dict[str, str | None]]) -> None:
    communes = Counter(r["permanent_commune_code"] for r in rows)
    assert "19999" not in communes
    assert communes["00004"] > communes["26734"] > communes["02341"]
    assert set(communes) <= {c.commune_code for c in COMMUNES}


def test_other_fields(rows: list[dict[str, str | None]]) -> None:
    assert {r["nationality"] for r in rows} == {"Việt Nam"}
    ethnicities = Counter(r["ethnicity"] for r in rows)
    assert 0.75 < ethnicities["Kinh"] / N < 0.97
    assert len(ethnicities) > 8
    religions = Counter(r["religion"] for r in rows)
    assert religions.most_common(1)[0][0] == "Không"
    assert all(r["place_of_origin"] in synth._PROVINCE_NAMES for r in rows)
    adults = [r for r in rows if _year(r["birth_date"]) <= TODAY.year - 19]
    with_phone = [r for r in adults if r["phone"] is not None]
    assert 0.6 < len(with_phone) / len(adults) < 0.8
    assert all(re.fullmatch(r"0[35789]\d{8}", r["phone"]) for r in with_phone)  # type: ignore[arg-type]


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        list(synth.generate(10, 1, []))
    with pytest.raises(ValueError):
        list(synth.generate(10, 1, [CommuneWeight("00001", "01", 0.0, ("001",))]))
    with pytest.raises(ValueError):
        list(synth.generate(-1, 1, COMMUNES))
