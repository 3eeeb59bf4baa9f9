"""Reconciliation of sectoral files against the population register (CONTRACTS §3).

``service.reconcile`` is the verb; ``dancu.cli.reconcile`` the ``dancu reconcile`` command;
``router`` and ``jobs`` the same run for partners over the API. The modules, in the order a row
meets them: ``columns`` (which column is which field), ``reader`` (CSV, Excel, Parquet as
string batches), ``normalise`` (the register's rules, per distinct value), ``exact`` (status and
fields in DuckDB), ``suggest`` and ``linkage`` (the person a row most probably describes: record
linkage in DuckDB), ``duplicates`` (``duplicate_of``), ``report`` (summary, HTML report, Excel
workbook).
"""
