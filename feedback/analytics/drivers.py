"""Key drivers: how much each topic, need, emotion and touchpoint moves NPS, rating, CSAT or sentiment.

For every feature (an item has topic 12, mentions the need 'price', shows 'anger', is about
'delivery') and the outcome score of the items (NPS as +100/0/-100 per answer, so its mean is
the NPS; rating in stars; CSAT top-2-box; sentiment score):

- with / without: the score of the items with the feature and of the rest, the difference
  with its 95% interval and Welch's t test, Benjamini-Hochberg q-values across all features;
- impact: prevalence x difference = how far the overall score sits from where it would be if
  the feature's items scored like the rest (negative: the feature drags the score down);
- adjusted (customer data): an ordinary least-squares regression of the outcome on all features
  at once, so a feature's coefficient is its effect holding the others fixed; single-valued
  dimensions (topic, touchpoint) leave out their most common value as the reference.

Employee drivers use only the privacy-checked weekly cells (see docs/privacy.md): with = shown
weekly cells of the feature, without = shown weekly totals minus them in the same weeks. No
regression is fitted on employee items.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from feedback.analytics.cells import (
    CellStats,
    Slice,
    apply_slice,
    base_select,
    day_start,
    dimension,
    value_labels,
)
from feedback.analytics.metrics import moments
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.served import item_labels
from feedback.analytics.stats import Moments, benjamini_hochberg, mean_ci, normal_sf, welch_test
from feedback.analytics.tables import RANGE, cell_table, rollup_table
from feedback.models import FeedbackItem

OUTCOMES = {"nps": "nps", "rating": "mean_rating", "csat": "csat", "sentiment": "mean_sentiment"}
DEFAULT_DIMENSIONS = ("topic", "need", "emotion", "touchpoint")
MAX_ITEMS = 200_000


@dataclass
class DriverQuery:
    """What `/v1/drivers` asks."""

    outcome: str = "nps"
    audience: str = "customer"
    start: datetime | None = None
    end: datetime | None = None
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    filters: dict[str, str] | None = None
    min_support: int = 30
    alpha: float = 0.05
    max_items: int = MAX_ITEMS
    # False: no adjusted coefficients (the least-squares fit needs every item's features at once;
    # without it, customer drivers are read from the rollups where they hold the slice)
    regression: bool = True


def _outcome_column(outcome: str) -> Any:
    return {"nps": FeedbackItem.nps, "rating": FeedbackItem.stars, "csat": FeedbackItem.csat,
            "sentiment": Tag.sentiment_score}[outcome]


def _outcome_values(outcome: str, raw: np.ndarray) -> np.ndarray:
    if outcome == "nps":
        return np.where(raw >= 9, 100.0, np.where(raw <= 6, -100.0, 0.0))
    if outcome == "csat":
        return (raw >= 4).astype(float)
    return raw.astype(float)


def key_drivers(session: Session, query: DriverQuery, *, min_group_size: int) -> dict[str, Any]:
    """Drivers of the outcome, largest |impact| first; see the module docstring."""
    if query.outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    for name in query.dimensions:
        dimension(name)
    where = Slice.make(query.audience, query.start, query.end, query.filters)
    if query.audience == "employee":
        result = _employee_drivers(session, where, query, min_group_size)
    else:
        result = _customer_drivers(session, where, query)
    drivers = result["drivers"]
    for driver, q in zip(drivers, benjamini_hochberg([d["p_value"] for d in drivers]), strict=True):
        driver["q_value"] = None if q is None else round(q, 6)
        driver["significant"] = q is not None and q < query.alpha
    drivers.sort(key=lambda d: (-abs(d["impact"] or 0.0), d["dimension"], d["value_code"]))
    codes: dict[str, set[str]] = defaultdict(set)
    for d in drivers:
        codes[d["dimension"]].add(d["value_code"])
    labels = {name: value_labels(session, name, values) for name, values in codes.items()}
    for d in drivers:
        d["value"] = labels[d["dimension"]].get(d["value_code"], d["value_code"])
    result.update(outcome=query.outcome, audience=query.audience, alpha=query.alpha,
                  multiple_comparisons="benjamini-hochberg",
                  start=result.get("start") or (query.start.isoformat() if query.start else None),
                  end=result.get("end") or (query.end.isoformat() if query.end else None))
    return result


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def _driver(name: str, code: str, with_m: Moments, without_m: Moments, overall_n: int) -> dict[str, Any]:
    test = welch_test(without_m, with_m)
    ci = mean_ci(with_m)
    prevalence = with_m.n / overall_n if overall_n else 0.0
    difference = test.change if test else None
    return {
        "dimension": name, "value_code": code, "n_with": with_m.n, "prevalence": _r(prevalence),
        "mean_with": _r(with_m.mean), "mean_with_ci_low": _r(ci[0]) if ci else None,
        "mean_with_ci_high": _r(ci[1]) if ci else None, "mean_without": _r(without_m.mean),
        "difference": _r(difference), "difference_ci_low": _r(test.ci[0]) if test else None,
        "difference_ci_high": _r(test.ci[1]) if test else None,
        "p_value": _r(test.p_value, 6) if test else None,
        "impact": _r(prevalence * difference) if difference is not None else None,
    }


def _customer_drivers(session: Session, where: Slice, query: DriverQuery) -> dict[str, Any]:
    from_cells = _drivers_from_rollups(session, where, query)
    if from_cells is not None:
        return from_cells
    outcome = _outcome_column(query.outcome)
    single = {n: dimension(n).value for n in query.dimensions if not dimension(n).multi}
    multi = {dimension(n).label_kind: n for n in query.dimensions if dimension(n).multi}
    stmt = apply_slice(base_select(FeedbackItem.id, outcome.label("outcome"),
                                   *[f().label(f"v_{n}") for n, f in single.items() if f is not None]), where)
    stmt = stmt.where(outcome.is_not(None)).order_by(FeedbackItem.created_at.desc()).limit(query.max_items)
    rows = session.execute(stmt).all()
    if not rows:
        return {"n": 0, "overall": None, "drivers": [], "regression": None}
    ids = np.array([r.id for r in rows])
    y = _outcome_values(query.outcome, np.array([float(r.outcome) for r in rows]))
    position = {item_id: i for i, item_id in enumerate(ids.tolist())}
    features: dict[tuple[str, str], np.ndarray] = {}
    for name in single:
        values = np.array([str(getattr(r, f"v_{name}")) for r in rows])
        for code in np.unique(values):
            features[(name, str(code))] = values == code
    if multi:
        label_rows = item_labels(session, [int(i) for i in ids], list(multi))
        for item_id, kind, label in label_rows:
            key = (multi[kind], label)
            if key not in features:
                features[key] = np.zeros(len(ids), dtype=bool)
            features[key][position[item_id]] = True
    total = Moments(len(y), float(y.sum()), float((y * y).sum()))
    drivers = []
    kept: list[tuple[str, str]] = []
    for (name, code), mask in sorted(features.items()):
        n_with = int(mask.sum())
        if n_with < query.min_support or len(y) - n_with < query.min_support:
            continue
        with_y, without_y = y[mask], y[~mask]
        drivers.append(_driver(name, code, Moments(n_with, float(with_y.sum()), float((with_y ** 2).sum())),
                               Moments(len(without_y), float(without_y.sum()), float((without_y ** 2).sum())),
                               len(y)))
        kept.append((name, code))
    if not query.regression:
        return _without_regression(total, drivers)
    regression = _regression(y, features, kept, single)
    _attach_coefficients(drivers, regression)
    overall_ci = mean_ci(total)
    return {"n": len(y), "overall": {"value": _r(total.mean), "ci_low": _r(overall_ci[0]) if overall_ci else None,
                                     "ci_high": _r(overall_ci[1]) if overall_ci else None},
            "drivers": drivers, "regression": {k: v for k, v in regression.items() if k != "coefficients"}}


def _regression_setup(n: int, counts: dict[tuple[str, str], int], kept: list[tuple[str, str]],
                      single: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The answer's frame and the regression's columns: the kept features less one reference per
    single-valued dimension (its most common value)."""
    references = {}
    for name in single:
        candidates = [k for k in kept if k[0] == name]
        if candidates:
            references[name] = max(candidates, key=lambda k: (counts[k], k[1]))
    columns = [k for k in kept if k not in references.values()]
    out: dict[str, Any] = {"method": "ols", "n": n, "features": len(columns),
                           "references": {n: k[1] for n, k in references.items()}, "coefficients": {}}
    for ref in references.values():
        out["coefficients"][ref] = {"coefficient": 0.0, "coefficient_ci_low": None, "coefficient_ci_high": None,
                                    "coefficient_p_value": None, "reference": True}
    return out, columns


