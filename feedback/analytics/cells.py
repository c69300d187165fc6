"""Dimensions, periods and cell statistics: the vocabulary every analytics query shares.

A *cell* is the set of items of one period and one dimension value (under the query's filters).
Its `CellStats` are sums (counts, sums of scores and of their squares), so cells add up: weeks
are sums of days, a date range is a sum of weeks, and the rollup tables store exactly these
columns. `feedback.analytics.metrics` turns one `CellStats` into the reported metrics with their
n and 95% intervals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Float, Select, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.served import label_exists
from feedback.models import FeedbackItem, Source, TagLabel, Topic

INTERVALS = ("day", "week", "month")
LABEL_KINDS = {"need": "need", "emotion": "emotion", "cx_emotion": "cx_emotion"}


@dataclass(frozen=True)
class Dimension:
    """One way to slice feedback: a column of the item or its tag, or a multi-label kind."""

    name: str
    description: str
    value: Callable[[], ColumnElement[Any]] | None = None  # single-valued: SQL for the value code
    label_kind: str | None = None  # multi-valued: TagLabel.kind (an item can be in several cells)

    @property
    def multi(self) -> bool:
        return self.label_kind is not None


def effective_touchpoint() -> ColumnElement[Any]:
    """The source's touchpoint, else the inferred one, else 'unknown'."""
    return func.coalesce(FeedbackItem.touchpoint, Tag.touchpoint, literal("unknown"))


def _column(col: Any, missing: str = "unknown") -> Callable[[], ColumnElement[Any]]:
    return lambda: func.coalesce(col, literal(missing))


DIMENSIONS: dict[str, Dimension] = {d.name: d for d in (
    Dimension("all", "every item: one value, 'all' (totals)", lambda: literal("all")),
    Dimension("touchpoint", "the source's touchpoint, else the inferred one", effective_touchpoint),
    Dimension("journey_stage", "journey stage given by the source", _column(FeedbackItem.journey_stage)),
    Dimension("channel", "survey, review, ticket, chat, ...", _column(FeedbackItem.channel)),
    Dimension("source", "code: the source id; label: its name",
              lambda: cast(FeedbackItem.source_id, String)),
    Dimension("segment", "customer segment", _column(FeedbackItem.segment)),
    Dimension("org_unit", "employee organisational unit", _column(FeedbackItem.org_unit)),
    Dimension("language", "ISO 639-1 language ('und' if unknown)", _column(FeedbackItem.language, "und")),
    Dimension("topic", "code: the stable topic id ('none' if unassigned); label: the topic label",
              lambda: func.coalesce(cast(Tag.topic_id, String), literal("none"))),
    Dimension("need", "customer or employee need (multi-label)", label_kind="need"),
    Dimension("emotion", "emotion (multi-label)", label_kind="emotion"),
    Dimension("cx_emotion", "CX emotion (multi-label)", label_kind="cx_emotion"),
)}
QUERY_DIMENSIONS = tuple(d for d in DIMENSIONS if d != "all")


def dimension(name: str) -> Dimension:
    """The named dimension, or a ValueError naming the valid ones."""
    if name not in DIMENSIONS:
        raise ValueError(f"unknown dimension {name!r}; dimensions: {', '.join(QUERY_DIMENSIONS)}")
    return DIMENSIONS[name]


# ---------------------------------------------------------------------------------------------
# Periods


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
    # PostgreSQL stores instants (timestamptz): periods are UTC days, whatever the session's time zone.
    return cast(func.date_trunc(interval, func.timezone("UTC", column)), Date)


def floor_period(day: date, interval: str) -> date:
    """The first day of the period containing `day`."""
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")


def next_period(start: date, interval: str) -> date:
    """The first day of the period after the one starting on `start`."""
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def iso_week_label(start: date) -> str:
    """'2026-W47' for a week's Monday."""
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


def period_label(start: date, interval: str) -> str:
    """How a period is shown: ISO week for weeks, 2026-11 for months, the date for days."""
    if interval == "week":
        return iso_week_label(start)
    if interval == "month":
        return start.strftime("%Y-%m")
    return start.isoformat()


