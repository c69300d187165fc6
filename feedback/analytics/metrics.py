"""The reported metrics of a cell, each with its n and 95% confidence interval.

| metric          | item-level value                       | n          | interval           |
|-----------------|----------------------------------------|------------|--------------------|
| n (volume)      | items                                  | –          | –                  |
| share           | items / items of the period            | period n   | Wilson             |
| mean_sentiment  | sentiment score in [-1, 1]             | n_tagged   | t                  |
| net_sentiment   | +1 positive, -1 negative (% pos - neg) | n_tagged   | multinomial diff.  |
| share_negative  | estimated: see feedback.analytics.shares | n_tagged | estimator's (cc: Wilson) |
| share_negative_cc | 1 if labelled negative (counted)     | n_tagged   | Wilson             |
| nps             | +100 promoter (9-10), -100 detractor   | nps_n      | multinomial diff.  |
| csat            | 1 if CSAT is 4 or 5 (top-2 box)        | csat_n     | Wilson             |
| mean_rating     | stars (1-5)                            | rating_n   | t                  |
| *_mix           | share of tagged items with each label  | n_tagged   | –                  |
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import SUM_FIELDS, CellStats
from feedback.analytics.shares import negative_moments, negative_share, resolve
from feedback.analytics.stats import Z95, Moments, t_quantile

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
    # share_negative is the estimate (feedback.analytics.shares); the count stays beside it
    "share_negative_cc", "share_negative_cc_ci_low", "share_negative_cc_ci_high",
)


def moments(stats: CellStats, metric: str, estimator: ShareEstimator | None = None) -> Moments:
    """The item-level moments behind a score metric (see the table above); share_negative's
    are those of the estimate (`estimator`, default the configured one)."""
    if metric == "mean_sentiment":
        return Moments(stats.n_tagged, stats.sentiment_sum, stats.sentiment_sumsq)
    if metric == "net_sentiment":
        return Moments(stats.n_tagged, stats.n_positive - stats.n_negative, stats.n_positive + stats.n_negative)
    if metric == "share_negative":
        return negative_moments(resolve(estimator), n=stats.n_tagged, count=stats.n_negative,
                                prob_sum=stats.p_negative_sum, prob_sumsq=stats.p_negative_sumsq)
    if metric == "nps":
        return Moments(stats.nps_n, 100.0 * (stats.nps_promoters - stats.nps_detractors),
                       10_000.0 * (stats.nps_promoters + stats.nps_detractors))
    if metric == "csat":
        return Moments(stats.csat_n, stats.csat_satisfied, stats.csat_satisfied)
    if metric == "mean_rating":
        return Moments(stats.rating_n, stats.rating_sum, stats.rating_sumsq)
    raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(SCORE_METRICS)}")


_STATS = attrgetter(*SUM_FIELDS)


def _wilson(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z2 = Z95 * Z95
    p = x / n
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z95 * np.sqrt(np.clip(p * (1 - p) / n + z2 / (4 * n * n), 0, None)) / denom
    return (np.where(x == 0, 0.0, np.clip(centre - half, 0, 1)),
            np.where(x == n, 1.0, np.clip(centre + half, 0, 1)))


def _net(plus: np.ndarray, minus: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As stats.net_ci: one pseudo-answer per category, then the multinomial difference interval."""
    p_plus, p_minus = (plus + 1) / (n + 3), (minus + 1) / (n + 3)
    d = p_plus - p_minus
    half = Z95 * np.sqrt(np.clip(p_plus + p_minus - d * d, 0, None) / (n + 3))
    return np.clip(d - half, -1, 1), np.clip(d + half, -1, 1)


def _t(df: np.ndarray) -> np.ndarray:
    out = np.full(df.shape, Z95)
    for value in np.unique(df[(df >= 1) & (df < 200)]):
        out[df == value] = t_quantile(int(value))
    return out


