"""The charts of ``report.html`` (Plotly), imported only when a report is written.

:mod:`dancu.reconcile.report` loads this module with ``importlib`` when it writes
``report.html``, so that starting ``dancu`` (``dancu reconcile --help``, a run that fails on
its input) does not import Plotly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from dancu.reconcile.exact import MISMATCH_FIELDS, STATUSES
from dancu.reconcile.report import COLOURS, FIELD_LABELS, STAGES, STATUS_LABELS

__all__ = ["charts_html"]


def _bar(
    labels: Sequence[str],
    values: Sequence[float],
    colours: Sequence[str] | None,
    title: str,
    *,
    flip: bool,
) -> go.Figure:
    labels, values = list(labels), list(values)
    bar = (
        go.Bar(y=labels, x=values, orientation="h", marker_color=colours, text=values)
        if flip
        else go.Bar(x=labels, y=values, marker_color=colours, text=values)
    )
    fig = go.Figure(bar)
    fig.update_layout(title=title, height=360, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def _province_figure(provinces: list[dict[str, Any]]) -> go.Figure:
    names = [p["province"] for p in provinces][::-1]
    fig = go.Figure()
    for status in STATUSES:
        fig.add_trace(
            go.Bar(
                y=names,
                x=[p["statuses"][status] for p in provinces][::-1],
                name=f"{STATUS_LABELS[status][0]} ({status})",
                orientation="h",
                marker_color=COLOURS[status],
            )
        )
    fig.update_layout(
        barmode="stack",
        title="Theo tỉnh, thành phố (by province of the register's permanent commune)",
        height=max(360, 24 * len(names) + 120),
        margin={"l": 160, "r": 20, "t": 50, "b": 40},
    )
    return fig


def _province_mismatch_figure(provinces: list[dict[str, Any]]) -> go.Figure:
    names = [p["province"] for p in provinces][::-1]
    fig = go.Figure()
    for name in MISMATCH_FIELDS:
        fig.add_trace(
            go.Bar(
                y=names,
                x=[p["mismatched_fields"][name] for p in provinces][::-1],
                name=f"{FIELD_LABELS[name]} ({name})",
                orientation="h",
            )
        )
    fig.update_layout(
        barmode="stack",
        title="Sai lệch theo tỉnh và trường (mismatches by province and field)",
        height=max(360, 24 * len(names) + 120),
        margin={"l": 160, "r": 20, "t": 50, "b": 40},
    )
    return fig


def charts_html(summary: Mapping[str, Any]) -> list[str]:
    """The report's charts as HTML fragments: statuses, mismatched fields, statuses and
    mismatches by province, stage timings; Plotly's JavaScript inline in the first."""
    statuses: dict[str, int] = summary["statuses"]
    fields: dict[str, int] = summary["mismatched_fields"]
    timings: dict[str, float] = summary["timings"]
    stages = [k for k in STAGES if k in timings]
    figures = [
        _bar(
            [f"{STATUS_LABELS[s][0]} ({s})" for s in STATUSES],
            [statuses[s] for s in STATUSES],
            [COLOURS[s] for s in STATUSES],
            "Kết quả theo trạng thái (rows by status)",
            flip=False,
        ),
        _bar(
            [f"{FIELD_LABELS[f]} ({f})" for f in MISMATCH_FIELDS],
            [fields[f] for f in MISMATCH_FIELDS],
            None,
            "Trường sai lệch (mismatches by field)",
            flip=False,
        ),
        _province_figure(summary["provinces"]),
        _province_mismatch_figure(summary["provinces"]),
        _bar(
            stages,
            [round(timings[k], 2) for k in stages],
            None,
            "Thời gian từng bước, giây (stage timings, seconds)",
            flip=True,
        ),
    ]
    return [
        pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, config={"responsive": True})
        for i, fig in enumerate(figures)
    ]
