"""Synthetic tagged feedback for the analytics tests: items, tags and labels written directly.

Deterministic for a seed. Customer items spread over touchpoints with planted effects (delivery
is worse, the 'late delivery' topic drags NPS down), employee items belong to teams of chosen
sizes, each person answering once a week.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from feedback.db import session_scope
from feedback.models import FeedbackItem, Source, Tag, TagLabel, Topic

MONDAY = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
TOUCHPOINTS = ("website", "checkout", "delivery", "support")
NEEDS = ("price", "speed", "reliability", "help")
EMOTIONS = ("joy", "anger", "disappointment", "gratitude")


@dataclass
class Row:
    audience: str
    created_at: datetime
    touchpoint: str | None = None
    channel: str | None = "survey"
    segment: str | None = None
    org_unit: str | None = None
    language: str | None = "en"
    author: str | None = None
    score: float | None = 0.0  # None: untagged
    p_negative: float | None = None  # calibrated p(negative); None: a tag from before it was stored
    sentiment: str | None = None  # None: from the score
    nps: int | None = None
    csat: int | None = None
    stars: float | None = None
    topic_id: int | None = None
    needs: Sequence[str] = ()
    emotions: Sequence[str] = ()
    text: str = "A piece of feedback about the service that is long enough to quote."


def write_rows(engine: Engine, rows: Sequence[Row], *, source: str = "test") -> list[int]:
    """Insert the rows (items, tags, labels); returns the item ids in order."""
    ids: list[int] = []
    with session_scope(engine) as session:
        sources: dict[str, int] = {}
        for audience in {r.audience for r in rows}:
            name = f"{source}-{audience}"
            found = session.scalar(select(Source.id).where(Source.name == name))
            if found is None:
                src = Source(name=name, connector="test", audience=audience)
                session.add(src)
                session.flush()
                found = src.id
            sources[audience] = found
        start = (session.scalar(select(FeedbackItem.id).order_by(FeedbackItem.id.desc()).limit(1)) or 0) + 1
        items, tags, labels = [], [], []
        for i, r in enumerate(rows):
            item_id = start + i
            ids.append(item_id)
            items.append({"id": item_id, "source_id": sources[r.audience], "external_id": f"x{item_id}",
                          "content_hash": "h", "audience": r.audience, "channel": r.channel,
                          "touchpoint": r.touchpoint, "segment": r.segment, "org_unit": r.org_unit,
                          "language": r.language, "text": r.text, "nps": r.nps, "csat": r.csat,
                          "stars": r.stars, "author": r.author, "created_at": r.created_at, "extra": {}})
            if r.score is None:
                continue
            sentiment = r.sentiment or ("positive" if r.score > 0.2 else "negative" if r.score < -0.2
                                        else "neutral")
            tags.append({"item_id": item_id, "model": "test", "model_version": "0", "sentiment": sentiment,
                         "sentiment_score": r.score, "topic_id": r.topic_id, "needs": list(r.needs),
                         "emotions": list(r.emotions), "p_negative": r.p_negative,
                         "sentiment_probs": {} if r.p_negative is None else {"negative": r.p_negative}})
            labels += [{"item_id": item_id, "kind": "need", "label": n, "score": 0.9} for n in r.needs]
            labels += [{"item_id": item_id, "kind": "emotion", "label": e, "score": 0.8} for e in r.emotions]
        session.execute(insert(FeedbackItem), items)
        if tags:
            session.execute(insert(Tag), tags)
        if labels:
            session.execute(insert(TagLabel), labels)
    return ids


def add_topics(engine: Engine, labels: Sequence[str], audience: str = "customer") -> list[int]:
    with session_scope(engine) as session:
        topics = [Topic(audience=audience, label=label) for label in labels]
        session.add_all(topics)
        session.flush()
        return [t.id for t in topics]


def customer_rows(n: int, *, seed: int = 0, weeks: int = 8, topics: Sequence[int] = ()) -> list[Row]:
    """Customer feedback over `weeks` weeks from MONDAY; delivery scores worst, topic[0] hurts NPS."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        touchpoint = rng.choice(TOUCHPOINTS)
        topic = rng.choice(list(topics)) if topics and rng.random() < 0.8 else None
        base = -0.3 if touchpoint == "delivery" else 0.3
        if topics and topic == topics[0]:
            base -= 0.5
        score = max(-1.0, min(1.0, rng.gauss(base, 0.4)))
        nps = max(0, min(10, round(7 + 4 * score + rng.gauss(0, 1)))) if rng.random() < 0.7 else None
        needs = [x for x in NEEDS if rng.random() < 0.3]
        emotions = ["anger"] if score < -0.4 else ["joy"] if score > 0.4 else []
        rows.append(Row("customer", MONDAY + timedelta(seconds=rng.randrange(weeks * 7 * 86400)),
                        touchpoint=touchpoint, channel=rng.choice(("survey", "review", "chat")),
                        segment=rng.choice(("new", "loyal")), language=rng.choice(("en", "en", "de")),
                        score=round(score, 3), nps=nps, csat=rng.choice((None, 1, 2, 3, 4, 5)),
                        stars=rng.choice((None, 1.0, 3.0, 4.0, 5.0)), topic_id=topic, needs=needs,
                        emotions=emotions))
    return rows


def team_rows(team: str, people: int, *, weeks: int = 1, start: datetime = MONDAY, seed: int = 0,
              touchpoints: Sequence[str] = ("manager",), score: float = 0.0, **extra: Any) -> list[Row]:
    """Each of `people` people of `team` answers once a week for `weeks` weeks (Tuesday noon)."""
    rng = random.Random(f"{team}-{seed}")
    rows = []
    for week in range(weeks):
        for person in range(people):
            rows.append(Row("employee", start + timedelta(days=7 * week + 1, hours=12), org_unit=team,
                            author=f"{team}-{person}", touchpoint=touchpoints[person % len(touchpoints)],
                            score=round(max(-1.0, min(1.0, score + rng.gauss(0, 0.2))), 3),
                            nps=rng.randrange(0, 11), **extra))
    return rows
