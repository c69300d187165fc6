"""The queries behind the digests: weekly aggregates per cell, label counts, a week's items.

Weeks are ISO weeks in UTC, bucketed in SQL the way `/v1/trends` buckets them. Cells group by
one dimension (`touchpoint` is the effective one: the source's, else the inferred one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from feedback.analytics.cells import item_p_negative
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.served import label_tables
from feedback.analytics.trends import DIMENSIONS, period_start
from feedback.insights.significance import Moments
from feedback.insights.weeks import week_bounds, week_label
from feedback.models import Digest, FeedbackItem, Topic

ALL = "all"


@dataclass
class CellWeek:
    """One cell (a dimension value, or all items) in one week."""

    n: int = 0  # items, tagged or not
    respondents: int = 0  # distinct authors (an item without an author counts as one)
    tagged: int = 0
    negative: int = 0
    positive: int = 0
    sentiment: Moments = field(default_factory=Moments)
    nps_n: int = 0
    promoters: int = 0
    detractors: int = 0
    csat: Moments = field(default_factory=Moments)
    stars: Moments = field(default_factory=Moments)
    rated: int = 0  # items with any rating (NPS, CSAT or stars)
    low_rated: int = 0  # of those, a low one: NPS 0-6, CSAT 1-2 or 1-2 stars
    # calibrated p(negative) over the tagged items (the label as 0/1 where a tag has none):
    # what the estimated share negative is computed from (feedback.analytics.shares)
    p_negative: Moments = field(default_factory=Moments)

    def __add__(self, other: CellWeek) -> CellWeek:
        """Pooled over weeks; `respondents` is then an upper bound (people recur across weeks)."""
        return CellWeek(
            n=self.n + other.n,
            respondents=self.respondents + other.respondents,
            tagged=self.tagged + other.tagged,
            negative=self.negative + other.negative,
            positive=self.positive + other.positive,
            sentiment=self.sentiment + other.sentiment,
            nps_n=self.nps_n + other.nps_n,
            promoters=self.promoters + other.promoters,
            detractors=self.detractors + other.detractors,
            csat=self.csat + other.csat,
            stars=self.stars + other.stars,
            rated=self.rated + other.rated,
            low_rated=self.low_rated + other.low_rated,
            p_negative=self.p_negative + other.p_negative,
        )


def _dimension(dimension: str | None) -> Any:
    if dimension is None:
        return literal(ALL)
    if dimension not in DIMENSIONS:
        raise ValueError(
            f"cannot group digests by {dimension!r}; use one of {', '.join(DIMENSIONS)}"
        )
    return DIMENSIONS[dimension]()


def _rated() -> Any:
    return or_(
        FeedbackItem.nps.is_not(None),
        FeedbackItem.csat.is_not(None),
        FeedbackItem.stars.is_not(None),
    )


def _low_rating() -> Any:
    """What the respondent rated low: an NPS detractor (0-6), CSAT 1-2 of 5, or 1-2 stars."""
    return or_(FeedbackItem.nps <= 6, FeedbackItem.csat <= 2, FeedbackItem.stars <= 2)


def _respondent() -> Any:
    return func.coalesce(FeedbackItem.author, cast(FeedbackItem.id, String))


def _week_of(value: Any) -> str:
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return week_label(day)


def _window(first_week: str, last_week: str) -> tuple[datetime, datetime]:
    return week_bounds(first_week)[0], week_bounds(last_week)[1]


def weekly_cells(
    session: Session, *, audience: str, dimension: str | None, first_week: str, last_week: str
) -> dict[tuple[str, str], CellWeek]:
    """{(week, value): CellWeek} for every week and value with items, first..last week inclusive."""
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, "week", FeedbackItem.created_at).label("period")
    value = _dimension(dimension).label("value")
    score = Tag.sentiment_score
    p_negative = item_p_negative()
    start, end = _window(first_week, last_week)
    stmt = (
        select(
            period,
            value,
            func.count().label("n"),
            func.count(func.distinct(_respondent())).label("respondents"),
            func.count(Tag.item_id).label("tagged"),
            func.sum(case((Tag.sentiment == "negative", 1), else_=0)).label("negative"),
            func.sum(case((Tag.sentiment == "positive", 1), else_=0)).label("positive"),
            func.sum(score).label("s_sum"),
            func.sum(score * score).label("s_sq"),
            func.count(FeedbackItem.nps).label("nps_n"),
            func.sum(case((FeedbackItem.nps >= 9, 1), else_=0)).label("promoters"),
            func.sum(case((FeedbackItem.nps <= 6, 1), else_=0)).label("detractors"),
            func.count(FeedbackItem.csat).label("csat_n"),
            func.sum(FeedbackItem.csat).label("csat_sum"),
            func.sum(FeedbackItem.csat * FeedbackItem.csat).label("csat_sq"),
            func.count(FeedbackItem.stars).label("stars_n"),
            func.sum(FeedbackItem.stars).label("stars_sum"),
            func.sum(FeedbackItem.stars * FeedbackItem.stars).label("stars_sq"),
            func.sum(case((_rated(), 1), else_=0)).label("rated"),
            func.sum(case((_low_rating(), 1), else_=0)).label("low_rated"),
            func.sum(p_negative).label("p_sum"),
            func.sum(p_negative * p_negative).label("p_sq"),
        )
        .select_from(FeedbackItem)
        .outerjoin(Tag, Tag.item_id == FeedbackItem.id)
        .where(
            FeedbackItem.audience == audience,
            FeedbackItem.created_at >= start,
            FeedbackItem.created_at < end,
        )
        .group_by(period, value)
    )
    cells: dict[tuple[str, str], CellWeek] = {}
    for row in session.execute(stmt):
        cells[(_week_of(row.period), str(row.value))] = CellWeek(
            n=row.n,
            respondents=row.respondents,
            tagged=row.tagged,
            negative=int(row.negative or 0),
            positive=int(row.positive or 0),
            sentiment=Moments(row.tagged, float(row.s_sum or 0.0), float(row.s_sq or 0.0)),
            nps_n=row.nps_n,
            promoters=int(row.promoters or 0),
            detractors=int(row.detractors or 0),
            csat=Moments(row.csat_n, float(row.csat_sum or 0.0), float(row.csat_sq or 0.0)),
            stars=Moments(row.stars_n, float(row.stars_sum or 0.0), float(row.stars_sq or 0.0)),
            rated=int(row.rated or 0),
            low_rated=int(row.low_rated or 0),
            p_negative=Moments(row.tagged, float(row.p_sum or 0.0), float(row.p_sq or 0.0)),
        )
    return cells


def distinct_respondents(
    session: Session, *, audience: str, dimension: str | None, first_week: str, last_week: str
) -> dict[str, int]:
    """{value: distinct authors} pooled over the weeks (for privacy checks on a baseline)."""
    value = _dimension(dimension).label("value")
    start, end = _window(first_week, last_week)
    stmt = (
        select(value, func.count(func.distinct(_respondent())))
        .select_from(FeedbackItem)
        .outerjoin(Tag, Tag.item_id == FeedbackItem.id)
        .where(
            FeedbackItem.audience == audience,
            FeedbackItem.created_at >= start,
            FeedbackItem.created_at < end,
        )
        .group_by(value)
    )
    return {str(v): int(c) for v, c in session.execute(stmt)}


def weekly_label_counts(
    session: Session, *, audience: str, dimension: str | None, first_week: str, last_week: str
) -> dict[tuple[str, str, str, str], int]:
    """{(week, value, kind, label): items} for need, emotion and cx_emotion labels."""
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, "week", FeedbackItem.created_at).label("period")
    value = _dimension(dimension).label("value")
    start, end = _window(first_week, last_week)
    counts: dict[tuple[str, str, str, str], int] = {}
    for labels, live in label_tables(session):  # the model's labels, and corrected ones
        stmt = (
            select(period, value, labels.kind, labels.label, func.count())
            .select_from(labels)
            .join(FeedbackItem, FeedbackItem.id == labels.item_id)
            .join(Tag, Tag.item_id == FeedbackItem.id)
            .where(
                FeedbackItem.audience == audience,
                FeedbackItem.created_at >= start,
                FeedbackItem.created_at < end,
                *([live] if live is not None else []),
            )
            .group_by(period, value, labels.kind, labels.label)
        )
        for p, v, kind, label, c in session.execute(stmt):
            key = (_week_of(p), str(v), kind, label)
            counts[key] = counts.get(key, 0) + int(c)
    return counts


def _weekly_counts(session: Session, *, audience: str, first_week: str, last_week: str,
                   by_topic: bool) -> list[Any]:  # fmt: skip
    """Rows of (period, [topic id,] tagged items) over the weeks, per week (and topic)."""
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, "week", FeedbackItem.created_at).label("period")
    start, end = _window(first_week, last_week)
    keys: list[Any] = [period, Tag.topic_id] if by_topic else [period]
    stmt = (
        select(*keys, func.count())
        .select_from(FeedbackItem)
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .where(
            FeedbackItem.audience == audience,
            FeedbackItem.created_at >= start,
            FeedbackItem.created_at < end,
            *([Tag.topic_id.is_not(None)] if by_topic else []),
        )
        .group_by(*keys)
    )
    return list(session.execute(stmt))


def weekly_topic_counts(
    session: Session, *, audience: str, first_week: str, last_week: str
) -> dict[tuple[str, int], int]:
    """{(week, topic id): items} for items a topic model has assigned to a topic."""
    rows = _weekly_counts(session, audience=audience, first_week=first_week, last_week=last_week,
                          by_topic=True)  # fmt: skip
    return {(_week_of(p), int(t)): int(c) for p, t, c in rows}


def weekly_tagged_counts(
    session: Session, *, audience: str, first_week: str, last_week: str
) -> dict[str, int]:
    """{week: tagged items}, topic or not: what a topic's weekly share is a share of (the same
    total `/v1/topics` divides by)."""
    rows = _weekly_counts(session, audience=audience, first_week=first_week, last_week=last_week,
                          by_topic=False)  # fmt: skip
    return {_week_of(p): int(c) for p, c in rows}


def topics_by_id(session: Session, ids: Sequence[int]) -> dict[int, Topic]:
    """Topics by id (merged topics are returned as stored; callers follow `merged_into_id`)."""
    if not ids:
        return {}
    return {t.id: t for t in session.scalars(select(Topic).where(Topic.id.in_(list(ids))))}


@dataclass(frozen=True)
class WeekItem:
    """What the digest needs of one item of the digest's week; the author stays internal."""

    id: int
    text: str
    touchpoint: str
    org_unit: str
    author: str
    sentiment: str | None
    negative_prob: float
    positive_prob: float
    cx_emotions: tuple[str, ...]
    topic_id: int | None
    labels: frozenset[tuple[str, str]] = frozenset()  # (kind, label): need, emotion, cx_emotion
    low_rating: bool | None = None  # rated low (NPS 0-6, CSAT 1-2, 1-2 stars); None: not rated