def _regression(y: np.ndarray, features: dict[tuple[str, str], np.ndarray], kept: list[tuple[str, str]],
                single: dict[str, Any]) -> dict[str, Any]:
    """OLS of y on the kept features; references: the most common value of each single-valued dimension."""
    out, columns = _regression_setup(len(y), {k: int(features[k].sum()) for k in kept}, kept, single)
    if not columns or len(y) <= len(columns) + 1:
        out["r_squared"] = None
        return out
    x = np.column_stack([np.ones(len(y))] + [features[k].astype(float) for k in columns])
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ (x.T @ y)
    residual = y - x @ beta
    dof = max(1, len(y) - x.shape[1])
    sigma2 = float(residual @ residual) / dof
    total_ss = float(((y - y.mean()) ** 2).sum())
    out["r_squared"] = _r(1 - float(residual @ residual) / total_ss) if total_ss else None
    return _coefficients(out, columns, beta, xtx_inv, sigma2)


def _coefficients(out: dict[str, Any], columns: list[tuple[str, str]], beta: np.ndarray, xtx_inv: np.ndarray,
                  sigma2: float) -> dict[str, Any]:
    se = np.sqrt(np.clip(np.diag(xtx_inv) * sigma2, 0.0, None))
    out["intercept"] = _r(float(beta[0]))
    for i, key in enumerate(columns, start=1):
        z = beta[i] / se[i] if se[i] > 0 else 0.0
        out["coefficients"][key] = {
            "coefficient": _r(float(beta[i])), "coefficient_ci_low": _r(float(beta[i] - 1.96 * se[i])),
            "coefficient_ci_high": _r(float(beta[i] + 1.96 * se[i])),
            "coefficient_p_value": _r(2 * normal_sf(abs(float(z))), 6) if se[i] > 0 else None,
            "reference": False}
    return out


