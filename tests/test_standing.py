"""Standing problems (the overview's "Still going"): the digest's alert test against the weeks
before a rise began, for rises that have lasted, on weekly cells made up here."""

from __future__ import annotations

import random
from datetime import date, timedelta

from classifiers.quantify import COUNT_NEGATIVE
from feedback.analytics.cells import CellStats
from feedback.insights.alerts import AlertPolicy
from feedback.insights.standing import LOOKBACK_WEEKS, MIN_WEEKS, onset, standing_problems

POLICY = AlertPolicy()
SPAN = POLICY.baseline_weeks + LOOKBACK_WEEKS
WEEKS = [date(2026, 3, 2) + timedelta(weeks=k) for k in range(SPAN)]


def _cell(negative: int, n: int) -> CellStats:
    return CellStats(n=n, n_tagged=n, n_negative=negative, sentiment_sum=float(-negative),
                     sentiment_sumsq=float(negative), p_negative_sum=float(negative),
                     p_negative_sumsq=float(negative))


def _series(shares: list[float], n: int = 60, seed: int = 0) -> list[CellStats | None]:
    rng = random.Random(seed)
    return [_cell(sum(rng.random() < s for _ in range(n)), n) for s in shares]


def _find(weekly: dict[tuple[str, str], list[CellStats | None]]) -> dict[str, object]:
    found = standing_problems(weekly, WEEKS, policy=POLICY, min_n=20, estimator=COUNT_NEGATIVE)
    return {p.value: p for p in found}


def test_a_lasting_rise_is_found_with_its_start_and_a_steady_cell_is_not() -> None:
    rise_at = SPAN - 7
    weekly = {("touchpoint", "delivery"): _series([0.2] * rise_at + [0.6] * 7),
              ("touchpoint", "store"): _series([0.2] * SPAN, seed=1)}
    found = _find(weekly)
    assert set(found) == {"delivery"}
    problem = found["delivery"]
    assert problem.since == WEEKS[rise_at] and problem.weeks == 7
    assert problem.baseline_weeks == POLICY.baseline_weeks and problem.baseline_since == WEEKS[rise_at - 8]
    assert 0.5 < problem.share < 0.7 and 0.1 < problem.baseline < 0.3
    low, high = problem.change_ci
    assert low < problem.change < high and low > 0.2
    assert problem.sentiment_change < 0 and problem.q_value <= POLICY.fdr


def test_the_baseline_stays_where_the_rise_began() -> None:
    """Twelve weeks into a rise, the digest's 8-week baseline is the rise itself; here it is not."""
    weekly = {("touchpoint", "delivery"): _series([0.2] * (SPAN - 12) + [0.6] * 12)}
    assert _find(weekly)["delivery"].since == WEEKS[SPAN - 12]


def test_too_new_a_rise_a_gap_or_a_dip_is_not_still_going() -> None:
    new = _series([0.2] * (SPAN - MIN_WEEKS + 1) + [0.7] * (MIN_WEEKS - 1))  # the digest's alert, not this
    gap = _series([0.2] * (SPAN - 6) + [0.7] * 6)
    gap[-2] = None  # a hidden (employee) or empty week breaks the run: only one week after it
    dip = _series([0.2] * (SPAN - 6) + [0.7, 0.7, 0.7, 0.2, 0.7, 0.7])
    found = _find({("touchpoint", "new"): new, ("touchpoint", "gap"): gap, ("touchpoint", "dip"): dip})
    assert not found
    earlier = _series([0.2] * (SPAN - 6) + [0.7] * 6)
    earlier[-6] = None  # the rise's first week hidden: the run after it is long enough, and starts after it
    assert _find({("org_unit", "gap"): earlier})["gap"].since == WEEKS[-5]


def test_a_small_cell_needs_min_n_answers_over_its_run() -> None:
    small = _series([0.2] * (SPAN - 3) + [1.0] * 3, n=5)  # 15 answers, all negative
    assert not _find({("touchpoint", "small"): small})
    assert onset(small, policy=POLICY, estimator=COUNT_NEGATIVE) == SPAN - 3  # it did rise


def test_unknown_values_are_not_listed() -> None:
    assert not _find({("touchpoint", "unknown"): _series([0.2] * (SPAN - 6) + [0.7] * 6)})


def test_steady_cells_rarely_raise_anything() -> None:
    """Never cry wolf: pages of 20 cells with no change at all (200 of them, 40 answers a cell a
    week, a share negative from 5% to 60%) list a standing problem about as often as the test's
    false discovery rate allows (0.01 a page, here at most 3 pages in 200), though the onset is
    picked from the very data the test reads."""
    rng = random.Random(2026)
    flagged = 0
    for page in range(200):
        share = rng.uniform(0.05, 0.6)
        weekly = {("touchpoint", f"t{k}"): _series([share] * SPAN, n=40, seed=page * 100 + k) for k in range(20)}
        flagged += bool(_find(weekly))
    assert flagged <= 3, flagged


def test_the_family_pays_for_picking_the_onset() -> None:
    """A cell's q-value counts every onset week the scan could have picked, for every cell."""
    weekly = {("touchpoint", "delivery"): _series([0.2] * (SPAN - 7) + [0.6] * 7)}
    one = _find(weekly)["delivery"]
    assert one.q_value == min(1.0, float(f"{one.p_value * 10:.3g}"))  # ten onset weeks scanned
    weekly.update({("touchpoint", f"t{k}"): _series([0.2] * SPAN, seed=k) for k in range(4)})
    five = _find(weekly)
    assert five["delivery"].q_value >= one.q_value * 4.9  # five cells, each with ten onsets
