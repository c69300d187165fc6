"""Queries over feedback items (the API and jobs read through here)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, select
from sqlalchemy.orm import Session, selectinload

from feedback.analytics.rollups import rollups_current
from feedback.models import (
    AnalyticsRollup,
    Correction,
    Digest,
    FeedbackItem,
    RollupState,
    Source,
    Tag,
    Topic,
    TopicModelVersion,
)


def get_item(session: Session, item_id: int) -> FeedbackItem | None:
    """One item with its tag."""
    return session.scalar(
        select(FeedbackItem).options(selectinload(FeedbackItem.tag)).where(FeedbackItem.id == item_id)
    )


SEARCH_CONFIG = "simple"  # PostgreSQL text search configuration: every word kept, no stemming


def search_terms(query: str) -> list[tuple[str, bool]]:
    """The words and "quoted phrases" of a search, each with whether it is wanted (a leading `-`
    excludes it), as web search engines read a query."""
    terms = []
    for match in re.finditer(r'(-?)"([^"]*)"|(-?)(\S+)', query):
        negated = bool(match.group(1) or match.group(3))
        term = (match.group(2) if match.group(2) is not None else match.group(4)).strip()
        if term and term != "-":
            terms.append((term, not negated))
    return terms


def text_search(dialect: str, query: str) -> ColumnElement[bool]:
    """A WHERE clause for items whose text matches `query` (words, "phrases", -exclusions).

    PostgreSQL: full-text search (`websearch_to_tsquery`, whole words, case-insensitive) served by
    the GIN index `ix_feedback_items_text_search`. SQLite: each term as a case-insensitive
    substring (LIKE), a scan; fine at SQLite's sizes.
    """
    if dialect == "postgresql":
        return func.to_tsvector(SEARCH_CONFIG, FeedbackItem.text).op("@@")(
            func.websearch_to_tsquery(SEARCH_CONFIG, query))
    clauses = []
    for term, wanted in search_terms(query):
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = FeedbackItem.text.ilike(f"%{escaped}%", escape="\\")
        clauses.append(like if wanted else not_(like))
    return and_(*clauses) if clauses else and_(True)


def list_items(session: Session, *, audience: str | None = None, touchpoint: str | None = None,
               channel: str | None = None, org_unit: str | None = None, source: str | None = None,
               since: datetime | None = None, until: datetime | None = None, q: str | None = None,
               after_id: int | None = None, limit: int = 100, sentiment: str | None = None,
               emotion: str | None = None, need: str | None = None, topic_id: int | None = None,
               newest_first: bool = False) -> Sequence[FeedbackItem]:
    """Items by id (keyset pagination: pass the last id seen as `after_id`, which with
    `newest_first` means the items before it); `q` searches their text. `sentiment`, `emotion`,
    `need` and `topic_id` filter on the served tags (an analyst's correction, else the model's)."""
    from feedback.analytics.served import ServedTag, label_exists

    order = FeedbackItem.id.desc() if newest_first else FeedbackItem.id
    stmt = select(FeedbackItem).options(selectinload(FeedbackItem.tag)).order_by(order).limit(limit)
    if sentiment or topic_id is not None:
        stmt = stmt.join(ServedTag, ServedTag.item_id == FeedbackItem.id)
        if sentiment:
            stmt = stmt.where(ServedTag.sentiment == sentiment)
        if topic_id is not None:
            stmt = stmt.where(ServedTag.topic_id == topic_id)
    if emotion:
        stmt = stmt.where(label_exists(FeedbackItem.id, "emotion", emotion))
    if need:
        stmt = stmt.where(label_exists(FeedbackItem.id, "need", need))
    if q and q.strip():
        stmt = stmt.where(text_search(session.get_bind().dialect.name, q))
    if audience:
        stmt = stmt.where(FeedbackItem.audience == audience)
    if touchpoint:
        stmt = stmt.where(FeedbackItem.touchpoint == touchpoint)
    if channel:
        stmt = stmt.where(FeedbackItem.channel == channel)
    if org_unit:
        stmt = stmt.where(FeedbackItem.org_unit == org_unit)
    if source:
        stmt = stmt.join(Source, Source.id == FeedbackItem.source_id).where(Source.name == source)
    if since:
        stmt = stmt.where(FeedbackItem.created_at >= since)
    if until:
        stmt = stmt.where(FeedbackItem.created_at < until)
    if after_id:
        stmt = stmt.where(FeedbackItem.id < after_id if newest_first else FeedbackItem.id > after_id)
    return session.scalars(stmt).all()


def data_stamp(session: Session) -> tuple[Any, ...]:
    """What a cached answer is checked against: the newest item, edit, tag, rollup, topic edit,
    source and digest. Every one is an indexed maximum or a small table, so it costs a few index
    lookups, not a scan."""
    newest = (
        select(func.max(FeedbackItem.id)).scalar_subquery(),
        select(func.max(FeedbackItem.updated_at)).scalar_subquery(),
        select(func.max(Tag.tagged_at)).scalar_subquery(),
        select(func.max(AnalyticsRollup.updated_at)).scalar_subquery(),
        select(func.max(RollupState.refreshed_at)).scalar_subquery(),
        select(func.max(Topic.updated_at)).scalar_subquery(),
        select(func.count(Source.id)).scalar_subquery(),
        select(func.max(Source.updated_at)).scalar_subquery(),
        select(func.max(Digest.id)).scalar_subquery(),
        select(func.max(Digest.created_at)).scalar_subquery(),
        select(func.max(Correction.changed_at)).scalar_subquery(),  # a correction changes served labels
    )
    return tuple(session.execute(select(*newest)).one())


def rollup_stamp(session: Session, audience: str) -> tuple[Any, ...] | None:
    """What an answer read from the rollups depends on: their state, topic labels and source
    names (None while the rollups of `audience` are not current, so answers come from items)."""
    if not rollups_current(session, audience):
        return None
    state = session.get(RollupState, audience)
    assert state is not None  # current rollups have a state
    labels = session.execute(select(select(func.max(Topic.updated_at)).scalar_subquery(),
                                    select(func.count(Source.id)).scalar_subquery(),
                                    select(func.max(Source.updated_at)).scalar_subquery())).one()
    return (state.tags_watermark, state.refreshed_at, state.rebuilt_at, state.topics_stamp, *labels)


def tags_stamp(session: Session) -> tuple[Any, ...]:
    """What topic answers depend on: the newest tag, topic edit and topic model version."""
    return tuple(session.execute(select(
        select(func.max(Tag.tagged_at)).scalar_subquery(),
        select(func.max(Topic.updated_at)).scalar_subquery(),
        select(func.max(TopicModelVersion.id)).scalar_subquery(),
    )).one())