# Outcomes whose item values the cell sums determine (answers, promoters and detractors, ...),
# so the drivers of one single-valued dimension can be read from the rollups (`_drivers_from_rollups`).
CELL_OUTCOMES = ("nps", "csat", "rating")


def _cell_moments(stats: CellStats, outcome: str) -> Moments:
    """The outcome's n, sum and sum of squares over a cell's items (as `_outcome_values` scores them)."""
    if outcome == "nps":
        return Moments(stats.nps_n, 100.0 * (stats.nps_promoters - stats.nps_detractors),
                       10000.0 * (stats.nps_promoters + stats.nps_detractors))
    if outcome == "csat":
        return Moments(stats.csat_n, float(stats.csat_satisfied), float(stats.csat_satisfied))
    return Moments(stats.rating_n, float(stats.rating_sum), float(stats.rating_sumsq))


def _without_regression(total: Moments, drivers: list[dict[str, Any]]) -> dict[str, Any]:
    overall_ci = mean_ci(total)
    return {"n": total.n, "overall": {"value": _r(total.mean), "ci_low": _r(overall_ci[0]) if overall_ci else None,
                                      "ci_high": _r(overall_ci[1]) if overall_ci else None},
            "drivers": drivers, "regression": None}


def _drivers_from_rollups(session: Session, where: Slice, query: DriverQuery) -> dict[str, Any] | None:
    """`_customer_drivers` from the rollups' day cells instead of every item, where they hold the
    slice (unfiltered, or one filter they cross with each dimension: a touchpoint's topics, needs
    and emotions) and the outcome's item values follow from cell sums (CELL_OUTCOMES). With and
    without need only each feature's n, sum and sum of squares; the regression, only for one
    single-valued dimension (one-hot: X'X holds counts). The newest `max_items` answers, as the
    item read takes them: whole days newest first, then the newest answers of the day where the
    limit falls, read from the items. None when the rollups cannot answer."""
    one_hot = len(query.dimensions) == 1 and not dimension(query.dimensions[0]).multi
    if query.outcome not in CELL_OUTCOMES or (query.regression and not one_hot):
        return None
    # The whole range at once (month rows, days at its edges) when it holds no more answers than
    # the limit; else day by day, to find the day where the limit falls.
    tables = {}
    for grain in (RANGE, "day"):
        for name in query.dimensions:
            table = rollup_table(session, where, name, grain)
            if table is None:
                return None
            tables[name] = table
        total_n = sum(_cell_moments(s, query.outcome).n for s in next(iter(tables.values())).totals.values()
                      if s is not None)
        if total_n <= query.max_items:
            break
    days: dict[Any, Moments] = {}
    for day, stats in next(iter(tables.values())).totals.items():
        if stats is not None:
            days[day] = _cell_moments(stats, query.outcome)
    per_day: dict[Any, dict[tuple[str, str], Moments]] = defaultdict(dict)
    for name, table in tables.items():
        for (day, code), stats in table.cells.items():
            if stats is not None:
                per_day[day][(name, code)] = _cell_moments(stats, query.outcome)
    groups: dict[tuple[str, str], Moments] = defaultdict(Moments)
    total, taken = Moments(), 0
    for day in sorted(days, reverse=True):
        if taken + days[day].n > query.max_items:  # the limit falls in this day: its newest answers only
            day_total, partial = _newest_of_day(session, where, query, day, query.max_items - taken)
            total = total + day_total
            for key, m in partial.items():
                groups[key] = groups[key] + m
            break
        total = total + days[day]
        taken += days[day].n
        for key, m in per_day[day].items():
            groups[key] = groups[key] + m
    groups = {key: m for key, m in groups.items() if m.n}
    n = total.n
    if not n:
        return {"n": 0, "overall": None, "drivers": [], "regression": None}
    drivers, kept = [], []
    for name, code in sorted(groups):
        with_m = groups[(name, code)]
        if with_m.n < query.min_support or n - with_m.n < query.min_support:
            continue
        without_m = Moments(n - with_m.n, total.total - with_m.total, total.total_sq - with_m.total_sq)
        drivers.append(_driver(name, code, with_m, without_m, n))
        kept.append((name, code))
    if not query.regression:
        return _without_regression(total, drivers)
    name = query.dimensions[0]
    by_code = {code: m for (_, code), m in groups.items()}
    regression = _one_hot_regression(n, total, by_code, list(groups), kept, name)
    _attach_coefficients(drivers, regression)
    overall_ci = mean_ci(total)
    return {"n": n, "overall": {"value": _r(total.mean), "ci_low": _r(overall_ci[0]) if overall_ci else None,
                                "ci_high": _r(overall_ci[1]) if overall_ci else None},
            "drivers": drivers, "regression": {k: v for k, v in regression.items() if k != "coefficients"}}


