"""The suggestion track: the register person a row most probably describes (CONTRACTS §3
``suggested_id``, ``suggestion_score``).

For the rows whose status is ``not_found``, ``invalid_id``, ``missing_id`` or ``mismatch``
(and ``deceased`` rows, scored but never given a suggestion, see :data:`SCORED_STATUSES`):

1. **candidates** (blocking): the holder of the ID given (a ``mismatch`` row may carry someone
   else's ID); the person whose old CMND number it is; the people one digit away from it (one
   digit wrong, two neighbours swapped, a digit dropped or added, as when a spreadsheet eats a
   leading zero); and the people sharing one of these keys with the row, none of which is the
   family name alone (Nguyễn is 38% of people): folded name + birth year and month (also with
   day and month swapped), folded name + birthday (another year), given name + full birth
   date, the name's words in any order + birth year, family and given names + full birth
   date (a middle name dropped), full birth date + commune, folded name + commune, folded
   name + birth year + commune; rows that know only the year also meet the people the
   register knows only by year. A key that many register people share is narrowed by a
   discriminator the row holds (commune, birth date, month or year: :data:`REFINE_ABOVE`), so
   that a row's candidates do not grow with the register;
2. **scores**: every pair through the Fellegi-Sunter model of :mod:`dancu.reconcile.linkage`,
   its parameters estimated on this register and this file (:func:`estimate`), and the share
   of rows describing someone in the register estimated per status by
   expectation-maximisation (:func:`estimate_priors`);
3. **choice**: the best candidate when its posterior probability reaches :data:`THRESHOLD`.
   A wrong suggestion costs a ministry more than a missing one, so the bar is high, and two
   similar candidates (namesakes born the same day) share the probability and leave the row
   without a suggestion.

Everything runs as set-based SQL in the run's DuckDB database; the register comes from the
snapshot or the database once, as a compact table of the compared fields (``people``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from dancu.geo import service as geo
from dancu.reconcile import linkage
from dancu.reconcile.linkage import Model
from dancu.registry.models import Citizen

__all__ = [
    "BLOCK_CAP",
    "EMPTY_SUGGESTED",
    "PENDING_STATUSES",
    "REFINE_ABOVE",
    "SCORED_STATUSES",
    "THRESHOLD",
    "Suggestions",
    "fold_sql",
    "load_people_from_database",
    "load_people_from_snapshot",
    "person_blocks_sql",
    "person_keys_sql",
    "query_blocks_sql",
    "query_keys_sql",
    "row_as_person_sql",
    "score_sql",
    "suggest",
]

log = logging.getLogger(__name__)

PENDING_STATUSES: tuple[str, ...] = ("not_found", "invalid_id", "missing_id", "mismatch")
"""The statuses whose rows get a suggestion (CONTRACTS §3)."""

SCORED_STATUSES: tuple[str, ...] = (*PENDING_STATUSES, "deceased")
"""The statuses whose rows are scored: a ``deceased`` row gets no suggestion (the contract
says so), but when it is clearly about someone other than the holder of its ID, that person,
not the holder, is the one it may duplicate."""

THRESHOLD = 0.95
"""The smallest posterior probability for which ``suggested_id`` is filled in (chosen on the
accuracy benchmark, docs/reconcile.md: no wrong suggestion above it there)."""

EMPTY_SUGGESTED = """
CREATE OR REPLACE TABLE suggested (
    input_row BIGINT, suggested_id VARCHAR, suggestion_score DOUBLE, confident_id VARCHAR,
    holder_score DOUBLE
)
"""
"""``suggested`` before (or without) the track: the suggestion, its score, the confident
person (also for ``deceased`` rows), the posterior of the ID's holder."""

_PEOPLE_SCHEMA = pa.schema(
    [
        ("pid", pa.string()),
        ("legacy", pa.string()),
        ("canon", pa.string()),
        ("fold", pa.string()),
        ("yr", pa.int16()),
        ("mo", pa.int8()),
        ("dy", pa.int8()),
        ("sex", pa.string()),
        ("status", pa.string()),
        ("commune", pa.string()),
        ("province", pa.string()),
        ("sorted", pa.string()),
        ("first", pa.string()),
        ("last", pa.string()),
        ("words", pa.int64()),
    ]
)
"""The register as the track compares it: lower-case canonical and folded names, partial
birth dates (year, month, day), sex, status, permanent commune and its province, and the
folded name's words (sorted, first, last, how many)."""

_WORDS_SQL = """
    array_to_string(list_sort(string_split({f}, ' ')), ' ') AS {p}sorted,
    string_split({f}, ' ')[1] AS {p}first, string_split({f}, ' ')[-1] AS {p}last,
    len(string_split({f}, ' ')) AS {p}words"""


def _words_sql(fold: str, prefix: str = "") -> str:
    return _WORDS_SQL.format(f=fold, p=prefix)


