"""``duplicate_of``: the first earlier row about the same person (CONTRACTS §3).

A row is tied to a person by *keys*, and rows sharing a key, directly or through other rows,
are about one person:

* the person it resolves to: the one its ID names (``match``; ``mismatch`` and ``deceased``
  unless the suggestion track finds that holder clearly is not who the row describes), or
  the person confidently found by the suggestion track;
* the unknown number it gives (``not_found``, ``invalid_id``): two rows with the same number
  the register does not hold are about the same outsider;
* the identity it gives (folded name, full birth date, sex), unless rows that name
  different people share it (namesakes): rows resolved to different people, or to a person
  and a number the register does not hold, or to two such numbers. In ten million rows the
  same name, birth date and sex is often two people, one of them an outsider with an ID of
  their own;
* for a row about nobody found, its best match *within the file* when the model of
  :mod:`dancu.reconcile.linkage` says the two rows describe one person with high probability
  (an outsider written twice, once with a typo or without diacritics), unless the two rows
  give personal IDs more than one typo apart.

Labels then spread along the keys (the smallest row number wins) until nothing changes.
"""

from __future__ import annotations

import math

import duckdb

from dancu.reconcile import suggest
from dancu.reconcile.linkage import Model

__all__ = ["resolve"]

_PERSONS = """
CREATE OR REPLACE TEMP TABLE persons AS
    SELECT c.input_row,
        coalesce(s.confident_id, CASE
            WHEN c.status = 'match' THEN c.found_id
            WHEN c.status IN ('mismatch', 'deceased') AND coalesce(s.holder_score, 1) >= 0.5
                THEN c.found_id
        END) AS person,
        CASE WHEN c.status IN ('not_found', 'invalid_id')
            AND length(regexp_replace(c.id_norm, '[^0-9]', '', 'g')) >= 9
            THEN regexp_replace(c.id_norm, '[^0-9]', '', 'g') END AS number,
        CASE WHEN c.name_given AND c.date_ok AND c.birth_day IS NOT NULL
            THEN concat_ws('|', c.name_fold, c.birth_year, c.birth_month, c.birth_day,
                coalesce(c.sex, '?')) END AS ident
    FROM checked c LEFT JOIN suggested s USING (input_row)
"""

_KEYS = """
CREATE OR REPLACE TABLE row_keys AS
WITH r AS (SELECT * FROM persons), namesakes AS (
    SELECT ident FROM r WHERE coalesce(person, number) IS NOT NULL AND ident IS NOT NULL
    GROUP BY ident HAVING count(DISTINCT coalesce(person, number)) > 1
)
SELECT input_row, 'p:' || person AS k, true AS resolved FROM r WHERE person IS NOT NULL
UNION ALL SELECT input_row, 'i:' || number, false FROM r WHERE number IS NOT NULL
UNION ALL SELECT input_row, 'n:' || ident, false FROM r
    WHERE ident IS NOT NULL AND ident NOT IN (SELECT ident FROM namesakes)
"""

_DUPLICATE_SHARE = 0.05
"""The prior share of rows that repeat an earlier one: a pair of rows is linked when the
model's odds that they are one person, from this prior, reach 99 to 1."""

_PROPAGATE = """
CREATE OR REPLACE TABLE labels AS
WITH by_key AS (
    SELECT k.k, min(l.label) AS label FROM row_keys k JOIN labels l USING (input_row) GROUP BY ALL
)
SELECT l.input_row, least(l.label, coalesce(min(b.label), l.label)) AS label
FROM labels l
LEFT JOIN row_keys k USING (input_row)
LEFT JOIN by_key b USING (k)
GROUP BY l.input_row, l.label
"""

_MAX_ROUNDS = 50


def _link_within_file(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Add a key tying each row about nobody found to its best match among the other rows
    (the earliest of equally good ones), when the model is sure enough that they describe
    one person."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE unresolved AS SELECT * FROM rows "
        "WHERE input_row IN (SELECT input_row FROM persons WHERE person IS NULL)"
    )
    # the rows an unresolved row may repeat: the other unresolved rows, and the rows about
    # the register person it resembles most (found, but not with enough confidence)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE others AS {
            suggest.row_as_person_sql(
                "input_row IN (SELECT input_row FROM unresolved) OR input_row IN ("
                "SELECT input_row FROM row_keys WHERE k IN (SELECT 'p:' || best_id FROM suggested "
                "WHERE best_id IS NOT NULL AND input_row IN (SELECT input_row FROM unresolved)))"
            )
        }
        """
    )
    rows = int(con.execute("SELECT count(*) FROM checked").fetchall()[0][0])
    cut = math.log(99.0) + math.log(max(rows, 1)) - math.log(_DUPLICATE_SHARE)
    pairs = f"""
        ({suggest.query_keys_sql("SELECT * FROM unresolved")}) q
        JOIN (SELECT pid, unnest({suggest.person_keys_sql()}) AS k FROM others) o USING (k)
        JOIN unresolved g USING (input_row)
        JOIN others r ON r.pid = o.pid
    """
    # Two rows giving personal IDs more than one typo apart (a digit changed, or two
    # neighbours swapped) are two people, however alike the rest: in a national file the same
    # name, birth date and sex often are, and the ID is what sets them apart.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE numbers AS "
        "SELECT input_row, id_digits AS n FROM rows WHERE length(id_digits) = 12"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE links AS
        SELECT input_row, other FROM (
            SELECT s.input_row, CAST(s.pid AS BIGINT) AS other, s.log_bf, row_number() OVER (
                PARTITION BY s.input_row ORDER BY s.log_bf DESC, CAST(s.pid AS BIGINT)) AS place
            FROM ({suggest.score_sql(model, pairs, "g", "r", compare_ids=False)}) s
            LEFT JOIN numbers mine ON mine.input_row = s.input_row
            LEFT JOIN numbers theirs ON theirs.input_row = CAST(s.pid AS BIGINT)
            WHERE CAST(s.pid AS BIGINT) <> s.input_row
                AND NOT coalesce(damerau_levenshtein(mine.n, theirs.n) > 1, false)
        ) WHERE place = 1 AND log_bf >= {cut!r}
        """
    )
    con.execute(
        """
        INSERT INTO row_keys
        SELECT unnest([input_row, other]), 'w:' || input_row || '-' || other, false FROM links
        """
    )


def resolve(con: duckdb.DuckDBPyConnection, model: Model | None) -> None:
    """Fill ``resolved`` (input_row, duplicate_of) from ``checked`` and ``suggested``;
    ``model`` (None when no row needed the suggestion track) also links rows within the
    file."""
    con.execute(_PERSONS)
    con.execute(_KEYS)
    if model is not None:
        _link_within_file(con, model)
    # only keys that two rows or more share tie anything: the rest of the file stays out
    con.execute(
        "CREATE OR REPLACE TABLE row_keys AS SELECT * FROM row_keys "
        "WHERE k IN (SELECT k FROM row_keys GROUP BY k HAVING count(DISTINCT input_row) > 1)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE labels AS "
        "SELECT DISTINCT input_row, input_row AS label FROM row_keys"
    )
    for _ in range(_MAX_ROUNDS):
        before = con.execute("SELECT sum(label) FROM labels").fetchall()[0][0]
        con.execute(_PROPAGATE)
        if con.execute("SELECT sum(label) FROM labels").fetchall()[0][0] == before:
            break
    con.execute(
        "CREATE OR REPLACE TABLE resolved AS "
        "SELECT input_row, nullif(label, input_row) AS duplicate_of FROM labels "
        "WHERE label <> input_row"
    )
