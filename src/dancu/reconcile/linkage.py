"""The record-linkage model behind ``suggested_id``: comparison levels, their m and u
probabilities, and the posterior that a row describes a given register person.

A Fellegi-Sunter model (Fellegi and Sunter, "A theory for record linkage", JASA 1969), written
as SQL over DuckDB tables so that it runs in bulk:

* each (row, candidate) pair is compared field by field; each comparison falls into one
  *level* (:data:`NAME_LEVELS`, :data:`DATE_LEVELS`...), from the strongest agreement to none;
* ``m`` is the probability of the level when the row describes the candidate, ``u`` when it
  describes someone else; the pair's Bayes factor is the product of ``m/u`` over the fields;
* ``u`` comes from the register: for exact agreement it is the share of people holding the same
  value (term frequency: ``Nguyễn Thị Trang`` agrees by chance far more often than
  ``Lò Văn Páo``; a name's share is taken within the birth year, since given names follow
  fashions), for the fuzzy levels the share of random pairs of people in that level;
* ``m`` comes from the file itself: rows whose ID the register holds are labelled pairs, and
  the rate at which their names, dates, sexes and communes differ is this file's error profile
  (with a prior, for small files); ID levels have fixed ``m``;
* the posterior that the row describes candidate ``c`` among all register people is
  ``(ρ/N)·BF_c / ((1-ρ) + (ρ/N)·Σ BF)`` (``N`` people, a share ``ρ`` of rows describing someone
  in the register, the sum over every candidate of the row; people outside the candidate set
  disagree on everything and add nothing measurable). Two equally good candidates therefore
  share the probability, which is the margin rule: a suggestion needs a clear winner.

Sex follows the name (``Thị`` is a woman's middle name), so when the names agree a matching
sex adds little: its ``u`` is then the rate at which namesakes share their sex.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ADDRESS_LEVELS",
    "DATE_LEVELS",
    "ID_LEVELS",
    "ID_M",
    "LEVEL_FIELDS",
    "NAME_LEVELS",
    "PRIOR_IN_REGISTER",
    "SEX_LEVELS",
    "Model",
    "address_level_sql",
    "date_level_sql",
    "id_level_sql",
    "log_bf_sql",
    "m_from_counts",
    "name_level_sql",
    "sex_level_sql",
]

NAME_LEVELS: tuple[str, ...] = (
    "exact", "fold", "reordered", "typo", "dropped", "close", "given", "else",
)  # fmt: skip
"""Full name, strongest first: the same name (canonical, or folded when the row carries no
diacritics); the same folded name with other diacritics (``Hùng``/``Hưng``); the same words in
another order; one typing error (Damerau-Levenshtein 1 on the folded names); the same family
and given names, a middle name dropped; close (Jaro-Winkler ≥ 0.9 with given names at most
one edit apart: brothers share family and middle names, not given names); the same given
name; anything else."""

DATE_LEVELS: tuple[str, ...] = (
    "exact", "partial", "swapped", "month", "year_off", "year", "else",
)  # fmt: skip
"""Birth date: the same day; agreeing where one side knows only the year or month; day and
month swapped; the same month, another day; the same day and month a year or two off; the same
year; anything else."""

SEX_LEVELS: tuple[str, ...] = ("same", "diff")
ADDRESS_LEVELS: tuple[str, ...] = ("same", "province", "else")
"""Permanent commune: among the address's 2025 communes; in the same province; elsewhere."""

LEVEL_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("name", NAME_LEVELS),
    ("date", DATE_LEVELS),
    ("sex", SEX_LEVELS),
    ("address", ADDRESS_LEVELS),
)
"""The compared fields whose m and u are estimated, with their levels."""

ID_LEVELS: tuple[str, ...] = ("exact", "legacy", "edit", "other")
"""The ID given: the candidate's personal ID; their old CMND number; one digit off their ID
(one wrong, two neighbours swapped, one dropped or added); another number."""

