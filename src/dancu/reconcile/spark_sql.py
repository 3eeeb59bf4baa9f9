"""The reconciliation's DuckDB SQL, run on Apache Spark: a dialect shim and a connection adapter.

The exact track, the suggestion track and ``duplicate_of`` are set-based SQL written for
DuckDB (:mod:`dancu.reconcile.exact`, :mod:`~dancu.reconcile.suggest`,
:mod:`~dancu.reconcile.duplicates`). :class:`SparkConnection` offers the few calls of a DuckDB
connection that code makes (``execute``, ``sql``, ``register``, ``unregister``, ``cursor``) on
a Spark session, so the *same* code and the *same* SQL text run on Spark: one implementation of
the rules, two engines. Each statement is parsed as DuckDB SQL by sqlglot, adjusted where the
two dialects disagree (:func:`translate`), and generated as Spark SQL:

* a list index ``l[i]`` is 1-based and may count from the end (``[-1]``): ``element_at``;
* ``len(list)``: ``size`` (DuckDB's ``len`` is taken as a list's length; the rules write
  ``length`` for text);
* ``range(a, b) AS r(i)`` in a FROM clause: a subquery over Spark's ``range``;
* ``list(x ORDER BY x)``: ``array_sort(collect_list(x))`` (``collect_set`` for ``DISTINCT``);
* ``string_split(s, '')``: Spark's ``split(s, '')`` (characters, no trailing empty string);
* decimal literals (``0.95``) are doubles: Spark would otherwise do decimal arithmetic with
  rounded scales where DuckDB computes in floating point;
* ``hash(...)``: Spark's 64-bit ``xxhash64`` where only equality matters (blocking keys); in an
  ``ORDER BY`` (the hash-ordered samples the linkage model is estimated on) DuckDB's own hash,
  so both engines draw the same sample;
* DuckDB functions Spark lacks or computes otherwise (``jaro_similarity``,
  ``jaro_winkler_similarity``, ``damerau_levenshtein``, ``levenshtein``, which counts UTF-8
  bytes in DuckDB and characters in Spark, ``strip_accents``, ``nfc_normalize``) and ``hash``
  run as Arrow UDFs that call DuckDB itself on each batch: the same values, computed by the
  executors;
* ``read_parquet(...)`` and ``read_csv(..., header = true, all_varchar = true)``: Spark's
  readers, as temporary views.

Statements map to DataFrames: ``CREATE [OR REPLACE] [TEMP] TABLE t AS q`` materialises ``q``
(``localCheckpoint``, memory and disk: computed once, cut from the plans it came from) under
the temporary view ``t``; ``CREATE VIEW v AS q`` is a lazy view; ``INSERT INTO t`` appends by
position, casting to ``t``'s column types as DuckDB does; ``DROP TABLE`` forgets the view;
``SET`` is ignored. A statement the shim cannot translate fails with the statement in the
message, never silently.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import duckdb
import pyarrow as pa
import sqlglot
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.functions import arrow_udf
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.parsers.duckdb import DuckDBParser

from dancu.errors import DancuError

__all__ = ["DUCKDB_FUNCTIONS", "SPARK_SETTINGS", "SparkConnection", "translate"]

log = logging.getLogger(__name__)

DUCKDB_FUNCTIONS: dict[str, str] = {
    "jaro_similarity": "double",
    "jaro_winkler_similarity": "double",
    "damerau_levenshtein": "bigint",
    "levenshtein": "bigint",  # Spark has one, counting characters: DuckDB counts UTF-8 bytes
    "strip_accents": "string",
    "nfc_normalize": "string",
}
"""DuckDB scalar functions Spark lacks or computes otherwise, with their Spark result types:
computed by DuckDB."""

SPARK_SETTINGS: dict[str, str] = {
    # DuckDB's answers: an index past the end of a list is NULL, ``len(NULL)`` is NULL, and
    # ``'p:' || 12`` concatenates text
    "spark.sql.ansi.enabled": "false",
    "spark.sql.legacy.sizeOfNull": "false",
}
"""SQL settings of the run's own Spark session (:meth:`SparkSession.newSession`)."""

