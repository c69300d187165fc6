"""Which items an analyst should label next: uncertain for the live model, and unlike each other.

`pick(uncertainty, embeddings, k)` is the method (pure numpy, shared with bench/adaptation.py):
greedy, each pick maximising uncertainty x (distance to the nearest item already picked or
already corrected) ** `DIVERSITY`: the first picks are the most uncertain items, later ones are
uncertain items from parts of the embedding space no label covers yet, so an hour of labelling
does not go on twenty copies of one confusing complaint. `pick_clusters` spreads the picks
instead by an uncertainty-weighted k-means, one pick per cluster. `suggestions()` reads the
candidates from the database: the newest tagged items without a correction of the kind, their
stored embeddings, and the live model's probabilities stored with their tags (for touchpoints,
with the live prototypes when given: the gap between the two best touchpoints). Which picker
and which uncertainty per kind (`METHOD`) is what bench/adaptation.py chose on dev.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from feedback.corrections.service import CUSTOM_PREFIX
from feedback.models import Correction, FeedbackItem, ItemEmbedding, Tag

DIVERSITY = 1.0
CANDIDATES = 5000  # newest tagged items considered
# How the picks are spread, per kind, as bench/adaptation.py chose on dev: "greedy" (`pick`) or
# "clusters" (`pick_clusters`); custom categories, not measured there, take the greedy one
METHOD = {"sentiment": "greedy", "touchpoint": "clusters"}


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """1 - (top probability - second): 1 when the model is torn between two labels, 0 when sure."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def top2_uncertainty(scores: np.ndarray) -> np.ndarray:
    """1 - (best score - second best) of a score matrix (touchpoint prototype scores: -inf for a
    touchpoint outside the item's audience): 1 when two touchpoints fit equally well."""
    scores = np.asarray(scores, np.float64)
    top2 = np.sort(np.where(np.isfinite(scores), scores, -1.0), axis=1)[:, -2:]
    return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0) if scores.shape[1] > 1 else np.ones(len(scores))


def custom_uncertainty(scores: Sequence[dict[str, float]], labels: Sequence[str], *, multi_label: bool) -> np.ndarray:
    """For a custom head's stored probabilities over its `labels`: the margin between its two
    best labels (a single-label head), or how near its most doubtful label is to 0.5 (a
    multi-label head's labels are each yes or no)."""
    probs = np.asarray([[float(row.get(label, 0.0)) for label in labels] for row in scores], np.float64)
    if not multi_label and len(labels) > 1:
        return margin_uncertainty(probs)
    return 1.0 - 2.0 * np.abs(probs - 0.5).min(1)


def nearest_labelled(emb: np.ndarray, labelled: np.ndarray | None) -> np.ndarray:
    """Each row's cosine distance to the nearest labelled item (2.0 where none is labelled)."""
    nearest = np.full(len(emb), 2.0, np.float32)
    if labelled is not None and len(labelled):
        for start in range(0, len(labelled), 2048):
            sims = emb @ np.asarray(labelled[start:start + 2048], np.float32).T
            nearest = np.minimum(nearest, (1.0 - sims).min(1))
    return nearest


def pick(uncertainty: np.ndarray, embeddings: np.ndarray, k: int, *,
         labelled: np.ndarray | None = None, diversity: float = DIVERSITY) -> list[int]:
    """Indexes of `k` items to label (see the module docstring); embeddings L2-normalised."""
    n = len(uncertainty)
    k = min(k, n)
    if k <= 0:
        return []
    emb = np.asarray(embeddings, np.float32)
    nearest = nearest_labelled(emb, labelled)
    chosen: list[int] = []
    taken = np.zeros(n, bool)
    unc = np.clip(np.asarray(uncertainty, np.float32), 1e-6, None)
    for _ in range(k):
        score = unc * np.power(np.clip(nearest, 1e-6, None), diversity)
        score[taken] = -1.0
        best = int(score.argmax())
        chosen.append(best)
        taken[best] = True
        nearest = np.minimum(nearest, 1.0 - emb @ emb[best])
    return chosen


def kmeans(emb: np.ndarray, k: int, *, weights: np.ndarray | None = None, iterations: int = 10,
           seed: int = 13) -> np.ndarray:
    """Cluster of each row: spherical k-means (cosine) with k-means++ starts, rows weighted."""
    n = len(emb)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64) + 1e-9
    centres = [int(rng.choice(n, p=w / w.sum()))]
    dist = 1.0 - emb @ emb[centres[0]]
    for _ in range(1, k):  # k-means++: far from the chosen centres, in proportion to weight
        p = np.clip(dist, 0, None) * w
        centres.append(int(rng.choice(n, p=p / p.sum())) if p.sum() > 0 else int(rng.integers(n)))
        dist = np.minimum(dist, 1.0 - emb @ emb[centres[-1]])
    c = emb[centres].copy()
    assign = np.zeros(n, np.int64)
    for _ in range(iterations):
        assign = (emb @ c.T).argmax(1)
        sums = np.zeros_like(c)
        np.add.at(sums, assign, emb * w[:, None].astype(np.float32))
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        c = np.where(norms > 0, sums / np.maximum(norms, 1e-12), c)
    return assign


