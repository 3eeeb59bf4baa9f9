"""What every ``dancu`` command shares: its consoles, its progress bar and its user errors.

Long commands show a progress bar with rows/s on a terminal and stay quiet otherwise
(CONTRACTS.md section 1); a user error prints the message and every problem (row, column,
reason) on stderr and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dancu.errors import DancuError, ValidationFailed

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def fail(exc: DancuError, *, after: str | None = None) -> typer.Exit:
    """Print a user error with every problem it lists; the caller raises the returned exit 1."""
    err.print(f"error: {exc.message}", markup=False)
    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
    if after:
        err.print(after, markup=False)
    return typer.Exit(1)


@contextmanager
def progress(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(advance, set_total) callbacks: a live bar with rows/s on a terminal, nothing otherwise."""
    if not sys.stdout.isatty():
        yield (lambda _n: None), (lambda _n: None)
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out,
    )
    task = bar.add_task(label, total=None, rate="")
    with bar:

        def advance(n: int) -> None:
            bar.advance(task, n)
            current = bar.tasks[0]
            if current.elapsed:
                bar.update(task, rate=f"{current.completed / current.elapsed:,.0f} rows/s")

        yield advance, (lambda total: bar.update(task, total=total))
