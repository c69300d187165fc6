"""Estimated shares: the share negative of a cell as the quantification estimate, not a count.

Counting the items the model labels negative (classify-and-count) is biased whenever the
model's errors are not symmetric. The heads ship with an estimator fitted on dev splits
(`classifiers.quantify`: cc, acc, pcc or pacc with its true and false positive rates); every
estimate is linear in two per-cell sums the cells already keep, the count of items labelled
negative and the sum of their calibrated p(negative), so rollups, weeks and ranges add up.

Per-item labels (quotes, filters, `sentiment` on an item) stay the model's own; only shares
over groups are estimated. See docs/api.md#shares.
"""

from __future__ import annotations

from typing import Any

from classifiers.quantify import MIN_SEPARATION, ShareEstimator, load_share_estimator
from feedback.analytics.stats import Moments, wilson_ci


def configured_estimator(settings: Any | None = None) -> ShareEstimator:
    """The share-negative estimator stored with the configured heads (classify-and-count for
    heads without one)."""
    if settings is None:
        from feedback.config import get_settings

        settings = get_settings()
    return load_share_estimator(settings.models.heads_dir)


def resolve(estimator: ShareEstimator | None) -> ShareEstimator:
    """`estimator`, else the configured one."""
    return estimator if estimator is not None else configured_estimator()


def negative_share(estimator: ShareEstimator, *, n: float, count: float, prob_sum: float,
                   prob_sumsq: float) -> tuple[float | None, float | None, float | None]:
    """(estimate, 95% low, 95% high) of the share negative over `n` tagged items.

    Classify-and-count keeps the Wilson interval it always had; the other methods take the
    estimator's interval (item sampling only: the dev rates are treated as known).
    """
    if not n:
        return None, None, None
    if estimator.method == "cc":
        ci = wilson_ci(int(round(count)), int(round(n)))
        return count / n, *(ci if ci is not None else (None, None))
    value = estimator.estimate(n=n, count=count, prob_sum=prob_sum)
    low, high = estimator.interval(n=n, count=count, prob_sum=prob_sum, prob_sumsq=prob_sumsq)
    return value, low, high


def negative_moments(estimator: ShareEstimator, *, n: int, count: float, prob_sum: float,
                     prob_sumsq: float) -> Moments:
    """Moments of a per-item value whose mean is the (unclipped) estimate: the count's 0/1 for
    cc, p(negative) for pcc, and for acc/pacc those shifted by fpr and scaled by 1 / (tpr - fpr).

    Because each estimate is a linear function of the per-item values, Welch tests of a change
    and the exact driver decomposition of `feedback.analytics.compare` work on it unchanged.
    """
    probabilistic = estimator.uses_probabilities
    total, total_sq = (prob_sum, prob_sumsq) if probabilistic else (count, count)
    if estimator.method in ("cc", "pcc"):
        return Moments(n, float(total), float(total_sq))
    scale = estimator.tpr - estimator.fpr
    if scale < MIN_SEPARATION:
        return Moments(n, float(total), float(total_sq))
    fpr = estimator.fpr
    return Moments(n, (total - n * fpr) / scale, (total_sq - 2 * fpr * total + n * fpr * fpr) / scale ** 2)


def describe(estimator: ShareEstimator) -> dict[str, Any]:
    """What a response says about how its share_negative was estimated."""
    adjusted = estimator.method in ("acc", "pacc")
    rates = {"tpr": round(estimator.tpr, 4), "fpr": round(estimator.fpr, 4)} if adjusted else None
    return {"share_method": estimator.method, "share_rates": rates}