def as_date(value: Any) -> date:
    """A date from what a driver returns for a date expression (SQLite returns text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def is_midnight(moment: datetime | None) -> bool:
    """Whether `moment` is a whole UTC day boundary (rollups hold whole days)."""
    if moment is None:
        return True
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Cell statistics

SUM_FIELDS = ("n", "n_tagged", "n_positive", "n_negative", "sentiment_sum", "sentiment_sumsq",
              "nps_n", "nps_promoters", "nps_detractors", "csat_n", "csat_satisfied",
              "rating_n", "rating_sum", "rating_sumsq", "p_negative_sum", "p_negative_sumsq")


@dataclass(slots=True)
class CellStats:
    """Sums over the items of one cell; `labels` counts items per 'kind:label' (need/emotion mix)."""

    n: int = 0
    n_tagged: int = 0
    n_positive: int = 0
    n_negative: int = 0
    sentiment_sum: float = 0.0
    sentiment_sumsq: float = 0.0
    nps_n: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    csat_n: int = 0
    csat_satisfied: int = 0
    rating_n: int = 0
    rating_sum: float = 0.0
    rating_sumsq: float = 0.0
    # Calibrated p(negative) over tagged items (a tag without one counts its label as 0/1):
    # what estimated shares need (feedback.analytics.shares).
    p_negative_sum: float = 0.0
    p_negative_sumsq: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)

    def add(self, other: CellStats) -> CellStats:
        """Add `other` in place (cells are disjoint sets of items)."""
        self.add_sums(other)
        if other.labels:
            self.labels.update(other.labels)
        return self

    def add_sums(self, other: CellStats) -> CellStats:
        """Add `other`'s sums in place, not its label counts."""
        # Spelled out rather than a loop over SUM_FIELDS: the employee tables add every item to
        # four cells, and getattr/setattr made this their slowest line.
        self.n += other.n
        self.n_tagged += other.n_tagged
        self.n_positive += other.n_positive
        self.n_negative += other.n_negative
        self.sentiment_sum += other.sentiment_sum
        self.sentiment_sumsq += other.sentiment_sumsq
        self.nps_n += other.nps_n
        self.nps_promoters += other.nps_promoters
        self.nps_detractors += other.nps_detractors
        self.csat_n += other.csat_n
        self.csat_satisfied += other.csat_satisfied
        self.rating_n += other.rating_n
        self.rating_sum += other.rating_sum
        self.rating_sumsq += other.rating_sumsq
        self.p_negative_sum += other.p_negative_sum
        self.p_negative_sumsq += other.p_negative_sumsq
        return self

    def minus(self, other: CellStats) -> CellStats:
        """A new cell: this one without the items of `other` (a subset of it)."""
        out = CellStats(**{name: getattr(self, name) - getattr(other, name) for name in SUM_FIELDS})
        out.labels = Counter(self.labels)
        out.labels.subtract(other.labels)
        return out

    @classmethod
    def from_row(cls, row: Any, labels: Mapping[str, int] | None = None) -> CellStats:
        """From any row or object with the SUM_FIELDS as attributes (a query row, a rollup)."""
        values = {name: (getattr(row, name) or 0) for name in SUM_FIELDS}
        return cls(**values, labels=Counter(labels or {}))

    @classmethod
    def total(cls, cells: Iterable[CellStats]) -> CellStats:
        out = cls()
        for cell in cells:
            out.add(cell)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def stats_columns() -> list[ColumnElement[Any]]:
    """SQL aggregates for the CellStats sums over FeedbackItem outer-joined with Tag."""
    score = Tag.sentiment_score
    p_negative = item_p_negative()
    return [
        func.count().label("n"),
        func.count(Tag.item_id).label("n_tagged"),
        func.coalesce(func.sum(case((Tag.sentiment == "positive", 1), else_=0)), 0).label("n_positive"),
        func.coalesce(func.sum(case((Tag.sentiment == "negative", 1), else_=0)), 0).label("n_negative"),
        func.coalesce(func.sum(score), 0.0).label("sentiment_sum"),
        func.coalesce(func.sum(score * score), 0.0).label("sentiment_sumsq"),
        func.count(FeedbackItem.nps).label("nps_n"),
        func.coalesce(func.sum(case((FeedbackItem.nps >= 9, 1), else_=0)), 0).label("nps_promoters"),
        func.coalesce(func.sum(case((FeedbackItem.nps <= 6, 1), else_=0)), 0).label("nps_detractors"),
        func.count(FeedbackItem.csat).label("csat_n"),
        func.coalesce(func.sum(case((FeedbackItem.csat >= 4, 1), else_=0)), 0).label("csat_satisfied"),
        func.count(FeedbackItem.stars).label("rating_n"),
        func.coalesce(func.sum(cast(FeedbackItem.stars, Float)), 0.0).label("rating_sum"),
        func.coalesce(func.sum(cast(FeedbackItem.stars, Float) * cast(FeedbackItem.stars, Float)), 0.0)
        .label("rating_sumsq"),
        func.coalesce(func.sum(p_negative), 0.0).label("p_negative_sum"),
        func.coalesce(func.sum(p_negative * p_negative), 0.0).label("p_negative_sumsq"),
    ]


def item_p_negative() -> ColumnElement[Any]:
    """SQL for an item's p(negative): the stored calibrated one, else its label as 0/1 (tags
    made before p_negative was stored); NULL for an untagged item, so sums skip it."""
    hard = case((Tag.sentiment == "negative", 1.0), else_=0.0)
    return case((Tag.item_id.is_(None), None), else_=func.coalesce(Tag.p_negative, hard))


