"""``dancu seed``: load a synthetic nation through the same importer as a real file.

People arrive in the interchange format (``registry.synth``) and go through every check of an
import; temporary residences (tạm trú), which the interchange format does not carry, are
added for some living adults afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import pyarrow as pa
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dancu.registry import importer, interchange, synth
from dancu.registry.models import Citizen, Residence


def seed(
    session: Session,
    n: int,
    seed_value: int,
    communes: Sequence[synth.CommuneWeight],
    *,
    name: str | None = None,
    actor: str = "seed",
    progress: importer.Progress | None = None,
) -> importer.ImportReport:
    """Generate ``n`` people deterministically from ``seed_value`` and load them."""
    temporary: list[pa.RecordBatch] = []

    def tee() -> Iterator[pa.RecordBatch]:
        for batch in synth.generate(n, seed_value, communes):
            temporary.append(synth.temporary_residences(batch, seed_value, communes))
            yield batch

    report = importer.load(
        session,
        interchange.number_batches(tee()),
        source="seed",
        name=name or f"seed:{n}:{seed_value}",
        actor=actor,
        progress=progress,
    )
    if report.inserted:
        _add_temporary(session, temporary)
    return report


def _add_temporary(session: Session, batches: list[pa.RecordBatch]) -> None:
    now = dt.datetime.now(dt.UTC)
    for batch in batches:
        rows = batch.to_pylist()
        if not rows:
            continue
        ids = [r["personal_id"] for r in rows]
        present = set(session.scalars(select(Citizen.personal_id).where(Citizen.personal_id.in_(ids))))
        session.execute(
            insert(Residence),
            [
                {
                    "personal_id": r["personal_id"],
                    "kind": "temporary",
                    "commune_code": r["commune_code"],
                    "address": r["address"],
                    "valid_from": dt.date.fromisoformat(r["start_date"]),
                    "valid_to": dt.date.fromisoformat(r["end_date"]) if r["end_date"] else None,
                    "created_at": now,
                }
                for r in rows
                if r["personal_id"] in present
            ],
        )