def _mean(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray, lo: float, hi: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = total / n
    var = np.clip((total_sq - total * total / n) / (n - 1), 0, None)
    half = _t(np.where(n >= 2, n - 1, 0)) * np.sqrt(var / n)
    ok = n >= 2
    return mean, np.where(ok, np.clip(mean - half, lo, hi), np.nan), np.where(ok, np.clip(mean + half, lo, hi), np.nan)


def _out(values: np.ndarray, digits: int = 4) -> list[float | None]:
    rounded = np.where(np.isfinite(values), np.round(values, digits), np.nan)
    return [None if v != v else v for v in rounded.tolist()]  # NaN -> None


def metric_rows(cells: Sequence[CellStats], period_ns: Sequence[int | None] | None = None, *,
                mixes: bool = False, mix_min_count: int = 1,
                estimator: ShareEstimator | None = None) -> list[dict[str, Any]]:
    """Every metric of each cell, flat (see METRIC_COLUMNS), plus the mixes when asked.

    Computed for all cells at once (a trend page has hundreds). `mix_min_count` hides mix entries
    counted on fewer items (employee cells use the minimum group size here, so a mix never says
    'one person in this team mentioned ...'). `share_negative` is estimated by `estimator`
    (default: the one stored with the configured heads).
    """
    if not cells:
        return []
    estimator = resolve(estimator)
    a = np.array([_STATS(c) for c in cells], dtype=float)
    (n, tagged, pos, neg, s_sum, s_sq, nps_n, prom, detr, csat_n, sat, r_n, r_sum, r_sq, p_sum, p_sq) = a.T
    pn = np.array([np.nan if not p else p for p in (period_ns or [None] * len(cells))], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns: dict[str, list[Any]] = {"n": a[:, 0].astype(int).tolist(), "n_tagged": a[:, 1].astype(int).tolist()}
        columns["share"] = _out(n / pn)
        low, high = _wilson(n, pn)
        columns["share_ci_low"], columns["share_ci_high"] = _out(low), _out(high)
        mean, low, high = _mean(s_sum, s_sq, tagged, -1.0, 1.0)
        columns["mean_sentiment"], columns["mean_sentiment_ci_low"], columns["mean_sentiment_ci_high"] = (
            _out(mean), _out(low), _out(high))
        low, high = _net(pos, neg, tagged)
        valid = tagged > 0
        columns["net_sentiment"] = _out(np.where(valid, (pos - neg) / tagged, np.nan))
        columns["net_sentiment_ci_low"] = _out(np.where(valid, low, np.nan))
        columns["net_sentiment_ci_high"] = _out(np.where(valid, high, np.nan))
        columns["share_negative_cc"] = _out(neg / tagged)
        low, high = _wilson(neg, tagged)
        columns["share_negative_cc_ci_low"], columns["share_negative_cc_ci_high"] = _out(low), _out(high)
        if estimator.method == "cc":
            value = neg / tagged
        else:  # one call per cell: the estimator is the one definition of the estimate
            estimates = [negative_share(estimator, n=t, count=k, prob_sum=ps, prob_sumsq=pq)
                         for t, k, ps, pq in zip(tagged, neg, p_sum, p_sq, strict=True)]
            value, low, high = np.array([[np.nan if v is None else v for v in e] for e in estimates],
                                        dtype=float).reshape(-1, 3).T
        columns["share_negative"] = _out(value)
        columns["share_negative_ci_low"], columns["share_negative_ci_high"] = _out(low), _out(high)
        low, high = _net(prom, detr, nps_n)
        valid = nps_n > 0
        columns["nps"] = _out(np.where(valid, 100 * (prom - detr) / nps_n, np.nan), 2)
        columns["nps_n"] = nps_n.astype(int).tolist()
        columns["nps_ci_low"] = _out(np.where(valid, 100 * low, np.nan), 2)
        columns["nps_ci_high"] = _out(np.where(valid, 100 * high, np.nan), 2)
        columns["csat"] = _out(sat / csat_n)
        columns["csat_n"] = csat_n.astype(int).tolist()
        low, high = _wilson(sat, csat_n)
        columns["csat_ci_low"], columns["csat_ci_high"] = _out(low), _out(high)
        mean, low, high = _mean(r_sum, r_sq, r_n, 1.0, 5.0)
        columns["mean_rating"] = _out(mean)
        columns["rating_n"] = r_n.astype(int).tolist()
        columns["mean_rating_ci_low"], columns["mean_rating_ci_high"] = _out(low), _out(high)
    names = list(METRIC_COLUMNS)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*(columns[c] for c in names), strict=True)]
    if mixes:
        for row, stats in zip(rows, cells, strict=True):
            for kind in MIX_KINDS:
                row[f"{kind}_mix"] = mix(stats, kind, min_count=mix_min_count)
    return rows


def metric_row(stats: CellStats, *, period_n: int | None = None, mixes: bool = False,
               mix_min_count: int = 1, estimator: ShareEstimator | None = None) -> dict[str, Any]:
    """Every metric of one cell (see `metric_rows`)."""
    return metric_rows([stats], [period_n], mixes=mixes, mix_min_count=mix_min_count,
                       estimator=estimator)[0]


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
