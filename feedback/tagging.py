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


def fill_custom(engine: Any, tagger: Any, *, batch_size: int = 1000) -> int:
    """Give every tagged item the labels of the tagger's custom heads where its tag lacks them or
    another version of the head made them (a head added or retrained after the item was tagged),
    from the stored embeddings, without an encoder pass (items without one are encoded). The rest
    of the tag is left as it is. Returns how many tags were updated; `voc custom fill` runs it."""
    import torch
    from sqlalchemy import update

    from feedback.db import session_scope

    heads = list(getattr(tagger, "custom_heads", []))
    if not heads:
        return 0
    done, last = 0, 0
    while True:
        with session_scope(engine) as session:
            rows = session.execute(select(Tag.item_id, Tag.model_versions, Tag.custom).where(Tag.item_id > last)
                                   .order_by(Tag.item_id).limit(batch_size)).all()
        if not rows:
            return done
        last = rows[-1].item_id
        stale = [r for r in rows if any((r.model_versions or {}).get(f"custom:{c.name}") != c.version for c in heads)]
        if not stale:
            continue
        ids = [r.item_id for r in stale]
        with session_scope(engine) as session:
            stored = dict(session.execute(select(ItemEmbedding.item_id, ItemEmbedding.vector).where(
                ItemEmbedding.item_id.in_(ids), ItemEmbedding.model == getattr(tagger, "encoder_name", None))).all())
            missing = [i for i in ids if i not in stored]
            texts = dict(session.execute(select(FeedbackItem.id, FeedbackItem.text)
                                         .where(FeedbackItem.id.in_(missing))).all()) if missing else {}
        x = np.zeros((len(ids), tagger.encoder.dim), np.float32)
        for k, item_id in enumerate(ids):
            if item_id in stored:
                x[k] = np.frombuffer(stored[item_id], dtype="<f2")
        if missing:
            encoded = tagger.embed([texts[i] for i in missing])
            for item_id, vector in zip(missing, encoded, strict=True):
                x[ids.index(item_id)] = vector
        pooled = torch.from_numpy(x).to(tagger.device)
        probs = {}
        with torch.inference_mode():
            for c in heads:
                probs[c.name] = c.head.probabilities(pooled).cpu().numpy()
        with session_scope(engine) as session:
            for k, row in enumerate(stale):
                custom = dict(row.custom or {})
                versions = dict(row.model_versions or {})
                for c in heads:
                    custom[c.name] = {"labels": c.decide(probs[c.name][k]),
                                      "scores": {label: round(float(p), 4)
                                                 for label, p in zip(c.head.labels, probs[c.name][k], strict=True)}}
                    versions[f"custom:{c.name}"] = c.version
                session.execute(update(Tag).where(Tag.item_id == row.item_id).values(custom=custom,
                                                                                     model_versions=versions))
        done += len(stale)
