"""Topics over time: items and sentiment per topic per period, and which topics are emerging.

A topic is **emerging** in the latest period when it is new (created by the current version,
or silent through the whole baseline) with at least `min_count` items, or when it grows
significantly against its own baseline. Growth is tested against the topic's share of the
audience's volume, so a busy week does not make every topic "grow": conditional on the topic's
items in the latest period plus its baseline periods, the number in the latest period is
Binomial(x + X_base, n / (n + N_base)) under "no change" (the exact test for two Poisson rates),
where n and N_base are the audience's items in each. One-sided p-values are corrected over all
topics with Benjamini-Hochberg (`alpha`), and a significant topic must also have grown by
`min_ratio` in share, so a tiny but certain change is not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from feedback.analytics.cells import iso_week_label, period_start, respondent_key
from feedback.models import FeedbackItem, Tag

BASELINE_PERIODS = 8
MIN_COUNT = 5
MIN_RATIO = 1.5
ALPHA = 0.05


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass
class Series:
    """Per-period numbers for every topic of an audience, oldest period first."""

    periods: list[date]
    totals: dict[date, int]
    cells: dict[tuple[int, date], dict[str, Any]]  # (topic, period) -> n, sentiment, respondents

    def counts(self, topic_id: int) -> list[int]:
        return [int(self.cells.get((topic_id, p), {}).get("n", 0)) for p in self.periods]


def topic_series(
    session: Session,
    *,
    audience: str,
    interval: str = "week",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Series:
    """Items, mean sentiment, share negative and respondents per (topic, period)."""
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, interval, FeedbackItem.created_at).label("period")
    negative = case((Tag.sentiment == "negative", 1.0), else_=0.0)
    stmt = (
        select(
            period,
            Tag.topic_id,
            func.count().label("n"),
            func.avg(Tag.sentiment_score).label("mean_sentiment"),
            func.avg(negative).label("share_negative"),
            func.count(func.distinct(respondent_key())).label("respondents"),
        )
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .where(FeedbackItem.audience == audience)
        .group_by(period, Tag.topic_id)
    )
    if start is not None:
        stmt = stmt.where(FeedbackItem.created_at >= start)
    if end is not None:
        stmt = stmt.where(FeedbackItem.created_at < end)
    totals: dict[date, int] = {}
    cells: dict[tuple[int, date], dict[str, Any]] = {}
    for row in session.execute(stmt):
        p = _as_date(row.period)
        totals[p] = totals.get(p, 0) + int(row.n)
        if row.topic_id is not None:
            cells[(int(row.topic_id), p)] = {
                "n": int(row.n),
                "respondents": int(row.respondents),
                "mean_sentiment": None
                if row.mean_sentiment is None
                else round(float(row.mean_sentiment), 4),
                "share_negative": None
                if row.share_negative is None
                else round(float(row.share_negative), 4),
            }
    return Series(periods=sorted(totals), totals=totals, cells=cells)


def period_label(start: date, interval: str) -> str:
    return iso_week_label(start) if interval == "week" else start.isoformat()


def benjamini_hochberg(p_values: dict[int, float], alpha: float) -> set[int]:
    """The keys whose p-values pass Benjamini-Hochberg at `alpha`."""
    ranked = sorted(p_values.items(), key=lambda kv: kv[1])
    m = len(ranked)
    passed = 0
    for i, (_, p) in enumerate(ranked, start=1):
        if p <= alpha * i / m:
            passed = i
    return {k for k, _ in ranked[:passed]}


def growth_p_value(current: int, baseline: int, current_total: int, baseline_total: int) -> float:
    """One-sided p-value that the topic's share grew (exact conditional binomial test)."""
    from scipy.stats import binomtest

    if current + baseline == 0 or current_total == 0 or baseline_total == 0:
        return 1.0
    share = current_total / (current_total + baseline_total)
    return float(binomtest(current, current + baseline, share, alternative="greater").pvalue)


def emerging(
    series: Series,
    topic_ids: list[int],
    *,
    new_ids: set[int] | None = None,
    baseline_periods: int = BASELINE_PERIODS,
    min_count: int = MIN_COUNT,
    min_ratio: float = MIN_RATIO,
    alpha: float = ALPHA,
) -> dict[int, dict[str, Any]]:
    """Per topic: latest count, baseline rate, ratio, p-value, and whether it is emerging."""
    out: dict[int, dict[str, Any]] = {}
    if not series.periods:
        return {t: {"emerging": False, "reason": None} for t in topic_ids}
    latest = series.periods[-1]
    base = series.periods[-1 - baseline_periods : -1]
    n_latest = series.totals.get(latest, 0)
    n_base = sum(series.totals.get(p, 0) for p in base)
    p_values: dict[int, float] = {}
    for t in topic_ids:
        x = int(series.cells.get((t, latest), {}).get("n", 0))
        xb = sum(int(series.cells.get((t, p), {}).get("n", 0)) for p in base)
        share_now = x / n_latest if n_latest else 0.0
        share_base = xb / n_base if n_base else 0.0
        ratio = (share_now / share_base) if share_base else None
        p = growth_p_value(x, xb, n_latest, n_base) if base else 1.0
        p_values[t] = p
        out[t] = {
            "latest_period": latest.isoformat(),
            "latest": x,
            "baseline_mean": round(xb / len(base), 3) if base else None,
            "share_ratio": None if ratio is None else round(ratio, 3),
            "p_value": round(p, 6),
            "emerging": False,
            "reason": None,
        }
    significant = benjamini_hochberg(p_values, alpha)
    for t, row in out.items():
        silent_before = bool(base) and row["baseline_mean"] == 0
        if row["latest"] >= min_count and ((new_ids and t in new_ids) or silent_before):
            row.update(emerging=True, reason="new")
        elif (
            t in significant
            and row["latest"] >= min_count
            and (row["share_ratio"] or 0) >= min_ratio
        ):
            row.update(emerging=True, reason="growing")
    return out
