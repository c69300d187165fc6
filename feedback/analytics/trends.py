"""Trends: volume and sentiment per dimension value per period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, String, case, cast, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from feedback.models import FeedbackItem, Tag

INTERVALS = ("day", "week", "month")


def effective_touchpoint() -> ColumnElement[Any]:
    """The source's touchpoint, else the inferred one, else 'unknown'."""
    return func.coalesce(FeedbackItem.touchpoint, Tag.touchpoint, literal("unknown"))


DIMENSIONS: dict[str, Any] = {
    "touchpoint": effective_touchpoint,
    "journey_stage": lambda: func.coalesce(FeedbackItem.journey_stage, literal("unknown")),
    "channel": lambda: func.coalesce(FeedbackItem.channel, literal("unknown")),
    "segment": lambda: func.coalesce(FeedbackItem.segment, literal("unknown")),
    "org_unit": lambda: func.coalesce(FeedbackItem.org_unit, literal("unknown")),
    "language": lambda: func.coalesce(FeedbackItem.language, literal("und")),
}


def period_start(dialect: str, interval: str, column: Any) -> ColumnElement[Any]:
    """SQL for the first day of `column`'s period (weeks start on Monday, as ISO weeks do)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    if dialect == "sqlite":
        if interval == "day":
            return func.date(column)
        if interval == "week":
            return func.date(column, "weekday 0", "-6 days")
        return func.strftime("%Y-%m-01", column)
    return cast(func.date_trunc(interval, column), Date)


def iso_week_label(start: date) -> str:
    """'2026-W47' for a week's Monday."""
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class TrendQuery:
    """What `/v1/trends` asks."""

    by: str = "touchpoint"
    interval: str = "week"
    audience: str = "customer"
    start: datetime | None = None
    end: datetime | None = None
    filters: dict[str, str] | None = None


def trends(session: Session, query: TrendQuery, *, min_group_size: int) -> list[dict[str, Any]]:
    """Rows of (period, value, n, mean sentiment, share negative), oldest period first.

    Employee groups with fewer distinct respondents than `min_group_size` are suppressed.
    """
    if query.by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, query.interval, FeedbackItem.created_at).label("period")
    value = DIMENSIONS[query.by]().label("value")
    negative = case((Tag.sentiment == "negative", 1.0), else_=0.0)
    stmt = (
        select(
            period, value,
            func.count().label("n"),
            func.count(Tag.item_id).label("n_tagged"),
            func.avg(Tag.sentiment_score).label("mean_sentiment"),
            (func.sum(case((Tag.item_id.is_not(None), negative), else_=None))
             / func.nullif(func.count(Tag.item_id), 0)).label("share_negative"),
            func.count(func.distinct(func.coalesce(FeedbackItem.author, cast(FeedbackItem.id, String))))
            .label("respondents"),
        )
        .select_from(FeedbackItem)
        .outerjoin(Tag, Tag.item_id == FeedbackItem.id)
        .where(FeedbackItem.audience == query.audience)
        .group_by(period, value)
        .order_by(period, value)
    )
    if query.start is not None:
        stmt = stmt.where(FeedbackItem.created_at >= query.start)
    if query.end is not None:
        stmt = stmt.where(FeedbackItem.created_at < query.end)
    for name, wanted in (query.filters or {}).items():
        if name not in DIMENSIONS:
            raise ValueError(f"cannot filter on {name!r}; filters: {', '.join(DIMENSIONS)}")
        stmt = stmt.where(DIMENSIONS[name]() == wanted)
    out = []
    for row in session.execute(stmt):
        start = row.period if isinstance(row.period, date) else date.fromisoformat(str(row.period))
        suppressed = query.audience == "employee" and row.respondents < min_group_size
        out.append({
            "period": start.isoformat(),
            "period_label": iso_week_label(start) if query.interval == "week" else start.isoformat(),
            "period_end": _period_end(start, query.interval).isoformat(),
            query.by: row.value,
            "n": None if suppressed else row.n,
            "n_tagged": None if suppressed else row.n_tagged,
            "mean_sentiment": None if suppressed or row.mean_sentiment is None else round(row.mean_sentiment, 4),
            "share_negative": None if suppressed or row.share_negative is None else round(row.share_negative, 4),
            "suppressed": suppressed,
        })
    return out


def _period_end(start: date, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)