ID_M: Mapping[str, float] = {"exact": 0.95, "legacy": 0.012, "edit": 0.025, "other": 0.013}
"""How the ID of a row about a person relates to that person's ID. Fixed, since rows with a
found ID cannot tell how often IDs are wrong: most given IDs are right; a few are old CMND
numbers, one digit off, or someone else's (a relative's, a stranger's)."""

PRIOR_IN_REGISTER = 0.9
"""ρ before the file is looked at: the share of rows (of one status) that describe someone in
the register. Each status then gets its own ρ by expectation-maximisation over the file's rows
(:func:`dancu.reconcile.suggest.suggest`): rows without an ID are more often people the
register does not hold than rows whose ID was found."""

_PRIOR_M: Mapping[str, Mapping[str, float]] = {
    "name": {
        "exact": 0.93, "fold": 0.01, "reordered": 0.01, "typo": 0.02, "dropped": 0.015,
        "close": 0.008, "given": 0.004, "else": 0.003,
    },
    "date": {
        "exact": 0.93, "partial": 0.03, "swapped": 0.008, "month": 0.008, "year_off": 0.008,
        "year": 0.008, "else": 0.008,
    },
    "sex": {"same": 0.99, "diff": 0.01},
    "address": {"same": 0.93, "province": 0.05, "else": 0.02},
}  # fmt: skip
"""m before looking at the file: a plausible error profile, outweighed by the file's own
labelled rows once there are more than a few hundred (see :func:`m_from_counts`)."""

_PRIOR_WEIGHT = 200.0
_M_FLOOR = 1e-3

PSEUDO_PEOPLE = 1000.0
"""Term frequencies are shrunk towards a generic rate as if the register held this many more
people: a register of eight people says little about how common a name is."""

GENERIC_SHARE: Mapping[str, float] = {
    "name": 1e-4,  # a full name within a birth year
    "date": 1 / (365.25 * 80),
    "month": 1 / (12 * 80),
    "year": 1 / 80,
    "commune": 1 / 3321,
}
"""The generic share of people holding one value, used to smooth the term frequencies."""


def m_from_counts(
    field_name: str, counts: Mapping[str, int], *, levels: tuple[str, ...]
) -> dict[str, float]:
    """m of each level from the labelled pairs' counts, shrunk towards the prior and floored
    (a level never seen in the file is not impossible)."""
    prior = _PRIOR_M[field_name]
    total = sum(counts.get(level, 0) for level in levels)
    raw = {
        level: (counts.get(level, 0) + _PRIOR_WEIGHT * prior[level]) / (total + _PRIOR_WEIGHT)
        for level in levels
    }
    floored = {level: max(p, _M_FLOOR) for level, p in raw.items()}
    scale = sum(floored.values())
    return {level: p / scale for level, p in floored.items()}


@dataclass(slots=True)
class Model:
    """The parameters of one run: register size, u (fuzzy levels) and m, in log space."""

    people: int
    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    u_sex_namesakes: float
    u_id_edit: float
    m_year_agrees: float
    labelled_pairs: int = 0
    priors: dict[str, float] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        """The parameters for ``summary.json``."""
        return {
            "people": self.people,
            "labelled_pairs": self.labelled_pairs,
            "prior_in_register": {k: round(v, 4) for k, v in self.priors.items()},
            "m": {f: {k: round(v, 5) for k, v in ls.items()} for f, ls in self.m.items()},
            "u": {f: {k: float(f"{v:.3g}") for k, v in ls.items()} for f, ls in self.u.items()},
            "u_sex_namesakes": round(self.u_sex_namesakes, 4),
            "u_id_edit": float(f"{self.u_id_edit:.3g}"),
            "m_year_agrees": round(self.m_year_agrees, 5),
        }


