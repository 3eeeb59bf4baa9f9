"""``dancu reconcile --engine spark`` (issue 5 §6): the same results as the DuckDB engine.

Both engines run on the same files and registers (the small register of ``helpers`` from the
database and as a CSV snapshot; a generated nation and a few thousand corrupted rows with every
status from a Parquet snapshot); ``results.csv`` must be byte for byte the same and
``summary.json`` the same but for timings. One local Spark session (``local[2]``) serves the
whole run. Skipped only when pyspark (the ``dancu[spark]`` extra) or Java is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("--engine spark needs Java, which is not installed", allow_module_level=True)
pytest.importorskip("pyspark", reason="--engine spark needs the dancu[spark] extra (pyspark)")

import duckdb
import pyarrow as pa
from bench.reconcile_corrupt import generate_file, split_nation, write_register
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu import bootstrap
from dancu.cli.reconcile import reconcile_cli
from dancu.errors import DancuError
from dancu.reconcile.exact import STATUSES
from dancu.reconcile.service import reconcile
from dancu.reconcile.spark_sql import SparkConnection, translate
from tests.reconcile.helpers import (
    ALIVE,
    BA_DINH,
    DEAD,
    MONTH_ONLY,
    NO_COMMUNE,
    OLD_CARD,
    OLD_CARD_LEGACY,
    REGISTER,
    SPLIT_WARD,
    UNKNOWN,
    YEAR_ONLY,
    read_results,
    row,
    write_rows,
)
from tests.registry.factories import write_csv

pytestmark = pytest.mark.slow

_VOLATILE = ("generated_at", "timings", "rows_per_second")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local Spark session for the whole test run (it takes 10-25 s to start)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("dancu tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def connection(spark: SparkSession) -> Iterator[SparkConnection]:
    """The connection adapter alone, on its own Spark session."""
    adapter = SparkConnection(spark)
    yield adapter
    adapter.close()


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in _VOLATILE:
        data.pop(key)
    return data


def _both(
    session: Session | None, path: Path, tmp_path: Path, **kwargs: Any
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Reconcile with both engines; assert the same results and summary; return them."""
    reconcile(session, path, tmp_path / "duckdb", engine="duckdb", **kwargs)
    reconcile(session, path, tmp_path / "spark", engine="spark", **kwargs)
    return _same(tmp_path)