def fold_sql(x: str) -> str:
    """SQL: ``vn.names.fold`` of the text ``x`` for names already canonical (lower case, no
    diacritics, ``đ`` as ``d``, single spaces; a property test checks they agree)."""
    bare = f"lower(strip_accents(replace(replace({x}, 'đ', 'd'), 'Đ', 'D')))"
    return f"trim(regexp_replace({bare}, '\\s+', ' ', 'g'))"


_FETCH_ROWS = 100_000
_SAMPLE = 500
_LABELLED = 20_000
_EM_ROUNDS = 8
_PRIOR_ROWS = 10.0


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


# ----------------------------------------------------------------------------- the register


def _create_people(con: duckdb.DuckDBPyConnection) -> None:
    _units(con)
    con.register("_empty", _PEOPLE_SCHEMA.empty_table())
    con.execute("CREATE OR REPLACE TABLE people AS SELECT * FROM _empty")
    con.unregister("_empty")


def load_people_from_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Every person of a register snapshot (``dancu registry export``) into ``people``; names
    are folded once per distinct name."""
    source = (
        f"read_parquet({_quote(path)})"
        if path.suffix.lower() == ".parquet"
        else f"read_csv({_quote(path)}, header = true, all_varchar = true)"
    )
    _create_people(con)
    born = "CAST(s.birth_date AS VARCHAR)"
    con.execute(
        f"""
        INSERT INTO people
        WITH s AS (SELECT * FROM {source}),
        folded AS (
            SELECT name, lower(n) AS canon, {fold_sql("n")} AS fold
            FROM (SELECT name, nfc_normalize(name) AS n
                  FROM (SELECT DISTINCT CAST(full_name AS VARCHAR) AS name FROM s))
        ),
        names AS (SELECT *, {_words_sql("fold")} FROM folded)
        SELECT CAST(s.personal_id AS VARCHAR), nullif(CAST(s.legacy_id_number AS VARCHAR), ''),
            names.canon, names.fold,
            CAST(substr({born}, 1, 4) AS SMALLINT),
            CAST(CASE WHEN length({born}) >= 7 THEN substr({born}, 6, 2) END AS TINYINT),
            CAST(CASE WHEN length({born}) >= 10 THEN substr({born}, 9, 2) END AS TINYINT),
            CAST(s.sex AS VARCHAR), coalesce(nullif(CAST(s.status AS VARCHAR), ''), 'alive'),
            u.commune, u.province, names.sorted, names.first, names.last, names.words
        FROM s JOIN names ON names.name = CAST(s.full_name AS VARCHAR)
        LEFT JOIN units u ON u.commune = nullif(CAST(s.permanent_commune_code AS VARCHAR), '')
        """
    )
    return _count(con, "people")


def _database_batches(session: Session) -> Iterator[pa.RecordBatch]:
    result = session.execute(
        text(
            "SELECT personal_id, legacy_id_number, full_name, name_key, birth_date, "
            "birth_date_precision, sex, status, permanent_commune_code "
            f"FROM {Citizen.__tablename__}"
        ).execution_options(yield_per=_FETCH_ROWS)
    )
    names = ("pid", "legacy", "full_name", "fold", "born", "precision", "sex", "status", "commune")
    for chunk in result.partitions(_FETCH_ROWS):
        columns = list(zip(*chunk, strict=True))
        born = pa.array(columns[4])  # text on SQLite, dates on PostgreSQL
        if not pa.types.is_string(born.type):
            born = born.cast(pa.string())
        arrays = [
            pc.utf8_slice_codeunits(born, 0, 10) if i == 4 else pa.array(c, pa.string())
            for i, c in enumerate(columns)
        ]
        yield pa.RecordBatch.from_arrays(arrays, names=list(names))


def load_people_from_database(con: duckdb.DuckDBPyConnection, session: Session) -> int:
    """Every person of the register's database into ``people``, streamed in chunks (the
    compared columns only; the register stores names canonical and folded already)."""
    _create_people(con)
    for batch in _database_batches(session):
        con.register("_chunk", batch)
        con.execute(
            f"""
            INSERT INTO people
            SELECT pid, legacy, lower(full_name), fold, CAST(substr(born, 1, 4) AS SMALLINT),
                CAST(CASE WHEN precision IN ('day', 'month') THEN substr(born, 6, 2) END
                    AS TINYINT),
                CAST(CASE WHEN precision = 'day' THEN substr(born, 9, 2) END AS TINYINT),
                sex, status, u.commune, u.province, {_words_sql("fold")}
            FROM _chunk LEFT JOIN units u USING (commune)
            """
        )
        con.unregister("_chunk")
    return _count(con, "people")


def _units(con: duckdb.DuckDBPyConnection) -> None:
    """``units`` (commune -> province) and ``addr_provinces`` (address key -> provinces)."""
    communes = list(geo.get_index().communes())
    con.register(
        "_units",
        pa.table(
            {
                "commune": [c.code for c in communes],
                "province": [c.province_code for c in communes],
            }
        ),
    )
    con.execute("CREATE OR REPLACE TABLE units AS SELECT * FROM _units")
    con.unregister("_units")
    con.execute(
        """
        CREATE OR REPLACE TABLE addr_provinces AS
        SELECT address_key, list(DISTINCT province ORDER BY province) AS provinces
        FROM (SELECT address_key, unnest(address_candidates) AS commune FROM addr)
        JOIN units USING (commune)
        GROUP BY ALL
        """
    )


# ----------------------------------------------------------------------------- the two sides


_ROWS = f"""
CREATE OR REPLACE VIEW rows AS
SELECT c.input_row, c.status, c.found_id, c.id_given,
    CASE WHEN c.id_given THEN regexp_replace(c.id_norm, '[^0-9]', '', 'g') END AS id_digits,
    c.name_fold, lower(c.name_canon) AS name_lower, c.name_marked,
    {_words_sql("c.name_fold", "name_")},
    CASE WHEN c.date_ok THEN c.birth_year END AS birth_year,
    CASE WHEN c.date_ok THEN c.birth_month END AS birth_month,
    CASE WHEN c.date_ok THEN c.birth_day END AS birth_day,
    c.sex, coalesce(c.address_candidates, []) AS address_candidates,
    coalesce(a.provinces, []) AS address_provinces, c.name_bad, c.date_bad
