"""``dancu reconcile --engine spark``: the reconciliation on Apache Spark (the ``dancu[spark]``
extra), for registers and files larger than one machine.

The run is the DuckDB engine's, stage for stage (:func:`dancu.reconcile.service.reconcile`);
only the workspace differs. :class:`SparkWorkspace` is a :class:`~dancu.reconcile.exact.Workspace`
whose connection is a :class:`~dancu.reconcile.spark_sql.SparkConnection`, so the exact track,
the suggestion track and ``duplicate_of`` run the same code and SQL text on Spark:

* *read* and *normalise* stay in Python on the driver (per distinct value, with the address
  worker processes); the normalised batches are staged as Parquet that Spark reads;
* the register snapshot (``--register``, ``dancu registry export``) is read by Spark itself,
  in parallel from any path the executors see (a shared file system, HDFS, S3); from the
  database, rows come through the driver as in the DuckDB engine;
* *exact*, *suggestions* and ``duplicate_of`` are Spark jobs;
* *write*: ``checked``, ``suggested`` and ``resolved`` (one row per input row) come back as
  Parquet into a DuckDB workspace, whose writers and figures make ``results.csv``,
  ``results.parquet``, the workbook, the report and ``summary.json``: the same bytes as the
  DuckDB engine's for the same data.

Where Spark runs: in the process's active session when there is one (``spark-submit``, a
notebook), else a new one on ``DANCU_SPARK_MASTER`` (``local[*]`` by default, or
``spark://host:7077``, ``yarn``...). On a cluster, ``DANCU_SPARK_STAGING`` names a directory
every node sees at the same path (staged rows and results go there); without it, rows travel
through the driver.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from sqlalchemy.orm import Session

from dancu.errors import DancuError
from dancu.reconcile.exact import Figures, Workspace
from dancu.reconcile.normalise import GIVEN_SCHEMA
from dancu.reconcile.spark_sql import SparkConnection

__all__ = ["MASTER_VARIABLE", "STAGING_VARIABLE", "SparkWorkspace", "spark_session"]

MASTER_VARIABLE = "DANCU_SPARK_MASTER"
"""Where a new Spark session runs (a master URL); spark-submit's default is ``local[*]``."""
STAGING_VARIABLE = "DANCU_SPARK_STAGING"
"""A directory every node of the cluster sees at the same path, for staged rows and results."""

_RESULT_TABLES = ("checked", "suggested", "resolved")
"""What the DuckDB writers and figures read (one row per input row at most)."""


def spark_session() -> SparkSession:
    """The active Spark session, or a new one on :data:`MASTER_VARIABLE`.

    The Python workers run this interpreter (``PYSPARK_PYTHON``, unless set), which has dancu,
    DuckDB and Arrow; on a cluster the same environment must exist on every node.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise DancuError("--engine spark needs Java (17 or later): install it or set JAVA_HOME")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("dancu reconcile")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    master = os.environ.get(MASTER_VARIABLE)
    if master:
        builder = builder.master(master)
    try:
        spark = builder.getOrCreate()
    except PySparkException as exc:
        raise DancuError(f"--engine spark: Spark did not start ({exc})") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkWorkspace(Workspace):
    """The run's workspace on Spark: given rows in, ``checked``/``suggested``/``resolved`` out.

    The inherited methods (:meth:`load_snapshot`, :meth:`check`, :meth:`suggest`...) run
    unchanged through the :class:`SparkConnection`; this class stages the input, and hands the
    results to a DuckDB workspace for the writers.
    """

    def __init__(
        self, directory: Path, *, memory_limit: str = "512MB", spark: SparkSession | None = None
    ) -> None:
        # the DuckDB workspace's empty tables, whatever they are, become the Spark ones
        super().__init__(directory, memory_limit=memory_limit)
        duck = self.con
        self.spark = SparkConnection(spark or spark_session())
        for (table,) in duck.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            self.spark.register(str(table), duck.sql(f"SELECT * FROM {table}").to_arrow_table())
        duck.close()
        # the rules' SQL runs through the adapter, which speaks the part of DuckDB's API they use
        self.con = cast(duckdb.DuckDBPyConnection, self.spark)
        self.directory = directory
        self.memory_limit = memory_limit
        self.staging = self._staging(directory)
        self._given: pq.ParquetWriter | None = None
        self._finished: Workspace | None = None

    def _staging(self, directory: Path) -> Path | None:
        """Where Spark and this process exchange Parquet files, or None: through the driver."""
        shared = os.environ.get(STAGING_VARIABLE)
        if shared:
            path = Path(shared) / f"dancu-{uuid.uuid4().hex}"
        elif str(self.spark.spark.sparkContext.master).startswith("local"):
            path = directory / "staging"
        else:
            return None
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _local(self, name: str) -> Path:
        return self.directory / f"{name}.parquet"

    # --------------------------------------------------------------------- the input

    def add(self, batch: pa.RecordBatch) -> None:
        """Stage one normalised batch (:data:`GIVEN_SCHEMA`) as Parquet."""
        if self._given is None:
            path = (self.staging or self.directory) / "given.parquet"
            self._given = pq.ParquetWriter(path, GIVEN_SCHEMA)
        self._given.write_batch(batch.cast(GIVEN_SCHEMA))

    def _load_given(self) -> None:
        if self._given is None:
            return
        self._given.close()
        self._given = None
        path = (self.staging or self.directory) / "given.parquet"
        if self.staging is not None:
            frame = self.spark.spark.read.parquet(str(path))
        else:
            frame = self.spark.spark.createDataFrame(pq.read_table(path))
        self.spark.put("given", frame, persist=False)

    def load_register(self, session: Session) -> int:
        self._load_given()
        return super().load_register(session)

    def load_snapshot(self, path: Path) -> int:
        self._load_given()
        return super().load_snapshot(path)

    # --------------------------------------------------------------------- the output

    def _export(self, name: str) -> Path:
        """The Spark table ``name`` as Parquet files this process reads."""
        frame: DataFrame = self.spark.frame(name)
        if self.staging is not None:
            out = self.staging / f"out_{name}"
            frame.write.mode("overwrite").parquet(str(out))
            if any(out.glob("*.parquet")):
                return out
        local = self._local(name)
        pq.write_table(frame.toArrow(), local)
        return local

    def _finish(self) -> Workspace:
        """The DuckDB workspace holding the results (made once, after the Spark jobs)."""
        if self._finished is None:
            finished = Workspace(self.directory / "finish", memory_limit=self.memory_limit)
            for name in _RESULT_TABLES:
                path = self._export(name)
                files = path / "*.parquet" if path.is_dir() else path
                quoted = "'" + str(files).replace("'", "''") + "'"
                finished.con.execute(
                    f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet({quoted})"
                )
            self.spark.close()
            self._finished = finished
        return self._finished

    def write_results(self, csv_path: Path, parquet_path: Path) -> None:
        self._finish().write_results(csv_path, parquet_path)

    def results(self, batch_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
        yield from self._finish().results(batch_rows)

    def figures(self) -> Figures:
        return self._finish().figures()

    def close(self) -> None:
        """Free the Spark tables, close the DuckDB workspace, remove shared staging files."""
        if self._given is not None:
            self._given.close()
            self._given = None
        self.spark.close()
        if self._finished is not None:
            self._finished.close()
        if self.staging is not None and os.environ.get(STAGING_VARIABLE):
            shutil.rmtree(self.staging, ignore_errors=True)
