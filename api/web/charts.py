"""Chart geometry for the pages' inline SVG: lines with 95% bands, the journey curve, sparklines, bars.

Only numbers and names are computed here; `templates/_charts.html` draws them with Jinja's
autoescaping on (a touchpoint or topic name from the data never becomes markup), with SVG
attributes only (the pages' CSP allows no inline style). Colours are the Okabe-Ito palette,
which stays distinct under every common colour-vision deficiency; lines also differ by dash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3", "8 3 2 3")


@dataclass
class Line:
    name: str
    color: str
    dash: str
    segments: list[str]  # polyline runs "x,y x,y"; a missing value splits a run
    bands: list[str]  # polygon per run: the 95% interval
    dots: list[tuple[float, float, str]]  # x, y, tooltip


@dataclass
class LineChart:
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
    lines: list[Line] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical rules: x, label


def _nice_range(values: Sequence[float], floor: float | None, ceiling: float | None) -> tuple[float, float]:
    low, high = min(values), max(values)
    if floor is not None and ceiling is not None and floor <= 0 <= ceiling:
        low, high = min(low, 0.0), max(high, 0.0)
    if math.isclose(low, high):
        low, high = low - 1, high + 1
    step = _step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    if floor is not None:
        low = max(floor, low)
    if ceiling is not None:
        high = min(ceiling, high)
    return low, high


def _step(span: float) -> float:
    raw = span / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _fmt(value: float, percent: bool) -> str:
    if round(value * 100 if percent else value, 0 if percent else 2) == 0:
        value = 0.0  # never "-0.00"
    if percent:
        return f"{value * 100:.0f}%"
    if abs(value) >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}"


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], Sequence[float | None], Sequence[float | None]]],
    *,
    title: str,
    floor: float | None = None,
    ceiling: float | None = None,
    percent: bool = False,
    marks: Sequence[tuple[int, str]] = (),
    width: int = 720,
    height: int = 260,
) -> LineChart | None:
    """Lines (name, values, interval lows, interval highs) over `x_labels`; None without data."""
    values = [v for _, points, lows, highs in series for group in (points, lows, highs) for v in group
              if v is not None]
    if not values or len(x_labels) < 2:
        return None
    low, high = _nice_range(values, floor, ceiling)
    left, top, right, bottom = 56.0, 16.0, width - 16.0, height - 40.0

    def x(i: int) -> float:
        return round(left + (right - left) * i / (len(x_labels) - 1), 1)

    def y(v: float) -> float:
        v = min(max(v, low), high)
        return round(bottom - (bottom - top) * (v - low) / (high - low), 1)

    every = max(1, math.ceil(len(x_labels) / 10))
    step = _step(high - low)
    ticks, t = [], low
    while t <= high + step / 1000:
        ticks.append((y(t), _fmt(t, percent)))
        t += step
    chart = LineChart(title, width, height, left, top, right, bottom,
                      [(x(i), label) for i, label in enumerate(x_labels) if i % every == 0],
                      ticks, y(0.0) if low < 0 < high else None,
                      marks=[(x(i), label) for i, label in marks if 0 <= i < len(x_labels)])
    for k, (name, points, lows, highs) in enumerate(series):
        line = Line(name, OKABE_ITO[k % len(OKABE_ITO)], DASHES[k % len(DASHES)], [], [], [])
        run: list[int] = []
        for i in [*range(len(points)), None]:
            if i is not None and points[i] is not None:
                run.append(i)
                continue
            if run:
                line.segments.append(" ".join(f"{x(j)},{y(points[j])}" for j in run))  # type: ignore[arg-type]
                if all(lows[j] is not None and highs[j] is not None for j in run) and len(run) > 1:
                    upper = [f"{x(j)},{y(highs[j])}" for j in run]  # type: ignore[arg-type]
                    lower = [f"{x(j)},{y(lows[j])}" for j in reversed(run)]  # type: ignore[arg-type]
                    line.bands.append(" ".join(upper + lower))
            run = []
        for i, v in enumerate(points):
            if v is not None:
                line.dots.append((x(i), y(v), f"{name}, {x_labels[i]}: {_fmt(v, percent)}"))
        chart.lines.append(line)
    return chart


@dataclass
class JourneyPoint:
    x: float
    y: float | None
    low: float | None
    high: float | None
    name: str
    value: str
    worst: bool
    suppressed: bool


@dataclass
class JourneyChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    y_ticks: list[tuple[float, str]]
    zero_y: float | None
    curve: list[str]
    points: list[JourneyPoint]
    stages: list[tuple[float, float, str]]  # x from, x to, stage name


def journey_chart(steps: Sequence[dict], *, metric: str = "mean_sentiment", width: int = 900,
                  height: int = 300) -> JourneyChart | None:
    """The emotional curve across touchpoints: the metric with its interval per step, grouped by stage."""
    if not steps:
        return None
    values = [v for s in steps for v in (s.get(metric), s.get(f"{metric}_ci_low"), s.get(f"{metric}_ci_high"))
              if v is not None]
    if not values:
        return None
    bounds = (-100.0, 100.0) if metric == "nps" else (0.0, 1.0) if metric in ("csat", "share_negative") else \
        (1.0, 5.0) if metric == "mean_rating" else (-1.0, 1.0)
    low, high = _nice_range(values, *bounds)
    left, top, right, bottom = 56.0, 30.0, width - 24.0, height - 56.0
    slot = (right - left) / len(steps)

    def x(i: int) -> float:
        return round(left + slot * (i + 0.5), 1)

    def y(v: float) -> float:
        return round(bottom - (bottom - top) * (min(max(v, low), high) - low) / (high - low), 1)

    step = _step(high - low)
    ticks, t = [], low
    while t <= high + step / 1000:
        ticks.append((y(t), _fmt(t, False)))
        t += step
    points, curve, run = [], [], []
    for i, s in enumerate(steps):
        v = s.get(metric)
        lo, hi = s.get(f"{metric}_ci_low"), s.get(f"{metric}_ci_high")
        points.append(JourneyPoint(x(i), y(v) if v is not None else None, y(lo) if lo is not None else None,
                                   y(hi) if hi is not None else None, s["touchpoint"],
                                   _fmt(v, False) if v is not None else "–", bool(s.get("worst")),
                                   bool(s.get("suppressed"))))
        if v is None:
            if run:
                curve.append(" ".join(run))
            run = []
        else:
            run.append(f"{x(i)},{y(v)}")
    if run:
        curve.append(" ".join(run))
    stages: list[tuple[float, float, str]] = []
    for i, s in enumerate(steps):
        stage = s.get("journey_stage") or ""
        start = round(left + slot * i, 1)
        if stages and stages[-1][2] == stage:
            stages[-1] = (stages[-1][0], round(start + slot, 1), stage)
        else:
            stages.append((start, round(start + slot, 1), stage))
    return JourneyChart(width, height, left, right, top, bottom, ticks, y(0.0) if low < 0 < high else None,
                        curve, points, stages)


@dataclass
class Sparkline:
    width: int
    height: int
    points: str
    last: tuple[float, float] | None
    description: str


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 28) -> Sparkline | None:
    """A small line of counts; gaps (hidden cells) drawn as zero-less breaks."""
    shown = [v for v in values if v is not None]
    if len(values) < 2 or not shown:
        return None
    high = max(shown) or 1.0
    pad = 3.0

    def x(i: int) -> float:
        return round(pad + (width - 2 * pad) * i / (len(values) - 1), 1)

    def y(v: float) -> float:
        return round(height - pad - (height - 2 * pad) * v / high, 1)

    coords = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
    text = ", ".join("–" if v is None else f"{v:g}" for v in values)
    return Sparkline(width, height, " ".join(f"{a},{b}" for a, b in coords), coords[-1], text)


@dataclass
class Bars:
    width: int
    height: int
    bars: list[tuple[float, float, float, str]]  # x, y, height, tooltip
    bar_width: float
    labels: list[tuple[float, str]]
    max_label: str


def bar_chart(labels: Sequence[str], values: Sequence[float | None], *, width: int = 720,
              height: int = 120) -> Bars | None:
    """Volume per period as bars (a hidden cell is a gap)."""
    shown = [v for v in values if v is not None]
    if not shown:
        return None
    high = max(shown) or 1.0
    left, right, top, bottom = 56.0, width - 16.0, 8.0, height - 22.0
    slot = (right - left) / len(values)
    every = max(1, math.ceil(len(labels) / 10))
    bars = []
    for i, v in enumerate(values):
        if v is None:
            continue
        h = (bottom - top) * v / high
        bars.append((round(left + slot * i + slot * 0.15, 1), round(bottom - h, 1), round(h, 1),
                     f"{labels[i]}: {v:g}"))
    return Bars(width, height, bars, round(slot * 0.7, 1),
                [(round(left + slot * (i + 0.5), 1), lab) for i, lab in enumerate(labels) if i % every == 0],
                f"{high:g}")
