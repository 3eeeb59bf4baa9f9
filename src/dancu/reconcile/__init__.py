"""Reconciliation of sectoral files against the population register (CONTRACTS §3).

``service.reconcile`` is the verb; ``dancu.cli.reconcile`` the ``dancu reconcile`` command. The
modules, in the order a row meets them: ``columns`` (which column is which field), ``reader``
(CSV, Excel, Parquet as string batches), ``normalise`` (the register's rules, per distinct
value), ``exact`` (status, fields and duplicates in DuckDB), ``report`` (summary, HTML report,
Excel workbook). The suggestion track (``suggested_id``) is not implemented yet.
"""
