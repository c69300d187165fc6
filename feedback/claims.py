"""Claims on untagged items, so that any number of tagging workers share one queue.

A worker takes a batch by writing one `tag_claims` row per item (worker id, expiry), tags the
batch outside any transaction, then stores the tags and deletes its claims in one transaction.
Claims are renewed by the worker's heartbeat while its models run; a killed worker stops
renewing, and its items are free again once `expires_at` passes.

Why a claims table and not claim columns on `feedback_items`: a claim is written twice per
batch (taken, released) plus every heartbeat. On PostgreSQL an UPDATE rewrites the whole row,
and item rows are wide (text, JSON extra) and indexed on five columns, so claim columns would
churn the busiest table and its indexes and block ingest's updates of the same rows; a narrow
table with one primary key keeps that traffic off it. Deleting an item deletes its claim
(ON DELETE CASCADE). The truth of who holds an item is the claim row alone.

Taking a batch (`claim_batch`) is one statement that is atomic on both databases:

    INSERT INTO tag_claims (item_id, worker_id, claimed_at, expires_at)
        SELECT id, :me, :now, :expires FROM feedback_items WHERE id IN (:candidates)
    ON CONFLICT (item_id) DO UPDATE SET worker_id = excluded.worker_id, ...
        WHERE tag_claims.expires_at < :now OR tag_claims.worker_id = :me
    RETURNING item_id

A candidate whose claim is live and another worker's is neither inserted nor updated, and not
returned: the RETURNING set is what this worker holds, whatever raced it. SQLite runs the
statement under its single writer lock. On PostgreSQL a row inserted by a concurrent,
uncommitted claim makes the statement wait for that transaction and then apply the WHERE to
the committed row; the candidates are also read with `FOR NO KEY UPDATE OF feedback_items SKIP
LOCKED`, so concurrent workers pick disjoint candidates instead of queueing on each other's
rows (and never block the foreign-key locks that storing tags takes).

Untagged means "no row in `tags`" (ingest deletes an edited item's tags), so no partial index
on `feedback_items` can say it without a second copy of that fact that every writer of tags
would have to keep; the candidates are found by an anti-join on the `tags` and `tag_claims`
primary keys, walking `feedback_items` in id order. What makes that cheap on a large table is
`after_id`: a worker starts its next scan after the last id it looked at (everything before it
was tagged or claimed then) and scans from the start only when that finds nothing, or now and
then (`jobs.worker`), to pick up items edited or released behind it. With 200,000 items of which
the newest 500 are untagged, claiming 256 took 101 ms from the start and 3 ms after `after_id` on
SQLite, 154 ms and 26 ms on PostgreSQL.

Storing (`take_claims`) deletes this worker's claims on the batch with `DELETE ... RETURNING`
and stores only the items it still held: an item whose claim expired and was taken by another
worker is that worker's to store. `feedback.tagging.store_tags` still skips items tagged or
edited meanwhile, so storing stays idempotent.

Times come from the workers' clocks (as the scheduler's lease does): keep the machines' clocks
in sync (NTP) and the lease long compared with any skew. Every function here flushes only; the
caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import FeedbackItem, Tag, TagClaim, TagWorker

CLAIM_ATTEMPTS = 5
CHUNK = 900  # ids per IN list / VALUES rows per statement (SQLite's historical variable limit)
ITEM_COLUMNS = (FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
                FeedbackItem.touchpoint, FeedbackItem.content_hash)


def _untagged() -> Any:
    return ~exists().where(Tag.item_id == FeedbackItem.id)


def claim_batch(session: Session, *, worker_id: str, batch_size: int, lease_seconds: float,
                after_id: int = 0) -> list[Any]:
    """Claim up to `batch_size` untagged, unclaimed items with ids above `after_id`, oldest
    first, for `lease_seconds`; returns their rows as `feedback.tagging.pending_items` does.

    Fewer (or none) may come back while other workers claim the same items at the same moment.
    """
    # Candidates another worker claimed (or tagged) between our read and our insert come back
    # empty; look again, in the same transaction, which now sees what that worker committed.
    for _attempt in range(CLAIM_ATTEMPTS):
        found, rows = _claim_once(session, worker_id=worker_id, batch_size=batch_size,
                                  lease_seconds=lease_seconds, after_id=after_id)
        if rows or not found:
            break
    session.flush()
    return rows


def _claim_once(session: Session, *, worker_id: str, batch_size: int, lease_seconds: float,
                after_id: int) -> tuple[int, list[Any]]:
    """One try of `claim_batch`: (how many candidates it found, the rows it claimed)."""
    now = utcnow()
    live_elsewhere = exists().where(TagClaim.item_id == FeedbackItem.id, TagClaim.expires_at >= now,
                                    TagClaim.worker_id != worker_id)
    candidates = (select(FeedbackItem.id).where(FeedbackItem.id > after_id, _untagged(), ~live_elsewhere)
                  .order_by(FeedbackItem.id).limit(batch_size))
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        candidates = candidates.with_for_update(of=FeedbackItem, skip_locked=True, key_share=True)
    ids = list(session.scalars(candidates))
    if not ids:
        return 0, []
    claimed: set[int] = set()
    expires = now + timedelta(seconds=lease_seconds)
    for start in range(0, len(ids), CHUNK):
        # INSERT ... SELECT, not a VALUES list: its SQL is compiled once and cached (the ids are one
        # expanding parameter), where a VALUES list of 256 rows takes ~40 ms to compile each time.
        rows_to_claim = select(FeedbackItem.id, literal(worker_id, TagClaim.worker_id.type),
                               literal(now, TagClaim.claimed_at.type), literal(expires, TagClaim.expires_at.type),
                               ).where(FeedbackItem.id.in_(ids[start:start + CHUNK]))
        statement = _insert(dialect).from_select(["item_id", "worker_id", "claimed_at", "expires_at"],
                                                 rows_to_claim)
        statement = statement.on_conflict_do_update(
            index_elements=[TagClaim.item_id],
            set_={"worker_id": statement.excluded.worker_id, "claimed_at": statement.excluded.claimed_at,
                  "expires_at": statement.excluded.expires_at},
            where=(TagClaim.expires_at < now) | (TagClaim.worker_id == worker_id),
        )
        claimed.update(session.scalars(statement.returning(TagClaim.item_id)))
    # A new statement sees what committed meanwhile (PostgreSQL): an item another worker tagged
    # and released since the candidates were read is given back at once instead of tagged again.
    rows: list[Any] = []
    ordered = sorted(claimed)
    for start in range(0, len(ordered), CHUNK):
        rows.extend(session.execute(select(*ITEM_COLUMNS).where(
            FeedbackItem.id.in_(ordered[start:start + CHUNK]), _untagged()).order_by(FeedbackItem.id)))
    stale = claimed - {row.id for row in rows}
    if stale:
        release_claims(session, worker_id=worker_id, item_ids=sorted(stale))
    return len(ids), rows


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(TagClaim)
    if dialect == "sqlite":
        return sqlite.insert(TagClaim)
    raise NotImplementedError(f"tagging workers need SQLite or PostgreSQL, not {dialect}")


def take_claims(session: Session, *, worker_id: str, item_ids: Sequence[int]) -> set[int]:
    """Delete this worker's claims on `item_ids`; returns the ids it still held (store only those)."""
    held: set[int] = set()
    ids = list(item_ids)
    for start in range(0, len(ids), CHUNK):
        held.update(session.scalars(
            delete(TagClaim).where(TagClaim.worker_id == worker_id,
                                   TagClaim.item_id.in_(ids[start:start + CHUNK]))
            .returning(TagClaim.item_id)))
    return held


