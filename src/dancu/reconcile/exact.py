"""The exact track: status, register ID, mismatched fields and duplicates, in DuckDB.

Normalised rows go into an in-memory DuckDB database that spills to the run's scratch
directory past its memory limit, so a file larger than memory is fine. The register rows the
file needs are fetched from the session's database in chunks of IDs (by personal ID, then by
legacy number for the IDs not found) or read from a snapshot written by
``dancu registry export``; the communes of each distinct address key arrive as a table of
their own. Every rule of CONTRACTS §3 is then one set-based SQL statement over all rows.

Field agreement, as SQL over normalised columns:

* ``full_name``: canonical forms equal (case folded); when the given name carries no
  diacritics, folded keys equal (``Nguyen`` = ``Nguyễn``, ``d`` = ``đ``);
* ``birth_date``: years equal, and month and day equal as far as both sides know them (the
  register's ``birth_date_precision``), which is :meth:`dancu.vn.dates.PartialDate.agrees`;
* ``sex``: equal; an unreadable value disagrees;
* ``address``: the register's permanent commune is among the given address's 2025 communes
  (every candidate of a split ward), which is :func:`dancu.geo.service.communes_agree`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import TextClause, bindparam, inspect, text
from sqlalchemy.orm import Session

from dancu.errors import DancuError
from dancu.geo import service as geo
from dancu.reconcile import duplicates, suggest
from dancu.reconcile.normalise import ADDRESS_SCHEMA, GIVEN_SCHEMA, name_forms
from dancu.registry.models import AGREEMENT_COLUMNS, Citizen

__all__ = [
    "DATE_AGREES_SQL",
    "MISMATCH_FIELDS",
    "RESULT_COLUMNS",
    "STATUSES",
    "Figures",
    "Workspace",
    "mask_id",
]

STATUSES: tuple[str, ...] = (
    "match",
    "mismatch",
    "deceased",
    "not_found",
    "invalid_id",
    "missing_id",
)
MISMATCH_FIELDS: tuple[str, ...] = ("full_name", "birth_date", "sex", "address")
RESULT_COLUMNS: tuple[str, ...] = (
    "row", "status", "personal_id", "mismatched_fields", "suggested_id", "suggestion_score",
    "duplicate_of",
)  # fmt: skip

DATE_AGREES_SQL = (
    "(g.birth_year = r.birth_year AND (g.birth_month IS NULL OR r.birth_month IS NULL OR "
    "(g.birth_month = r.birth_month AND (g.birth_day IS NULL OR r.birth_day IS NULL OR "
    "g.birth_day = r.birth_day))))"
)
"""CONTRACTS §3 birth-date agreement of given ``g`` and register ``r`` partial dates."""

_REGISTER = pa.schema(
    [
        ("personal_id", pa.string()),
        ("legacy_id_number", pa.string()),
        ("full_name", pa.string()),
        ("name_key", pa.string()),
        ("birth_year", pa.int16()),
        ("birth_month", pa.int8()),
        ("birth_day", pa.int8()),
        ("sex", pa.string()),
        ("status", pa.string()),
        ("permanent_commune_code", pa.string()),
    ]
)
# what field agreement reads (on PostgreSQL the primary key's index carries it: an index-only
# read by personal ID)
_FETCHED = ("personal_id", *AGREEMENT_COLUMNS)
_FLUSH_ROWS = 100_000


def _fetch_by(column: str) -> TextClause:
    """The register columns of the citizens whose ``column`` is in ``:ids`` (an IN list).

    Plain SQL on the ``citizen`` table (no ORM rows, no type conversion): a third of the cost.
    """
    table = Citizen.__table__
    names = ", ".join(table.c[c].name for c in _FETCHED)
    sql = f"SELECT {names} FROM {Citizen.__tablename__} WHERE {table.c[column].name} IN :ids"
    return text(sql).bindparams(bindparam("ids", expanding=True))


_EXAMPLES = 20

_CHECK_SQL = f"""
CREATE OR REPLACE TABLE checked AS
WITH found AS (
    SELECT g.*,
        coalesce(p.personal_id, l.personal_id) AS found_id,
        p.personal_id IS NULL AND l.personal_id IS NOT NULL AS via_legacy
    FROM given g
    LEFT JOIN reg p ON g.id_ok AND p.personal_id = g.id_norm
    LEFT JOIN legacy l ON g.id_ok AND l.legacy = g.id_norm
), compared AS (
    SELECT g.*, r.status AS reg_status, r.permanent_commune_code AS reg_commune,
        g.name_given AND NOT coalesce(CASE WHEN g.name_marked
            THEN lower(g.name_canon) = lower(r.full_name)
            ELSE g.name_fold = r.name_key END, false) AS name_bad,
        g.date_given AND NOT coalesce(g.date_ok AND {DATE_AGREES_SQL}, false) AS date_bad,
        g.sex_given AND NOT coalesce(g.sex = r.sex, false) AS sex_bad,
        a.address_candidates,
        g.address_given AND NOT coalesce(
            list_contains(a.address_candidates, r.permanent_commune_code), false
        ) AS address_bad
    FROM found g
    LEFT JOIN reg r ON r.personal_id = g.found_id
    LEFT JOIN addr a ON a.address_key = g.address_key
)
SELECT *,
    CASE
        WHEN NOT id_given THEN 'missing_id'
        WHEN NOT id_ok THEN 'invalid_id'
        WHEN found_id IS NULL THEN 'not_found'
        WHEN reg_status = 'deceased' THEN 'deceased'
        WHEN name_bad OR date_bad OR sex_bad OR address_bad THEN 'mismatch'
        ELSE 'match'
    END AS status