_ARROW_TYPES = {"double": pa.float64(), "bigint": pa.int64(), "string": pa.string()}
_HASH_UDF = "dancu_duckdb_hash"
_UDF_PREFIX = "dancu_duckdb_"
_DISTINCT_ON_COLUMN = "_row_number"


class _DuckDBParser(DuckDBParser):
    FUNCTIONS: ClassVar = {**DuckDBParser.FUNCTIONS, "LEN": exp.ArraySize.from_arg_list}


class _DuckDBDialect(DuckDB):
    """DuckDB as the rules write it: ``len`` is a list's length."""

    Parser = _DuckDBParser


# ----------------------------------------------------------------------------- DuckDB on Spark


_connection: duckdb.DuckDBPyConnection | None = None


def _duckdb() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per Python worker process (workers are reused across tasks)."""
    global _connection
    if _connection is None:
        _connection = duckdb.connect(":memory:", config={"threads": 1})
    return _connection


def _call_duckdb(expression: str, result: pa.DataType, *columns: pa.Array) -> pa.Array:
    """``expression`` (over ``a0``, ``a1``...) evaluated by DuckDB on one Arrow batch."""
    con = _duckdb()
    con.register("_args", pa.table({f"a{i}": c for i, c in enumerate(columns)}))
    try:
        out = con.sql(f"SELECT {expression} FROM _args").to_arrow_table().column(0)
    finally:
        con.unregister("_args")
    return out.combine_chunks().cast(result)


def _arguments(n: int) -> str:
    return ", ".join(f"a{i}" for i in range(n))


def _duckdb_function(name: str, *columns: pa.Array) -> pa.Array:
    result = _ARROW_TYPES[DUCKDB_FUNCTIONS[name]]
    return _call_duckdb(f"{name}({_arguments(len(columns))})", result, *columns)


def _duckdb_hash(*columns: pa.Array) -> pa.Array:
    """DuckDB's ``hash`` (unsigned 64 bits) shifted into a signed BIGINT, order kept."""
    expression = (
        f"CAST(CAST(hash({_arguments(len(columns))}) AS HUGEINT) - 9223372036854775808 AS BIGINT)"
    )
    return _call_duckdb(expression, pa.int64(), *columns)


def _scalar(name: str) -> Callable[..., pa.Array]:
    """The Arrow UDF body of DuckDB's function ``name`` (typed: Spark reads the hints)."""

    def call(*columns: pa.Array) -> pa.Array:
        return _duckdb_function(name, *columns)

    return call


# pyspark's stubs want the UDF type, which pyspark itself warns against (it reads the hints)
_arrow_udf = cast(Callable[[Callable[..., pa.Array], str], Any], arrow_udf)


def _register_functions(spark: SparkSession) -> None:
    for name, returns in DUCKDB_FUNCTIONS.items():
        spark.udf.register(_UDF_PREFIX + name, _arrow_udf(_scalar(name), returns))
    spark.udf.register(_HASH_UDF, _arrow_udf(_duckdb_hash, "bigint"))


# ----------------------------------------------------------------------------- the shim


