"""Maintenance units of work: re-apply redaction to stored items (`voc redact --all`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from feedback.config import Settings
from feedback.db import session_scope
from feedback.ingest.service import build_redactor
from feedback.models import FeedbackItem


@dataclass
class RedactResult:
    scanned: int = 0
    changed: int = 0
    hits: Counter[str] = field(default_factory=Counter)


def redact_stored(engine: Engine, *, settings: Settings, batch_size: int = 2000) -> RedactResult:
    """Run the current rules (built-in + `privacy.extra_patterns`) over every item's text and the
    text values of its `extra`, committing each batch; redaction is idempotent, so a rerun after
    a crash only finds the rest. Tags stay: a placeholder does not change what a text says."""
    redactor = build_redactor(settings)
    result = RedactResult()
    last_id = 0
    while True:
        with session_scope(engine) as session:
            rows = session.execute(
                select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.extra)
                .where(FeedbackItem.id > last_id)
                .order_by(FeedbackItem.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return result
            changes: list[dict[str, Any]] = []
            for item_id, text, extra in rows:
                new_text, counts = redactor.redact_with_counts(text)
                new_extra = dict(extra or {})
                extra_changed = False
                for key, value in new_extra.items():
                    if isinstance(value, str):
                        redacted = redactor.redact(value)
                        if redacted != value:
                            new_extra[key] = redacted
                            extra_changed = True
                if counts:
                    merged = Counter(new_extra.get("redacted") or {})
                    merged.update(counts)
                    new_extra["redacted"] = dict(merged)
                    result.hits.update(counts)
                if new_text != text or extra_changed:
                    changes.append({"id": item_id, "text": new_text, "extra": new_extra})
            if changes:
                session.execute(update(FeedbackItem), changes)
            result.scanned += len(rows)
            result.changed += len(changes)
            last_id = rows[-1][0]
