"""Export the register in the interchange format (CONTRACTS.md section 2), streamed.

Rows are read in primary-key order with keyset pagination, so memory stays bounded and the
output is deterministic: export then import round-trips exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.errors import ValidationFailed
from dancu.registry.interchange import COLUMNS, STRING_SCHEMA, format_partial
from dancu.registry.models import Citizen

SCHEMA = STRING_SCHEMA
_SELECTED = (
    Citizen.personal_id,
    Citizen.full_name,
    Citizen.birth_date,
    Citizen.birth_date_precision,
    Citizen.sex,
    Citizen.status,
    Citizen.death_date,
    Citizen.legacy_id_number,
    Citizen.permanent_commune_code,
    Citizen.permanent_address,
    Citizen.household_code,
    Citizen.relationship_to_head,
    Citizen.father_id,
    Citizen.mother_id,
    Citizen.spouse_id,
    Citizen.ethnicity,
    Citizen.religion,
    Citizen.nationality,
    Citizen.place_of_origin,
    Citizen.phone,
)


def _batch(rows: list[tuple[object, ...]]) -> pa.RecordBatch:
    cols: list[list[str | None]] = [[] for _ in COLUMNS]
    for r in rows:
        (pid, name, birth, precision, sex, status, death, *rest) = r
        cols[0].append(pid)  # type: ignore[arg-type]
        cols[1].append(name)  # type: ignore[arg-type]
        cols[2].append(format_partial(birth, str(precision)))  # type: ignore[arg-type]
        cols[3].append(sex)  # type: ignore[arg-type]
        cols[4].append(status)  # type: ignore[arg-type]
        cols[5].append(str(death)[:10] if death is not None else None)
        for i, value in enumerate(rest, start=6):
            cols[i].append(value)  # type: ignore[arg-type]
    return pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in cols], schema=SCHEMA)


def export_file(
    session: Session,
    path: Path,
    *,
    chunk_rows: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every citizen to ``path`` (.csv or .parquet); returns the number of rows.

    Writes to a temporary name and renames, so an interrupted export leaves no half file.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValidationFailed(
            f"{path.name}: unsupported file type {suffix!r}; use .csv or .parquet"
        )
    tmp = path.with_name(f".{path.name}.partial")
    written = 0
    writer: pcsv.CSVWriter | pq.ParquetWriter
    if suffix == ".csv":
        writer = pcsv.CSVWriter(
            tmp, SCHEMA, write_options=pcsv.WriteOptions(quoting_style="needed")
        )
    else:
        writer = pq.ParquetWriter(tmp, SCHEMA, compression="zstd")
    try:
        last = ""
        while True:
            rows = [
                tuple(r)
                for r in session.execute(
                    select(*_SELECTED)
                    .where(Citizen.personal_id > last)
                    .order_by(Citizen.personal_id)
                    .limit(chunk_rows)
                )
            ]
            if not rows:
                break
            writer.write_batch(_batch(rows))
            written += len(rows)
            last = str(rows[-1][0])
            if progress:
                progress(len(rows))
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return written
