"""Hand-built tagged feedback for the digest and alert tests (no model needed)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from feedback.db import session_scope
from feedback.insights.weeks import week_bounds
from feedback.models import FeedbackItem, Source, Tag, TagLabel

POSITIVE = (
    "Great {tp} experience, quick and friendly.",
    "Really happy with the {tp}, thanks.",
    "The {tp} was smooth and easy this time.",
    "Lovely {tp}, staff were helpful.",
)
NEUTRAL = ("The {tp} was fine, nothing special.", "Used the {tp} today, it was okay.")
NEGATIVE = (
    "The {tp} was slow and annoying.",
    "Not happy with the {tp} at all.",
    "Bad {tp} today, it took ages.",
    "The {tp} let me down again.",
)


class Seeder:
    """Adds items with tags week by week; every call draws from one seeded RNG."""

    def __init__(self, engine: Engine, *, seed: int = 3) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.counter = 0
        with session_scope(engine) as session:
            source = Source(name="seed", connector="file", audience="customer")
            session.add(source)
            session.flush()
            self.source_id = source.id

    def add(
        self,
        *,
        week: str,
        touchpoint: str | None,
        n: int,
        negative: float,
        audience: str = "customer",
        org_unit: str | None = None,
        texts: Sequence[str] | None = None,
        authors: Sequence[str] | None = None,
        emotion_when_negative: str = "frustration",
        nps: bool = False,
        topic_id: int | None = None,
        inferred_touchpoint: str | None = None,
        nps_value: int | None = None,
    ) -> list[int]:
        """`n` items in `week`, each negative with probability `negative`."""
        start, _ = week_bounds(week)
        ids: list[int] = []
        rows: list[dict[str, Any]] = []
        for i in range(n):
            self.counter += 1
            polarity = (
                "negative"
                if self.rng.random() < negative
                else self.rng.choice(("positive", "positive", "neutral"))
            )
            bank = {"negative": NEGATIVE, "positive": POSITIVE, "neutral": NEUTRAL}[polarity]
            text = (
                texts[i % len(texts)]
                if texts
                else self.rng.choice(bank).format(tp=touchpoint or "service")
            )
            author = authors[i % len(authors)] if authors else f"a{self.counter}"
            score = {"negative": -0.8, "positive": 0.8, "neutral": 0.0}[
                polarity
            ] + self.rng.uniform(-0.15, 0.15)
            rows.append(
                {
                    "polarity": polarity,
                    "text": text,
                    "author": author,
                    "score": score,
                    "when": start + timedelta(hours=1 + (i * 7) % 160),
                }
            )
        with session_scope(self.engine) as session:
            for row in rows:
                item = FeedbackItem(
                    source_id=self.source_id,
                    external_id=f"x{self.counter}-{len(ids)}-{self.rng.random()}",
                    content_hash="0" * 40,
                    audience=audience,
                    touchpoint=touchpoint,
                    org_unit=org_unit,
                    text=row["text"],
                    author=row["author"],
                    created_at=row["when"],
                    language="en",
                    nps=nps_value
                    if nps_value is not None
                    else (
                        self.rng.choice((9, 10))
                        if row["polarity"] == "positive"
                        else self.rng.choice((3, 5, 7))
                    )
                    if nps
                    else None,
                )
                session.add(item)
                session.flush()
                probs = {
                    "negative": 0.9 if row["polarity"] == "negative" else 0.05,
                    "positive": 0.9 if row["polarity"] == "positive" else 0.05,
                }
                probs["neutral"] = 1 - probs["negative"] - probs["positive"]
                cx = (
                    [emotion_when_negative]
                    if row["polarity"] == "negative"
                    else (["delight"] if row["polarity"] == "positive" else ["neutral"])
                )
                session.add(
                    Tag(
                        item_id=item.id,
                        model="seed",
                        model_version="1",
                        sentiment=row["polarity"],
                        sentiment_score=row["score"],
                        sentiment_probs=probs,
                        cx_emotions=cx,
                        emotions=[],
                        needs=["functional"],
                        touchpoint=inferred_touchpoint,
                        topic_id=topic_id,
                    )
                )
                for label in cx:
                    session.add(
                        TagLabel(item_id=item.id, kind="cx_emotion", label=label, score=0.9)
                    )
                session.add(TagLabel(item_id=item.id, kind="need", label="functional", score=0.8))
                ids.append(item.id)
        return ids
