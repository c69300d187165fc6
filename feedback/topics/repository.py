"""Queries for topics: which items to fit or assign, writing their topics, per-topic numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from feedback.analytics.cells import item_p_negative, respondent_key
from feedback.analytics.served import ServedTag
from feedback.models import FeedbackItem, ItemEmbedding, Tag, Topic


def encoders(session: Session, audience: str) -> list[tuple[str, int]]:
    """The encoders that embedded this audience's items, most items first."""
    rows = session.execute(
        select(ItemEmbedding.model, func.count())
        .join(FeedbackItem, FeedbackItem.id == ItemEmbedding.item_id)
        .where(FeedbackItem.audience == audience)
        .group_by(ItemEmbedding.model)
        .order_by(func.count().desc())
    ).all()
    return [(r[0], int(r[1])) for r in rows]


def fit_items(
    session: Session, *, audience: str, encoder: str, limit: int | None = None
) -> list[tuple[int, str]]:
    """(id, text) of the tagged items with an embedding by `encoder`, newest `limit` if given."""
    stmt = (
        select(FeedbackItem.id, FeedbackItem.text)
        .join(ItemEmbedding, ItemEmbedding.item_id == FeedbackItem.id)
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .where(FeedbackItem.audience == audience, ItemEmbedding.model == encoder)
    )
    if limit:
        stmt = stmt.order_by(FeedbackItem.created_at.desc(), FeedbackItem.id.desc()).limit(limit)
    rows = session.execute(stmt).all()
    return sorted(((int(r[0]), r[1]) for r in rows), key=lambda r: r[0])


def _topic_items(session: Session, *, audience: str, encoder: str, condition: Any, order: Any,
                 limit: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(FeedbackItem.id, FeedbackItem.text)
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .join(ItemEmbedding, ItemEmbedding.item_id == FeedbackItem.id)
        .where(FeedbackItem.audience == audience, condition, ItemEmbedding.model == encoder)
        .order_by(order)
        .limit(limit)
    ).all()
    return [(int(r[0]), r[1]) for r in rows]


def pending_items(
    session: Session, *, audience: str, encoder: str, limit: int
) -> list[tuple[int, str]]:
    """(id, text) of tagged items that no topic version has assigned yet."""
    return _topic_items(session, audience=audience, encoder=encoder, condition=Tag.topic_version.is_(None),
                        order=FeedbackItem.id, limit=limit)


def stale_items(
    session: Session, *, audience: str, encoder: str, version: int, limit: int
) -> list[tuple[int, str]]:
    """(id, text) of tagged items an earlier topic version assigned, newest first: those a refit
    on the newest items only (`max_documents`) left out, re-assigned between refits."""
    return _topic_items(session, audience=audience, encoder=encoder, condition=Tag.topic_version < version,
                        order=FeedbackItem.id.desc(), limit=limit)


def set_item_topics(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write `topic_id` and `topic_version` on the tags of the given items (bulk, by item id)."""
    for start in range(0, len(rows), 5000):
        session.execute(update(Tag), list(rows[start : start + 5000]))
    session.flush()


def topic_numbers(session: Session, *, audience: str) -> dict[int, dict[str, Any]]:
    """Per current topic: items, distinct respondents, mean sentiment, and the sums a share
    negative is estimated from (items labelled negative, sum of p(negative))."""
    Tag = ServedTag  # noqa: N806 - the numbers read corrected labels, as every analytics answer does
    negative = case((Tag.sentiment == "negative", 1), else_=0)
    rows = session.execute(
        select(
            Tag.topic_id,
            func.count().label("n"),
            func.count(func.distinct(respondent_key())).label("respondents"),
            func.avg(Tag.sentiment_score).label("mean_sentiment"),
            func.sum(negative).label("n_negative"),
            func.sum(item_p_negative()).label("p_negative_sum"),
        )
        .join(FeedbackItem, FeedbackItem.id == Tag.item_id)
        .where(FeedbackItem.audience == audience, Tag.topic_id.is_not(None))
        .group_by(Tag.topic_id)
    ).all()
    return {
        int(r.topic_id): {
            "n": int(r.n),
            "respondents": int(r.respondents),
            "mean_sentiment": r.mean_sentiment,
            "n_negative": int(r.n_negative or 0),
            "p_negative_sum": float(r.p_negative_sum or 0.0),
        }
        for r in rows
    }


def audience_totals(session: Session, *, audience: str) -> dict[str, int]:
    """Items of the audience, and how many of them a topic version has seen / left as outliers."""
    row = session.execute(
        select(
            func.count(),
            func.count(Tag.topic_version),
            func.sum(case((Tag.topic_version.is_not(None) & Tag.topic_id.is_(None), 1), else_=0)),
        )
        .select_from(FeedbackItem)
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .where(FeedbackItem.audience == audience)
    ).one()
    return {"tagged": int(row[0] or 0), "assigned": int(row[1] or 0), "outliers": int(row[2] or 0)}


def topics(session: Session, *, audience: str, include_inactive: bool = False) -> list[Topic]:
    stmt = select(Topic).where(Topic.audience == audience).order_by(Topic.id)
    if not include_inactive:
        stmt = stmt.where(Topic.status == "active")
    return list(session.scalars(stmt))


def quote_rows(session: Session, item_ids: Sequence[int]) -> list[Any]:
    """Text, current topic and respondent of the given items, in the given order."""
    if not item_ids:
        return []
    rows = session.execute(
        select(
            FeedbackItem.id,
            FeedbackItem.text,
            FeedbackItem.created_at,
            Tag.topic_id,
            Tag.sentiment,
            respondent_key().label("respondent"),
        )
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .where(FeedbackItem.id.in_(list(item_ids)))
    ).all()
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in item_ids if i in by_id]
