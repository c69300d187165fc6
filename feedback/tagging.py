"""Store what the taggers say about items that have no tags yet.

The tagger is passed in (anything with `tag()` and `model_versions`, see `classifiers.Tagger`), so
the domain does not depend on how models are loaded. One call tags one batch; the job around it
commits after each batch, so a crash loses at most the batch in flight and a rerun resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import FeedbackItem, ItemEmbedding, Tag, TagLabel


class TaggerLike(Protocol):
    """What the tagging service needs of a tagger."""

    name: str
    version: str
    model_versions: dict[str, str]

    def tag(self, texts: Sequence[str], *, audiences: Sequence[str] | None = None,
            return_embeddings: bool = False, languages: Sequence[str | None] | None = None) -> list[Any]:
        ...


def count_untagged(session: Session) -> int:
    """How many items wait for tags."""
    return session.scalar(
        select(func.count()).select_from(FeedbackItem).outerjoin(Tag, Tag.item_id == FeedbackItem.id)
        .where(Tag.item_id.is_(None))
    ) or 0


def pending_items(session: Session, *, batch_size: int = 256) -> list[Any]:
    """Up to `batch_size` untagged items, oldest first (id, text, audience, language, touchpoint,
    content_hash): what one batch of the tagging job tags."""
    return list(session.execute(
        select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
               FeedbackItem.touchpoint, FeedbackItem.content_hash)
        .outerjoin(Tag, Tag.item_id == FeedbackItem.id)
        .where(Tag.item_id.is_(None))
        .order_by(FeedbackItem.id)
        .limit(batch_size)
    ).all())


def tag_items(tagger: TaggerLike, rows: Sequence[Any]) -> list[Any]:
    """What the tagger says about `rows` (from `pending_items`); needs no database."""
    if not rows:
        return []
    results = tagger.tag([r.text for r in rows], audiences=[r.audience for r in rows],
                         languages=[r.language for r in rows], return_embeddings=True)
    if len(results) != len(rows):  # a tagger must never lose an item
        raise RuntimeError(f"tagger returned {len(results)} results for {len(rows)} texts")
    return list(results)


def _custom(result: Any) -> dict[str, Any] | None:
    """The stored form of a result's custom categories: name -> {labels, scores}; None without."""
    scores = getattr(result, "custom_scores", None) or {}
    return {name: {"labels": list(labels), "scores": {k: round(float(v), 4) for k, v in scores.get(name, {}).items()}}
            for name, labels in (getattr(result, "custom", None) or {}).items()} or None


def store_tags(session: Session, tagger: TaggerLike, rows: Sequence[Any], results: Sequence[Any]) -> int:
    """Store the tags of `rows`; returns how many were stored.

    The models ran outside this transaction, so an item may have changed meanwhile: one tagged by
    another tagging run is left as it is, and one whose text changed (its hash differs) is left
    untagged, for the next batch to tag its new text.
    """
    ids = [r.id for r in rows]
    current: dict[int, str] = {}
    tagged: set[int] = set()
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        current.update((item_id, digest) for item_id, digest in session.execute(
            select(FeedbackItem.id, FeedbackItem.content_hash).where(FeedbackItem.id.in_(chunk))))
        tagged.update(session.scalars(select(Tag.item_id).where(Tag.item_id.in_(chunk))))
    now = utcnow()
    tags: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    embeddings: list[dict[str, Any]] = []
    for row, result in zip(rows, results, strict=True):
        if row.id in tagged or current.get(row.id) != row.content_hash:
            continue
        # A touchpoint given by the source is never overwritten: infer only where there is none.
        inferred = None if row.touchpoint else result.touchpoint
        tags.append({
            "item_id": row.id,
            "model": tagger.name,
            "model_version": tagger.version,
            "model_versions": dict(tagger.model_versions),
            "sentiment": result.sentiment,
            "sentiment_score": float(result.sentiment_score),
            "sentiment_probs": {k: round(float(v), 4) for k, v in result.sentiment_probs.items()},
            "p_negative": _p_negative(result.sentiment_probs),
            "emotions": list(result.emotion_labels),
            "emotion_scores": {k: round(float(v), 4) for k, v in result.emotions.items()},
            "cx_emotions": list(result.cx_emotions),
            "needs": list(result.needs),
            "need_scores": {k: round(float(v), 4) for k, v in result.need_scores.items()},
            "touchpoint": inferred,
            "touchpoint_confidence": float(result.touchpoint_confidence) if inferred else None,
            "flags": list(result.flags),
            "custom": _custom(result),
            "tagged_at": now,
        })
        for kind, names, scores in (("need", result.needs, result.need_scores),
                                    ("emotion", result.emotion_labels, result.emotions),
                                    ("cx_emotion", result.cx_emotions, {})):
            for name in names:
                labels.append({"item_id": row.id, "kind": kind, "label": name,
                               "score": float(scores.get(name, 1.0))})
        if result.embedding is not None:
            vector = np.asarray(result.embedding, dtype="<f2")
            embeddings.append({"item_id": row.id, "model": getattr(tagger, "encoder_name", tagger.name),
                               "dim": int(vector.shape[0]), "vector": vector.tobytes()})
    if not tags:
        return 0
    session.execute(insert(Tag), tags)
    if labels:
        session.execute(insert(TagLabel), labels)
    if embeddings:
        session.execute(insert(ItemEmbedding), embeddings)
    session.flush()
    return len(tags)


def tag_batch(session: Session, tagger: TaggerLike, *, batch_size: int = 256) -> int:
    """Tag up to `batch_size` untagged items (oldest first) in one session; returns how many were
    tagged. The tagging job instead runs the models between two short transactions
    (`jobs.tasks.tag_pending`)."""
    rows = pending_items(session, batch_size=batch_size)
    return store_tags(session, tagger, rows, tag_items(tagger, rows))


def _p_negative(probs: Any) -> float | None:
    """The calibrated p(negative) that estimated shares sum (None if the tagger gave none)."""
    value = (probs or {}).get("negative")
    return None if value is None else float(value)


def load_embeddings(session: Session, item_ids: Sequence[int]) -> np.ndarray:
    """Stored embeddings for `item_ids` (in that order), float32; missing ones raise KeyError."""
    found: dict[int, np.ndarray] = {}
    ids = list(item_ids)
    for start in range(0, len(ids), 900):
        for item_id, blob in session.execute(
            select(ItemEmbedding.item_id, ItemEmbedding.vector)
            .where(ItemEmbedding.item_id.in_(ids[start:start + 900]))
        ):
            found[item_id] = np.frombuffer(blob, dtype="<f2")
    missing = [i for i in ids if i not in found]
    if missing:
        raise KeyError(f"{len(missing)} items have no stored embedding (first: {missing[:5]}); run `voc tag`")
    return np.stack([found[i] for i in ids]).astype(np.float32) if ids else np.zeros((0, 0), np.float32)
