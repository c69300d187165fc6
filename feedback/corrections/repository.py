"""Read queries for the pages that show corrections (api/web): an item's corrections, the newest
corrections of some audiences, and the tags, corrections and topic labels of a page of items.

Writes stay in `feedback.corrections.service` (add, withdraw, import), whose checks every caller
goes through, and which reads through these too; nothing here changes the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.models import Correction, FeedbackItem, Tag, Topic

CHUNK = 900  # ids per IN (...): under SQLite's bound-parameter limit


@dataclass(frozen=True)
class RecentCorrection:
    """A correction with what a list of them shows of its item."""

    correction: Correction
    audience: str
    text: str


def item_corrections(session: Session, item_id: int) -> list[Correction]:
    """Every correction of one item, active and withdrawn, newest first."""
    return list(session.scalars(select(Correction).where(Correction.item_id == item_id)
                                .order_by(Correction.id.desc())))


def recent_corrections(session: Session, *, audiences: Sequence[str], limit: int = 30) -> list[RecentCorrection]:
    """The newest `limit` corrections (active and withdrawn) of items of `audiences`, newest first."""
    stmt = (select(Correction, FeedbackItem.audience, FeedbackItem.text)
            .join(FeedbackItem, FeedbackItem.id == Correction.item_id)
            .where(FeedbackItem.audience.in_(list(audiences)))
            .order_by(Correction.id.desc()).limit(limit))
    return [RecentCorrection(row, audience, text) for row, audience, text in session.execute(stmt).all()]


def tags_of(session: Session, item_ids: Iterable[int]) -> dict[int, Tag]:
    """The current tag of each item that has one."""
    ids = sorted(set(item_ids))
    out: dict[int, Tag] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        out.update((tag.item_id, tag) for tag in session.scalars(select(Tag).where(Tag.item_id.in_(chunk))))
    return out


def active_corrections_of(session: Session, item_ids: Iterable[int]) -> dict[int, dict[str, Correction]]:
    """Item id -> kind -> its active correction."""
    ids = sorted(set(item_ids))
    out: dict[int, dict[str, Correction]] = {}
    for start in range(0, len(ids), CHUNK):
        for row in session.scalars(select(Correction).where(Correction.item_id.in_(ids[start:start + CHUNK]),
                                                            Correction.withdrawn_at.is_(None))):
            out.setdefault(row.item_id, {})[row.kind] = row
    return out


def topic_labels(session: Session, topic_ids: Iterable[int]) -> dict[int, str]:
    """Topic id -> its label, for the ids given."""
    ids = sorted(set(topic_ids))
    out: dict[int, str] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        out.update(session.execute(select(Topic.id, Topic.label).where(Topic.id.in_(chunk))).tuples().all())
    return out


def active_topics(session: Session, audience: str) -> list[Topic]:
    """The active topics of an audience (what a topic correction may name), by label."""
    return list(session.scalars(select(Topic).where(Topic.audience == audience, Topic.status == "active")
                                .order_by(Topic.label, Topic.id)))


def items_of(session: Session, item_ids: Iterable[int]) -> dict[int, FeedbackItem]:
    """The items of the ids given."""
    ids = sorted(set(item_ids))
    out: dict[int, FeedbackItem] = {}
    for start in range(0, len(ids), CHUNK):
        out.update((item.id, item) for item in session.scalars(
            select(FeedbackItem).where(FeedbackItem.id.in_(ids[start:start + CHUNK]))))
    return out