def _newest_of_day(session: Session, where: Slice, query: DriverQuery, day: Any,
                   limit: int) -> tuple[Moments, dict[tuple[str, str], Moments]]:
    """The outcome moments of the `limit` newest answers of `day` in the slice: all of them, and
    per feature (dimension, value) of `query.dimensions`."""
    outcome = _outcome_column(query.outcome)
    single = {n: dimension(n).value for n in query.dimensions if not dimension(n).multi}
    multi = {dimension(n).label_kind: n for n in query.dimensions if dimension(n).multi}
    first = day_start(day)
    bounded = where.with_range(max(first, where.start) if where.start else first,
                               min(first + timedelta(days=1), where.end) if where.end else first + timedelta(days=1))
    stmt = apply_slice(base_select(FeedbackItem.id, outcome.label("outcome"),
                                   *[f().label(f"v_{n}") for n, f in single.items() if f is not None]), bounded)
    rows = session.execute(stmt.where(outcome.is_not(None)).order_by(FeedbackItem.created_at.desc())
                           .limit(limit)).all()
    out: dict[tuple[str, str], Moments] = defaultdict(Moments)
    if not rows:
        return Moments(), out
    y = _outcome_values(query.outcome, np.array([float(r.outcome) for r in rows]))
    features: dict[int, set[tuple[str, str]]] = {r.id: {(n, str(getattr(r, f"v_{n}"))) for n in single}
                                                 for r in rows}
    if multi:
        for item_id, kind, label in item_labels(session, list(features), list(multi)):
            features[item_id].add((multi[kind], label))
    total = Moments()
    for r, v in zip(rows, y.tolist(), strict=True):
        one = Moments(1, v, v * v)
        total = total + one
        for key in features[r.id]:
            out[key] = out[key] + one
    return total, out


