"""The versioned topic taxonomy: stable ids across refits, and the user's edits.

Rules (docs/topics.md):
- A refit's topic that matches a previous topic (`alignment`) keeps that topic's id; a new one
  gets a new id; a previous topic that nothing matches is retired, and ids are never reused
  (they come from the `topics` table's primary key and retired rows are kept).
- Rename sets a user label; pin freezes whichever label the topic has. Both survive refits: a
  refit updates keywords and size but not a user's or a pinned label.
- Merge points one topic at another (`merged_into_id`). Items move at once; on later refits, a
  topic matching the merged one maps to its target, so the merge survives.
- Every version is a `topic_model_versions` row with its files; items keep the version that
  assigned their topic (`tags.topic_version`).

Functions here flush; the caller (request, job, command) commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import Tag, Topic, TopicModelVersion

LABEL_MAX = 200


class TopicEditError(ValueError):
    """An edit that cannot be made; the message says why and what would work."""


def get_topic(session: Session, topic_id: int) -> Topic:
    topic = session.get(Topic, topic_id)
    if topic is None:
        raise LookupError(f"no topic with id {topic_id}; `voc topics list` shows the ids")
    return topic


def resolve(session: Session, topic_id: int | None) -> int | None:
    """The topic an id stands for now: merges followed to their end."""
    seen: set[int] = set()
    while topic_id is not None and topic_id not in seen:
        seen.add(topic_id)
        target = session.scalar(select(Topic.merged_into_id).where(Topic.id == topic_id))
        if target is None:
            return topic_id
        topic_id = target
    return topic_id


def current_version(session: Session, audience: str) -> TopicModelVersion | None:
    return session.scalar(
        select(TopicModelVersion).where(
            TopicModelVersion.audience == audience, TopicModelVersion.is_current.is_(True)
        )
    )


def versions(session: Session, audience: str) -> list[TopicModelVersion]:
    return list(
        session.scalars(
            select(TopicModelVersion)
            .where(TopicModelVersion.audience == audience)
            .order_by(TopicModelVersion.version)
        )
    )


def next_version(session: Session, audience: str) -> int:
    last = session.scalar(
        select(func.max(TopicModelVersion.version)).where(TopicModelVersion.audience == audience)
    )
    return int(last or 0) + 1


def _note(topic: Topic, action: str, **detail: Any) -> None:
    extra = dict(topic.extra or {})
    extra["edits"] = [
        *extra.get("edits", []),
        {"action": action, "at": utcnow().isoformat(), **detail},
    ]
    topic.extra = extra


def rename(session: Session, *, topic_id: int, label: str) -> Topic:
    """Give a topic a user label, kept across refits."""
    label = " ".join(label.split())
    if not label or len(label) > LABEL_MAX:
        raise TopicEditError(f"a label needs 1 to {LABEL_MAX} characters")
    topic = get_topic(session, topic_id)
    if topic.status != "active":
        raise TopicEditError(
            f"topic {topic_id} is {topic.status}; rename the topic it became "
            f"({topic.merged_into_id})"
            if topic.merged_into_id
            else f"topic {topic_id} is {topic.status} and cannot be renamed"
        )
    _note(topic, "rename", old=topic.label, new=label)
    topic.label = label
    topic.extra = {**topic.extra, "label_source": "user"}
    session.flush()
    return topic


def pin(session: Session, *, topic_id: int, pinned: bool = True) -> Topic:
    """Pin (or unpin) a topic's label: a pinned label is kept across refits."""
    topic = get_topic(session, topic_id)
    if topic.pinned != pinned:
        _note(topic, "pin" if pinned else "unpin", label=topic.label)
        topic.pinned = pinned
        if not pinned and topic.extra.get("label_source") == "user":
            topic.extra = {**topic.extra, "label_source": "model"}  # unpinning gives the label back
    session.flush()
    return topic


def merge(session: Session, *, topic_id: int, into_id: int) -> Topic:
    """Merge a topic into another of the same audience: its items move now and after refits."""
    if topic_id == into_id:
        raise TopicEditError("a topic cannot be merged into itself")
    source, target = get_topic(session, topic_id), get_topic(session, into_id)
    if source.audience != target.audience:
        raise TopicEditError(
            f"topic {topic_id} is {source.audience} and {into_id} {target.audience}: "
            f"only topics of one audience can be merged"
        )
    for topic in (source, target):
        if topic.status != "active":
            raise TopicEditError(
                f"topic {topic.id} is {topic.status}; only active topics can be merged"
            )
    _merge_into(session, source.id, target)
    extra = dict(target.extra or {})
    extra["quote_item_ids"] = [
        *extra.get("quote_item_ids", []),
        *source.extra.get("quote_item_ids", []),
    ]
    target.extra = extra
    session.flush()
    return target


def _merge_into(session: Session, source_id: int, target: Topic, **note: Any) -> None:
    """Mark `source_id` merged into `target` and move its tagged items there."""
    source = session.get(Topic, source_id)
    if source is None or source.status != "active":
        return
    source.status = "merged"
    source.merged_into_id = target.id
    moved = (
        session.scalar(select(func.count()).select_from(Tag).where(Tag.topic_id == source.id)) or 0
    )
    session.execute(update(Tag).where(Tag.topic_id == source.id).values(topic_id=target.id))
    _note(source, "merge", into=target.id, items=moved, **note)
    _note(target, "absorb", source=source.id, label=source.label, items=moved, **note)
    target.size = (target.size or 0) + (source.size or 0)
    source.size = 0