def _same(tmp_path: Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Assert that ``spark/`` holds the results and summary of ``duckdb/``; return them."""
    expected = (tmp_path / "duckdb" / "results.csv").read_bytes()
    assert (tmp_path / "spark" / "results.csv").read_bytes() == expected
    summary = _summary(tmp_path / "duckdb")
    assert _summary(tmp_path / "spark") == summary
    return read_results(tmp_path / "spark"), summary


_RULE_ROWS = [
    row(),  # 1 match
    row(sex="Nữ", address="Phường Ba Đình, Hà Nội"),  # 2 mismatch: sex, address
    row(pid=DEAD, name="Someone Else", sex="Nam"),  # 3 deceased
    row(pid=UNKNOWN),  # 4 not_found, ALIVE suggested
    row(pid="07908500000"),  # 5 invalid_id (a leading zero lost)
    row(pid=""),  # 6 missing_id
    ["", OLD_CARD_LEGACY, "Lê Văn Cũ", "20/07/1990", "M", "Phường Ba Đình, Hà Nội"],  # 7 legacy
    ["", MONTH_ONLY, "PHAM THI THANG", "12/05/1990", "Nữ", ""],  # 8 month known only
    ["", YEAR_ONLY, "Hoàng Văn Năm", "1971", "Nam", ""],  # 9 year only: mismatch
    ["", SPLIT_WARD, "Đặng Thị Hoà", "02/02/1985", "F", "Xã Trường Thành, Cần Thơ"],  # 10
    ["", NO_COMMUNE, "Bùi Văn Không", "04/04/1985", "Nam", BA_DINH],  # 11 no commune
    ["", "079 085 000 001", "nguyen van thu", "1985-03-14", "male", ""],  # 12 duplicate of 1
    ["", "", "Lê Thị Mới", "01/01/2000", "Nữ", ""],  # 13 outsider
    ["", "", "LÊ THỊ MỚI", "2000-01-01", "F", ""],  # 14 duplicate of 13
    ["", OLD_CARD, "Lê Văn Cũ", "31/02/1990", "", ""],  # 15 unreadable date
]


def test_the_rules_give_the_same_results_from_the_database(
    registered: Session, tmp_path: Path, spark: SparkSession
) -> None:
    path = write_rows(tmp_path / "in.csv", _RULE_ROWS)
    results, summary = _both(registered, path, tmp_path)
    assert [r["status"] for r in results[:6]] == list(STATUSES)
    assert results[1]["mismatched_fields"] == "sex;address"
    assert results[3]["suggested_id"] == ALIVE
    assert [r["duplicate_of"] for r in results[11:14]] == ["1", "", "13"]
    assert summary["register"]["source"] == "database"
    assert summary["unreadable"]["birth_date"]["first_rows"] == [15]


def test_the_command_on_a_csv_snapshot_gives_the_same_results(
    tmp_path: Path, spark: SparkSession
) -> None:
    snapshot = write_csv(tmp_path / "register.csv", REGISTER)
    path = write_rows(tmp_path / "in.csv", _RULE_ROWS)
    reconcile(None, path, tmp_path / "duckdb", register=snapshot)
    command = [str(path), "--out", str(tmp_path / "spark"), "--register", str(snapshot)]
    result = CliRunner().invoke(reconcile_cli, [*command, "--engine", "spark"])
    assert result.exit_code == 0, result.output
    assert "15 rows: 4 match, 5 mismatch, 1 deceased" in result.stdout
    results, summary = _same(tmp_path)
    assert [r["status"] for r in results[:6]] == list(STATUSES)
    assert summary["register"]["snapshot"] == "register.csv"


def test_an_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row()])
    result = CliRunner().invoke(
        reconcile_cli, [str(path), "--out", str(tmp_path / "out"), "--engine", "dask"]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_a_generated_file_with_every_status_gives_the_same_results(
    engine: Engine, tmp_path: Path, spark: SparkSession
) -> None:
    """3,000 people (30 outside the register) and 3,000 rows with real-life errors: IDs typed
    wrong, missing or someone else's, names without diacritics, swapped dates, old units,
    deceased people, repeated rows."""
    with Session(engine) as session:
        weights = bootstrap.commune_weights(session)
    people, outsiders = split_nation(3000, 30, 23, weights)
    snapshot = write_register(people, tmp_path / "register.parquet")
    made = generate_file(people, outsiders, tmp_path / "in.csv", 3000, seed=29)
    results, summary = _both(None, made.path, tmp_path, register=snapshot)
    assert len(results) == 3000
    assert all(summary["statuses"][s] > 0 for s in STATUSES), summary["statuses"]
    assert all(summary["mismatched_fields"][f] > 0 for f in summary["mismatched_fields"])
    assert summary["suggestions"]["suggested"] > 0 and summary["duplicates"] > 0


def test_an_unknown_engine_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "in.csv", [row()])
    with pytest.raises(DancuError, match="unknown engine"):
        reconcile(None, path, tmp_path / "out", register=tmp_path / "none.csv", engine="dask")
    assert list((tmp_path / "out").iterdir()) == []


# ----------------------------------------------------------------------------- the shim


def test_hash_orders_samples_like_duckdb_and_joins_with_xxhash64() -> None:
    (statement,) = translate(
        "SELECT k FROM (SELECT hash('a', x) AS k FROM t) ORDER BY hash(x, 1) LIMIT 5"
    )
    spark_sql = statement.sql("spark")
    assert "XXHASH64('a', x)" in spark_sql
    assert "DANCU_DUCKDB_HASH(x, 1)" in spark_sql


def test_a_construct_the_shim_cannot_translate_is_refused() -> None:
    with pytest.raises(DancuError, match="constant list indices"):
        translate("SELECT l[i] FROM t")


_WORDS = st.text(alphabet="abdhnđươ ", min_size=0, max_size=8)


@settings(max_examples=8, deadline=None)
@given(
    lists=st.lists(st.lists(_WORDS, max_size=4) | st.none(), min_size=1, max_size=6),
    index=st.integers(-3, 3).filter(bool),
)
def test_duckdb_sql_gives_the_same_values_on_spark(
    connection: SparkConnection, lists: list[list[str] | None], index: int
) -> None:
    """List indexing, lengths, sorting, splitting, string distances and DuckDB's functions:
    DuckDB's own answer and Spark's, through the shim, agree row by row."""
    table = pa.table(
        {
            "n": pa.array(range(len(lists)), pa.int64()),
            "l": pa.array(lists, pa.list_(pa.string())),
            "s": pa.array([" ".join(x) if x is not None else None for x in lists], pa.string()),
        }
    )
    sql = f"""
        SELECT n, l[{index}] AS item, len(l) AS size, array_to_string(list_sort(l), ' ') AS sorted,
            string_split(s, ' ')[1] AS first, len(string_split(s, '')) AS letters,
            jaro_similarity(s, 'nguyen') AS jaro, jaro_winkler_similarity(s, 'nguyen') AS jw,
            damerau_levenshtein(s, 'ngyuen') AS dl, levenshtein(s, 'nguyen') AS lev,
            strip_accents(nfc_normalize(s)) AS bare
        FROM t ORDER BY hash(n, 7)
    """
    with duckdb.connect() as con:
        con.register("t", table)
        expected = con.execute(sql).fetchall()
    connection.register("t", table)
    assert connection.execute(sql).fetchall() == expected
