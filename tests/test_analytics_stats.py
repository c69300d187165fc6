"""The statistics behind every interval and test, checked against scipy and by properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from feedback.analytics.cells import CellStats
from feedback.analytics.metrics import metric_row, metric_rows
from feedback.analytics.stats import (
    Moments,
    benjamini_hochberg,
    bootstrap_ci,
    holm,
    mean_ci,
    net_ci,
    rate_test,
    two_proportion_test,
    welch_test,
    wilson_ci,
)


def _moments(values: np.ndarray) -> Moments:
    return Moments(len(values), float(values.sum()), float((values ** 2).sum()))


def test_mean_interval_and_welch_match_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.1, 0.5, 40), rng.normal(0.35, 0.8, 25)
    low, high = mean_ci(_moments(a))
    expected = sps.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=sps.sem(a))
    assert low == pytest.approx(expected[0]) and high == pytest.approx(expected[1])
    result = welch_test(_moments(a), _moments(b))
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert result.change == pytest.approx(b.mean() - a.mean())
    assert result.p_value == pytest.approx(reference.pvalue, rel=0.05)  # df rounded down to an integer


def test_wilson_known_values() -> None:
    low, high = wilson_ci(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook Wilson interval
    assert wilson_ci(0, 0) is None
    assert wilson_ci(0, 20)[0] == 0.0 and wilson_ci(20, 20)[1] == 1.0


def test_two_proportion_test_matches_the_chi_square_test() -> None:
    result = two_proportion_test(30, 200, 55, 210)
    table = np.array([[30, 170], [55, 155]])
    chi2, p, _, _ = sps.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(p)


def test_nps_interval_covers_its_estimate_and_stays_in_range() -> None:
    low, high = net_ci(60, 10, 100, scale=100.0)
    assert low < 50 < high and -100 <= low and high <= 100
    low, high = net_ci(5, 0, 5, scale=100.0)  # everyone a promoter: the interval does not collapse
    assert high == pytest.approx(100.0) or high <= 100 and low < 100


def test_rate_test_detects_a_doubling() -> None:
    assert rate_test(100, 7, 200, 7).p_value < 1e-6
    assert rate_test(100, 7, 104, 7).p_value > 0.5


def test_multiple_comparison_control() -> None:
    p = [0.01, 0.04, 0.03, 0.005, None]
    q = benjamini_hochberg(p)
    assert q[4] is None
    assert q[3] == pytest.approx(0.02) and q[0] == pytest.approx(0.02)
    assert q[1] == pytest.approx(0.04) and q[2] == pytest.approx(0.04)
    h = holm(p)
    assert h[3] == pytest.approx(0.02) and h[1] == pytest.approx(0.06)


def test_bootstrap_is_deterministic_and_covers_the_mean() -> None:
    values = np.random.default_rng(1).normal(2.0, 1.0, 200)
    first, again = bootstrap_ci(values, seed=4), bootstrap_ci(values, seed=4)
    assert first == again and first[0] < values.mean() < first[1]
    assert bootstrap_ci(values, np.median, n_resamples=200)[0] < np.median(values)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10_000), st.data())
def test_wilson_property(n: int, data) -> None:
    x = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson_ci(x, n)
    assert 0.0 <= low <= x / n <= high <= 1.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30))
def test_benjamini_hochberg_property(p: list[float]) -> None:
    q = benjamini_hochberg(p)
    assert all(qi >= pi - 1e-12 and qi <= 1.0 for qi, pi in zip(q, p, strict=True))
    order = sorted(range(len(p)), key=lambda i: p[i])
    assert all(q[order[i]] <= q[order[i + 1]] + 1e-12 for i in range(len(p) - 1))  # monotone in p


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), st.floats(-1, 1)), min_size=0, max_size=40))
def test_metric_row_equals_item_level_computation(items: list[tuple[int, float]]) -> None:
    cell = CellStats(n=len(items), n_tagged=len(items),
                     n_positive=sum(s > 0.2 for _, s in items), n_negative=sum(s < -0.2 for _, s in items),
                     sentiment_sum=sum(s for _, s in items), sentiment_sumsq=sum(s * s for _, s in items),
                     nps_n=len(items), nps_promoters=sum(n >= 9 for n, _ in items),
                     nps_detractors=sum(n <= 6 for n, _ in items))
    row = metric_row(cell, period_n=max(1, len(items)))
    if not items:
        assert row["mean_sentiment"] is None and row["nps"] is None
        return
    nps = 100 * (sum(n >= 9 for n, _ in items) - sum(n <= 6 for n, _ in items)) / len(items)
    assert row["nps"] == pytest.approx(round(nps, 2))
    # both sides round to 4 places (numpy and Python may round a tie differently): one step apart at most
    assert row["mean_sentiment"] == pytest.approx(round(sum(s for _, s in items) / len(items), 4), abs=1.5e-4)
    if len(items) >= 2:
        assert row["mean_sentiment_ci_low"] <= row["mean_sentiment"] + 1e-4 <= row["mean_sentiment_ci_high"] + 2e-4
        assert row["nps_ci_low"] <= 100 and row["nps_ci_high"] >= -100


def test_vectorised_rows_match_the_scalar_intervals() -> None:
    cells = [CellStats(n=50, n_tagged=40, n_positive=20, n_negative=10, sentiment_sum=5.0, sentiment_sumsq=20.0,
                       nps_n=30, nps_promoters=12, nps_detractors=8, csat_n=20, csat_satisfied=15,
                       rating_n=10, rating_sum=35.0, rating_sumsq=135.0), CellStats(n=3)]
    rows = metric_rows(cells, [200, None])
    assert rows[0]["csat_ci_low"] == round(wilson_ci(15, 20)[0], 4)
    assert rows[0]["nps_ci_high"] == round(net_ci(12, 8, 30, scale=100.0)[1], 2)
    assert rows[0]["mean_rating_ci_low"] == round(mean_ci(Moments(10, 35.0, 135.0), lo=1, hi=5)[0], 4)
    assert rows[1]["share"] is None and rows[1]["mean_sentiment"] is None and rows[1]["n"] == 3
    assert all(not isinstance(v, float) or math.isfinite(v) for row in rows for v in row.values())