def respondent_key() -> ColumnElement[Any]:
    """Who answered: the author pseudonym, else the item itself (one anonymous answer, one person)."""
    return func.coalesce(FeedbackItem.author, literal("item:") + cast(FeedbackItem.id, String))


# ---------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class Slice:
    """Which items a query covers: audience, [start, end) and exact-match dimension filters."""

    audience: str = "customer"
    start: datetime | None = None
    end: datetime | None = None
    filters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(cls, audience: str, start: datetime | None = None, end: datetime | None = None,
             filters: Mapping[str, str | None] | None = None) -> Slice:
        kept = tuple(sorted((k, v) for k, v in (filters or {}).items() if v not in (None, "")))
        for name, _ in kept:
            if name not in QUERY_DIMENSIONS:
                raise ValueError(f"cannot filter on {name!r}; filters: {', '.join(QUERY_DIMENSIONS)}")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        return cls(audience=audience, start=start, end=end, filters=kept)

    def with_range(self, start: datetime | None, end: datetime | None) -> Slice:
        return Slice(self.audience, start, end, self.filters)

    def without(self, name: str) -> Slice:
        return Slice(self.audience, self.start, self.end, tuple(f for f in self.filters if f[0] != name))


def filter_clause(name: str, wanted: str) -> ColumnElement[bool]:
    """SQL for `dimension == wanted` (sources match by name or id; labels by an EXISTS)."""
    dim = dimension(name)
    if dim.label_kind is not None:
        # Its own aliases: rows by a label dimension join TagLabel too, and an EXISTS over that same
        # table would be correlated to the join, leaving the subquery without a FROM.
        return label_exists(FeedbackItem.id, dim.label_kind, wanted)
    if name == "source" and not wanted.isdigit():
        return FeedbackItem.source_id.in_(select(Source.id).where(Source.name == wanted))
    if name == "touchpoint":
        # effective_touchpoint() == wanted, written so the touchpoint index finds the items: the
        # source's touchpoint, or none given and the inferred one (else 'unknown') is it
        inferred = func.coalesce(Tag.touchpoint, literal("unknown")) == wanted
        return or_(FeedbackItem.touchpoint == wanted, and_(FeedbackItem.touchpoint.is_(None), inferred))
    assert dim.value is not None
    return dim.value() == wanted


def apply_slice(stmt: Select[Any], where: Slice) -> Select[Any]:
    """`stmt` (over FeedbackItem outer-joined with Tag) restricted to the slice."""
    stmt = stmt.where(FeedbackItem.audience == where.audience)
    if where.start is not None:
        stmt = stmt.where(FeedbackItem.created_at >= where.start)
    if where.end is not None:
        stmt = stmt.where(FeedbackItem.created_at < where.end)
    for name, wanted in where.filters:
        stmt = stmt.where(filter_clause(name, wanted))
    return stmt


def base_select(*columns: Any) -> Select[Any]:
    return select(*columns).select_from(FeedbackItem).outerjoin(Tag, Tag.item_id == FeedbackItem.id)


def value_expression(name: str, labels: Any = TagLabel) -> tuple[ColumnElement[Any], bool]:
    """(SQL for the value code, whether a label table must be joined) for a dimension; `labels`
    is TagLabel or CorrectionLabel (`feedback.analytics.served.label_tables`)."""
    dim = dimension(name)
    if dim.label_kind is not None:
        return labels.label.expression, True
    assert dim.value is not None
    return dim.value(), False


def join_labels(stmt: Select[Any], name: str, labels: Any = TagLabel,
                live: ColumnElement[bool] | None = None) -> Select[Any]:
    """`stmt` joined with the `labels` rows of a label dimension (and `live`, their condition)."""
    dim = dimension(name)
    on = and_(labels.item_id == FeedbackItem.id, labels.kind == dim.label_kind)
    return stmt.join(labels, on if live is None else and_(on, live))


# ---------------------------------------------------------------------------------------------
# Value labels


def value_labels(session: Any, name: str, codes: Iterable[str]) -> dict[str, str]:
    """Readable labels for value codes: topic labels, source names; other codes are their label."""
    codes = {c for c in codes if c is not None}
    if name == "topic":
        ids = [int(c) for c in codes if c.isdigit()]
        found = dict(session.execute(select(Topic.id, Topic.label).where(Topic.id.in_(ids))).all()) if ids else {}
        return {c: (found.get(int(c), f"topic {c}") if c.isdigit() else c) for c in codes}
    if name == "source":
        ids = [int(c) for c in codes if c.isdigit()]
        found = dict(session.execute(select(Source.id, Source.name).where(Source.id.in_(ids))).all()) if ids else {}
        return {c: (found.get(int(c), f"source {c}") if c.isdigit() else c) for c in codes}
    return {c: c for c in codes}
