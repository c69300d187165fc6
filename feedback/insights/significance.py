"""The tests and intervals the digests rest on, computed from counts and sums.

The general ones (Welch, Wilson, Benjamini-Hochberg) are `feedback.analytics.stats`'s, so the
digest and `/v1/trends` agree; what is particular to alerting is here. Each spike test
accounts for sample size on both sides (this week and the baseline it is compared with), and
widens for week-to-week variation that the baseline itself shows (a quasi-binomial /
quasi-Poisson dispersion factor, never below 1), so an ordinarily noisy cell does not raise
alarms. Many cells are tested each week, so p-values are controlled across them
with Benjamini-Hochberg (`bh_adjust`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from feedback.analytics import stats


def _scipy() -> Any:
    from scipy import stats as sps  # on first test only: importing the digest stays cheap

    return sps


# One summary type for analytics and digests, so both compute means and intervals alike.
Moments = stats.Moments


def wilson_ci(k: int, n: int) -> tuple[float, float] | None:
    """95% Wilson interval of a proportion (good at small n and near 0 or 1)."""
    return stats.wilson_ci(k, n)


def proportion_increase_p(
    k: int, n: int, k0: int, n0: int, baseline_weeks: Sequence[tuple[int, int]] = ()
) -> float:
    """One-sided p-value that this week's share k/n is above the baseline's k0/n0.

    Fisher's exact test (both samples' sizes count), widened by the baseline's own week-to-week
    over-dispersion when `baseline_weeks` [(k_i, n_i), ...] shows more spread than binomial.
    """
    sps = _scipy()
    if n <= 0 or n0 <= 0:
        return 1.0
    p_exact = float(sps.fisher_exact([[k, n - k], [k0, n0 - k0]], alternative="greater")[1])
    phi = binomial_dispersion(baseline_weeks)
    if phi <= 1.0:
        return p_exact
    pooled = (k + k0) / (n + n0)
    if pooled in (0.0, 1.0):
        return p_exact
    z = (k / n - k0 / n0) / math.sqrt(phi * pooled * (1 - pooled) * (1 / n + 1 / n0))
    return max(p_exact, float(sps.norm.sf(z)))


def mean_increase_p(this: Moments, base: Moments, baseline_weeks: Sequence[Moments] = ()) -> float:
    """One-sided p-value that this week's mean is above the baseline's (Welch's t).

    For estimated shares negative from probabilities (pcc, pacc): the estimate is a linear
    function of the mean p(negative), so this tests the estimate. Widened, as
    `proportion_increase_p` is, by the baseline's own week-to-week over-dispersion.
    """
    result = stats.welch_test(base, this)
    if result is None or math.isnan(result.p_value):
        return 1.0
    p = result.p_value / 2 if result.change > 0 else 1.0 - result.p_value / 2
    phi = mean_dispersion(baseline_weeks)
    if phi <= 1.0 or result.change <= 0:
        return p
    assert this.variance is not None and base.variance is not None  # welch_test checked n >= 2
    se = math.sqrt(phi * (this.variance / this.n + base.variance / base.n))
    return p if se == 0 else max(p, float(_scipy().norm.sf(result.change / se)))


def mean_dispersion(weeks: Sequence[Moments]) -> float:
    """Between-week spread of weekly means around their pooled mean, relative to what the
    within-week variance predicts (chi-square / df); at least 1."""
    weeks = [w for w in weeks if w.n > 0]
    pooled = sum(weeks, Moments())
    if len(weeks) < 3 or not pooled.variance:
        return 1.0
    mean = pooled.total / pooled.n
    chi2 = sum(w.n * ((w.total / w.n) - mean) ** 2 for w in weeks) / pooled.variance
    return max(1.0, chi2 / (len(weeks) - 1))


def binomial_dispersion(weeks: Sequence[tuple[int, int]]) -> float:
    """Pearson chi-square / df of weekly (k, n) around their pooled share; at least 1."""
    weeks = [(k, n) for k, n in weeks if n > 0]
    if len(weeks) < 3:
        return 1.0
    k_all, n_all = sum(k for k, _ in weeks), sum(n for _, n in weeks)
    p = k_all / n_all
    if p in (0.0, 1.0):
        return 1.0
    chi2 = sum((k - n * p) ** 2 / (n * p * (1 - p)) for k, n in weeks)
    return max(1.0, chi2 / (len(weeks) - 1))


def rate_increase_p(count: int, baseline_counts: Sequence[int]) -> float:
    """One-sided p-value that this week's count is above the baseline weeks' rate.

    The exact conditional test of two Poisson rates: given the total, this week's share of it is
    binomial with p = 1 / (1 + weeks) under no change, so a short baseline is honestly uncertain.
    Widened by the baseline's own over-dispersion (variance above mean) when there is some.
    """
    sps = _scipy()
    weeks = len(baseline_counts)
    if weeks == 0 or count <= 0:
        return 1.0
    base_total = sum(baseline_counts)
    p_exact = float(sps.binom.sf(count - 1, count + base_total, 1.0 / (1 + weeks)))
    phi = poisson_dispersion(baseline_counts)
    mean = base_total / weeks
    if phi <= 1.0 or mean <= 0:
        return p_exact
    z = (count - mean) / math.sqrt(phi * mean * (1 + 1 / weeks))
    return max(p_exact, float(sps.norm.sf(z)))


def rate_change_p(count: int, baseline_counts: Sequence[int]) -> float:
    """Two-sided p-value that this week's count differs from the baseline weeks' rate."""
    sps = _scipy()
    weeks = len(baseline_counts)
    if weeks == 0:
        return 1.0
    up = rate_increase_p(count, baseline_counts)
    total = count + sum(baseline_counts)
    down = float(sps.binom.cdf(count, total, 1.0 / (1 + weeks))) if total else 1.0
    return min(1.0, 2 * min(up, down))


def poisson_dispersion(counts: Sequence[int]) -> float:
    """Variance / mean of weekly counts; at least 1."""
    if len(counts) < 3:
        return 1.0
    mean = sum(counts) / len(counts)
    if mean <= 0:
        return 1.0
    var = sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)
    return max(1.0, var / mean)


def mean_difference_p(this: Moments, base: Moments) -> float:
    """Two-sided Welch t-test p-value of two means given as moments (1.0 when untestable)."""
    result = stats.welch_test(base, this)
    return 1.0 if result is None or math.isnan(result.p_value) else result.p_value


def proportion_difference_p(k: int, n: int, k0: int, n0: int) -> float:
    """Two-sided Fisher exact p-value that two shares differ."""
    sps = _scipy()
    if n <= 0 or n0 <= 0:
        return 1.0
    return float(sps.fisher_exact([[k, n - k], [k0, n0 - k0]], alternative="two-sided")[1])


def nps(promoters: int, detractors: int, n: int) -> tuple[float, float] | None:
    """NPS (-100..100) and its standard error, from counts of promoters and detractors."""
    if n <= 0:
        return None
    p, d = promoters / n, detractors / n
    score = p - d
    se = math.sqrt(max(0.0, p + d - score * score) / n)
    return 100 * score, 100 * se


def nps_ci(promoters: int, detractors: int, n: int) -> tuple[float, float] | None:
    """95% interval of NPS (-100..100), adjusted so it stays honest at small n."""
    return stats.net_ci(promoters, detractors, n, scale=100.0)


def bh_adjust(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    return [1.0 if q is None else q for q in stats.benjamini_hochberg(list(pvalues))]
