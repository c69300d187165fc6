"""The reported metrics of a cell, each with its n and 95% confidence interval.

| metric          | item-level value                       | n          | interval           |
|-----------------|----------------------------------------|------------|--------------------|
| n (volume)      | items                                  | –          | –                  |
| share           | items / items of the period            | period n   | Wilson             |
| mean_sentiment  | sentiment score in [-1, 1]             | n_tagged   | t                  |
| net_sentiment   | +1 positive, -1 negative (% pos - neg) | n_tagged   | multinomial diff.  |
| share_negative  | 1 if negative                          | n_tagged   | Wilson             |
| nps             | +100 promoter (9-10), -100 detractor   | nps_n      | multinomial diff.  |
| csat            | 1 if CSAT is 4 or 5 (top-2 box)        | csat_n     | Wilson             |
| mean_rating     | stars (1-5)                            | rating_n   | t                  |
| *_mix           | share of tagged items with each label  | n_tagged   | –                  |
"""

from __future__ import annotations

from typing import Any

from feedback.analytics.cells import CellStats
from feedback.analytics.stats import Moments, mean_ci, net_ci, wilson_ci

SCORE_METRICS = ("mean_sentiment", "net_sentiment", "share_negative", "nps", "csat", "mean_rating")
METRICS = ("volume", "share", *SCORE_METRICS, "need_mix", "emotion_mix", "cx_emotion_mix")
MIX_KINDS = ("need", "emotion", "cx_emotion")

# Column order of a metrics row (the BI export documents these).
METRIC_COLUMNS = (
    "n", "n_tagged", "share", "share_ci_low", "share_ci_high",
    "mean_sentiment", "mean_sentiment_ci_low", "mean_sentiment_ci_high",
    "net_sentiment", "net_sentiment_ci_low", "net_sentiment_ci_high",
    "share_negative", "share_negative_ci_low", "share_negative_ci_high",
    "nps", "nps_n", "nps_ci_low", "nps_ci_high",
    "csat", "csat_n", "csat_ci_low", "csat_ci_high",
    "mean_rating", "rating_n", "mean_rating_ci_low", "mean_rating_ci_high",
)


def moments(stats: CellStats, metric: str) -> Moments:
    """The item-level moments behind a score metric (see the table above)."""
    if metric == "mean_sentiment":
        return Moments(stats.n_tagged, stats.sentiment_sum, stats.sentiment_sumsq)
    if metric == "net_sentiment":
        return Moments(stats.n_tagged, stats.n_positive - stats.n_negative, stats.n_positive + stats.n_negative)
    if metric == "share_negative":
        return Moments(stats.n_tagged, stats.n_negative, stats.n_negative)
    if metric == "nps":
        return Moments(stats.nps_n, 100.0 * (stats.nps_promoters - stats.nps_detractors),
                       10_000.0 * (stats.nps_promoters + stats.nps_detractors))
    if metric == "csat":
        return Moments(stats.csat_n, stats.csat_satisfied, stats.csat_satisfied)
    if metric == "mean_rating":
        return Moments(stats.rating_n, stats.rating_sum, stats.rating_sumsq)
    raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(SCORE_METRICS)}")


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _ci(row: dict[str, Any], name: str, ci: tuple[float, float] | None, digits: int = 4) -> None:
    row[f"{name}_ci_low"] = _r(ci[0], digits) if ci else None
    row[f"{name}_ci_high"] = _r(ci[1], digits) if ci else None


def metric_row(stats: CellStats, *, period_n: int | None = None, mixes: bool = False,
               mix_min_count: int = 1) -> dict[str, Any]:
    """Every metric of one cell, flat (see METRIC_COLUMNS), plus the mixes when asked.

    `mix_min_count` hides mix entries counted on fewer items (employee cells use the minimum
    group size here, so a mix never says 'one person in this team mentioned ...').
    """
    row: dict[str, Any] = {"n": stats.n, "n_tagged": stats.n_tagged}
    if period_n:
        row["share"] = _r(stats.n / period_n)
        _ci(row, "share", wilson_ci(stats.n, period_n))
    else:
        row["share"] = row["share_ci_low"] = row["share_ci_high"] = None
    tagged = stats.n_tagged
    sentiment = moments(stats, "mean_sentiment")
    row["mean_sentiment"] = _r(sentiment.mean)
    _ci(row, "mean_sentiment", mean_ci(sentiment, lo=-1.0, hi=1.0))
    row["net_sentiment"] = _r((stats.n_positive - stats.n_negative) / tagged) if tagged else None
    _ci(row, "net_sentiment", net_ci(stats.n_positive, stats.n_negative, tagged))
    row["share_negative"] = _r(stats.n_negative / tagged) if tagged else None
    _ci(row, "share_negative", wilson_ci(stats.n_negative, tagged))
    row["nps"] = _r(100.0 * (stats.nps_promoters - stats.nps_detractors) / stats.nps_n, 2) if stats.nps_n else None
    row["nps_n"] = stats.nps_n
    _ci(row, "nps", net_ci(stats.nps_promoters, stats.nps_detractors, stats.nps_n, scale=100.0), 2)
    row["csat"] = _r(stats.csat_satisfied / stats.csat_n) if stats.csat_n else None
    row["csat_n"] = stats.csat_n
    _ci(row, "csat", wilson_ci(stats.csat_satisfied, stats.csat_n))
    rating = moments(stats, "mean_rating")
    row["mean_rating"] = _r(rating.mean)
    row["rating_n"] = stats.rating_n
    _ci(row, "mean_rating", mean_ci(rating, lo=1.0, hi=5.0))
    if mixes:
        for kind in MIX_KINDS:
            row[f"{kind}_mix"] = mix(stats, kind, min_count=mix_min_count)
    return row


def mix(stats: CellStats, kind: str, *, min_count: int = 1, top: int | None = None) -> dict[str, float]:
    """Share of tagged items carrying each label of `kind`, largest first."""
    if not stats.n_tagged:
        return {}
    prefix = f"{kind}:"
    pairs = [(key[len(prefix):], count) for key, count in stats.labels.items()
             if key.startswith(prefix) and count >= min_count]
    pairs.sort(key=lambda p: (-p[1], p[0]))
    if top is not None:
        pairs = pairs[:top]
    return {label: round(count / stats.n_tagged, 4) for label, count in pairs}


def suppressed_row(*, mixes: bool = False) -> dict[str, Any]:
    """A row whose group is too small to show: every number is None."""
    row: dict[str, Any] = dict.fromkeys(METRIC_COLUMNS)
    if mixes:
        for kind in MIX_KINDS:
            row[f"{kind}_mix"] = None
    return row