def _failed(statement: exp.Expr, exc: Exception) -> DancuError:
    """Spark's error, with the statement (as DuckDB SQL) it came from."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    sql = " ".join(statement.sql("duckdb").split())
    log.error("spark engine: %s failed: %s", sql, exc)
    return DancuError(f"--engine spark could not run {sql[:300]!r}: {first[:500]}")


def _unsupported(node: exp.Expr, why: str) -> DancuError:
    return DancuError(f"--engine spark cannot run {node.sql('duckdb')!r}: {why}")


def _index(node: exp.Bracket) -> exp.Expr:
    (index,) = node.expressions
    if not (isinstance(index, exp.Literal) and not index.is_string) and not isinstance(
        index, exp.Neg
    ):
        raise _unsupported(node, "only constant list indices are translated")
    # sqlglot made DuckDB's 1-based index 0-based (also a negative one); element_at is 1-based
    position = int(index.sql("duckdb")) + 1
    return exp.Anonymous(this="element_at", expressions=[node.this, exp.Literal.number(position)])


def _range(node: exp.Table) -> exp.Expr:
    series = node.this
    assert isinstance(series, exp.GenerateSeries)
    alias = node.args.get("alias")
    columns = alias.columns if alias is not None else []
    if alias is None or len(columns) != 1 or series.args.get("step") is not None:
        raise _unsupported(node, "range(a, b) AS name(column) is translated, nothing else")
    start = series.args["start"].sql("spark")
    end = series.args["end"].sql("spark")
    if not series.args.get("is_end_exclusive"):
        end = f"({end}) + 1"
    query = sqlglot.parse_one(f"SELECT id AS {columns[0].name} FROM range({start}, {end})", "spark")
    return exp.Subquery(this=query, alias=exp.TableAlias(this=alias.this.copy()))


def _list_aggregate(node: exp.ArrayAgg) -> exp.Expr:
    inner = node.this
    if not isinstance(inner, exp.Order):
        return node
    value = inner.this
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        (value,) = value.expressions
    (order,) = inner.expressions
    if order.this != value:
        raise _unsupported(node, "a list is only sorted by its own values")
    collected = exp.Anonymous(
        this="collect_set" if distinct else "collect_list", expressions=[value.copy()]
    )
    ascending = not order.args.get("desc")
    return exp.Anonymous(this="sort_array", expressions=[collected, exp.Boolean(this=ascending)])


def _shim(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Bracket):
        return _index(node)
    if isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries):
        return _range(node)
    if isinstance(node, exp.ArrayAgg):
        return _list_aggregate(node)
    if isinstance(node, exp.Split):
        separator = node.expression
        if isinstance(separator, exp.Literal) and separator.is_string and separator.this == "":
            return exp.Anonymous(this="split", expressions=[node.this, separator])
    if isinstance(node, exp.JarowinklerSimilarity | exp.Levenshtein):
        name = "levenshtein" if isinstance(node, exp.Levenshtein) else "jaro_winkler_similarity"
        if {k for k, v in node.args.items() if v is not None} - {"this", "expression"}:
            raise _unsupported(node, f"{name} of two strings is translated, nothing else")
        return exp.Anonymous(this=_UDF_PREFIX + name, expressions=[node.this, node.expression])
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        if name in DUCKDB_FUNCTIONS:
            return exp.Anonymous(this=_UDF_PREFIX + name, expressions=node.expressions)
        if name == "hash":
            ordering = node.find_ancestor(exp.Ordered) is not None
            return exp.Anonymous(
                this=_HASH_UDF if ordering else "xxhash64", expressions=node.expressions
            )
    if isinstance(node, exp.Literal) and not node.is_string and not node.this.isdigit():
        return exp.Cast(this=node.copy(), to=exp.DataType.build("double"))
    return node


def _shimmed(tree: exp.Expr) -> exp.Expr:
    """``tree`` with :func:`_shim` applied to every node, children before their parents."""
    for node in reversed(list(tree.walk(bfs=False))):
        new = _shim(node)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


def translate(sql: str) -> list[exp.Expr]:
    """The statements of DuckDB ``sql``, shimmed for Spark (generate with ``.sql("spark")``)."""
    try:
        statements = sqlglot.parse(sql, read=_DuckDBDialect)
    except sqlglot.errors.ParseError as exc:
        raise DancuError(f"--engine spark cannot parse {sql.strip()[:200]!r}: {exc}") from None
    return [_shimmed(s) for s in statements if s is not None]


# ----------------------------------------------------------------------------- the adapter


class _Result:
    """What ``execute`` returns: the rows of a query (none for a command)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