def _one_hot_regression(n: int, total: Moments, groups: dict[str, Moments], features: list[tuple[str, str]],
                        kept: list[tuple[str, str]], name: str) -> dict[str, Any]:
    """`_regression` on one single-valued dimension from each value's moments: X'X holds the
    counts, X'y the sums, and the residuals' sum of squares is each group's around its fit."""
    out, columns = _regression_setup(n, {k: groups[k[1]].n for k in features}, kept, (name,))
    if not columns or n <= len(columns) + 1:
        out["r_squared"] = None
        return out
    size = len(columns) + 1
    xtx, xty = np.zeros((size, size)), np.zeros(size)
    xtx[0, 0], xty[0] = n, total.total
    for j, (_, code) in enumerate(columns, start=1):
        xtx[0, j] = xtx[j, 0] = xtx[j, j] = groups[code].n
        xty[j] = groups[code].total
    xtx_inv = np.linalg.pinv(xtx)
    beta = xtx_inv @ xty
    column_of = {code: j for j, (_, code) in enumerate(columns, start=1)}
    rss = 0.0
    for code, m in groups.items():
        fit = beta[0] + (beta[column_of[code]] if code in column_of else 0.0)
        rss += m.total_sq - 2 * fit * m.total + m.n * fit * fit
    rss = max(rss, 0.0)
    dof = max(1, n - size)
    total_ss = total.total_sq - total.total * total.total / n
    out["r_squared"] = _r(1 - rss / total_ss) if total_ss > 0 else None
    return _coefficients(out, columns, beta, xtx_inv, rss / dof)


def _employee_drivers(session: Session, where: Slice, query: DriverQuery, min_group_size: int) -> dict[str, Any]:
    metric = OUTCOMES[query.outcome]
    drivers: list[dict[str, Any]] = []
    overall = CellStats()
    table = None
    for name in query.dimensions:
        table = cell_table(session, where, name, "week", min_group_size=min_group_size)
        weeks = {p for p, stats in table.totals.items() if stats is not None}
        if not drivers and name == query.dimensions[0]:
            overall = CellStats.total(table.totals[w] for w in weeks)  # type: ignore[misc]
        values = sorted({code for (_, code) in table.cells})
        for code in values:
            with_s, without_s = CellStats(), CellStats()
            for week in weeks:
                cell = table.cells.get((week, code), CellStats())
                if cell is None:
                    continue  # hidden this week: the week says nothing about this feature
                with_s.add(cell)
                without_s.add(table.totals[week].minus(cell))  # type: ignore[union-attr]
            with_m, without_m = moments(with_s, metric), moments(without_s, metric)
            if with_m.n < min_group_size or without_m.n < min_group_size:
                continue
            drivers.append(_driver(name, code, with_m, without_m, with_m.n + without_m.n))
    total = moments(overall, metric)
    ci = mean_ci(total)
    return {"n": total.n, "overall": {"value": _r(total.mean), "ci_low": _r(ci[0]) if ci else None,
                                      "ci_high": _r(ci[1]) if ci else None},
            "drivers": drivers, "regression": None,
            "start": table.start.isoformat() if table and table.start else None,
            "end": table.end.isoformat() if table and table.end else None}


def _attach_coefficients(drivers: list[dict[str, Any]], regression: dict[str, Any]) -> None:
    """Each driver's regression coefficient with its interval and p-value (None where the
    regression left the value out)."""
    for d in drivers:
        d.update(regression["coefficients"].get((d["dimension"], d["value_code"]),
                                                {"coefficient": None, "coefficient_ci_low": None,
                                                 "coefficient_ci_high": None, "coefficient_p_value": None,
                                                 "reference": False}))
