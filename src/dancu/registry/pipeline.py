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

import dataclasses
import datetime as dt
import mmap
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
# Shared buffers for the payloads' bytes: one per batch in the queue, one the loader is
# writing, one the checking process is filling. Pages are touched only as they are used.
_SHARED_BUFFERS = _QUEUE_DEPTH + 2
_SHARED_BYTES = 64 << 20
# The first rows go to the loader in small batches, so that the database starts writing
# while the checking process reads on (a first batch of 50,000 rows kept it idle for 0.8 s
# of a 1M-row import); after these, the reader's own batch size.
_FIRST_BATCHES = (2_000, 8_000)


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


class Shared:
    """Buffers shared by the checking and the loading process (anonymous shared memory,
    inherited by the fork), through which a payload's bytes (its ``data``: the COPY input of a
    first load) go instead of through the queue's pipe: the checking process copies them in
    once, the loader reads them in place, and neither pickles, pipes nor allocates them
    again. A buffer is the checking process's until it is sent, then the loader's until it
    asks for the next batch; ``free`` carries the numbers of the buffers back.
    """

    def __init__(self, ctx: Any) -> None:
        self.buffers = [mmap.mmap(-1, _SHARED_BYTES) for _ in range(_SHARED_BUFFERS)]
        self.free = ctx.Queue()

    def lend(self) -> None:
        """Put every buffer's number on ``free``: once the checking process is forked, since a
        queue's first ``put`` starts its feeder thread, and a fork should find no thread."""
        for number in range(_SHARED_BUFFERS):
            self.free.put(number)

    def send(self, checked: Checked) -> tuple[Checked, tuple[int, int] | None]:
        """In the checking process: the batch to put on the queue, with where its payload's
        bytes are (``None``: they travel with it, being too large for a buffer)."""
        data = getattr(checked.payload, "data", None)
        if data is None or not dataclasses.is_dataclass(checked.payload):
            return checked, None
        size = len(memoryview(data).cast("B"))
        if size > _SHARED_BYTES:
            payload = dataclasses.replace(checked.payload, data=bytes(data))  # type: ignore[type-var]
            return dataclasses.replace(checked, payload=payload), None
        number = self.free.get()
        self.buffers[number][:size] = data
        payload = dataclasses.replace(checked.payload, data=b"")  # type: ignore[type-var]
        return dataclasses.replace(checked, payload=payload), (number, size)

    def receive(self, checked: Checked, where: tuple[int, int] | None) -> Checked:
        """In the loader: the batch with its payload's bytes in place (a view of a buffer)."""
        if where is None:
            return checked
        number, size = where
        view = memoryview(self.buffers[number])[:size]
        payload = dataclasses.replace(checked.payload, data=view)
        return dataclasses.replace(checked, payload=payload)

    def release(self, where: tuple[int, int] | None) -> None:
        if where is not None:
            self.free.put(where[0])

    def close(self) -> None:
        self.free.close()
        for buffer in self.buffers:
            try:
                buffer.close()
            except BufferError:  # a view of it is still held: closed when collected
                pass


def sooner(
    batches: Iterable[RawBatch], sizes: tuple[int, ...] = _FIRST_BATCHES
) -> Iterator[RawBatch]:
    """``batches`` with the reader's first batch cut into batches of ``sizes`` rows (as many
    as it holds more rows than), then the rest of it; the same rows with the same numbers, in
    order, and every later batch as it comes."""
    pending = list(sizes)
    for raw in batches:
        start = 0
        while pending and raw.batch.num_rows - start > pending[0]:
            size = pending.pop(0)
            yield RawBatch(raw.batch.slice(start, size), raw.rows[start : start + size])
            start += size
        if start:
            raw = RawBatch(raw.batch.slice(start), raw.rows[start:])
        yield raw
        pending.clear()


def _child(
    batches: Iterable[RawBatch],
    communes: frozenset[str],
    today: dt.date,
    malformed: list[Problem],
    prepare: Prepare | None,
    survey: Survey | None,
    out: Any,
    shared: Shared | None = None,
) -> None:
    try:
        for checked in _check_all(batches, communes, today, prepare, survey):
            sent, where = shared.send(checked) if shared else (checked, None)
            out.put(("batch", (sent, where)))
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
    shared = Shared(ctx) if prepare else None
    child = ctx.Process(
        target=_child,
        args=(sooner(batches), communes, today, malformed, prepare, survey, out, shared),
        daemon=True,
    )
    child.start()
    if shared:
        shared.lend()
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
                checked, where = payload
                if shared:
                    checked = shared.receive(checked, where)
                yield checked
                del checked
                if shared:
                    shared.release(where)
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
        if shared:
            shared.close()