def week_items(session: Session, *, audience: str, week: str) -> list[WeekItem]:
    """Every item of one week with its tag (PII already redacted at ingestion)."""
    start, end = week_bounds(week)
    stmt = (
        select(
            FeedbackItem.id,
            FeedbackItem.text,
            DIMENSIONS["touchpoint"]().label("touchpoint"),
            func.coalesce(FeedbackItem.org_unit, literal("unknown")).label("org_unit"),
            _respondent().label("author"),
            Tag.sentiment,
            Tag.sentiment_probs,
            Tag.cx_emotions,
            Tag.topic_id,
            Tag.needs,
            Tag.emotions,
            FeedbackItem.nps,
            FeedbackItem.csat,
            FeedbackItem.stars,
        )
        .select_from(FeedbackItem)
        .outerjoin(Tag, Tag.item_id == FeedbackItem.id)
        .where(
            FeedbackItem.audience == audience,
            FeedbackItem.created_at >= start,
            FeedbackItem.created_at < end,
        )
        .order_by(FeedbackItem.id)
    )
    items = []
    for row in session.execute(stmt):
        probs = row.sentiment_probs or {}
        items.append(
            WeekItem(
                id=row.id,
                text=row.text,
                touchpoint=str(row.touchpoint),
                org_unit=str(row.org_unit),
                author=str(row.author),
                sentiment=row.sentiment,
                negative_prob=float(
                    probs.get("negative", 1.0 if row.sentiment == "negative" else 0.0)
                ),
                positive_prob=float(
                    probs.get("positive", 1.0 if row.sentiment == "positive" else 0.0)
                ),
                cx_emotions=tuple(row.cx_emotions or ()),
                topic_id=row.topic_id,
                low_rating=None
                if row.nps is None and row.csat is None and row.stars is None
                else bool(
                    (row.nps is not None and row.nps <= 6)
                    or (row.csat is not None and row.csat <= 2)
                    or (row.stars is not None and row.stars <= 2)
                ),
                labels=frozenset(
                    [("need", str(x)) for x in row.needs or ()]
                    + [("emotion", str(x)) for x in row.emotions or ()]
                    + [("cx_emotion", str(x)) for x in row.cx_emotions or ()]
                ),
            )
        )
    return items