def pick_clusters(uncertainty: np.ndarray, embeddings: np.ndarray, k: int, *,
                  labelled: np.ndarray | None = None, diversity: float = DIVERSITY, seed: int = 13) -> list[int]:
    """`k` items, one per cluster: the candidates are split into `k` clusters by k-means
    weighted by `pick`'s score (uncertainty x distance to the nearest labelled item), and each
    cluster gives its highest-scoring item: coverage of the whole pool, each pick as
    informative as its region allows."""
    n = len(uncertainty)
    k = min(k, n)
    if k <= 0:
        return []
    emb = np.asarray(embeddings, np.float32)
    nearest = nearest_labelled(emb, labelled)
    score = np.clip(np.asarray(uncertainty, np.float64), 1e-6, None) * np.power(np.clip(nearest, 1e-6, None),
                                                                               diversity)
    assign = kmeans(emb, k, weights=score, seed=seed)
    chosen = []
    for cluster in np.unique(assign):
        rows = np.flatnonzero(assign == cluster)
        chosen.append(int(rows[score[rows].argmax()]))
    if len(chosen) < k:  # fewer non-empty clusters than picks: fill by score
        taken = set(chosen)
        rest = [int(i) for i in np.argsort(-score) if int(i) not in taken]
        chosen += rest[:k - len(chosen)]
    return sorted(chosen, key=lambda i: -score[i])[:k]


def suggestions(session: Session, *, kind: str, audiences: Sequence[str], limit: int = 20,
                candidates: int = CANDIDATES, touchpoints: Any = None,
                custom_head: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The `limit` items whose `kind` correction would teach the live model most. For
    touchpoints, `touchpoints` (the live tagger's prototypes) makes the uncertainty the gap
    between the two best touchpoints of the item's audience (`top2_uncertainty`), which
    bench/adaptation.py chose on dev; without it, 1 - the score stored with the tag. For
    custom:NAME, `custom_head` is the head's head.json (its labels, whether multi-label)."""
    custom = kind[len(CUSTOM_PREFIX):] if kind.startswith(CUSTOM_PREFIX) else None
    if custom is not None and custom_head is None:
        raise ValueError(f"suggestions for {kind} need its head's labels (custom_head)")
    if kind not in ("sentiment", "touchpoint") and custom is None:
        raise ValueError(f"suggestions are made for sentiment, touchpoint and custom:NAME (kind={kind!r}); "
                         "their stored probabilities say how unsure the model is")
    corrected = exists().where(Correction.item_id == FeedbackItem.id, Correction.kind == kind,
                               Correction.withdrawn_at.is_(None))
    # The candidates' ids first, then their columns: asked for the text and vectors in the same
    # query, SQLite read every item of the audience and sorted them (1.8 s at 1,000,000 items)
    # where the ids alone come newest first from the (audience, created_at) index (48 ms).
    newest = (select(FeedbackItem.id)
              .join(Tag, Tag.item_id == FeedbackItem.id).join(ItemEmbedding, ItemEmbedding.item_id == FeedbackItem.id)
              .where(FeedbackItem.audience.in_(list(audiences)), ~corrected)
              .order_by(FeedbackItem.created_at.desc(), FeedbackItem.id.desc()).limit(candidates))
    if kind == "touchpoint":
        newest = newest.where(FeedbackItem.touchpoint.is_(None))  # a source's touchpoint is not the model's
    stmt = (select(FeedbackItem.id, FeedbackItem.audience, FeedbackItem.text, Tag.sentiment, Tag.sentiment_probs,
                   Tag.touchpoint, Tag.touchpoint_confidence, ItemEmbedding.vector,
                   *((Tag.custom,) if custom is not None else ()))
            .join(Tag, Tag.item_id == FeedbackItem.id).join(ItemEmbedding, ItemEmbedding.item_id == FeedbackItem.id)
            .where(FeedbackItem.id.in_(newest.scalar_subquery()))
            .order_by(FeedbackItem.created_at.desc(), FeedbackItem.id.desc()))
    rows = session.execute(stmt).all()
    if custom is not None:  # items tagged before the head was added have nothing to be unsure of
        rows = [r for r in rows if (r.custom or {}).get(custom, {}).get("scores")]
    if not rows:
        return []
    emb = np.stack([np.frombuffer(r.vector, dtype="<f2").astype(np.float32) for r in rows])
    if kind == "sentiment":
        probs = np.asarray([[float((r.sentiment_probs or {}).get(label, 0.0))
                             for label in ("negative", "neutral", "positive")] for r in rows])
        unc = margin_uncertainty(probs)
    elif custom is not None:
        unc = custom_uncertainty([r.custom[custom]["scores"] for r in rows], custom_head["labels"],  # type: ignore[index]
                                 multi_label=bool(custom_head.get("multi_label")))  # type: ignore[union-attr]
    elif touchpoints is not None:  # torn between two touchpoints of the item's audience
        unc = top2_uncertainty(touchpoints.audience_scores(emb, [r.audience for r in rows]))
    else:  # the prototype score: near or under the threshold, the touchpoint is in doubt
        unc = 1.0 - np.clip(np.asarray([r.touchpoint_confidence or 0.0 for r in rows], np.float32), 0.0, 1.0)
    labelled = [np.frombuffer(v, dtype="<f2").astype(np.float32) for (v,) in session.execute(
        select(ItemEmbedding.vector).join(Correction, Correction.item_id == ItemEmbedding.item_id)
        .where(Correction.kind == kind, Correction.withdrawn_at.is_(None)).limit(20000))]
    chooser = pick_clusters if METHOD.get(kind) == "clusters" else pick
    chosen = chooser(unc, emb, limit, labelled=np.stack(labelled) if labelled else None)
    out = []
    for i in chosen:
        r = rows[i]
        out.append({"item_id": r.id, "audience": r.audience, "text": r.text, "kind": kind,
                    "model_label": ("|".join(r.custom[custom]["labels"]) if custom is not None
                                    else r.sentiment if kind == "sentiment" else (r.touchpoint or "unknown")),
                    "uncertainty": round(float(unc[i]), 4),
                    "reason": "uncertain, and unlike the items corrected or picked before it"})
    return out
