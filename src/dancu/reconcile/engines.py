"""Which engine runs a reconciliation (``dancu reconcile --engine``): DuckDB on this machine,
the default, or Apache Spark for registers and files larger than one machine.

Both run the same stages and the same SQL (:mod:`dancu.reconcile.spark_engine`) and write the
same results; only the workspace the service works in differs. Spark is the optional extra
``dancu[spark]``: :mod:`pyspark` is imported only when the Spark engine is asked for (it takes
about a second to import, and most installations never need it), which is why this module
loads the engine with :func:`importlib.import_module` rather than an import statement.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import cast

from dancu.enums import ReconcileEngine
from dancu.errors import DancuError
from dancu.reconcile.exact import Workspace

__all__ = ["DEFAULT_ENGINE", "ENGINES", "workspace"]

ENGINES: tuple[str, ...] = tuple(ReconcileEngine)
DEFAULT_ENGINE: str = ReconcileEngine.DUCKDB


def workspace(engine: str, directory: Path, *, memory_limit: str) -> Workspace:
    """A new workspace of ``engine`` in the run's scratch ``directory``.

    Raises DancuError for an unknown engine, or when the Spark extra is not installed.
    """
    if engine == ReconcileEngine.DUCKDB:
        return Workspace(directory, memory_limit=memory_limit)
    if engine != ReconcileEngine.SPARK:
        raise DancuError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if importlib.util.find_spec("pyspark") is None:
        raise DancuError(
            "--engine spark needs Apache Spark: install the extra with pip install 'dancu[spark]'"
        )
    module = importlib.import_module("dancu.reconcile.spark_engine")
    return cast(Workspace, module.SparkWorkspace(directory, memory_limit=memory_limit))
