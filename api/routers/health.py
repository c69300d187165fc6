"""Liveness and readiness: database reachable, migrations applied, scheduler heartbeat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select, text

from api.deps import SessionDep
from feedback.db import utcnow
from feedback.models import FeedbackItem, SchedulerLease, Tag

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: SessionDep) -> dict[str, Any]:
    """Status of the service; `scheduler` shows the newest heartbeat of the job scheduler."""
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
    items = session.scalar(select(func.count()).select_from(FeedbackItem)) or 0
    tagged = session.scalar(select(func.count()).select_from(Tag)) or 0
    return {"status": "ok", "items": items, "tagged": tagged, "untagged": items - tagged,
            "scheduler": scheduler}
