"""Representative quotes for a slice: typical items, not the loudest, PII-redacted again on the way out.

Representative means close to the middle of the slice: with stored sentence embeddings, the
items nearest the slice's centroid, picked with maximal marginal relevance so that the quotes
are not near-copies of each other; without embeddings, the items whose needs and emotions are
the slice's most common ones, preferring readable lengths. Texts are stored redacted; they are
redacted again here with the current rules (rules added later apply to old items too).

Employee quotes (docs/privacy.md): the slice must hold at least `min_group_size_comments`
distinct respondents; a quote only comes from a week in which the slice had that many; at
most one dimension filter; the quote carries no id, date, author or dimension values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.analytics.cells import (
    Slice,
    apply_slice,
    base_select,
    effective_touchpoint,
    respondent_key,
)
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.served import item_labels
from feedback.models import FeedbackItem, ItemEmbedding
from feedback.privacy.groups import PrivacyError, check_employee_query, snap_to_weeks, week_floor

POOL = 2000
MIN_CHARS, MAX_CHARS = 30, 600


@dataclass
class QuoteQuery:
    """Which slice to quote, how many, and optionally one sentiment."""

    audience: str = "customer"
    start: datetime | None = None
    end: datetime | None = None
    filters: dict[str, str] | None = None
    sentiment: str | None = None
    limit: int = 5


def representative_quotes(session: Session, query: QuoteQuery, *, min_group_size_comments: int,
                          redact: Any) -> dict[str, Any]:
    """Up to `limit` representative, redacted quotes of the slice (see the module docstring)."""
    if query.sentiment not in (None, "positive", "neutral", "negative"):
        raise ValueError("sentiment must be positive, neutral or negative")
    employee = query.audience == "employee"
    start, end = (snap_to_weeks(query.start, query.end) if employee else (query.start, query.end))
    where = Slice.make(query.audience, start, end, query.filters)
    if employee:
        check_employee_query(where.filters, interval=None)
    stmt = apply_slice(base_select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.created_at,
                                   respondent_key().label("respondent"), Tag.sentiment,
                                   Tag.sentiment_score, effective_touchpoint().label("touchpoint")), where)
    stmt = stmt.where(Tag.item_id.is_not(None))
    if query.sentiment:
        stmt = stmt.where(Tag.sentiment == query.sentiment)
    if employee:
        rows = _employee_pool(list(session.execute(stmt).all()), min_group_size_comments)
    else:
        rows = _newest(session, stmt, where, POOL)
    result: dict[str, Any] = {"audience": query.audience, "filters": dict(where.filters),
                              "sentiment": query.sentiment, "pool": len(rows), "quotes": []}
    if not rows:
        return result
    chosen = _choose(session, rows, query.limit * 3)  # spares: redaction can make texts equal
    labels = _labels(session, [r.id for r in chosen])
    seen: set[str] = set()
    for row in chosen:
        text = redact(row.text)
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        if len(result["quotes"]) >= query.limit:
            break
        quote: dict[str, Any] = {"text": text, "sentiment": row.sentiment,
                                 "sentiment_score": round(float(row.sentiment_score), 4),
                                 "needs": labels.get((row.id, "need"), []),
                                 "emotions": labels.get((row.id, "emotion"), [])}
        if not employee:
            quote.update(id=row.id, created_at=row.created_at.isoformat(), touchpoint=row.touchpoint)
        result["quotes"].append(quote)
    return result


WINDOWS = (timedelta(days=7), timedelta(days=28), timedelta(days=112), timedelta(days=448))


def _newest(session: Session, stmt: Any, where: Slice, limit: int) -> list[Any]:
    """The newest `limit` rows of `stmt` (newest first). On PostgreSQL read a window of time at a
    time, newest window first, each four times the one before, then the rest: the same rows as
    one query ordered by time, whose plan it could not be trusted with (a slice filtered on a
    served tag looked rare to it, and it scanned every tag: 0.9 s). SQLite walks the time index
    newest first and stops at the limit: one query, the least it can read."""
    if session.get_bind().dialect.name != "postgresql":
        return list(session.execute(stmt.order_by(FeedbackItem.created_at.desc()).limit(limit)).all())
    upper = where.end
    if upper is None:  # from the slice's newest item on
        newest = session.scalar(select(FeedbackItem.created_at).where(FeedbackItem.audience == where.audience)
                                .order_by(FeedbackItem.created_at.desc()).limit(1))
        if newest is None:
            return []
        upper = newest + timedelta(microseconds=1)
    rows: list[Any] = []
    for span in (*WINDOWS, None):
        lower = None if span is None else upper - span
        if where.start is not None and (lower is None or lower <= where.start):
            lower = where.start
        window = stmt.where(FeedbackItem.created_at < upper)
        if lower is not None:
            window = window.where(FeedbackItem.created_at >= lower)
        rows += session.execute(window.order_by(FeedbackItem.created_at.desc()).limit(limit - len(rows))).all()
        if len(rows) >= limit or lower is None or lower == where.start:
            return rows
        upper = lower
    return rows


def _employee_pool(rows: list[Any], min_size: int) -> list[Any]:
    """Employee candidates: the slice must be big enough, and so must each week quoted from."""
    everyone = {r.respondent for r in rows}
    if len(everyone) < min_size:
        raise PrivacyError(f"this slice has fewer than {min_size} people (the minimum for comments); "
                           f"widen the date range or drop a filter")
    by_week: dict[Any, set[str]] = {}
    for r in rows:
        by_week.setdefault(week_floor(r.created_at), set()).add(r.respondent)
    return [r for r in rows if len(by_week[week_floor(r.created_at)]) >= min_size]


def _choose(session: Session, rows: list[Any], limit: int) -> list[Any]:
    readable = [r for r in rows if MIN_CHARS <= len(r.text) <= MAX_CHARS] or rows
    vectors = _embeddings(session, [r.id for r in readable])
    if len(vectors) >= max(3, len(readable) // 2):
        keep = [r for r in readable if r.id in vectors]
        matrix = np.stack([vectors[r.id] for r in keep])
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
        centroid = matrix.mean(0)
        centroid /= np.linalg.norm(centroid) + 1e-9
        relevance = matrix @ centroid
        picked: list[int] = []
        while len(picked) < min(limit, len(keep)):
            if picked:
                redundancy = (matrix @ matrix[picked].T).max(1)
                score = 0.7 * relevance - 0.3 * redundancy
                score[picked] = -np.inf
            else:
                score = relevance
            picked.append(int(np.argmax(score)))
        return [keep[i] for i in picked]
    labels = _labels(session, [r.id for r in readable])
    common = Counter(label for (_, kind), values in labels.items() for label in values)
    def typicality(r: Any) -> tuple[float, int]:
        score = sum(common[x] for kind in ("need", "emotion") for x in labels.get((r.id, kind), []))
        return (-score, -abs(200 - len(r.text)))
    ranked = sorted(readable, key=lambda r: (*typicality(r), -r.id))
    out, seen = [], set()
    for r in ranked:
        key = r.text.strip().lower()[:80]
        if key not in seen:
            out.append(r)
            seen.add(key)
        if len(out) >= limit:
            break
    return out


def _embeddings(session: Session, ids: list[int]) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), 900):
        for item_id, blob in session.execute(select(ItemEmbedding.item_id, ItemEmbedding.vector)
                                             .where(ItemEmbedding.item_id.in_(ids[start:start + 900]))):
            found[item_id] = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    return found


def _labels(session: Session, ids: list[int]) -> dict[tuple[int, str], list[str]]:
    out: dict[tuple[int, str], list[str]] = {}
    for item_id, kind, label in item_labels(session, ids, by_score=True):
        out.setdefault((item_id, kind), []).append(label)
    return out


__all__ = ["QuoteQuery", "representative_quotes"]
