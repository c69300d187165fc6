"""Liveness and readiness: database reachable, migrations applied, scheduler and worker heartbeats."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select, text

from api.deps import SessionDep
from feedback.claims import count_claimed, live_workers
from feedback.db import utcnow
from feedback.models import FeedbackItem, SchedulerLease, Tag

router = APIRouter(tags=["health"])

# Counting a million items takes ~100 ms on SQLite: probes every few seconds share one count.
COUNT_SECONDS = 5.0
_counts: dict[str, tuple[float, int, int]] = {}
_counts_lock = threading.Lock()


def _item_counts(session: Any) -> tuple[int, int]:
    """(items, tagged), counted at most once per COUNT_SECONDS per database."""
    key = str(session.get_bind().url)
    now = time.monotonic()
    with _counts_lock:
        cached = _counts.get(key)
    if cached is not None and now - cached[0] < COUNT_SECONDS:
        return cached[1], cached[2]
    items = session.scalar(select(func.count()).select_from(FeedbackItem)) or 0
    tagged = session.scalar(select(func.count()).select_from(Tag)) or 0
    with _counts_lock:
        _counts[key] = (now, items, tagged)
    return items, tagged


@router.get("/health")
def health(session: SessionDep) -> dict[str, Any]:
    """Status of the service; `scheduler` shows the newest heartbeat of the job scheduler,
    `workers` the tagging workers alive now and `queue` what waits for them (item counts are at
    most 5 seconds old)."""
    session.execute(text("SELECT 1"))
    lease = session.scalar(  # the scheduler's lease, not a source pull's (`pull:<name>`)
        select(SchedulerLease)
        .where(~SchedulerLease.name.startswith("pull:"))
        .order_by(SchedulerLease.heartbeat_at.desc())
        .limit(1)
    )
    now = utcnow()
    scheduler: dict[str, Any] = {"running": False}
    if lease is not None:
        scheduler = {
            "running": lease.expires_at > now,
            "holder": lease.holder,
            "heartbeat_at": lease.heartbeat_at.isoformat(),
            "seconds_since_heartbeat": round((now - lease.heartbeat_at).total_seconds(), 1),
        }
    items, tagged = _item_counts(session)
    workers = [{
        "name": w.name, "host": w.host, "pid": w.pid, "state": w.state, "items_tagged": w.items_tagged,
        "batches": w.batches, "started_at": w.started_at.isoformat(),
        "heartbeat_at": w.heartbeat_at.isoformat(),
        "seconds_since_heartbeat": round((now - w.heartbeat_at).total_seconds(), 1),
    } for w in live_workers(session, now=now)]
    return {"status": "ok", "items": items, "tagged": tagged, "untagged": items - tagged,
            "scheduler": scheduler, "workers": workers,
            "queue": {"untagged": items - tagged, "claimed": count_claimed(session, now=now)}}