FROM checked c LEFT JOIN addr_provinces a USING (address_key)
"""
"""Every row of ``checked`` as the *query* side of a comparison (``g`` in
:mod:`dancu.reconcile.linkage`); a view, so that the name's words are worked out only for the
rows a step reads."""


def row_as_person_sql(where: str) -> str:
    """SQL: the rows of the file matching ``where`` seen as *candidates* (``r``), for
    duplicates within the file; the first commune stands for the address."""
    return f"""
    SELECT CAST(input_row AS VARCHAR) AS pid, CAST(NULL AS VARCHAR) AS legacy,
        name_lower AS canon, name_fold AS fold, birth_year AS yr, birth_month AS mo,
        birth_day AS dy, sex, 'alive' AS status, address_candidates[1] AS commune,
        address_provinces[1] AS province, name_sorted AS sorted, name_first AS first,
        name_last AS last, name_words AS words
    FROM rows WHERE name_fold IS NOT NULL AND ({where})
    """


def person_keys_sql() -> str:
    """SQL: the blocking keys of a candidate (a list over the columns of ``people``)."""
    return """[
        hash('nym', fold, yr, mo), hash('nmd', fold, mo, dy), hash('gd', last, yr, mo, dy),
        hash('sy', sorted, yr), hash('fl', first, last, yr, mo, dy),
        hash('dc', yr, mo, dy, commune), hash('nc', fold, commune),
        hash('nyc', fold, yr, commune), CASE WHEN mo IS NULL THEN hash('ny', fold, yr) END
    ]"""


_QUERY_NAME_KEYS = {
    "nym": "CASE WHEN birth_month IS NOT NULL "
    "THEN hash('nym', name_fold, birth_year, birth_month) END",
    "nym_swapped": "CASE WHEN birth_day <= 12 "
    "THEN hash('nym', name_fold, birth_year, birth_day) END",
    "nmd": "CASE WHEN birth_day IS NOT NULL "
    "THEN hash('nmd', name_fold, birth_month, birth_day) END",
    "gd": "CASE WHEN birth_day IS NOT NULL "
    "THEN hash('gd', name_last, birth_year, birth_month, birth_day) END",
    "gd_swapped": "CASE WHEN birth_day <= 12 "
    "THEN hash('gd', name_last, birth_year, birth_day, birth_month) END",
    "sy": "CASE WHEN birth_year IS NOT NULL THEN hash('sy', name_sorted, birth_year) END",
    "fl": "CASE WHEN birth_day IS NOT NULL "
    "THEN hash('fl', name_first, name_last, birth_year, birth_month, birth_day) END",
    "ny": "CASE WHEN birth_year IS NOT NULL THEN hash('ny', name_fold, birth_year) END",
}
"""The row's blocking keys built from its name and birth date (NULL when a part is missing);
``_swapped`` read the birth date with day and month swapped."""

_QUERY_COMMUNE_KEYS = {
    "dc": "CASE WHEN birth_day IS NOT NULL "
    "THEN hash('dc', birth_year, birth_month, birth_day, commune) END",
    "nc": "CASE WHEN name_fold IS NOT NULL THEN hash('nc', name_fold, commune) END",
    "nyc": "CASE WHEN name_fold IS NOT NULL AND birth_year IS NOT NULL "
    "THEN hash('nyc', name_fold, birth_year, commune) END",
}
"""The row's blocking keys that include one of its address's communes (``commune``)."""


def query_keys_sql(rows: str) -> str:
    """SQL: (input_row, k) for every blocking key of the query rows ``rows``; a key is never
    built from a missing value."""
    return f"""
    SELECT DISTINCT input_row, k FROM (
        SELECT input_row, unnest([{", ".join(_QUERY_NAME_KEYS.values())}]) AS k
        FROM ({rows}) WHERE name_fold IS NOT NULL
        UNION ALL
        SELECT input_row, unnest([{", ".join(_QUERY_COMMUNE_KEYS.values())}]) AS k
        FROM (SELECT *, unnest(address_candidates) AS commune FROM ({rows}))
    ) WHERE k IS NOT NULL
    """


def _keys(names: tuple[str, ...]) -> str:
    keys = {**_QUERY_NAME_KEYS, **_QUERY_COMMUNE_KEYS}
    return "[" + ", ".join(keys[n] for n in names) + "]"


_REFINE_COMMUNE = ("nym", "nym_swapped", "nmd", "gd", "gd_swapped", "sy", "fl", "ny")
"""Keys refined by the commune when their block is large (a person's namesakes born the same
month, born on the same day of another year, sharing their given name and birth date...)."""


def query_blocks_sql(rows: str) -> str:
    """SQL: (input_row, k, d) for the blocking keys of the query rows ``rows``: each key ``k``
    once with ``d`` NULL, and once for each *discriminator* ``d`` the row holds for it (see
    :func:`person_blocks_sql`): a key whose block is too large is narrowed to
    ``hash(k, d)``, the people of the block who also share ``d`` with the row."""
    name_rows = f"SELECT * FROM ({rows}) WHERE name_fold IS NOT NULL"
    by_commune = f"SELECT *, unnest(address_candidates) AS commune FROM ({rows})"
    keys = _QUERY_NAME_KEYS
    communes = _QUERY_COMMUNE_KEYS
    return f"""
    SELECT DISTINCT input_row, k, d FROM (
        SELECT input_row, k, NULL AS d FROM ({query_keys_sql(rows)})
        UNION ALL
        SELECT input_row, unnest({_keys(_REFINE_COMMUNE)}) AS k, hash('C', commune) AS d
        FROM ({by_commune}) WHERE name_fold IS NOT NULL
        UNION ALL
        SELECT input_row, {keys["nym"]}, hash('D', birth_year, birth_month, birth_day)
        FROM ({name_rows}) WHERE birth_day IS NOT NULL
        UNION ALL
        SELECT input_row, {keys["nym_swapped"]}, hash('D', birth_year, birth_day, birth_month)
        FROM ({name_rows}) WHERE birth_day IS NOT NULL
        UNION ALL
        SELECT input_row, {keys["sy"]}, hash('M', birth_year, birth_month)
        FROM ({name_rows}) WHERE birth_month IS NOT NULL
        UNION ALL
        SELECT input_row, {communes["nyc"]}, hash('M', birth_year, birth_month)
        FROM ({by_commune}) WHERE birth_month IS NOT NULL
        UNION ALL
        SELECT input_row, {communes["nc"]}, hash('Y', birth_year)
        FROM ({by_commune}) WHERE birth_year IS NOT NULL
    ) WHERE k IS NOT NULL
    """


def person_blocks_sql(people: str) -> str:
    """SQL: (pid, k, d) for the blocking keys of the people ``people`` with each
    discriminator that narrows them (``d`` never NULL): the commune for the keys of name and
    birth date (:data:`_REFINE_COMMUNE`), the full birth date for name + birth month, the
    birth month for the name's words + birth year and for name + year + commune, the birth year
    for name + commune. The same expressions as :func:`query_blocks_sql`, from the person's
    side."""
    return f"""
    SELECT pid, k, d FROM (
        SELECT pid, unnest([
            hash('nym', fold, yr, mo), hash('nmd', fold, mo, dy), hash('gd', last, yr, mo, dy),
            hash('sy', sorted, yr), hash('fl', first, last, yr, mo, dy),
            CASE WHEN mo IS NULL THEN hash('ny', fold, yr) END
        ]) AS k, hash('C', commune) AS d
        FROM ({people}) WHERE commune IS NOT NULL
        UNION ALL
        SELECT pid, hash('nym', fold, yr, mo), hash('D', yr, mo, dy) FROM ({people})
        WHERE dy IS NOT NULL
        UNION ALL
        SELECT pid, unnest([hash('sy', sorted, yr), hash('nyc', fold, yr, commune)]),
            hash('M', yr, mo)
        FROM ({people}) WHERE mo IS NOT NULL
        UNION ALL
        SELECT pid, hash('nc', fold, commune), hash('Y', yr) FROM ({people})
    ) WHERE k IS NOT NULL
    """


def _edits_sql(source: str) -> str:
    """SQL: (input_row, variant) for the one-digit variants of ``id_digits`` in ``source``:
    substitutions and swaps of neighbours (12 digits), a digit added (11) or dropped (13).
    A variant is the 12-digit number as a BIGINT (integer arithmetic on the digits' places:
    far cheaper than building strings); join it on :data:`_PID_NUMBERS`."""
    base = (
        "(SELECT input_row, TRY_CAST(id_digits AS BIGINT) AS x, length(id_digits) AS n "
        f"FROM ({source}) WHERE length(id_digits) BETWEEN 11 AND 13)"
    )
    digit = "((x // p) % 10)"
    return f"""
    SELECT input_row, x + (d - {digit}) * p AS variant FROM (
        SELECT b.*, d, CAST(pow(10, 11 - i) AS BIGINT) AS p
        FROM {base} b, range(0, 12) AS r(i), range(0, 10) AS e(d) WHERE n = 12
    ) WHERE d <> {digit}
    UNION ALL
    SELECT input_row, x + ({digit} - ((x // (p * 10)) % 10)) * (p * 10)
        + (((x // (p * 10)) % 10) - {digit}) * p AS variant
    FROM (
        SELECT b.*, CAST(pow(10, 10 - i) AS BIGINT) AS p
        FROM {base} b, range(0, 11) AS r(i) WHERE n = 12
    ) WHERE {digit} <> ((x // (p * 10)) % 10)
    UNION ALL
    SELECT input_row, (x // p) * (p * 10) + d * p + x % p AS variant FROM (
        SELECT b.*, d, CAST(pow(10, 11 - i) AS BIGINT) AS p
        FROM {base} b, range(0, 12) AS r(i), range(0, 10) AS e(d) WHERE n = 11
    )
    UNION ALL
    SELECT input_row, (x // (p * 10)) * p + x % p AS variant FROM (
        SELECT b.*, CAST(pow(10, 12 - i) AS BIGINT) AS p
        FROM {base} b, range(0, 13) AS r(i) WHERE n = 13
    )
    """


_PID_NUMBERS = "(SELECT pid, TRY_CAST(pid AS BIGINT) AS num FROM people WHERE length(pid) = 12)"
"""The register's personal IDs as numbers, to join the variants of :func:`_edits_sql` on."""


_PENDING = (
    "CREATE OR REPLACE TABLE pend AS SELECT * FROM rows WHERE status IN ("
    + ", ".join(f"'{s}'" for s in SCORED_STATUSES)
    + ")"
)

_EDITED = "SELECT * FROM pend WHERE status <> 'mismatch' OR (name_bad AND date_bad)"

BLOCK_CAP = 200
"""A block that more than this many register people share yields no candidates: the row meets
its person through its other keys."""

REFINE_ABOVE = 6
"""A blocking key that more than this many register people share is *refined*: a row that
holds a discriminator for it (its commune, full birth date, birth month or year, see
:func:`person_blocks_sql`) meets only the people of the block who share one of them, so that a
row's candidates stop growing with the register (a common name born in a given month is a
handful of people in a province's register and hundreds in a nation's). A row that holds no
discriminator for the key (no address, only a birth year) still meets the whole block, up to
:data:`BLOCK_CAP`. The keys are a union: a row whose discriminator is wrong (a move, a wrong
day) meets its person through its other keys."""

_LARGE = f"SELECT k FROM block_size WHERE n > {REFINE_ABOVE}"

_CANDIDATE_STEPS = (
    "CREATE OR REPLACE TABLE cand_all (input_row BIGINT, pid VARCHAR)",
    "INSERT INTO cand_all SELECT input_row, found_id FROM pend WHERE found_id IS NOT NULL",
    "INSERT INTO cand_all SELECT g.input_row, p.pid FROM pend g "
    "JOIN people p ON p.legacy = g.id_digits",
    f"INSERT INTO cand_all SELECT e.input_row, p.pid FROM ({_edits_sql(_EDITED)}) e "
    f"JOIN {_PID_NUMBERS} p ON p.num = e.variant",
    f"CREATE OR REPLACE TEMP TABLE pend_keys AS {query_blocks_sql('SELECT * FROM pend')}",
    # the register's side of the keys the rows hold, and how many people share each
    f"""CREATE OR REPLACE TEMP TABLE person_keys AS
    SELECT pid, k FROM (SELECT pid, unnest({person_keys_sql()}) AS k FROM people)
    WHERE k IN (SELECT k FROM pend_keys)""",
    "CREATE OR REPLACE TEMP TABLE block_size AS SELECT k, count(*) AS n FROM person_keys "
    "GROUP BY ALL",
    # small blocks whole; larger ones (up to the cap) for the rows that cannot narrow them
    f"""INSERT INTO cand_all SELECT g.input_row, p.pid
    FROM (SELECT input_row, k, count(d) AS narrowing FROM pend_keys GROUP BY ALL) g
    JOIN block_size b USING (k) JOIN person_keys p USING (k)
    WHERE b.n <= {REFINE_ABOVE} OR (b.n <= {BLOCK_CAP} AND g.narrowing = 0)""",
    # large blocks narrowed by a discriminator
    f"""CREATE OR REPLACE TEMP TABLE pend_fine AS
    SELECT DISTINCT input_row, hash(k, d) AS f FROM pend_keys
    WHERE d IS NOT NULL AND k IN ({_LARGE})""",
    f"""CREATE OR REPLACE TEMP TABLE person_fine AS
    SELECT pid, f FROM (
        SELECT pid, hash(k, d) AS f FROM ({person_blocks_sql("SELECT * FROM people")})
    ) WHERE f IN (SELECT f FROM pend_fine)""",
    f"""INSERT INTO cand_all SELECT g.input_row, p.pid
    FROM pend_fine g
    JOIN (SELECT * FROM person_fine WHERE f IN (
        SELECT f FROM person_fine GROUP BY f HAVING count(*) <= {BLOCK_CAP})) p USING (f)""",
    "CREATE OR REPLACE TABLE cand AS SELECT DISTINCT input_row, pid FROM cand_all",
    "DROP TABLE cand_all",
    "DROP TABLE person_keys",
    "DROP TABLE person_fine",
    "DROP TABLE pend_fine",
)
"""Candidates, one source at a time: the holder, the legacy number's owner, one-digit
variants of the ID (for a ``mismatch`` row only when its name and birth date both disagree
with the holder: probably someone else's number), and the people sharing a blocking key,
narrowed by a discriminator where the key's block is large (:data:`REFINE_ABOVE`)."""


# ----------------------------------------------------------------------------- the model


def _levels_sql(g: str, r: str) -> str:
    return f"""
        {linkage.name_level_sql(g, r)} AS name_level,
        {linkage.date_level_sql(g, r)} AS date_level,
        {linkage.sex_level_sql(g, r)} AS sex_level,
        {linkage.address_level_sql(g, r)} AS address_level"""


_PERSON_AS_ROW = """
    fold AS name_fold, canon AS name_lower, true AS name_marked, sorted AS name_sorted,
    first AS name_first, last AS name_last, words AS name_words, yr AS birth_year,
    mo AS birth_month, dy AS birth_day, sex,
    CASE WHEN commune IS NULL THEN [] ELSE [commune] END AS address_candidates,
    CASE WHEN province IS NULL THEN [] ELSE [province] END AS address_provinces
"""


def _level_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {name: {} for name, _ in linkage.LEVEL_FIELDS}
    sql = " UNION ALL ".join(
        f"SELECT '{name}', {name}_level, count(*) FROM {table} GROUP BY ALL"
        for name, _ in linkage.LEVEL_FIELDS
    )
    for name, level, n in con.execute(sql).fetchall():
        if level is not None:
            counts[str(name)][str(level)] = int(n)
    return counts


def estimate(con: duckdb.DuckDBPyConnection) -> Model:
    """The model's parameters, deterministic for a register and a file: u from random pairs of
    register people (hash-ordered samples), m from the rows whose ID was found (up to
    20,000, leaving out pairs that disagree on both name and birth date: someone else's ID),
    how often namesakes share their sex, and how many people sit one digit away from an ID."""
    people = _count(con, "people")
    first = f"SELECT * FROM people ORDER BY hash(pid, 1) LIMIT {_SAMPLE}"
    second = f"SELECT * FROM people ORDER BY hash(pid, 2) LIMIT {_SAMPLE}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE random_pairs AS
        WITH a AS (SELECT {_PERSON_AS_ROW}, pid AS a_pid FROM ({first})),
             r AS ({second})
        SELECT {_levels_sql("a", "r")} FROM a, r WHERE a.a_pid <> r.pid
        """
    )
    sampled = _level_counts(con, "random_pairs")
    u = {
        name: {
            level: (sampled[name].get(level, 0) + 1) / (sum(sampled[name].values()) + 1)
            for level in levels
        }
        for name, levels in linkage.LEVEL_FIELDS
    }
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE labelled AS
        WITH g AS (SELECT * FROM rows WHERE input_row IN (
                SELECT input_row FROM checked WHERE found_id IS NOT NULL
                ORDER BY hash(input_row) LIMIT {_LABELLED})),
        r AS (SELECT * FROM people WHERE pid IN (SELECT found_id FROM g)),
        pairs AS (SELECT {_levels_sql("g", "r")} FROM g JOIN r ON r.pid = g.found_id)
        SELECT * FROM pairs
        WHERE name_level NOT IN ('else', 'given') OR date_level IN ('exact', 'partial', 'swapped')
        """
    )
    counts = _level_counts(con, "labelled")
    m = {
        name: linkage.m_from_counts(name, counts[name], levels=levels)
        for name, levels in linkage.LEVEL_FIELDS
    }
    same, total = con.execute(
        """
        WITH f AS (SELECT fold, sex, count(*) AS n FROM people GROUP BY ALL),
             t AS (SELECT fold, sum(n) AS n FROM f GROUP BY ALL)
        SELECT (SELECT sum(n * (n - 1)) FROM f), (SELECT sum(n * (n - 1)) FROM t)
        """
    ).fetchall()[0]
    u_sex_namesakes = min((float(same or 0) + 1) / (float(total or 0) + 2), 0.999)
    sample = (
        f"SELECT pid AS id_digits, 0 AS input_row FROM people ORDER BY hash(pid, 3) LIMIT {_SAMPLE}"
    )
    hits = con.execute(
        f"SELECT count(*) FROM ({_edits_sql(sample)}) v JOIN {_PID_NUMBERS} p ON p.num = v.variant"
    ).fetchall()[0][0]
    dates = counts["date"]
    off = dates.get("year_off", 0) + dates.get("else", 0)
    labelled = sum(counts["name"].values())
    log.info("linkage model: %d people, %d labelled pairs", people, labelled)
    return Model(
        people=people,
        m=m,
        u=u,
        u_sex_namesakes=u_sex_namesakes,
        u_id_edit=(float(hits) + 1) / (_SAMPLE * max(people, 1)),
        m_year_agrees=(sum(dates.values()) - off + 99) / (sum(dates.values()) + 100),
        labelled_pairs=labelled,
    )


_TF = """
CREATE OR REPLACE TABLE tf_name AS
    SELECT fold, yr, count(*) AS n FROM people
    WHERE fold IN (SELECT p.fold FROM cand JOIN people p USING (pid)
                   UNION SELECT name_fold FROM checked)
    GROUP BY ALL;
CREATE OR REPLACE TABLE tf_year AS SELECT yr, count(*) AS n FROM people GROUP BY ALL;
CREATE OR REPLACE TABLE tf_month AS
    SELECT yr, mo, count(*) AS n FROM people WHERE mo IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TABLE tf_date AS
    SELECT yr, mo, dy, count(*) AS n FROM people WHERE dy IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TABLE tf_commune AS
    SELECT commune, count(*) AS n FROM people WHERE commune IS NOT NULL GROUP BY ALL;
"""
"""How many register people hold each value (term frequencies), for the exact levels' u."""


def score_sql(model: Model, pairs: str, g: str, r: str, *, compare_ids: bool = True) -> str:
    """SQL: the pairs ``pairs`` (a FROM clause binding query ``g`` and candidate ``r``) with
    their levels and log Bayes factor; ``compare_ids`` False leaves the IDs out."""
    id_level = linkage.id_level_sql(g, r) if compare_ids else "CAST(NULL AS VARCHAR)"
    return f"""
    WITH p AS (
        SELECT {g}.input_row, {g}.status, {g}.found_id, {r}.pid,
            {r}.fold, {r}.yr, {r}.mo, {r}.dy, {r}.commune,
            {g}.birth_month IS NOT NULL AND {r}.mo IS NOT NULL AS month_known,
            coalesce({g}.birth_month, {r}.mo) AS either_month,
            {_levels_sql(g, r)},
            {id_level} AS id_level
        FROM {pairs}
    ), tf AS (
        SELECT p.*, tn.n AS tf_name, ty.n AS tf_year, tm.n AS tf_month, td.n AS tf_date,
            tc.n AS tf_commune
        FROM p
        LEFT JOIN tf_name tn ON tn.fold = p.fold AND tn.yr = p.yr
        LEFT JOIN tf_year ty ON ty.yr = p.yr
        LEFT JOIN tf_month tm ON tm.yr = p.yr AND tm.mo = p.either_month
        LEFT JOIN tf_date td ON td.yr = p.yr AND td.mo = p.mo AND td.dy = p.dy
        LEFT JOIN tf_commune tc ON tc.commune = p.commune
    )
    SELECT input_row, status, found_id, pid, name_level, date_level, sex_level,
        address_level, id_level, {linkage.log_bf_sql(model)} AS log_bf
    FROM tf
    """


# ----------------------------------------------------------------------------- the choice


_EVIDENCE = """
CREATE OR REPLACE TABLE evidence AS
SELECT input_row, any_value(status) AS status, max(log_bf) AS top,
    max(log_bf) + ln(sum(exp(log_bf - max_bf))) AS total
FROM (SELECT *, max(log_bf) OVER (PARTITION BY input_row) AS max_bf FROM scored)
GROUP BY ALL
"""
"""Per scored row: the log of the sum of its candidates' Bayes factors (log-sum-exp)."""


def _posterior() -> str:
    """SQL: each candidate's posterior (``score``): ``(ρ/N)·BF / ((1-ρ) + (ρ/N)·Σ BF)``, from
    ``scored``, ``evidence`` and ``prior`` (status, log_prior = log(ρ/N), log_outside =
    log(1-ρ)), in log space."""
    return """
    SELECT s.input_row, s.status, s.pid, s.found_id,
        exp(s.log_bf + q.log_prior - greatest(e.total + q.log_prior, q.log_outside)) / (
            exp(q.log_outside - greatest(e.total + q.log_prior, q.log_outside))
            + exp(e.total + q.log_prior - greatest(e.total + q.log_prior, q.log_outside))
        ) AS score
    FROM scored s JOIN evidence e USING (input_row) JOIN prior q ON q.status = s.status
    """


def _set_priors(con: duckdb.DuckDBPyConnection, priors: dict[str, float], people: int) -> None:
    log_n = math.log(max(people, 1))
    values = ", ".join(
        f"('{s}', {math.log(rho) - log_n!r}, {math.log(1.0 - rho)!r})" for s, rho in priors.items()
    )
    con.execute(
        "CREATE OR REPLACE TABLE prior (status VARCHAR, log_prior DOUBLE, log_outside DOUBLE)"
    )
    con.execute(f"INSERT INTO prior VALUES {values}")


def estimate_priors(con: duckdb.DuckDBPyConnection, people: int) -> dict[str, float]:
    """ρ per status by expectation-maximisation: the mean posterior probability, over the rows
    of that status, that the row describes one of its candidates (a row without candidates
    counts as describing nobody in the register), with a Beta prior worth ten rows."""
    con.execute(_EVIDENCE)
    rows = {
        str(s): int(n)
        for s, n in con.execute("SELECT status, count(*) FROM pend GROUP BY ALL").fetchall()
    }
    priors = dict.fromkeys(SCORED_STATUSES, linkage.PRIOR_IN_REGISTER)
    log_n = math.log(max(people, 1))
    for _ in range(_EM_ROUNDS):
        cases = " ".join(
            f"WHEN '{s}' THEN {math.log(1.0 - rho) - math.log(rho) + log_n!r}"
            for s, rho in priors.items()
        )
        # P(in register | row) = 1 / (1 + (1-ρ)/(ρ/N) / Σ BF)
        found = {
            str(s): float(p)
            for s, p in con.execute(
                f"SELECT status, sum(1 / (1 + exp(least(CASE status {cases} END - total, 700)))) "
                "FROM evidence GROUP BY ALL"
            ).fetchall()
        }
        priors = {
            s: min(
                max(
                    (found.get(s, 0.0) + _PRIOR_ROWS * linkage.PRIOR_IN_REGISTER)
                    / (rows.get(s, 0) + _PRIOR_ROWS),
                    0.05,
                ),
                0.995,
            )
            for s in SCORED_STATUSES
        }
    _set_priors(con, priors, people)
    return priors


def _choose_sql(threshold: float) -> str:
    """SQL: ``suggested`` from the posteriors; the best candidate is the one with the highest
    score, and among equal scores (namesakes the row cannot tell apart) the smallest personal
    ID, so that a rerun makes the same choice."""
    return f"""
    CREATE OR REPLACE TABLE suggested AS
    WITH best AS (
        SELECT input_row, status, pid, score, holder_score FROM (
            SELECT *, row_number() OVER (PARTITION BY input_row ORDER BY score DESC, pid)
                    AS place,
                max(CASE WHEN pid = found_id THEN score END) OVER (PARTITION BY input_row)
                    AS holder_score
            FROM ({_posterior()})
        ) WHERE place = 1
    )
    SELECT input_row,
        CASE WHEN score >= {threshold!r} AND status <> 'deceased' THEN pid END AS suggested_id,
        CASE WHEN score >= {threshold!r} AND status <> 'deceased' THEN round(score, 6) END
            AS suggestion_score,
        CASE WHEN score >= {threshold!r} THEN pid END AS confident_id,
        holder_score, pid AS best_id
    FROM best
    """


@dataclass(slots=True)
class Suggestions:
    """The outcome of the track: the model (for the within-file duplicates) and the figures."""

    model: Model
    figures: dict[str, Any]


def suggest(con: duckdb.DuckDBPyConnection, *, threshold: float = THRESHOLD) -> Suggestions:
    """Fill ``suggested`` (see :data:`EMPTY_SUGGESTED`) for the scored rows of ``checked``;
    ``people`` must be loaded."""
    con.execute(_ROWS)
    con.execute(_PENDING)
    for step in _CANDIDATE_STEPS:
        con.execute(step)
    model = estimate(con)
    con.execute(_TF)
    con.execute(
        "CREATE OR REPLACE TABLE cand_people AS "
        + "SELECT * FROM people WHERE pid IN (SELECT pid FROM cand)"
    )
    pairs = "cand c JOIN pend g USING (input_row) JOIN cand_people r USING (pid)"
    con.execute(f"CREATE OR REPLACE TABLE scored AS {score_sql(model, pairs, 'g', 'r')}")
    model.priors = estimate_priors(con, model.people)
    con.execute(_choose_sql(threshold))
    made = con.execute(
        "SELECT count(suggested_id), count(suggested_id) FILTER (suggestion_score >= 0.999) "
        "FROM suggested"
    ).fetchall()[0]
    considered = con.execute("SELECT count(*) FROM pend WHERE status <> 'deceased'").fetchall()[0][
        0
    ]
    return Suggestions(
        model=model,
        figures={
            "computed": True,
            "rows_considered": int(considered),
            "candidate_pairs": _count(con, "cand"),
            "suggested": int(made[0]),
            "suggested_above_0_999": int(made[1]),
            "threshold": threshold,
            "model": model.describe(),
        },
    )
