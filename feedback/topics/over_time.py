"""Topics over time: items and sentiment per topic per period, and which topics are emerging.

One rule (`EmergingRule`, `emerging_from_counts`) decides "emerging" for `/v1/topics` and for
the weekly digest's topic alerts, so the two never disagree. A topic is **emerging** in the
latest period when it is new (created by the current model version) with at least `min_count`
items, or when its *share* of the audience's items grew significantly against its baseline
periods: this period's count out of the period's items against the baseline's pooled share
(one-sided Fisher exact test, widened by the topic's own period-to-period over-dispersion), so
a busy week does not make every topic "grow". One-sided p-values are corrected over all topics
tested with Benjamini-Hochberg (`fdr`), and a significant topic must also have grown by
`min_ratio` in share and have `min_count` items, so a tiny but certain change is not flagged.
A topic silent through the whole baseline that passes is `new` too. An emerging topic that
had already risen in a baseline period (judged the same way against the periods before it) is
`continuing`: the digest lists it as still elevated and does not alert again.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import iso_week_label, item_p_negative, period_start, respondent_key
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.shares import resolve
from feedback.insights.significance import bh_adjust, proportion_increase_p
from feedback.models import FeedbackItem

BASELINE_PERIODS = 8
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class EmergingRule:
    """When a topic is emerging; the digest's `AlertPolicy` carries the same numbers."""

    min_count: int = 8
    min_ratio: float = 2.0
    fdr: float = 0.01
    min_baseline_periods: int = 3


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
    estimator: ShareEstimator | None = None,
) -> Series:
    """Items, mean sentiment, share negative (estimated by `estimator`, default the configured
    heads' one; share_negative_cc the count) and respondents per (topic, period)."""
    estimator = resolve(estimator)
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, interval, FeedbackItem.created_at).label("period")
    negative = case((Tag.sentiment == "negative", 1), else_=0)
    stmt = (
        select(
            period,
            Tag.topic_id,
            func.count().label("n"),
            func.avg(Tag.sentiment_score).label("mean_sentiment"),
            func.sum(negative).label("n_negative"),
            func.sum(item_p_negative()).label("p_negative_sum"),
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
            n, negatives = int(row.n), int(row.n_negative or 0)
            share = estimator.estimate(
                n=n, count=negatives, prob_sum=float(row.p_negative_sum or 0.0)
            )
            cells[(int(row.topic_id), p)] = {
                "n": n,
                "respondents": int(row.respondents),
                "mean_sentiment": None
                if row.mean_sentiment is None
                else round(float(row.mean_sentiment), 4),
                "share_negative": None if share is None else round(share, 4),
                "share_negative_cc": round(negatives / n, 4) if n else None,
            }
    return Series(periods=sorted(totals), totals=totals, cells=cells)


def rollup_numbers(
    session: Session,
    *,
    audience: str,
    interval: str = "week",
    estimator: ShareEstimator | None = None,
) -> tuple[Series, dict[int, dict[str, Any]]] | None:
    """`topic_series` (all periods) and `repository.topic_numbers` of an audience whose rollups
    are current, read from the topic rows of the rollups instead of every item; None otherwise.
    Respondents are not summed there (they are counted for employee topics, which come from the
    items): a customer cell's `respondents` is None."""
    from feedback.analytics.cells import Slice
    from feedback.analytics.tables import rollup_table

    table = rollup_table(session, Slice(audience), "topic", interval)
    if table is None:
        return None
    estimator = resolve(estimator)
    # As the item queries count them: tagged items (inner join on the tags); periods with any.
    totals = {p: s.n_tagged for p, s in table.totals.items() if p is not None and s is not None and s.n_tagged}
    cells: dict[tuple[int, date], dict[str, Any]] = {}
    sums: dict[int, list[float]] = {}
    for (p, code), stats in table.cells.items():
        if stats is None or p is None or not code.isdigit() or not stats.n_tagged:
            continue
        n, negatives = stats.n_tagged, stats.n_negative
        share = estimator.estimate(n=n, count=negatives, prob_sum=stats.p_negative_sum)
        cells[(int(code), p)] = {
            "n": n,
            "respondents": None,
            "mean_sentiment": round(stats.sentiment_sum / n, 4),
            "share_negative": None if share is None else round(share, 4),
            "share_negative_cc": round(negatives / n, 4),
        }
        total = sums.setdefault(int(code), [0, 0.0, 0, 0.0])
        total[0] += n
        total[1] += stats.sentiment_sum
        total[2] += negatives
        total[3] += stats.p_negative_sum
    numbers = {
        topic: {"n": int(n), "respondents": None, "mean_sentiment": sentiment / n,
                "n_negative": int(negatives), "p_negative_sum": float(p_negative)}
        for topic, (n, sentiment, negatives, p_negative) in sums.items()
    }
    return Series(periods=sorted(totals), totals=totals, cells=cells), numbers


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


def growth_p_value(
    current: int,
    baseline: int,
    current_total: int,
    baseline_total: int,
    baseline_periods: Sequence[tuple[int, int]] = (),
) -> float:
    """One-sided p-value that a topic's share grew: `current` of `current_total` items against
    `baseline` of `baseline_total` (Fisher exact), widened by the over-dispersion of the
    baseline's per-period (count, total) when they are given."""
    if current_total <= 0 or baseline_total <= 0:
        return 1.0
    return proportion_increase_p(current, current_total, baseline, baseline_total, baseline_periods)


def _rose_before(counts: Sequence[int], totals: Sequence[int], rule: EmergingRule) -> bool:
    """Whether the share had already risen in a baseline period, against the periods before it
    (the same test, without the multiple-testing step: in doubt, an old rise is continuing)."""
    for k in range(rule.min_baseline_periods, len(counts)):
        x, n = counts[k], totals[k]
        prior = [(c, t) for c, t in zip(counts[:k], totals[:k], strict=True) if t > 0]
        xb, nb = sum(c for c, _ in prior), sum(t for _, t in prior)
        if x < rule.min_count or n <= 0 or not prior:
            continue
        grew = xb == 0 or (x / n) >= rule.min_ratio * (xb / nb)
        if grew and growth_p_value(x, xb, n, nb, prior) <= rule.fdr:
            return True
    return False


def emerging_from_counts(
    latest: Mapping[K, int],
    baseline: Mapping[K, Sequence[int]],
    total: int,
    baseline_totals: Sequence[int],
    *,
    new: Collection[K] = (),
    rule: EmergingRule | None = None,
) -> dict[K, dict[str, Any]]:
    """The emerging rule over counts: `latest[key]` items this period out of `total`, and
    `baseline[key][i]` out of `baseline_totals[i]` in each baseline period (oldest first).
    Keys in `new` (topics created by the current model version) need only `min_count` items."""
    rule = rule or EmergingRule()
    rows: dict[K, dict[str, Any]] = {}
    tested: dict[K, float] = {}
    history: dict[K, list[int]] = {}
    for key, x in latest.items():
        counts = list(baseline.get(key, ())) or [0] * len(baseline_totals)
        history[key] = counts
        periods = [(c, n) for c, n in zip(counts, baseline_totals, strict=True) if n > 0]
        xb, nb = sum(c for c, _ in periods), sum(n for _, n in periods)
        share_now = x / total if total else 0.0
        share_base = xb / nb if nb else 0.0
        rows[key] = {
            "latest": int(x),
            "baseline_mean": round(xb / len(periods), 3) if periods else None,
            "share": round(share_now, 4),
            "baseline_share": round(share_base, 4) if periods else None,
            "share_ratio": round(share_now / share_base, 3) if share_base else None,
            "p_value": None,
            "q_value": None,
            "emerging": False,
            "reason": None,
            "status": None,
        }
        if x >= rule.min_count and len(periods) >= rule.min_baseline_periods:
            tested[key] = growth_p_value(int(x), xb, total, nb, periods)
    q_values = dict(zip(tested, bh_adjust(list(tested.values())), strict=True))
    for key, row in rows.items():
        if key in q_values:
            row["p_value"] = float(f"{tested[key]:.3g}")
            row["q_value"] = float(f"{q_values[key]:.3g}")
        grew = row["share_ratio"] is None or row["share_ratio"] >= rule.min_ratio
        if key in new and row["latest"] >= rule.min_count:
            row.update(emerging=True, reason="new")
        elif key in q_values and q_values[key] <= rule.fdr and grew:
            row.update(emerging=True, reason="new" if not row["baseline_mean"] else "growing")
        if row["emerging"]:
            rose = _rose_before(history[key], list(baseline_totals), rule)
            row["status"] = "continuing" if rose else "new"
    return rows


def emerging(
    series: Series,
    topic_ids: list[int],
    *,
    new_ids: set[int] | None = None,
    baseline_periods: int = BASELINE_PERIODS,
    rule: EmergingRule | None = None,
) -> dict[int, dict[str, Any]]:
    """Per topic of `series`: the latest period's count against the `baseline_periods` before
    it, by `emerging_from_counts`."""
    if not series.periods:
        return {t: {"emerging": False, "reason": None} for t in topic_ids}
    latest = series.periods[-1]
    base = series.periods[-1 - baseline_periods : -1]
    rows = emerging_from_counts(
        {t: int(series.cells.get((t, latest), {}).get("n", 0)) for t in topic_ids},
        {t: [int(series.cells.get((t, p), {}).get("n", 0)) for p in base] for t in topic_ids},
        series.totals.get(latest, 0),
        [series.totals.get(p, 0) for p in base],
        new=new_ids or set(),
        rule=rule,
    )
    return {t: {"latest_period": latest.isoformat(), **row} for t, row in rows.items()}
