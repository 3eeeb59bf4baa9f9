"""Read and check batches in a second process while the first one writes to the database.

A national import is two kinds of work of about the same size: reading and checking rows
(Arrow kernels and name normalisation, CPU-bound) and loading them into the database. On a
machine with two or more cores the two overlap: a forked child reads and checks, the parent
loads. The queue between them is short, so memory stays bounded. Small inputs stay in one
process (forking costs more than it saves).

The child can also turn each valid batch into what the loader sends to the database (the COPY
input of a first load on PostgreSQL, see ``registry.first_load``), so that the loading
process only passes bytes on.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from dancu.errors import DancuError, Problem, ValidationFailed
from dancu.registry.interchange import NameMemo, Normalised, RawBatch, normalise

_QUEUE_DEPTH = 3
_POLL_SECONDS = 1.0


@dataclass(slots=True)
class Checked:
    """One checked batch: its size, the valid rows, the raw rejected rows (for rejects), and
    what ``prepare`` made of the valid rows when the batch has no problem."""

    rows_read: int
    result: Normalised
    rejected_raw: list[dict[str, Any]]
    payload: Any = None


def _rejected_raw(raw: RawBatch, result: Normalised) -> list[dict[str, Any]]:
    bad = {p.row for p in result.problems}
    if not bad:
        return []
    columns = {n: raw.batch.column(n) for n in raw.batch.schema.names}
    out = []
    for i, number in enumerate(raw.rows):
        if int(number) in bad:
            row = {n: col[i].as_py() for n, col in columns.items()}
            row["row"] = int(number)
            out.append(row)
    return out


Prepare = Callable[[pa.Table], Any]


class Survey(Protocol):
    """What the checking process learns from the whole stream (``registry.first_load``'s
    whole-file checks): ``add`` sees the valid rows of each problem-free batch, ``finish`` returns
    a picklable summary after the last one, and ``received`` hands that summary to the loading
    process's copy of the survey."""

    def add(self, table: pa.Table) -> None: ...

    def finish(self) -> Any: ...

    def received(self, summary: Any) -> None: ...


def _check_all(
    batches: Iterable[RawBatch],
    communes: frozenset[str],
    today: dt.date,
    prepare: Prepare | None,
    survey: Survey | None = None,
) -> Iterator[Checked]:
    names = NameMemo()
    for raw in batches:
        result = normalise(raw, communes=communes, today=today, names=names)
        payload = None
        if survey and not result.problems:
            survey.add(result.table)
        if prepare and not result.problems:
            payload = prepare(result.table)
            # The payload replaces the rows: do not send them through the queue as well.
            result = Normalised(result.table.slice(0, 0), result.problems)
        yield Checked(raw.batch.num_rows, result, _rejected_raw(raw, result), payload)


def _child(
    batches: Iterable[RawBatch],
    communes: frozenset[str],
    today: dt.date,
    malformed: list[Problem],
    prepare: Prepare | None,
    survey: Survey | None,
    out: Any,
) -> None:
    try:
        for checked in _check_all(batches, communes, today, prepare, survey):
            out.put(("batch", checked))
        out.put(("done", (malformed, survey.finish() if survey else None)))
    except ValidationFailed as exc:
        out.put(("invalid", (exc.message, exc.problems)))
    except DancuError as exc:
        out.put(("error", (exc.message, exc.code, exc.status)))
    except BaseException as exc:  # report anything else to the parent instead of hanging it
        out.put(("crash", f"{type(exc).__name__}: {exc}"))


def checked_batches(
    batches: Iterable[RawBatch],
    *,
    communes: frozenset[str],
    today: dt.date,
    malformed: list[Problem],
    parallel: bool,
    prepare: Prepare | None = None,
    survey: Survey | None = None,
) -> Generator[Checked, None, None]:
    """Check ``batches``, in a forked child when ``parallel``; rows with the wrong number of
    fields that the reader found are appended to ``malformed`` by the end of the stream.
    ``prepare`` (run where the checking runs) gives each problem-free batch its payload;
    ``survey`` (also run there) has received its summary by the end of the stream."""
    if not parallel or (os.cpu_count() or 1) < 2 or "fork" not in mp.get_all_start_methods():
        yield from _check_all(batches, communes, today, prepare, survey)
        if survey:
            survey.received(survey.finish())
        return
    ctx = mp.get_context("fork")
    out = ctx.Queue(maxsize=_QUEUE_DEPTH)
    child = ctx.Process(
        target=_child,
        args=(batches, communes, today, malformed, prepare, survey, out),
        daemon=True,
    )
    child.start()
    try:
        while True:
            try:
                kind, payload = out.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not child.is_alive():
                    raise DancuError(
                        f"the reading process stopped unexpectedly (exit code {child.exitcode})",
                        code="internal_error",
                        status=500,
                    ) from None
                continue
            if kind == "batch":
                yield payload
            elif kind == "done":
                rows, summary = payload
                malformed.extend(rows)
                if survey:
                    survey.received(summary)
                return
            elif kind == "invalid":
                message, problems = payload
                raise ValidationFailed(message, problems)
            elif kind == "error":
                message, code, status = payload
                raise DancuError(message, code=code, status=status)
            else:
                raise DancuError(f"reading failed: {payload}", code="internal_error", status=500)
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=5)
        out.close()