def release_claims(session: Session, *, worker_id: str, item_ids: Sequence[int] | None = None) -> int:
    """Give up this worker's claims (on `item_ids`, or all): those items are free at once."""
    if item_ids is None:
        return int(session.execute(delete(TagClaim).where(TagClaim.worker_id == worker_id)).rowcount)  # type: ignore[attr-defined]
    released = 0
    ids = list(item_ids)
    for start in range(0, len(ids), CHUNK):
        released += int(session.execute(delete(TagClaim).where(
            TagClaim.worker_id == worker_id, TagClaim.item_id.in_(ids[start:start + CHUNK]))).rowcount)  # type: ignore[attr-defined]
    return released


# -- the workers' registry (what /health shows) -------------------------------------------------------
def register_worker(session: Session, *, worker_id: str, name: str, host: str, pid: int,
                    lease_seconds: float) -> None:
    """Record a starting worker, alive for `lease_seconds` unless its heartbeat renews it."""
    now = utcnow()
    session.add(TagWorker(id=worker_id, name=name, host=host, pid=pid, state="idle", started_at=now,
                          heartbeat_at=now, expires_at=now + timedelta(seconds=lease_seconds),
                          items_tagged=0, batches=0))
    session.flush()


def heartbeat(session: Session, *, worker_id: str, lease_seconds: float, **progress: Any) -> int:
    """Keep the worker and its claims alive for another `lease_seconds` and record `progress`
    (state, items_tagged, batches); returns how many claims it renewed."""
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    session.execute(update(TagWorker).where(TagWorker.id == worker_id)
                    .values(heartbeat_at=now, expires_at=expires, **progress))
    renewed = session.execute(update(TagClaim).where(TagClaim.worker_id == worker_id).values(expires_at=expires))
    return int(renewed.rowcount)  # type: ignore[attr-defined]


def retire_worker(session: Session, *, worker_id: str) -> int:
    """A worker's clean exit: release its claims and drop it from the registry; returns the
    claims released."""
    released = release_claims(session, worker_id=worker_id)
    session.execute(delete(TagWorker).where(TagWorker.id == worker_id))
    return released


def forget_dead_workers(session: Session, *, older_than: timedelta = timedelta(hours=1)) -> int:
    """Drop registry rows of workers whose heartbeat stopped more than `older_than` ago."""
    result = session.execute(delete(TagWorker).where(TagWorker.expires_at < utcnow() - older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]


def live_workers(session: Session, *, now: datetime | None = None) -> list[TagWorker]:
    """Workers whose heartbeat is current, oldest first."""
    now = now or utcnow()
    return list(session.scalars(select(TagWorker).where(TagWorker.expires_at >= now)
                                .order_by(TagWorker.started_at, TagWorker.id)))


def count_claimed(session: Session, *, now: datetime | None = None) -> int:
    """How many items are claimed by a live worker right now."""
    now = now or utcnow()
    return session.scalar(select(func.count()).select_from(TagClaim).where(TagClaim.expires_at >= now)) or 0
