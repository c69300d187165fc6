"""Idempotency keys for pushed batches: a retried request gets the first response back.

The same key with the same body replays the stored response; the same key with another body
is a client bug (a key reused for different data) and is refused, never silently applied.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from feedback.sources import repository


class IdempotencyConflict(ValueError):
    """The key was used before for a different request body."""


def fingerprint(body: Any) -> str:
    """SHA-256 of the request body as canonical JSON (key order and spacing do not matter)."""
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def replay(session: Session, key: str, request_hash: str) -> dict[str, Any] | None:
    """The stored response for `key`, None if the key is new; raises on a different body."""
    stored = repository.get_idempotency_key(session, key)
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for a different request body; use a new key "
            f"for new data (the same key only for retries of the same request)"
        )
    return dict(stored.response)


def remember(session: Session, key: str, request_hash: str, response: dict[str, Any]) -> None:
    """Store the response under `key`, in the transaction that stored the items."""
    repository.add_idempotency_key(session, key=key, request_hash=request_hash, response=response)
