"""Confidence intervals and tests for feedback metrics, from sums (no item-level data needed).

Every score the analytics report is the mean of an item-level value over the items that have it:
mean sentiment (the score), net sentiment (+1 positive, -1 negative, 0 neutral), NPS (+100
promoter, -100 detractor, 0 passive), CSAT (1 if 4-5 of 5), share negative (1 if negative), mean
rating (the stars). So one summary, `Moments(n, total, total_sq)`, gives the estimate, its
interval and the test of a change for all of them; proportions get Wilson intervals, which stay
inside [0, 1] and behave at small n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Moments:
    """n values, their sum and their sum of squares."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1), never negative (float sums can dip below zero)."""
        if self.n < 2:
            return None
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))

    def ci95(self) -> tuple[float, float] | None:
        """A t interval for the mean (None below two values)."""
        return mean_ci(self)


@lru_cache(maxsize=512)
def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student t critical value (the normal one from 200 degrees of freedom on)."""
    if df >= 200:
        return Z95 if level == 0.95 else float(_norm_ppf(0.5 + level / 2))
    from scipy.stats import t  # imported on first small-sample use only

    return float(t.ppf(0.5 + level / 2, df))


def _norm_ppf(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mean_ci(m: Moments, *, lo: float | None = None, hi: float | None = None) -> tuple[float, float] | None:
    """t interval for a mean, clipped to the value's range [lo, hi] when given."""
    if m.n < 2 or m.variance is None:
        return None
    assert m.mean is not None
    half = t_quantile(m.n - 1) * math.sqrt(m.variance / m.n)
    low, high = m.mean - half, m.mean + half
    if lo is not None:
        low = max(lo, low)
    if hi is not None:
        high = min(hi, high)
    return low, high


def wilson_ci(successes: int, n: int, *, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact at the edges (the formula gives them up to rounding)
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))


def net_ci(plus: int, minus: int, n: int, *, scale: float = 1.0, z: float = Z95) -> tuple[float, float] | None:
    """Interval for (plus - minus) / n, a difference of two multinomial shares (NPS, net sentiment).

    Var = (p+ + p- - d^2) / n. At the extremes (every answer a promoter) that collapses to zero,
    so the shares are first adjusted by one pseudo-answer per category (in the spirit of the
    Agresti-Coull interval), which keeps the coverage near 95% at small n.
    """
    if n <= 0:
        return None
    p_plus, p_minus = (plus + 1) / (n + 3), (minus + 1) / (n + 3)
    d = p_plus - p_minus
    half = z * math.sqrt(max(0.0, p_plus + p_minus - d * d) / (n + 3))
    return max(-1.0, d - half) * scale, min(1.0, d + half) * scale


@dataclass(frozen=True, slots=True)
class TestResult:
    """A two-sample comparison: the change (b - a), its interval and p-value."""

    change: float
    ci: tuple[float, float]
    p_value: float
    method: str


def welch_test(a: Moments, b: Moments) -> TestResult | None:
    """Welch's t test of mean(b) - mean(a) from two summaries."""
    if a.n < 2 or b.n < 2 or a.variance is None or b.variance is None:
        return None
    assert a.mean is not None and b.mean is not None
    va, vb = a.variance / a.n, b.variance / b.n
    se = math.sqrt(va + vb)
    change = b.mean - a.mean
    if se == 0:
        return TestResult(change, (change, change), 1.0 if change == 0 else 0.0, "welch_t")
    df = (va + vb) ** 2 / ((va * va) / (a.n - 1) + (vb * vb) / (b.n - 1)) if va + vb > 0 else a.n + b.n - 2
    t = change / se
    df_int = max(1, int(df))
    if df_int >= 200:
        p = 2 * normal_sf(abs(t))
    else:
        from scipy.stats import t as t_dist

        p = float(2 * t_dist.sf(abs(t), df_int))
    q = t_quantile(df_int)
    return TestResult(change, (change - q * se, change + q * se), min(1.0, p), "welch_t")


def two_proportion_test(x_a: int, n_a: int, x_b: int, n_b: int) -> TestResult | None:
    """z test of p_b - p_a (pooled variance for the p-value, unpooled for the interval)."""
    if n_a <= 0 or n_b <= 0:
        return None
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    change = p_b - p_a
    p = 1.0 if se0 == 0 else 2 * normal_sf(abs(change) / se0)
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return TestResult(change, (change - Z95 * se, change + Z95 * se), min(1.0, p), "two_proportion_z")


def rate_test(n_a: int, days_a: float, n_b: int, days_b: float) -> TestResult | None:
    """Change in volume per day, b against a, by the conditional binomial test of Poisson rates."""
    if days_a <= 0 or days_b <= 0 or n_a + n_b == 0:
        return None
    from scipy.stats import binomtest

    expected = days_b / (days_a + days_b)
    p = float(binomtest(n_b, n_a + n_b, expected).pvalue)
    rate_a, rate_b = n_a / days_a, n_b / days_b
    se = math.sqrt(n_a / days_a**2 + n_b / days_b**2)
    change = rate_b - rate_a
    return TestResult(change, (change - Z95 * se, change + Z95 * se), p, "poisson_rate")


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values), controlling the false discovery rate."""
    indexed = [(p, i) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    m = len(indexed)
    if not m:
        return out
    indexed.sort()
    running = 1.0
    for rank in range(m, 0, -1):
        p, i = indexed[rank - 1]
        running = min(running, p * m / rank)
        out[i] = min(1.0, running)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, controlling the family-wise error rate."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[float | None] = [None] * len(p_values)
    m = len(indexed)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, p * (m - rank)))
        out[i] = running
    return out


def bootstrap_ci(values: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean, *,
                 n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `statistic` over `values` (deterministic for a seed)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_resamples, values.size))
    if statistic is np.mean:
        draws = values[idx].mean(axis=1)
    else:
        draws = np.array([statistic(values[row]) for row in idx])
    alpha = (1 - level) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))
