"""Topic corrections as seeds of the next topic refit (issue 17).

An analyst who moves an item to a topic says that the item belongs there. The next refit of the
audience's topics (`feedback.topics.service.refit`) starts from the previous version's centroids
(its anchors); `seeded_anchors` pulls the anchor of each corrected topic towards the mean
embedding of the items analysts put in it, so the refit keeps that topic and gathers items like
them into it. A corrected topic the previous version has no anchor for (a merged-into topic,
say) gets the corrected items' mean as an anchor of its own, matched back to the same topic id.
The model's topic assignments are never overwritten: the corrections stay what analytics serve.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.models import Correction, FeedbackItem, ItemEmbedding, Topic


def corrected_topics(session: Session, *, audience: str, encoder: str) -> dict[int, np.ndarray]:
    """Active topic id -> unit mean embedding (by `encoder`) of the items with an active
    correction to that topic."""
    rows = session.execute(
        select(Correction.label, ItemEmbedding.vector)
        .join(FeedbackItem, FeedbackItem.id == Correction.item_id)
        .join(ItemEmbedding, ItemEmbedding.item_id == Correction.item_id)
        .where(Correction.kind == "topic", Correction.withdrawn_at.is_(None),
               FeedbackItem.audience == audience, ItemEmbedding.model == encoder)).all()
    active = set(session.scalars(select(Topic.id).where(Topic.audience == audience, Topic.status == "active")))
    sums: dict[int, np.ndarray] = {}
    for label, blob in rows:
        if not str(label).isdigit() or int(label) not in active:
            continue
        vector = np.frombuffer(blob, dtype="<f2").astype(np.float32)
        sums[int(label)] = sums.get(int(label), 0) + vector / max(float(np.linalg.norm(vector)), 1e-9)
    return {t: s / max(float(np.linalg.norm(s)), 1e-9) for t, s in sums.items()}


def seeded_anchors(anchors: np.ndarray | None, anchor_topic: dict[int, int],
                   corrected: dict[int, np.ndarray]) -> tuple[np.ndarray | None, dict[int, int]]:
    """(anchors, {anchor row: topic id} of the rows added for corrected topics): the anchor of a
    corrected topic (`anchor_topic`: anchor row -> topic id) moved halfway towards its corrected
    items' mean, a new row for a corrected topic without an anchor."""
    if not corrected:
        return anchors, {}
    rows = [] if anchors is None else [np.asarray(a, np.float32) for a in anchors]
    row_of = {topic: row for row, topic in anchor_topic.items()}
    added: dict[int, int] = {}
    for topic, mean in sorted(corrected.items()):
        if topic in row_of and row_of[topic] < len(rows):
            moved = rows[row_of[topic]] / max(float(np.linalg.norm(rows[row_of[topic]])), 1e-9) + mean
            rows[row_of[topic]] = moved / max(float(np.linalg.norm(moved)), 1e-9)
        else:
            added[len(rows)] = topic
            rows.append(mean.astype(np.float32))
    return np.stack(rows).astype(np.float32), added