def iter_texts(
    session: Session, *, audience: str, first_week: str, last_week: str
) -> Iterator[tuple[str, str, str]]:
    """(week, text, author) of every item in the weeks, streamed."""
    start, end = _window(first_week, last_week)
    stmt = (
        select(FeedbackItem.created_at, FeedbackItem.text, _respondent())
        .where(
            FeedbackItem.audience == audience,
            FeedbackItem.created_at >= start,
            FeedbackItem.created_at < end,
        )
        .execution_options(yield_per=2000)
    )
    for created_at, text, author in session.execute(stmt):
        yield week_label(created_at.date()), text, str(author)


def has_items(session: Session, *, audience: str, first_week: str, last_week: str) -> bool:
    """Whether any item of the audience falls in the weeks."""
    start, end = _window(first_week, last_week)
    return (
        session.scalar(
            select(FeedbackItem.id)
            .where(
                FeedbackItem.audience == audience,
                FeedbackItem.created_at >= start,
                FeedbackItem.created_at < end,
            )
            .limit(1)
        )
        is not None
    )


# --- stored digests ----------------------------------------------------------------------------


def get_digest(session: Session, *, audience: str, week: str) -> Digest | None:
    """The stored digest of one audience and week."""
    return session.scalar(select(Digest).where(Digest.audience == audience, Digest.week == week))


def latest_digest(session: Session, *, audience: str) -> Digest | None:
    """The stored digest of the latest week for an audience."""
    return session.scalar(
        select(Digest)
        .where(Digest.audience == audience)
        .order_by(Digest.week.desc(), Digest.id.desc())
        .limit(1)
    )


def list_digests(
    session: Session, *, audience: str | None = None, limit: int = 52
) -> Sequence[Digest]:
    """Stored digests, newest week first."""
    stmt = select(Digest).order_by(Digest.week.desc(), Digest.audience).limit(limit)
    if audience:
        stmt = stmt.where(Digest.audience == audience)
    return session.scalars(stmt).all()