@dataclass
class FittedTopic:
    """One topic of a new fit, and the previous topic id it matched (None: new)."""

    model_topic: int
    label: str
    keywords: list[str]
    size: int
    matched_id: int | None
    quote_item_ids: list[int] = field(default_factory=list)
    joins: int | None = None  # another fitted topic's model_topic: this one shares its id


def join_empty_answers(fitted: list[FittedTopic]) -> list[FittedTopic]:
    """Every fitted topic of empty answers ("Nothing Specific", "Nothing Specific (2)") joins one
    of them: one taxonomy id, each keeping its own centroid (so no document moves). The one they
    join is the biggest that matched a previous topic, else the biggest; it carries the plain
    label."""
    # here, not at module level: labels pulls in scikit-learn, which the API does not need to load
    from feedback.topics.labels import EMPTY_ANSWER_LABEL, is_empty_answer_label

    empty = [f for f in fitted if is_empty_answer_label(f.label)]
    if len(empty) < 2:
        return fitted
    head = max(empty, key=lambda f: (f.matched_id is not None, f.size, -f.model_topic))
    head.label = EMPTY_ANSWER_LABEL
    for f in empty:
        if f is not head:
            f.joins = head.model_topic
    return fitted


@dataclass
class TaxonomyChange:
    """What a refit did to the taxonomy."""

    model_to_topic: dict[int, int]
    kept: list[int]
    created: list[int]
    retired: list[int]


def apply_refit(
    session: Session, *, audience: str, version: int, fitted: Iterable[FittedTopic]
) -> TaxonomyChange:
    """Update the taxonomy for a new version: keep matched ids, add new ones, retire the rest."""
    fitted = list(fitted)
    model_to_topic: dict[int, int] = {}
    kept: set[int] = set()
    created: list[int] = []
    sizes: dict[int, int] = {}
    seen: set[int] = set()  # ids already given to a fitted topic of this refit
    for f in sorted(fitted, key=lambda f: f.joins is not None):  # the joined ones first
        target = resolve(session, f.matched_id) if f.matched_id is not None else None
        if f.joins is not None:  # it shares the joined topic's id; an earlier id of its own merges
            joined = model_to_topic[f.joins]
            if target is not None and target != joined and target not in seen:
                _merge_into(session, target, session.get(Topic, joined),  # type: ignore[arg-type]
                            reason="empty answers, joined at refit")  # fmt: skip
            target = joined
        topic = session.get(Topic, target) if target is not None else None
        if topic is None or topic.status == "retired":
            topic = Topic(
                audience=audience,
                label=f.label,
                keywords=list(f.keywords),
                status="active",
                created_version=version,
                size=0,
                extra={"label_source": "model", "model_label": f.label},
            )
            session.add(topic)
            session.flush()
            created.append(topic.id)
        elif topic.id not in seen:
            kept.add(topic.id)
            user_label = topic.pinned or topic.extra.get("label_source") == "user"
            if not user_label:
                topic.label = f.label
            topic.keywords = list(f.keywords)
            topic.extra = {**topic.extra, "model_label": f.label, "quote_item_ids": []}
        seen.add(topic.id)
        extra = dict(topic.extra)
        extra["quote_item_ids"] = [*extra.get("quote_item_ids", []), *f.quote_item_ids][:24]
        extra["last_version"] = version
        topic.extra = extra
        sizes[topic.id] = sizes.get(topic.id, 0) + f.size
        model_to_topic[f.model_topic] = topic.id
    for topic_id, size in sizes.items():
        session.get(Topic, topic_id).size = size  # type: ignore[union-attr]
    retired: list[int] = []
    live = set(model_to_topic.values())
    for topic in session.scalars(
        select(Topic).where(Topic.audience == audience, Topic.status == "active")
    ):
        if topic.id not in live:
            topic.status = "retired"
            topic.retired_version = version
            topic.size = 0
            retired.append(topic.id)
    session.flush()
    return TaxonomyChange(
        model_to_topic=model_to_topic, kept=sorted(kept), created=created, retired=retired
    )


def record_version(
    session: Session,
    *,
    audience: str,
    version: int,
    path: str,
    n_documents: int,
    n_topics: int,
    outlier_share: float,
    params: dict[str, Any],
) -> TopicModelVersion:
    """Store a fitted version and make it the audience's current one."""
    session.execute(
        update(TopicModelVersion)
        .where(TopicModelVersion.audience == audience)
        .values(is_current=False)
    )
    row = TopicModelVersion(
        audience=audience,
        version=version,
        path=path,
        n_documents=n_documents,
        n_topics=n_topics,
        outlier_share=outlier_share,
        params=params,
        is_current=True,
    )
    session.add(row)
    session.flush()
    return row


def taxonomy_json(
    session: Session, *, audience: str, version: int, model_to_topic: dict[int, int]
) -> dict[str, Any]:
    """The taxonomy as saved beside a version's model files."""
    topics = session.scalars(
        select(Topic).where(Topic.audience == audience).order_by(Topic.id)
    ).all()
    return {
        "audience": audience,
        "version": version,
        "model_topics": {str(k): v for k, v in sorted(model_to_topic.items())},
        "topics": [
            {
                "id": t.id,
                "label": t.label,
                "keywords": t.keywords,
                "status": t.status,
                "pinned": t.pinned,
                "label_source": t.extra.get("label_source", "model"),
                "merged_into": t.merged_into_id,
                "created_version": t.created_version,
                "retired_version": t.retired_version,
                "size": t.size,
            }
            for t in topics
        ],
    }