def name_level_sql(g: str, r: str) -> str:
    """SQL: the :data:`NAME_LEVELS` level of given row ``g`` against person ``r`` (NULL when the
    row gives no name). The costly string distances run only behind a cheap Jaro gate (a single
    typing error keeps Jaro above 0.79 on Vietnamese names). Columns: ``name_fold``,
    ``name_lower``, ``name_marked``, ``name_sorted``, ``name_first``, ``name_last``,
    ``name_words`` on ``g``; ``fold``, ``canon``, ``sorted``, ``first``, ``last``, ``words`` on
    ``r``."""
    return f"""CASE
        WHEN {g}.name_fold IS NULL THEN NULL
        WHEN {g}.name_fold = {r}.fold THEN CASE
            WHEN NOT {g}.name_marked OR {g}.name_lower = {r}.canon THEN 'exact' ELSE 'fold' END
        WHEN {g}.name_sorted = {r}.sorted THEN 'reordered'
        WHEN {g}.name_first = {r}.first AND {g}.name_last = {r}.last
            AND {g}.name_words <> {r}.words THEN 'dropped'
        WHEN jaro_similarity({g}.name_fold, {r}.fold) >= 0.78 THEN CASE
            WHEN damerau_levenshtein({g}.name_fold, {r}.fold) <= 1 THEN 'typo'
            WHEN jaro_winkler_similarity({g}.name_fold, {r}.fold) >= 0.9
                AND levenshtein({g}.name_last, {r}.last) <= 1 THEN 'close'
            WHEN {g}.name_last = {r}.last THEN 'given'
            ELSE 'else' END
        WHEN {g}.name_last = {r}.last THEN 'given'
        ELSE 'else' END"""


def date_level_sql(g: str, r: str) -> str:
    """SQL: the :data:`DATE_LEVELS` level (NULL when the row gives no readable date)."""
    return f"""CASE
        WHEN {g}.birth_year IS NULL THEN NULL
        WHEN {g}.birth_year = {r}.yr AND {g}.birth_month = {r}.mo AND {g}.birth_day = {r}.dy
            THEN 'exact'
        WHEN {g}.birth_year = {r}.yr AND ({g}.birth_month IS NULL OR {r}.mo IS NULL
            OR ({g}.birth_month = {r}.mo AND ({g}.birth_day IS NULL OR {r}.dy IS NULL)))
            THEN 'partial'
        WHEN {g}.birth_year = {r}.yr AND {g}.birth_month = {r}.dy AND {g}.birth_day = {r}.mo
            THEN 'swapped'
        WHEN {g}.birth_year = {r}.yr AND {g}.birth_month = {r}.mo THEN 'month'
        WHEN abs({g}.birth_year - {r}.yr) <= 2 AND {g}.birth_month = {r}.mo
            AND {g}.birth_day = {r}.dy THEN 'year_off'
        WHEN {g}.birth_year = {r}.yr THEN 'year'
        ELSE 'else' END"""


def sex_level_sql(g: str, r: str) -> str:
    """SQL: ``same`` or ``diff`` (NULL when the row gives no readable sex)."""
    return f"CASE WHEN {g}.sex IS NULL THEN NULL WHEN {g}.sex = {r}.sex THEN 'same' ELSE 'diff' END"


def address_level_sql(g: str, r: str) -> str:
    """SQL: the :data:`ADDRESS_LEVELS` level (NULL when the row names no commune or the
    register holds none). ``g.address_provinces``: the provinces of the address's communes."""
    return f"""CASE
        WHEN len({g}.address_candidates) = 0 OR {g}.address_candidates IS NULL
            OR {r}.commune IS NULL THEN NULL
        WHEN list_contains({g}.address_candidates, {r}.commune) THEN 'same'
        WHEN list_contains({g}.address_provinces, {r}.province) THEN 'province'
        ELSE 'else' END"""


