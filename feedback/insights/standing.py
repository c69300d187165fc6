"""Standing problems: cells whose negative feedback has stayed above their own baseline, week
after week, up to the week shown (the overview's "Still going" section).

The digest's alert compares one week with the `baseline_weeks` weeks just before it, so a drop
that lasts sinks into its own baseline: eight weeks on, the baseline is the drop, and a problem
that is still going is flagged nowhere unless it moved again. Here the baseline stays where the
problem started. For each cell (a touchpoint, a team, a theme):

- the onset is the earliest week in the last `lookback` weeks such that every week from it up
  to the week shown has feedback and an estimated share negative at least
  `policy.min_share_increase` above the `baseline_weeks` weeks before the onset (at least
  `min_weeks` weeks: a newer rise is the digest's alert, not a standing problem);
- those weeks pooled are then tested against that baseline with the digest's own test
  (`alerts.negative_share_alerts`: one-sided Fisher exact test of the share of negative texts,
  or Welch's t on the mean p(negative) for a probability estimator, widened by the baseline's
  over-dispersion, `min_n` items, at least `min_share_increase`, Benjamini-Hochberg at
  `policy.fdr`). The onset is picked from the data, among up to `lookback - min_weeks + 1`
  weeks, so the family is every (cell, onset week) pair that could have been tested: each cell
  with enough data times the onsets scanned (Bonferroni over the onsets within
  Benjamini-Hochberg over the cells). Only the few cells with an onset are tested; the rest of
  the family joins with p = 1 (`also_in_family`: q-values can only rise with it).

The texts' reading only: the ratings' reading of the alert counts low CSAT and star ratings,
which the rollups do not keep. The change is reported as `/v1/compare` reports one (the run
against the baseline, with its 95% interval), for the share negative and the mean sentiment.

Employee cells come from the same privacy-checked weekly tables as every employee page
(`feedback.analytics.tables.cell_table`): a hidden week never enters a baseline and breaks a
run, so a group is listed only when each week of its run, the week shown included, was shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import CellStats, Slice
from feedback.analytics.compare import change_test
from feedback.analytics.tables import cell_table
from feedback.insights.alerts import AlertPolicy, estimated_negative_share, negative_share_alerts
from feedback.insights.repository import CellWeek
from feedback.insights.significance import Moments
from feedback.insights.weeks import week_label

LOOKBACK_WEEKS = 12  # the weeks a standing problem may have started in, the week shown included
MIN_WEEKS = 3  # consecutive weeks up to the week shown; a newer rise is the digest's alert
UNKNOWN = "unknown"  # items without a value: no place to look


@dataclass(frozen=True)
class StandingProblem:
    """One cell whose share negative has stayed up since `since`, with the numbers behind it."""

    dimension: str
    value: str  # the value code (a touchpoint, a team)
    since: date  # the Monday of the run's first week
    weeks: int  # the run's weeks, the week shown included
    n: int  # tagged items over the run
    share: float  # estimated share negative over the run
    latest_share: float  # in the week shown
    baseline: float  # over the baseline weeks
    baseline_n: int
    baseline_weeks: int
    baseline_since: date  # the Monday of the first baseline week
    change: float | None  # share negative, run minus baseline, as /v1/compare computes it
    change_ci: tuple[float, float] | None
    sentiment_change: float | None  # mean sentiment, run minus baseline
    sentiment_ci: tuple[float, float] | None
    p_value: float
    q_value: float

    @property
    def since_week(self) -> str:
        return week_label(self.since)


def _cell_week(stats: CellStats) -> CellWeek:
    """The digest's view of a cell: the sums its negative-share test reads (no ratings' reading:
    the rollups keep no count of low CSAT or star ratings)."""
    return CellWeek(n=stats.n, tagged=stats.n_tagged, negative=stats.n_negative, positive=stats.n_positive,
                    sentiment=Moments(stats.n_tagged, stats.sentiment_sum, stats.sentiment_sumsq),
                    p_negative=Moments(stats.n_tagged, stats.p_negative_sum, stats.p_negative_sumsq))


def _pooled(cells: Sequence[CellStats]) -> CellStats:
    total = CellStats()
    for cell in cells:
        total.add_sums(cell)
    return total


def _shown(cells: Sequence[CellStats | None], lo: int, hi: int) -> list[tuple[int, CellStats]]:
    """(index, cell) of the weeks lo..hi-1 with tagged feedback that was shown (not hidden)."""
    return [(i, c) for i, c in enumerate(cells[max(0, lo):hi], start=max(0, lo)) if c is not None and c.n_tagged]


def _onsets(weeks: int, policy: AlertPolicy, lookback: int, min_weeks: int) -> range:
    """The week indices a run may start at: within the last `lookback` weeks, after enough
    baseline weeks, leaving at least `min_weeks` weeks up to the last."""
    return range(max(policy.min_baseline_weeks, weeks - lookback), weeks - min_weeks + 1)


def onset(cells: Sequence[CellStats | None], *, policy: AlertPolicy, estimator: ShareEstimator,
          lookback: int = LOOKBACK_WEEKS, min_weeks: int = MIN_WEEKS) -> int | None:
    """The index of the earliest week from which every week up to the last stayed at least
    `policy.min_share_increase` above the baseline weeks before it; None without one."""
    last = len(cells)
    # (tagged, labelled negative, sum of p(negative)) of the weeks shown: a share is linear in them
    sums = [(c.n_tagged, c.n_negative, c.p_negative_sum) if c is not None and c.n_tagged else None for c in cells]
    lowest = [float("inf")] * (last + 1)  # the lowest weekly share from each week to the last
    for i in range(last - 1, -1, -1):
        week = sums[i]
        share = None if week is None else estimator.estimate(n=week[0], count=week[1], prob_sum=week[2])
        lowest[i] = float("-inf") if share is None else min(share, lowest[i + 1])  # a gap ends every run
    for start in _onsets(last, policy, lookback, min_weeks):
        if lowest[start] == float("-inf"):
            continue
        base = [w for w in sums[max(0, start - policy.baseline_weeks):start] if w is not None]
        if len(base) < policy.min_baseline_weeks:
            continue
        level = estimator.estimate(n=sum(w[0] for w in base), count=sum(w[1] for w in base),
                                   prob_sum=sum(w[2] for w in base))
        if level is not None and lowest[start] - level >= policy.min_share_increase:
            return start
    return None


def standing_problems(weekly: Mapping[tuple[str, str], Sequence[CellStats | None]], weeks: Sequence[date], *,
                      policy: AlertPolicy, min_n: int, estimator: ShareEstimator, lookback: int = LOOKBACK_WEEKS,
                      min_weeks: int = MIN_WEEKS) -> list[StandingProblem]:
    """The standing problems among `weekly[(dimension, value)]`, one cell per week of `weeks`
    (Mondays, oldest first, the week shown last; None: hidden or no feedback), worst change first."""
    tested: dict[tuple[str, str], tuple[CellWeek, list[CellWeek]]] = {}
    runs: dict[tuple[str, str], tuple[int, list[CellStats], CellStats, list[tuple[int, CellStats]]]] = {}
    no_onset = 0  # cells with the data to be tested but no onset: never listed
    for key, cells in weekly.items():
        if key[1] == UNKNOWN or len(cells) != len(weeks):
            continue
        start = onset(cells, policy=policy, estimator=estimator, lookback=lookback, min_weeks=min_weeks)
        first = start if start is not None else len(cells) - min_weeks
        run = [c for _, c in _shown(cells, first, len(cells))]
        base = _shown(cells, first - policy.baseline_weeks, first)
        if start is None:
            no_onset += sum(c.n_tagged for c in run) >= min_n and len(base) >= policy.min_baseline_weeks
            continue
        pooled = _pooled(run)
        tested[key] = (_cell_week(pooled), [_cell_week(c) for _, c in base])
        runs[key] = (start, run, pooled, base)
    # The family is every (cell, onset week) the scan could have picked: picking the onset from
    # the data is paid for (Bonferroni over the onsets within Benjamini-Hochberg over the cells).
    onsets = len(_onsets(len(weeks), policy, lookback, min_weeks))
    family = (len(tested) + no_onset) * max(1, onsets)
    alerts = negative_share_alerts(tested, week=week_label(weeks[-1]), policy=policy, min_n=min_n,
                                   estimator=estimator, also_in_family=family - len(tested))
    problems = []
    for alert in alerts:
        key = (alert.dimension, alert.value)
        start, run, now, base = runs[key]
        before = _pooled([c for _, c in base])
        days = (7.0 * len(base), 7.0 * len(run))
        share = change_test(before, now, "share_negative", days, estimator)
        sentiment = change_test(before, now, "mean_sentiment", days, estimator)
        text = next(m for m in alert.measures if m["measure"] == "text")
        problems.append(StandingProblem(
            dimension=key[0], value=key[1], since=weeks[start], weeks=len(weeks) - start, n=now.n_tagged,
            share=text["share"], latest_share=estimated_negative_share(_cell_week(run[-1]), estimator) or 0.0,
            baseline=text["baseline"], baseline_n=before.n_tagged, baseline_weeks=len(base),
            baseline_since=weeks[base[0][0]],
            change=share.change if share else None, change_ci=share.ci if share else None,
            sentiment_change=sentiment.change if sentiment else None,
            sentiment_ci=sentiment.ci if sentiment else None,
            p_value=text["p_value"], q_value=text["q_value"]))
    return sorted(problems, key=lambda p: (-(p.share - p.baseline), p.dimension, p.value))


def find_standing(session: Session, *, audience: str, week: datetime, dimensions: Sequence[str],
                  policy: AlertPolicy, min_n: int, min_group_size: int, estimator: ShareEstimator,
                  lookback: int = LOOKBACK_WEEKS, min_weeks: int = MIN_WEEKS) -> list[StandingProblem]:
    """The standing problems of `audience` by each of `dimensions` as of the week starting at
    `week` (a Monday, UTC): one weekly cell table per dimension over the lookback and its
    baseline, read as every page reads them (customer: the rollups; employee: the items with
    the privacy rules)."""
    span = policy.baseline_weeks + lookback
    first = week - timedelta(weeks=span - 1)
    mondays = [(first + timedelta(weeks=k)).date() for k in range(span)]
    where = Slice.make(audience, first, week + timedelta(days=7), {})
    weekly: dict[tuple[str, str], list[CellStats | None]] = {}
    for name in dimensions:
        table = cell_table(session, where, name, "week", min_group_size=min_group_size)
        for value in table.values():
            weekly[(name, value)] = [table.cells.get((monday, value)) for monday in mondays]
    return standing_problems(weekly, mondays, policy=policy, min_n=min_n, estimator=estimator, lookback=lookback,
                             min_weeks=min_weeks)