FROM compared
"""

_RESULTS_SQL = """
SELECT
    c.input_row AS "row",
    c.status,
    CASE WHEN c.status IN ('match', 'mismatch', 'deceased') THEN c.found_id END AS personal_id,
    CASE WHEN c.status = 'mismatch' THEN concat_ws(';',
        CASE WHEN c.name_bad THEN 'full_name' END,
        CASE WHEN c.date_bad THEN 'birth_date' END,
        CASE WHEN c.sex_bad THEN 'sex' END,
        CASE WHEN c.address_bad THEN 'address' END) END AS mismatched_fields,
    s.suggested_id,
    s.suggestion_score,
    d.duplicate_of
FROM checked c
LEFT JOIN suggested s USING (input_row)
LEFT JOIN resolved d USING (input_row)
ORDER BY c.input_row
"""


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass(slots=True)
class Figures:
    """What the summary and the report show; no personal data but masked IDs."""

    rows: int
    statuses: dict[str, int]
    mismatched_fields: dict[str, int]
    duplicates: int
    found_by_legacy_number: int
    unreadable: dict[str, dict[str, Any]]
    provinces: list[dict[str, Any]]
    mismatch_examples: list[dict[str, Any]] = field(default_factory=list)


_INSERT_ROWS = 500_000
"""How many given rows :meth:`Workspace.add` inserts at once."""


class Workspace:
    """The run's DuckDB database: given rows in, results and figures out."""

    def __init__(self, directory: Path, *, memory_limit: str = "512MB") -> None:
        spill = directory / "spill"
        spill.mkdir(parents=True, exist_ok=True)
        # in memory, spilling to the scratch directory past ``memory_limit``
        self.con = duckdb.connect(
            ":memory:",
            config={"memory_limit": memory_limit, "temp_directory": str(spill)},
        )
        self.con.execute("SET enable_progress_bar = false")
        # every result that must keep an order says ORDER BY; the rest may stream (less memory)
        self.con.execute("SET preserve_insertion_order = false")
        self.con.register("_empty", GIVEN_SCHEMA.empty_table())
        self.con.execute("CREATE TABLE given AS SELECT * FROM _empty")
        self.con.unregister("_empty")
        self.con.register("_empty", _REGISTER.empty_table())
        self.con.execute("CREATE TABLE reg AS SELECT * FROM _empty")
        self.con.unregister("_empty")
        self.con.register("_empty", ADDRESS_SCHEMA.empty_table())
        self.con.execute("CREATE TABLE addr AS SELECT * FROM _empty")
        self.con.unregister("_empty")
        self.con.execute(suggest.EMPTY_SUGGESTED)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def close(self) -> None:
        """Close the database (the caller removes the scratch directory)."""
        self.con.close()

    def add(self, batch: pa.RecordBatch) -> None:
        """Append one normalised batch (:data:`GIVEN_SCHEMA`); batches are inserted by
        :data:`_INSERT_ROWS` rows at a time (each insert has a fixed cost)."""
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= _INSERT_ROWS:
            self._insert_given()

    def _insert_given(self) -> None:
        """Insert the batches :meth:`add` holds back."""
        if not self._pending:
            return
        self.con.register("_batch", pa.Table.from_batches(self._pending, schema=GIVEN_SCHEMA))
        self.con.execute("INSERT INTO given SELECT * FROM _batch")
        self.con.unregister("_batch")
        self._pending, self._pending_rows = [], 0

    def add_addresses(self, table: pa.Table) -> None:
        """The communes of each address key (:data:`ADDRESS_SCHEMA`)."""
        self.con.register("_addr", table)
        self.con.execute("INSERT INTO addr SELECT * FROM _addr")
        self.con.unregister("_addr")

    def _add_register(self, table: pa.Table) -> None:
        self.con.register("_reg", table)
        self.con.execute(
            "INSERT INTO reg SELECT DISTINCT ON (personal_id) * FROM _reg "
            "WHERE personal_id NOT IN (SELECT personal_id FROM reg) ORDER BY personal_id"
        )
        self.con.unregister("_reg")

    def _id_chunks(self, sql: str, size: int) -> Iterator[list[str]]:
        """The IDs ``sql`` selects, ``size`` at a time, streamed through a second cursor."""
        cursor = self.con.cursor()
        try:
            for batch in cursor.sql(sql).to_arrow_reader(size):
                yield [str(v) for v in batch.column(0).to_pylist()]
        finally:
            cursor.close()

    # --------------------------------------------------------------------- the register

    def load_register(self, session: Session) -> int:
        """Fetch the register rows whose personal ID or legacy number the file gives.

        Chunks of IDs, as ``IN`` lists, by personal ID and then, for the IDs not found, by
        legacy number; nothing is written to the session's database. Returns rows fetched.
        """
        self._insert_given()
        connection = session.connection()
        if not inspect(connection).has_table(Citizen.__tablename__):
            raise DancuError(
                "the database holds no register: load one with `dancu registry import` or "
                "`dancu seed`, or give a snapshot with --register"
            )
        size = 900 if connection.dialect.name == "sqlite" else 10_000
        # sorted: neighbouring IDs share index pages in the register's database
        given = "SELECT DISTINCT id_norm FROM given WHERE id_ok ORDER BY 1"
        self._fetch_all(session, _fetch_by("personal_id"), self._id_chunks(given, size))
        missing = (
            "SELECT DISTINCT id_norm FROM given WHERE id_ok "
            "AND id_norm NOT IN (SELECT personal_id FROM reg) ORDER BY 1"
        )
        self._fetch_all(session, _fetch_by("legacy_id_number"), self._id_chunks(missing, size))
        return self._finish_register()

    def _fetch_all(self, session: Session, query: TextClause, chunks: Iterator[list[str]]) -> None:
        """Run ``query`` for each chunk of IDs; load the rows into ``reg`` in large batches."""
        rows: list[Any] = []
        for chunk in chunks:
            rows.extend(session.execute(query, {"ids": chunk}).all())
            if len(rows) >= _FLUSH_ROWS:
                self._load_fetched(rows)
                rows = []
        if rows:
            self._load_fetched(rows)

    def _load_fetched(self, rows: list[Any]) -> None:
        columns = list(zip(*rows, strict=True))
        born = pa.array(columns[4])  # text on SQLite, dates on PostgreSQL
        if not pa.types.is_string(born.type):
            born = born.cast(pa.string())
        fetched = pa.Table.from_arrays(
            [born if i == 4 else pa.array(c, pa.string()) for i, c in enumerate(columns)],
            names=list(_FETCHED),
        )
        self.con.register("_fetched", fetched)
        table = self.con.sql(
            """
            SELECT personal_id, legacy_id_number, full_name, name_key,
                CAST(year(CAST(birth_date AS DATE)) AS SMALLINT),
                CAST(CASE WHEN birth_date_precision IN ('day', 'month')
                    THEN month(CAST(birth_date AS DATE)) END AS TINYINT),
                CAST(CASE WHEN birth_date_precision = 'day'
                    THEN day(CAST(birth_date AS DATE)) END AS TINYINT),
                sex, status, permanent_commune_code
            FROM _fetched
            """
        ).to_arrow_table()
        self.con.unregister("_fetched")
        self._add_register(table.rename_columns(_REGISTER.names).cast(_REGISTER))

    def load_snapshot(self, path: Path) -> int:
        """Read the needed rows of a register snapshot (``dancu registry export``: CSV/Parquet).

        Names are canonicalised and folded with the register's own functions, once per
        distinct name, so a snapshot written by another tool compares the same way. Returns
        rows read.
        """
        self._insert_given()
        if not path.is_file():
            raise DancuError(f"{path}: no such register snapshot")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            source = f"read_parquet({_quote(path)})"
        elif suffix == ".csv":
            source = f"read_csv({_quote(path)}, header = true, all_varchar = true)"
        else:
            raise DancuError(f"{path.name}: a register snapshot is .csv or .parquet")
        try:
            self.con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE snap AS
                SELECT CAST(personal_id AS VARCHAR) personal_id,
                    nullif(CAST(legacy_id_number AS VARCHAR), '') legacy_id_number,
                    CAST(full_name AS VARCHAR) full_name, CAST(birth_date AS VARCHAR) born,
                    CAST(sex AS VARCHAR) sex,
                    coalesce(nullif(CAST(status AS VARCHAR), ''), 'alive') status,
                    nullif(CAST(permanent_commune_code AS VARCHAR), '') commune
                FROM {source}
                WHERE personal_id IN (SELECT id_norm FROM given WHERE id_ok)
                   OR legacy_id_number IN (SELECT id_norm FROM given WHERE id_ok)
                """
            )
        except duckdb.Error as exc:
            raise DancuError(f"{path.name}: not a register snapshot ({exc})") from None
        distinct = (
            self.con.sql("SELECT DISTINCT full_name FROM snap WHERE full_name IS NOT NULL")
            .to_arrow_table()
            .column(0)
            .to_pylist()
        )
        forms = name_forms([str(n) for n in distinct])
        self.con.register(
            "_names",
            pa.table(
                {
                    "full_name": pa.array(distinct, pa.string()),
                    "canon": pa.array([f[0] for f in forms], pa.string()),
                    "key": pa.array([f[1] for f in forms], pa.string()),
                }
            ),
        )
        self.con.execute(
            """
            INSERT INTO reg
            SELECT DISTINCT ON (personal_id) personal_id, legacy_id_number, n.canon, n.key,
                CAST(substr(born, 1, 4) AS SMALLINT),
                CAST(CASE WHEN length(born) >= 7 THEN substr(born, 6, 2) END AS TINYINT),
                CAST(CASE WHEN length(born) >= 10 THEN substr(born, 9, 2) END AS TINYINT),
                sex, status, commune
            FROM snap LEFT JOIN _names n USING (full_name)
            ORDER BY personal_id
            """
        )
        self.con.unregister("_names")
        self.con.execute("DROP TABLE snap")
        return self._finish_register()

    def _finish_register(self) -> int:
        self.con.execute(
            "CREATE OR REPLACE TABLE legacy AS SELECT legacy_id_number AS legacy, "
            "min(personal_id) AS personal_id FROM reg WHERE legacy_id_number IS NOT NULL "
            "GROUP BY 1"
        )
        return int(self._scalar("SELECT count(*) FROM reg"))

    # --------------------------------------------------------------------- the rules

    def check(self) -> None:
        """Apply CONTRACTS §3 to every row at once (status and fields); the inputs of the
        rules are then dropped (``checked`` holds all the rest needs)."""
        self._insert_given()
        self.con.execute(_CHECK_SQL)
        for table in ("given", "reg", "legacy"):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def pending(self) -> int:
        """Rows the suggestion track scores (``suggest.SCORED_STATUSES``)."""
        statuses = ", ".join(f"'{s}'" for s in suggest.SCORED_STATUSES)
        return int(self._scalar(f"SELECT count(*) FROM checked WHERE status IN ({statuses})"))

    def suggest(
        self, *, session: Session | None, snapshot: Path | None, threshold: float
    ) -> dict[str, Any]:
        """The suggestion track, then ``duplicate_of`` through the people found."""
        if not self.pending():
            duplicates.resolve(self.con, None)
            return {"computed": True, "rows_considered": 0, "suggested": 0}
        if snapshot is not None:
            suggest.load_people_from_snapshot(self.con, snapshot)
        else:
            assert session is not None
            suggest.load_people_from_database(self.con, session)
        found = suggest.suggest(self.con, threshold=threshold)
        duplicates.resolve(self.con, found.model)
        return found.figures

    def write_results(self, csv_path: Path, parquet_path: Path) -> None:
        """``results.csv`` and ``results.parquet`` in input order (contract columns)."""
        self.con.execute(f"COPY ({_RESULTS_SQL}) TO {_quote(parquet_path)} (FORMAT parquet)")
        self.con.execute(f"COPY ({_RESULTS_SQL}) TO {_quote(csv_path)} (HEADER, DELIMITER ',')")

    def results(self, batch_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
        """The results in input order, batch by batch."""
        yield from self.con.sql(_RESULTS_SQL).to_arrow_reader(batch_rows)

    # --------------------------------------------------------------------- the figures

    def _scalar(self, sql: str) -> Any:
        rows = self.con.execute(sql).fetchall()
        return rows[0][0] if rows else None

    def _rows_where(self, condition: str) -> dict[str, Any]:
        count = int(self._scalar(f"SELECT count(*) FROM checked WHERE {condition}"))
        first = [
            int(r[0])
            for r in self.con.execute(
                f"SELECT input_row FROM checked WHERE {condition} ORDER BY 1 LIMIT {_EXAMPLES}"
            ).fetchall()
        ]
        return {"count": count, "first_rows": first}

    def figures(self) -> Figures:
        """Counts per status and field, unreadable values, provinces, masked examples."""
        statuses = dict.fromkeys(STATUSES, 0)
        for status, count in self.con.execute(
            "SELECT status, count(*) FROM checked GROUP BY 1"
        ).fetchall():
            statuses[str(status)] = int(count)
        (sums,) = self.con.execute(
            "SELECT count(*) FILTER (name_bad), count(*) FILTER (date_bad), "
            "count(*) FILTER (sex_bad), count(*) FILTER (address_bad) "
            "FROM checked WHERE status = 'mismatch'"
        ).fetchall()
        fields = dict(zip(MISMATCH_FIELDS, (int(v) for v in sums), strict=True))
        duplicates = int(self._scalar(f"SELECT count(duplicate_of) FROM ({_RESULTS_SQL})"))
        legacy = int(
            self._scalar(
                "SELECT count(*) FROM checked WHERE via_legacy AND status NOT IN "
                "('not_found', 'invalid_id', 'missing_id')"
            )
        )
        unreadable = {
            "birth_date": self._rows_where("date_given AND NOT date_ok"),
            "sex": self._rows_where("sex_given AND sex IS NULL"),
            "address": self._rows_where("address_given AND len(address_candidates) = 0"),
        }
        return Figures(
            rows=int(self._scalar("SELECT count(*) FROM checked")),
            statuses=statuses,
            mismatched_fields=fields,
            duplicates=duplicates,
            found_by_legacy_number=legacy,
            unreadable=unreadable,
            provinces=self._provinces(),
            mismatch_examples=self._examples(),
        )

    def _provinces(self) -> list[dict[str, Any]]:
        index = geo.get_index()
        units = pa.table(
            {
                "commune": [c.code for c in index.communes()],
                "province": [
                    getattr(index.province(c.province_code), "name", c.province_code)
                    for c in index.communes()
                ],
            }
        )
        self.con.register("_units", units)
        rows = self.con.execute(
            """
            SELECT coalesce(u.province, 'unknown') AS province, status, count(*),
                count(*) FILTER (name_bad AND status = 'mismatch'),
                count(*) FILTER (date_bad AND status = 'mismatch'),
                count(*) FILTER (sex_bad AND status = 'mismatch'),
                count(*) FILTER (address_bad AND status = 'mismatch')
            FROM checked c
            LEFT JOIN _units u ON u.commune = coalesce(c.reg_commune, c.address_candidates[1])
            GROUP BY ALL ORDER BY 1, 2
            """
        ).fetchall()
        self.con.unregister("_units")
        table: dict[str, dict[str, Any]] = {}
        for province, status, count, *bad in rows:
            entry = table.setdefault(
                str(province),
                {
                    "province": str(province),
                    "rows": 0,
                    "statuses": dict.fromkeys(STATUSES, 0),
                    "mismatched_fields": dict.fromkeys(MISMATCH_FIELDS, 0),
                },
            )
            entry["rows"] += int(count)
            entry["statuses"][str(status)] += int(count)
            for name, value in zip(MISMATCH_FIELDS, bad, strict=True):
                entry["mismatched_fields"][name] += int(value)
        return sorted(table.values(), key=lambda e: (-int(e["rows"]), str(e["province"])))

    def _examples(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            f"""
            SELECT "row", personal_id, mismatched_fields FROM ({_RESULTS_SQL})
            WHERE status = 'mismatch' ORDER BY "row" LIMIT {_EXAMPLES}
            """
        ).fetchall()
        return [
            {"row": int(r), "personal_id": mask_id(str(pid)), "mismatched_fields": str(fields)}
            for r, pid, fields in rows
        ]


def mask_id(pid: str) -> str:
    """``001******123``: enough for an official to tell rows apart, not to identify anyone."""
    return pid[:3] + "*" * max(len(pid) - 6, 0) + pid[-3:] if len(pid) > 6 else "*" * len(pid)