def id_level_sql(g: str, r: str) -> str:
    """SQL: the :data:`ID_LEVELS` level (NULL when the row gives no ID): ``edit`` is one
    substitution, insertion, deletion or swap of neighbours (Damerau-Levenshtein 1)."""
    return f"""CASE
        WHEN NOT {g}.id_given THEN NULL
        WHEN {g}.id_digits = {r}.pid THEN 'exact'
        WHEN {g}.id_digits = {r}.legacy THEN 'legacy'
        WHEN damerau_levenshtein({g}.id_digits, {r}.pid) <= 1 THEN 'edit'
        ELSE 'other' END"""


_STRONG_NAMES = "('exact', 'fold', 'reordered', 'typo', 'dropped')"


def _case(column: str, values: Mapping[str, float]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN {v!r}" for k, v in values.items())
    return f"CASE {column} {whens} ELSE 0 END"


def log_bf_sql(model: Model) -> str:
    """SQL: the pair's log Bayes factor, from the level columns (``name_level``...,
    ``id_level``; NULL: not compared) and the register's term frequencies of the candidate's
    values (``tf_name`` within ``tf_year``, ``tf_month``, ``tf_date``, ``tf_commune``;
    ``month_known``: both sides know the birth month)."""
    lm = {f: {k: math.log(v) for k, v in ls.items()} for f, ls in model.m.items()}
    ratio = {
        f: {k: math.log(v) - math.log(model.u[f][k]) for k, v in ls.items()}
        for f, ls in model.m.items()
    }
    people = float(max(model.people, 1))
    k = PSEUDO_PEOPLE
    share = {f: v * k for f, v in GENERIC_SHARE.items()}
    id_u = {
        "exact": -math.log(people),
        "legacy": -math.log(people),
        "edit": math.log(model.u_id_edit),
        "other": 0.0,
    }
    id_ratio = {k: math.log(v) - id_u[k] for k, v in ID_M.items()}
    namesakes = (
        math.log(model.m["sex"]["same"]) - math.log(model.u_sex_namesakes),
        math.log(model.m["sex"]["diff"]) - math.log(1.0 - model.u_sex_namesakes),
    )
    rest = {k: v for k, v in ratio["date"].items() if k not in ("exact", "partial")}
    address = {k: v for k, v in ratio["address"].items() if k != "same"}
    return f"""(
        coalesce(CASE WHEN name_level = 'exact' THEN {lm["name"]["exact"]!r}
                - ln((coalesce(tf_name, 0) + {share["name"]!r}) / (coalesce(tf_year, 0) + {k!r}))
            ELSE {_case("name_level", {k: v for k, v in ratio["name"].items() if k != "exact"})}
        END, 0)
        + coalesce(CASE WHEN date_level = 'exact' THEN {lm["date"]["exact"]!r}
                - ln((coalesce(tf_date, 0) + {share["date"]!r}) / {people + k!r})
            WHEN date_level = 'partial' AND month_known THEN {math.log(model.m_year_agrees)!r}
                - ln((coalesce(tf_month, 0) + {share["month"]!r}) / {people + k!r})
            WHEN date_level = 'partial' THEN {math.log(model.m_year_agrees)!r}
                - ln((coalesce(tf_year, 0) + {share["year"]!r}) / {people + k!r})
            ELSE {_case("date_level", rest)}
        END, 0)
        + coalesce(CASE WHEN name_level IN {_STRONG_NAMES} THEN CASE sex_level
                WHEN 'same' THEN {namesakes[0]!r} WHEN 'diff' THEN {namesakes[1]!r} END
            ELSE {_case("sex_level", ratio["sex"])}
        END, 0)
        + coalesce(CASE WHEN address_level = 'same' THEN {lm["address"]["same"]!r}
                - ln((coalesce(tf_commune, 0) + {share["commune"]!r}) / {people + k!r})
            ELSE {_case("address_level", address)}
        END, 0)
        + {_case("id_level", id_ratio)}
    )"""