class _Relation:
    """What ``sql`` returns: a query, read as Arrow or rows."""

    def __init__(self, frame: DataFrame) -> None:
        self.frame = frame

    def to_arrow_table(self) -> pa.Table:
        return self.frame.toArrow()

    def to_arrow_reader(self, batch_size: int = 1_000_000) -> pa.RecordBatchReader:
        table = self.to_arrow_table()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(batch_size))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.frame.collect()]


class _Cursor:
    """What ``cursor`` returns: queries on the connection's tables."""

    def __init__(self, connection: SparkConnection) -> None:
        self._connection = connection

    def execute(self, sql: str) -> _Result:
        return self._connection.execute(sql)

    def sql(self, sql: str) -> _Relation:
        return self._connection.sql(sql)

    def close(self) -> None:
        """Nothing to release: the tables belong to the connection."""


class SparkConnection:
    """DuckDB's connection calls used by the reconciliation, on an isolated Spark session.

    Tables are temporary views of the run's own session (``spark.newSession()``: its views,
    functions and SQL settings stay out of the caller's session).
    """

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark.newSession()
        for key, value in SPARK_SETTINGS.items():
            self.spark.conf.set(key, value)
        _register_functions(self.spark)
        self._tables: dict[str, DataFrame] = {}
        self._files = itertools.count()

    # ------------------------------------------------------------------ DuckDB's API

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Result:
        """Run each statement of ``sql``; the rows of the last one when it is a query."""
        if parameters:
            raise DancuError("--engine spark: prepared parameters are not supported")
        rows: list[tuple[Any, ...]] = []
        for statement in translate(sql):
            started = time.perf_counter()
            try:
                rows = self._run(statement)
            except DancuError:
                raise
            except Exception as exc:  # an error of Spark's, as it ran the statement
                raise _failed(statement, exc) from exc
            if log.isEnabledFor(logging.DEBUG):
                took = time.perf_counter() - started
                log.debug("spark engine: %.2f s: %s", took, " ".join(sql.split())[:120])
        return _Result(rows)

    def sql(self, sql: str) -> _Relation:
        """A query as a relation (read with ``to_arrow_table`` or ``to_arrow_reader``)."""
        (statement,) = translate(sql)
        return _Relation(self._query(statement))

    def cursor(self) -> _Cursor:
        """A second handle on the same tables (closing it closes nothing)."""
        return _Cursor(self)

    def register(self, name: str, data: pa.Table | pa.RecordBatch) -> None:
        """An Arrow table (from the driver) as the view ``name``."""
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        if table.num_rows == 0:  # Spark's conversion wants a chunk in every column
            table = table.schema.empty_table()
        self._set(name, self.spark.createDataFrame(table), persist=False)

    def unregister(self, name: str) -> None:
        self.drop(name)

    def close(self) -> None:
        """Drop every view and free what was persisted (the Spark context stays up)."""
        for name in list(self._tables):
            self.drop(name)

    # ------------------------------------------------------------------ for the engine

    def frame(self, name: str) -> DataFrame:
        """The DataFrame behind the view ``name``."""
        try:
            return self._tables[name]
        except KeyError:
            raise DancuError(f"--engine spark: no table {name}") from None

    def put(self, name: str, frame: DataFrame, *, persist: bool = True) -> None:
        """``frame`` as the table ``name`` (persisted unless it is cheap to read again)."""
        self._set(name, frame, persist=persist)

    def drop(self, name: str) -> None:
        """Forget the table ``name`` (Spark frees its blocks once nothing refers to them)."""
        self._tables.pop(name, None)
        self.spark.catalog.dropTempView(name)

    # ------------------------------------------------------------------ statements

    def _set(self, name: str, frame: DataFrame, *, persist: bool) -> None:
        if persist:
            # materialised now, as a DuckDB table is, and cut from the plans it came from:
            # later statements may replace its inputs, and plans would grow statement by
            # statement (the label propagation runs dozens of rounds)
            frame = frame.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)
        self._tables[name] = frame
        frame.createOrReplaceTempView(name)

    def _run(self, statement: exp.Expr) -> list[tuple[Any, ...]]:
        if isinstance(statement, exp.Create):
            self._create(statement)
        elif isinstance(statement, exp.Insert):
            self._insert(statement)
        elif isinstance(statement, exp.Drop):
            for table in statement.args.get("tables") or [statement.this]:
                self.drop(table.name)
        elif isinstance(statement, exp.Set | exp.Command) and _is_setting(statement):
            log.debug("spark engine: ignored %s", statement.sql("duckdb"))
        else:
            return [tuple(row) for row in self._query(statement).collect()]
        return []

    def _create(self, statement: exp.Create) -> None:
        kind = str(statement.args.get("kind", "")).upper()
        target = statement.this
        query = statement.expression
        if kind == "VIEW" and query is not None and isinstance(target, exp.Table):
            # bound to its tables as they are now (DuckDB's views bind when read)
            self._set(target.name, self._query(query), persist=False)
        elif kind != "TABLE":
            raise _unsupported(statement, "only CREATE TABLE and CREATE VIEW are translated")
        elif isinstance(target, exp.Schema):
            columns = ", ".join(c.sql("spark") for c in target.expressions)
            self._set(target.this.name, self.spark.createDataFrame([], columns), persist=False)
        elif query is not None:
            self._set(target.name, self._query(query), persist=True)
        else:
            raise _unsupported(statement, "CREATE TABLE needs AS or a column list")

    def _insert(self, statement: exp.Insert) -> None:
        target = statement.this
        if not isinstance(target, exp.Table) or statement.args.get("overwrite"):
            raise _unsupported(statement, "only INSERT INTO table SELECT/VALUES is translated")
        source = statement.expression
        if isinstance(source, exp.Values):
            source = exp.select("*").from_(source)
        existing = self.frame(target.name)
        added = self._query(source)
        if len(added.columns) != len(existing.columns):
            raise _unsupported(statement, "the columns do not match the table's")
        typed = added.select(
            *[
                F.col(f"`{a}`").cast(f.dataType).alias(f.name)
                for a, f in zip(added.columns, existing.schema.fields, strict=True)
            ]
        )
        self._set(target.name, existing.unionAll(typed), persist=True)

    def _query(self, statement: exp.Expr) -> DataFrame:
        statement = statement.transform(self._read_files)
        try:
            frame = self.spark.sql(statement.sql("spark", identify=True))
        except Exception as exc:  # an AnalysisException, a ParseException...
            raise _failed(statement, exc) from exc
        if any(d.args.get("on") for d in statement.find_all(exp.Distinct)):
            # sqlglot writes DISTINCT ON as a ROW_NUMBER() filter, whose column stays in SELECT *
            frame = frame.drop(_DISTINCT_ON_COLUMN)
        return frame

    def _read_files(self, node: exp.Expr) -> exp.Expr:
        """``read_parquet(path)`` and ``read_csv(path, header = true, all_varchar = true)`` in
        a FROM clause: Spark's readers, as temporary views."""
        if not isinstance(node, exp.Table) or not isinstance(
            node.this, exp.ReadParquet | exp.ReadCSV
        ):
            return node
        reader = node.this
        if isinstance(reader, exp.ReadParquet):
            (path,) = reader.expressions
            frame = self.spark.read.parquet(path.name)
        else:
            path = reader.this
            options = {o.this.name.lower(): o.expression.sql("duckdb") for o in reader.expressions}
            if options.pop("header", "true").lower() != "true" or set(options) - {"all_varchar"}:
                raise _unsupported(node, "read_csv(path, header = true, all_varchar = true) only")
            frame = self.spark.read.option("header", True).csv(path.name)
        name = f"_file_{next(self._files)}"
        self._set(name, frame, persist=False)
        table = exp.to_table(name)
        alias = node.args.get("alias")
        if alias is not None:
            table.set("alias", alias.copy())
        return table


def _is_setting(statement: exp.Expr) -> bool:
    return isinstance(statement, exp.Set) or str(statement.this).upper() in ("SET", "PRAGMA")
