"""Chart geometry for the digest's inline SVG: a weekly line per touchpoint, the journey curve.

Only numbers and names are computed here; `templates/charts.svg.j2` draws them with Jinja's
autoescaping on, so a touchpoint or team name from the data can never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#ea580c",
    "#7c3aed",
    "#0891b2",
    "#be185d",
    "#65a30d",
    "#92400e",
    "#475569",
    "#ca8a04",
    "#4f46e5",
)


@dataclass
class Series:
    name: str
    color: str
    segments: list[str]  # SVG polyline "x,y x,y ..." runs; a gap (no data) splits a run
    dots: list[tuple[float, float]]
    emphasis: bool = False


@dataclass
class Chart:
    title: str
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    x_labels: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    zero_y: float | None
    series: list[Series] = field(default_factory=list)
    # Journey charts: a label over each point and a 95% interval under it.
    point_labels: list[tuple[float, float, str]] = field(default_factory=list)
    whiskers: list[tuple[float, float, float]] = field(default_factory=list)
    legend: bool = True
    y_title: str = "mean sentiment"


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    """A range over the values and 0, rounded out to steps of 0.25, within [-1, 1]."""
    low, high = min([*values, 0.0]), max([*values, 0.0])
    low, high = math.floor(low * 4 - 0.2) / 4, math.ceil(high * 4 + 0.2) / 4
    return max(-1.0, low), min(1.0, high)


def _ticks(low: float, high: float) -> list[float]:
    step = 0.25 if high - low <= 1.0 else 0.5
    ticks, value = [], math.ceil(low / step) * step
    while value <= high + 1e-9:
        ticks.append(round(value, 2))
        value += step
    return ticks


def trend_chart(
    weeks: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    emphasis: Sequence[str] = (),
    width: int = 720,
    height: int = 300,
) -> Chart | None:
    """One line per series over the weeks; `emphasis` names are drawn thicker."""
    values = [v for points in series.values() for v in points if v is not None]
    if not values or len(weeks) < 2:
        return None
    low, high = _y_range(values)
    left, top, right, bottom = 52.0, 28.0, width - 150.0, height - 34.0

    def x(i: int) -> float:
        return round(left + (right - left) * i / (len(weeks) - 1), 1)

    def y(v: float) -> float:
        return round(bottom - (bottom - top) * (v - low) / (high - low), 1)

    chart = Chart(
        title=title,
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        x_labels=[(x(i), w.split("-")[-1]) for i, w in enumerate(weeks)],
        y_ticks=[(y(t), f"{t:+.2f}" if t else "0") for t in _ticks(low, high)],
        zero_y=y(0.0) if low < 0 < high else None,
    )
    for k, (name, points) in enumerate(series.items()):
        segments: list[str] = []
        run: list[str] = []
        dots: list[tuple[float, float]] = []
        for i, v in enumerate(points):
            if v is None:
                if run:
                    segments.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(i)},{y(v)}")
            dots.append((x(i), y(v)))
        if run:
            segments.append(" ".join(run))
        chart.series.append(
            Series(
                name=name,
                color=PALETTE[k % len(PALETTE)],
                segments=segments,
                dots=dots,
                emphasis=name in emphasis,
            )
        )
    return chart


def journey_chart(
    steps: Sequence[Mapping[str, Any]],
    *,
    title: str,
    name_key: str = "touchpoint",
    width: int = 720,
    height: int = 280,
) -> Chart | None:
    """The journey's emotion curve: mean sentiment per step in order, its 95% interval, and the
    dominant CX emotion over each point."""
    shown = [s for s in steps if not s.get("suppressed") and s.get("mean_sentiment") is not None]
    if len(shown) < 2:
        return None
    values = [float(s["mean_sentiment"]) for s in shown]
    for s in shown:
        if s.get("ci95"):
            values += [float(v) for v in s["ci95"]]
    low, high = _y_range(values)
    left, top, right, bottom = 52.0, 34.0, width - 30.0, height - 34.0
    inset = 48.0  # keeps the first and last step's labels clear of the axis
    step = (right - left - 2 * inset) / (len(shown) - 1)

    def y(v: float) -> float:
        return round(bottom - (bottom - top) * (v - low) / (high - low), 1)

    chart = Chart(
        title=title,
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        x_labels=[
            (round(left + inset + i * step, 1), str(s[name_key])) for i, s in enumerate(shown)
        ],
        y_ticks=[(y(t), f"{t:+.2f}" if t else "0") for t in _ticks(low, high)],
        zero_y=y(0.0) if low < 0 < high else None,
        legend=False,
    )
    points = [
        (round(left + inset + i * step, 1), y(float(s["mean_sentiment"])))
        for i, s in enumerate(shown)
    ]
    chart.series.append(
        Series(
            name="journey",
            color=PALETTE[0],
            segments=[" ".join(f"{px},{py}" for px, py in points)],
            dots=points,
        )
    )
    for (px, py), s in zip(points, shown, strict=True):
        label_y = py
        ci = s.get("ci95")
        if ci:
            low_y, high_y = y(float(ci[0])), y(float(ci[1]))
            chart.whiskers.append((px, low_y, high_y))
            label_y = min(py, high_y)
        if s.get("top_emotion"):
            chart.point_labels.append(
                (px, round(max(top - 8, label_y - 8), 1), str(s["top_emotion"]))
            )
    return chart
