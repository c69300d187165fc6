"""The BI export: one flat, stable table, one row per (period, dimension, value).

The columns (`AGGREGATE_COLUMNS`) and their order are the contract: new columns are only ever
appended. Rows are ordered by (period_start, dimension, value_code) and paged by a keyset
cursor over that key, so pages never shift when data changes. `updated_since` returns the rows
whose numbers changed after that moment; a row whose value vanished from a period comes back
with n = 0 (only in an `updated_since` pull), so an incremental copy stays exact when keyed by
(period_start, audience, dimension, value_code).

Customer rows are read straight from the rollups. Employee rows go through the same privacy
rules as every other employee aggregate (suppressed rows carry `suppressed = true` and no
numbers) and are computed from the items.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import (
    DIMENSIONS,
    INTERVALS,
    CellStats,
    Slice,
    as_date,
    day_start,
    floor_period,
    next_period,
    period_start,
    value_labels,
)
from feedback.analytics.metrics import METRIC_COLUMNS, metric_rows, suppressed_row
from feedback.analytics.rollups import ROLLUP, STAT_COLUMNS, rollup_stats, rollups_current
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.shares import resolve
from feedback.analytics.tables import cell_table, raw_cells
from feedback.db import utcnow
from feedback.models import FeedbackItem
from feedback.privacy.groups import check_employee_query, employee_month, employee_month_bounds

_METRIC_DESCRIPTIONS = {
    "share_negative": "estimated share of tagged items that are negative (method: share_method of the "
                      "response; docs/api.md#shares)",
    "share_negative_ci_low": "95% interval of the estimate (item sampling; the dev rates taken as known)",
    "share_negative_ci_high": "95% interval of the estimate (item sampling; the dev rates taken as known)",
    "share_negative_cc": "share of tagged items the model labels negative (classify-and-count)",
    "share_negative_cc_ci_low": "Wilson 95% interval of share_negative_cc",
    "share_negative_cc_ci_high": "Wilson 95% interval of share_negative_cc",
}
_METRIC_TYPES = {"n": "int64", "n_tagged": "int64", "nps_n": "int64", "csat_n": "int64", "rating_n": "int64"}

# (name, type, description): the documented, stable column order of the export.
AGGREGATE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("period_start", "date", "first day of the period (weeks start on Monday; employee months are whole ISO weeks)"),
    ("period_end", "date", "first day after the period"),
    ("interval", "string", "day, week or month"),
    ("audience", "string", "customer or employee"),
    ("dimension", "string", "what the row groups by; 'all' rows are the period totals"),
    ("value_code", "string", "stable code of the value: topic id, source id, else the value itself"),
    ("value_label", "string", "readable label of the value (topic labels can be renamed; codes stay)"),
    ("suppressed", "bool", "true when an employee group is too small to show (numbers are empty)"),
    *((name, _METRIC_TYPES.get(name, "float64"), _METRIC_DESCRIPTIONS.get(name, "see docs/api.md#metrics"))
      for name in METRIC_COLUMNS),
    ("updated_at", "timestamp", "when this row's period last changed (UTC); a period's rows change together"),
)
COLUMN_NAMES = tuple(c[0] for c in AGGREGATE_COLUMNS)
EXPORT_DIMENSIONS = tuple(DIMENSIONS)  # 'all' first, then every query dimension


@dataclass
class AggregateQuery:
    """One page of the export."""

    audience: str = "customer"
    interval: str = "week"
    dimensions: Sequence[str] = ()
    start: date | None = None
    end: date | None = None
    updated_since: datetime | None = None
    cursor: str | None = None
    limit: int = 1000


@dataclass
class AggregatePage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    source: str
    columns: tuple[str, ...] = field(default=COLUMN_NAMES)
    share_method: str = "cc"  # how share_negative was estimated (feedback.analytics.shares)


def encode_cursor(key: tuple[str, str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        period, name, code = json.loads(raw)
        date.fromisoformat(period)
        return str(period), str(name), str(code)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor: pass next_cursor from the previous page unchanged") from exc


def _check(query: AggregateQuery) -> tuple[str, ...]:
    if query.interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    names = tuple(query.dimensions) or EXPORT_DIMENSIONS
    for name in names:
        if name not in DIMENSIONS:
            raise ValueError(f"unknown dimension {name!r}; dimensions: {', '.join(EXPORT_DIMENSIONS)}")
    if query.limit < 1:
        raise ValueError("limit must be at least 1")
    return names


def aggregates_page(session: Session, query: AggregateQuery, *, min_group_size: int,
                    estimator: ShareEstimator | None = None) -> AggregatePage:
    """One page of export rows (see the module docstring for the contract); share_negative is
    estimated by `estimator` (default: the one stored with the configured heads)."""
    names = _check(query)
    estimator = resolve(estimator)
    after = decode_cursor(query.cursor) if query.cursor else None
    if query.audience == "employee":
        check_employee_query((), interval=query.interval)
        page = _employee_page(session, query, names, after, min_group_size)
    elif rollups_current(session, query.audience):
        page = _rollup_page(session, query, names, after)
    else:
        page = _items_page(session, query, names, after)
    page.rows = _labelled(session, _fill(page.rows, estimator))
    page.share_method = estimator.method
    return page


def _row(period: date, query: AggregateQuery, name: str, code: str, label: str, stats: CellStats | None,
         period_n: int | None, updated_at: datetime, end: date) -> dict[str, Any]:
    """An export row; its metrics are filled in by `_fill` (all rows of a page at once)."""
    return {
        "period_start": period, "period_end": end, "interval": query.interval,
        "audience": query.audience, "dimension": name, "value_code": code, "value_label": label,
        "suppressed": stats is None, "_stats": stats, "_period_n": period_n,
        "updated_at": updated_at.astimezone(UTC) if updated_at.tzinfo else updated_at.replace(tzinfo=UTC),
    }


def _fill(rows: list[dict[str, Any]], estimator: ShareEstimator) -> list[dict[str, Any]]:
    shown = [r for r in rows if r["_stats"] is not None]
    metrics = metric_rows([r["_stats"] for r in shown], [r["_period_n"] for r in shown], estimator=estimator)
    for row, values in zip(shown, metrics, strict=True):
        row.update(values)
    empty = suppressed_row()
    out = []
    for row in rows:
        if row["_stats"] is None:
            row.update(empty)
        del row["_stats"], row["_period_n"]
        updated = row.pop("updated_at")
        row["updated_at"] = updated  # last column
        out.append(row)
    return out


def _labelled(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_dim: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_dim[row["dimension"]].add(row["value_code"])
    labels = {name: value_labels(session, name, codes) for name, codes in by_dim.items()}
    for row in rows:
        row["value_label"] = labels[row["dimension"]].get(row["value_code"], row["value_code"])
    return rows


def _rollup_page(session: Session, query: AggregateQuery, names: tuple[str, ...],
                 after: tuple[str, str, str] | None) -> AggregatePage:
    R = ROLLUP.c
    stmt = select(R.period_start, R.dimension, R.value, R.updated_at, *STAT_COLUMNS).where(
        R.audience == query.audience, R.grain == query.interval, R.dimension.in_(names))
    if query.start is not None:
        stmt = stmt.where(R.period_start >= query.start)
    if query.end is not None:
        stmt = stmt.where(R.period_start < query.end)
    if query.updated_since is not None:
        stmt = stmt.where(R.updated_at > query.updated_since)
    else:
        stmt = stmt.where(R.n > 0)
    if after is not None:
        stmt = stmt.where(tuple_(R.period_start, R.dimension, R.value)
                          > tuple_(date.fromisoformat(after[0]), after[1], after[2]))
    stmt = stmt.order_by(R.period_start, R.dimension, R.value).limit(query.limit + 1)
    found = session.execute(stmt).all()
    more = len(found) > query.limit
    found = found[:query.limit]
    periods = sorted({as_date(r.period_start) for r in found})
    totals: dict[date, int] = {}
    if periods:
        totals = {as_date(p): n for p, n in session.execute(
            select(R.period_start, R.n).where(R.audience == query.audience, R.grain == query.interval,
                                              R.dimension == "all", R.value == "all",
                                              R.period_start.in_(periods)))}
    rows = []
    for r in found:
        period = as_date(r.period_start)
        stats = rollup_stats(r, 4)
        rows.append(_row(period, query, r.dimension, r.value, r.value, stats, totals.get(period),
                         r.updated_at, next_period(period, query.interval)))
    last = found[-1] if found else None
    cursor = None
    if more and last:
        cursor = encode_cursor((as_date(last.period_start).isoformat(), last.dimension, last.value))
    return AggregatePage(rows, cursor, "rollups")


def _page(rows: list[dict[str, Any]], query: AggregateQuery, after: tuple[str, str, str] | None,
          source: str) -> AggregatePage:
    rows.sort(key=lambda r: (r["period_start"], r["dimension"], r["value_code"]))
    if after is not None:
        key = (date.fromisoformat(after[0]), after[1], after[2])
        rows = [r for r in rows if (r["period_start"], r["dimension"], r["value_code"]) > key]
    if query.updated_since is not None:
        rows = [r for r in rows if r["updated_at"] > query.updated_since]
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode_cursor((last["period_start"].isoformat(), last["dimension"], last["value_code"]))
    return AggregatePage(rows, cursor, source)


def _bounds(query: AggregateQuery) -> tuple[datetime | None, datetime | None]:
    start = day_start(floor_period(query.start, query.interval)) if query.start else None
    end = None
    if query.end is not None:
        floor = floor_period(query.end, query.interval)
        end = day_start(floor if floor == query.end else next_period(floor, query.interval))
    return start, end


def _items_page(session: Session, query: AggregateQuery, names: tuple[str, ...],
                after: tuple[str, str, str] | None) -> AggregatePage:
    """Rollups not current (the tagging job has not caught up): the same rows from the items."""
    start, end = _bounds(query)
    where = Slice(query.audience, start, end)
    now = utcnow()
    totals = {p: s.n for (p, _), s in raw_cells(session, where, "all", query.interval).items()}
    rows = []
    for name in names:
        for (period, code), stats in raw_cells(session, where, name, query.interval).items():
            assert period is not None
            if query.start is not None and period < query.start:
                continue
            rows.append(_row(period, query, name, code, code, stats, totals.get(period), now,
                             next_period(period, query.interval)))
    return _page(rows, query, after, "items")


def _employee_page(session: Session, query: AggregateQuery, names: tuple[str, ...],
                   after: tuple[str, str, str] | None, min_group_size: int) -> AggregatePage:
    start = day_start(query.start) if query.start else None
    end = day_start(query.end) if query.end else None
    where = Slice(query.audience, start, end)
    changed = _employee_changes(session, where, query.interval)
    rows = []
    for name in names:
        table = cell_table(session, where, name, query.interval, min_group_size=min_group_size)
        for (period, code), stats in table.cells.items():
            assert period is not None
            first, after_end = (employee_month_bounds(period) if query.interval == "month"
                                else (period, next_period(period, query.interval)))
            total = table.totals.get(period)
            rows.append(_row(first, query, name, code, code, stats, total.n if total else None,
                             changed.get(period, utcnow()), after_end))
    return _page(rows, query, after, "items+privacy")


def _employee_changes(session: Session, where: Slice, interval: str) -> dict[date, datetime]:
    """Newest change (item update or tagging) per employee period: a period's rows change together."""
    from feedback.privacy.groups import snap_to_weeks

    start, end = snap_to_weeks(where.start, where.end)
    dialect = session.get_bind().dialect.name
    week = period_start(dialect, "week", FeedbackItem.created_at).label("week")
    newest = func.max(func.coalesce(Tag.tagged_at, FeedbackItem.updated_at)).label("newest")
    stmt = (select(week, func.max(FeedbackItem.updated_at).label("updated"), newest)
            .select_from(FeedbackItem).outerjoin(Tag, Tag.item_id == FeedbackItem.id)
            .where(FeedbackItem.audience == where.audience).group_by(week))
    if start is not None:
        stmt = stmt.where(FeedbackItem.created_at >= start)
    if end is not None:
        stmt = stmt.where(FeedbackItem.created_at < end)
    out: dict[date, datetime] = {}
    for row in session.execute(stmt):
        moments = [m for m in (row.updated, row.newest) if m is not None]
        if not moments:
            continue
        moment = max(_aware(m) for m in moments)
        day = as_date(row.week)
        key = employee_month(day) if interval == "month" else day
        out[key] = max(out.get(key, moment), moment)
    return out


def _aware(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

