"""Trends: every metric per dimension value per period, with its n and 95% interval.

`trends(session, TrendQuery(...), min_group_size=...)` returns rows oldest period first. Customer
trends read the rollups when they are current; employee trends apply the privacy rules of
`feedback.privacy.groups` (suppressed rows have `suppressed: true` and no numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import DIMENSIONS as _DIMENSIONS
from feedback.analytics.cells import (
    INTERVALS,
    CellStats,
    Slice,
    effective_touchpoint,
    iso_week_label,
    next_period,
    period_label,
    period_start,
    value_labels,
)
from feedback.analytics.metrics import metric_rows, suppressed_row
from feedback.analytics.tables import RANGE, CellTable, cell_table

__all__ = ["DIMENSIONS", "INTERVALS", "TrendQuery", "trends", "trend_table", "table_rows",
           "effective_touchpoint", "iso_week_label", "period_start", "period_bounds"]

# name -> SQL expression factory for the single-valued dimensions (used by the digests too).
DIMENSIONS: dict[str, Any] = {name: d.value for name, d in _DIMENSIONS.items()
                              if d.value is not None and name != "all"}


@dataclass
class TrendQuery:
    """What `/v1/trends` asks."""

    by: str = "touchpoint"
    interval: str = "week"
    audience: str = "customer"
    start: datetime | None = None
    end: datetime | None = None
    filters: dict[str, str] | None = None
    mixes: bool = False


def trend_table(session: Session, query: TrendQuery, *, min_group_size: int) -> CellTable:
    """The cell table behind a trend query."""
    if query.interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    where = Slice.make(query.audience, query.start, query.end, query.filters)
    return cell_table(session, where, query.by, query.interval, min_group_size=min_group_size,
                      mixes=query.mixes)


def trends(session: Session, query: TrendQuery, *, min_group_size: int,
           estimator: ShareEstimator | None = None) -> list[dict[str, Any]]:
    """Rows of (period, value, metrics), oldest period first; employee groups below the minimum
    are suppressed (complementary suppression included)."""
    table = trend_table(session, query, min_group_size=min_group_size)
    return table_rows(session, table, mixes=query.mixes, min_group_size=min_group_size, estimator=estimator)


def period_bounds(start: date | None, interval: str, audience: str, table: CellTable | None = None
                  ) -> tuple[date | None, date | None]:
    """[first day, day after the last) of a period as reported (employee months are whole weeks)."""
    if start is None:  # the whole range
        def day(moment: datetime | None) -> date | None:
            return moment.date() if moment is not None else None

        return (day(table.start), day(table.end)) if table is not None else (None, None)
    if audience == "employee" and interval == "month":
        from feedback.privacy.groups import employee_month_bounds

        return employee_month_bounds(start)
    return start, next_period(start, interval)


def table_rows(session: Session, table: CellTable, *, mixes: bool = False,
               min_group_size: int = 1, estimator: ShareEstimator | None = None) -> list[dict[str, Any]]:
    """Flat rows of a cell table: period, value (label and code), suppressed, metrics."""
    labels = value_labels(session, table.by, table.values())
    mix_min = min_group_size if table.audience == "employee" else 1
    out: list[dict[str, Any]] = []
    shown: list[tuple[dict[str, Any], CellStats, int | None]] = []
    for (period, code) in sorted(table.cells, key=lambda k: (k[0] or date.min, k[1])):
        stats = table.cells[(period, code)]
        if stats is not None and stats.n == 0:
            continue
        first, after = period_bounds(period, table.interval, table.audience, table)
        total = table.totals.get(period)
        row: dict[str, Any] = {
            "period": first.isoformat() if first else None,
            "period_label": (period_label(period, table.interval) if period is not None and table.interval != RANGE
                             else None),
            "period_end": after.isoformat() if after else None,
            table.by: labels.get(code, code),
            "value_code": code,
            "suppressed": stats is None,
        }
        if stats is None:
            row.update(suppressed_row(mixes=mixes))
        else:
            shown.append((row, stats, total.n if total is not None else None))
        out.append(row)
    computed = metric_rows([s for _, s, _ in shown], [p for _, _, p in shown], mixes=mixes, mix_min_count=mix_min,
                           estimator=estimator)
    for (row, _, _), metrics in zip(shown, computed, strict=True):
        row.update(metrics)
    return out
