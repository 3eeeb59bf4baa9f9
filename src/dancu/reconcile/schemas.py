"""What the reconciliation API answers (issue 5 §5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class JobProgress(BaseModel):
    rows_done: int
    rows_total: int | None
    """Known up front for Excel and Parquet files; for CSV once the file is read."""


class JobRead(BaseModel):
    """A job as its client sees it: where it stands, and once done the counts of its results
    (the rows themselves come from ``results``)."""

    job_id: str
    status: str
    file_name: str
    file_bytes: int
    purpose: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    progress: JobProgress
    summary: dict[str, Any] | None
    error: str | None
    links: dict[str, str]
    request_id: str | None = None
