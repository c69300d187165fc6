"""Period comparison: a metric in a current range against a baseline, per dimension value.

For every value of `by` (and overall): the metric in both ranges with n and interval, the
change with its interval, a p-value (Welch's t for means, the two-proportion z test for shares,
the Poisson rate test for volume; share_negative is the estimated share, tested by Welch's t on
the per-item values whose mean it is, see `feedback.analytics.shares`), a Benjamini-Hochberg
q-value across the rows, whether it is significant at `alpha` after that control, and what drove it.

Drivers: every score is a mean over items, so the overall score is the weighted mean of the
scores of the driver groups (topics, or touchpoints): M = sum_j w_j m_j. The change splits
exactly into one contribution per group, w_j' m_j' - w_j m_j, and each contribution into a
mix part (the group grew or shrank) and a rate part (the group's own score moved), evaluated
at the midpoint so the two parts add up. The groups with the largest contributions are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import (
    CellStats,
    Slice,
    dimension,
    floor_period,
    next_period,
    value_labels,
)
from feedback.analytics.metrics import SCORE_METRICS, moments
from feedback.analytics.shares import describe, negative_share, resolve
from feedback.analytics.stats import (
    TestResult,
    benjamini_hochberg,
    mean_ci,
    net_ci,
    rate_test,
    two_proportion_test,
    welch_test,
    wilson_ci,
)
from feedback.analytics.tables import RANGE, cell_table, cross_cells, employee_tables_by
from feedback.privacy.groups import snap_to_weeks

COMPARE_METRICS = ("volume", *SCORE_METRICS)
PROPORTIONS = {"csat": ("csat_satisfied", "csat_n")}
COUNTED_NEGATIVE = ("n_negative", "n_tagged")  # share_negative when the estimator only counts
DRIVER_DIMENSIONS = ("topic", "touchpoint", "journey_stage", "channel", "segment", "source", "language",
                     "org_unit")
TOP_DRIVERS = 5


@dataclass
class CompareQuery:
    """Baseline [baseline_start, baseline_end) against current [current_start, current_end)."""

    current_start: datetime
    current_end: datetime
    baseline_start: datetime
    baseline_end: datetime
    by: str = "touchpoint"
    metric: str = "net_sentiment"
    audience: str = "customer"
    filters: dict[str, str] | None = None
    drivers_by: str | None = None
    alpha: float = 0.05
    drivers: bool = True  # False: rows without drivers (a caller that does not show them skips their reads)


def previous_periods(period: str, at: date) -> tuple[datetime, datetime, datetime, datetime]:
    """(current start, current end, baseline start, baseline end) for the period containing `at`."""
    if period not in ("week", "month"):
        raise ValueError("period must be week or month")
    start = floor_period(at, period)
    end = next_period(start, period)
    before = floor_period(start - timedelta(days=1), period)
    return tuple(datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (start, end, before, start))  # type: ignore[return-value]


def _metric_value(stats: CellStats, metric: str, estimator: ShareEstimator
                  ) -> tuple[float | None, int, tuple[float, float] | None]:
    """(value, n, 95% interval) of one metric of a cell."""
    if metric == "volume":
        return float(stats.n), stats.n, None
    if metric == "share_negative":
        value, low, high = negative_share(estimator, n=stats.n_tagged, count=stats.n_negative,
                                          prob_sum=stats.p_negative_sum, prob_sumsq=stats.p_negative_sumsq)
        return value, stats.n_tagged, (low, high) if low is not None and high is not None else None
    m = moments(stats, metric)
    if m.mean is None:
        return None, m.n, None
    if metric in PROPORTIONS:
        x, n = (getattr(stats, f) for f in PROPORTIONS[metric])
        return m.mean, m.n, wilson_ci(x, n)
    if metric == "net_sentiment":
        return m.mean, m.n, net_ci(stats.n_positive, stats.n_negative, stats.n_tagged)
    if metric == "nps":
        return m.mean, m.n, net_ci(stats.nps_promoters, stats.nps_detractors, stats.nps_n, scale=100.0)
    lo, hi = (-1.0, 1.0) if metric == "mean_sentiment" else (1.0, 5.0)
    return m.mean, m.n, mean_ci(m, lo=lo, hi=hi)


def change_test(base: CellStats, cur: CellStats, metric: str, days: tuple[float, float],
                estimator: ShareEstimator) -> TestResult | None:
    """The change of `metric` from `base` to `cur` with its 95% interval and two-sided p-value,
    as /v1/compare reports it (`days`: each side's length, for volume's rate)."""
    if metric == "volume":
        return rate_test(base.n, days[0], cur.n, days[1])
    counted = metric == "share_negative" and estimator.method == "cc"
    proportion = COUNTED_NEGATIVE if counted else PROPORTIONS.get(metric)
    if proportion is not None:
        x, n = proportion
        return two_proportion_test(getattr(base, x), getattr(base, n), getattr(cur, x), getattr(cur, n))
    return welch_test(moments(base, metric, estimator), moments(cur, metric, estimator))


def _side(stats: CellStats | None, metric: str, estimator: ShareEstimator) -> dict[str, Any]:
    if stats is None:
        return {"suppressed": True, "n": None, "value": None, "ci_low": None, "ci_high": None}
    value, n, ci = _metric_value(stats, metric, estimator)
    return {"suppressed": False, "n": n, "value": _r(value),
            "ci_low": _r(ci[0]) if ci else None, "ci_high": _r(ci[1]) if ci else None}


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def compare(session: Session, query: CompareQuery, *, min_group_size: int,
            estimator: ShareEstimator | None = None) -> dict[str, Any]:
    """The comparison rows, overall first, with drivers; see the module docstring. share_negative
    is estimated by `estimator` (default: the one stored with the configured heads)."""
    estimator = resolve(estimator)
    if query.metric not in COMPARE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(COMPARE_METRICS)}")
    dimension(query.by)
    drivers_by = query.drivers_by or ("touchpoint" if query.by == "topic" else "topic")
    if drivers_by not in DRIVER_DIMENSIONS:
        raise ValueError(f"drivers_by must be a single-valued dimension: {', '.join(DRIVER_DIMENSIONS)}")
    ranges: dict[str, tuple[datetime | None, datetime | None]] = {
        "baseline": (query.baseline_start, query.baseline_end),
        "current": (query.current_start, query.current_end)}
    if query.audience == "employee":  # employee numbers are whole weeks: compare what is computed
        ranges = {k: snap_to_weeks(*v) for k, v in ranges.items()}  # type: ignore[misc]
    tables = {}
    for side, (start, end) in ranges.items():
        where = Slice.make(query.audience, start, end, query.filters)
        tables[side] = cell_table(session, where, query.by, RANGE, min_group_size=min_group_size)
    days = tuple(((e - s).total_seconds() / 86400.0) for s, e in ranges.values())  # type: ignore[operator]
    values = sorted({code for t in tables.values() for (_, code) in t.cells})
    labels = value_labels(session, query.by, values)
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, str | None]] = [("overall", None)] + [("value", v) for v in values]
    for kind, code in keys:
        if kind == "overall":
            base, cur = tables["baseline"].totals.get(None), tables["current"].totals.get(None)
        else:
            assert code is not None
            base, cur = tables["baseline"].cells.get((None, code)), tables["current"].cells.get((None, code))
        row: dict[str, Any] = {query.by: "(all)" if code is None else labels.get(code, code),
                               "value_code": code, "baseline": _side(base, query.metric, estimator),
                               "current": _side(cur, query.metric, estimator)}
        test = (change_test(base, cur, query.metric, days, estimator)  # type: ignore[arg-type]
                if base is not None and cur is not None else None)
        row.update(change=_r(test.change) if test else None,
                   change_ci_low=_r(test.ci[0]) if test else None, change_ci_high=_r(test.ci[1]) if test else None,
                   p_value=_r(test.p_value, 6) if test else None, test=test.method if test else None)
        rows.append(row)
    for row, q in zip(rows, benjamini_hochberg([r["p_value"] for r in rows]), strict=True):
        row["q_value"] = _r(q, 6)
        row["significant"] = q is not None and q < query.alpha
    if query.metric != "volume" and query.drivers:
        _add_drivers(session, query, rows, ranges, drivers_by, min_group_size, estimator)
    shares = describe(estimator) if query.metric == "share_negative" else {}
    return {"audience": query.audience, "by": query.by, "metric": query.metric, **shares,
            "drivers_by": drivers_by,
            "alpha": query.alpha, "multiple_comparisons": "benjamini-hochberg",
            "baseline": {"start": _iso(ranges["baseline"][0]), "end": _iso(ranges["baseline"][1])},
            "current": {"start": _iso(ranges["current"][0]), "end": _iso(ranges["current"][1])},
            "rows": rows}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _add_drivers(session: Session, query: CompareQuery, rows: list[dict[str, Any]],
                 ranges: dict[str, tuple[datetime | None, datetime | None]], drivers_by: str,
                 min_group_size: int, estimator: ShareEstimator) -> None:
    """Per row, the driver groups that moved its score most (see the module docstring)."""
    splits: dict[str | None, dict[str, dict[str, CellStats]]] = {}
    for side, (start, end) in ranges.items():
        where = Slice.make(query.audience, start, end, query.filters)
        overall = cell_table(session, where, drivers_by, RANGE, min_group_size=min_group_size)
        splits.setdefault(None, {})[side] = {c: s for (_, c), s in overall.cells.items() if s is not None}
        if query.audience != "employee":
            for (value, code), stats in cross_cells(session, where, query.by, drivers_by).items():
                splits.setdefault(value, {}).setdefault(side, {})[code] = stats
            continue
        # Employee: each value's drivers are the two-way table (value x driver), suppressed as one.
        if query.filters and query.by not in (query.filters or {}):
            continue  # a second filter would narrow employee groups: overall drivers only
        wanted = [row["value_code"] for row in rows if row["value_code"] is not None and row["change"] is not None]
        if not wanted:
            continue
        if query.filters or query.by == drivers_by:  # as the single query for each value would
            tables = {code: cell_table(session, Slice.make(query.audience, start, end, {query.by: code}), drivers_by,
                                       RANGE, min_group_size=min_group_size) for code in wanted}
        else:  # one read of the items for every value (the same tables)
            tables = employee_tables_by(session, Slice.make(query.audience, start, end), query.by, wanted,
                                        drivers_by, RANGE, min_group_size=min_group_size)
        for code, table in tables.items():
            splits.setdefault(code, {})[side] = {c: s for (_, c), s in table.cells.items() if s is not None}
    codes = {c for split in splits.values() for side in split.values() for c in side}
    labels = value_labels(session, drivers_by, codes)
    for row in rows:
        split = splits.get(row["value_code"], {})
        row["drivers"] = (decompose(split.get("baseline", {}), split.get("current", {}), query.metric,
                                    labels=labels, dimension=drivers_by, estimator=estimator)
                          if row["change"] is not None and split else [])


def decompose(base: dict[str, CellStats], cur: dict[str, CellStats], metric: str, *,
              labels: dict[str, str], dimension: str, top: int = TOP_DRIVERS,
              estimator: ShareEstimator | None = None) -> list[dict[str, Any]]:
    """Contribution of each group to the change of a mean-type metric (exact midpoint split).

    For an estimated share negative the group values are the unclipped estimates (the estimate
    is linear in the items, so the contributions still add up to the change exactly)."""
    if metric == "share_negative":
        estimator = resolve(estimator)

    def parts(cells: dict[str, CellStats]) -> tuple[dict[str, tuple[float, float]], int]:
        total_n = sum(moments(s, metric, estimator).n for s in cells.values())
        out = {}
        for code, stats in cells.items():
            m = moments(stats, metric, estimator)
            if m.n and total_n:
                out[code] = (m.n / total_n, m.mean or 0.0)
        return out, total_n

    b, _ = parts(base)
    c, _ = parts(cur)
    drivers: list[dict[str, Any]] = []
    for code in set(b) | set(c):
        w0, m0 = b.get(code, (0.0, c.get(code, (0.0, 0.0))[1]))
        w1, m1 = c.get(code, (0.0, m0))
        contribution = w1 * m1 - w0 * m0
        drivers.append({
            "dimension": dimension, "value_code": code, "value": labels.get(code, code),
            "contribution": round(contribution, 4),
            "mix_effect": round((w1 - w0) * (m0 + m1) / 2, 4),
            "rate_effect": round((m1 - m0) * (w0 + w1) / 2, 4),
            "baseline_share": round(w0, 4), "current_share": round(w1, 4),
            "baseline_value": round(m0, 4) if code in b else None,
            "current_value": round(m1, 4) if code in c else None,
        })
    drivers.sort(key=lambda d: (-abs(d["contribution"]), d["value_code"]))
    return drivers[:top]
