"""Reconciliation jobs submitted by partners over the API (issue 5 §5).

A job is a file a partner client uploaded, the purpose it stated, and where the run stands.
The file and the results live in the jobs directory (``DANCU_RECONCILE_JOB_DIR``), not in the
database: a sectoral file can weigh hundreds of megabytes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dancu.audit.models import UtcDateTime
from dancu.db import Base


class ReconcileJob(Base):
    """One ``dancu reconcile`` run asked for by a partner client."""

    __tablename__ = "reconcile_job"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index("ix_reconcile_job_status_created_at", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    organization: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    file_name: Mapped[str] = mapped_column(String(300))
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    # --column mappings (field -> header) and --sheet, as the partner gave them
    options: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    # the counts of summary.json once done (statuses, mismatched fields, duplicates, rates)
    summary: Mapped[dict[str, object] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(1000))
    request_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
