"""Queries about sources, their runs, dead letters and idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import DeadLetter, FeedbackItem, IdempotencyKey, IngestionRun, Source


def get_source(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def list_sources(session: Session) -> Sequence[Source]:
    return session.scalars(select(Source).order_by(Source.name)).all()


def last_runs(session: Session, source_ids: Sequence[int]) -> dict[int, IngestionRun]:
    """The newest run of each source."""
    if not source_ids:
        return {}
    newest = (
        select(IngestionRun.source_id, func.max(IngestionRun.id).label("run_id"))
        .where(IngestionRun.source_id.in_(source_ids))
        .group_by(IngestionRun.source_id)
        .subquery()
    )
    runs = session.scalars(select(IngestionRun).join(newest, IngestionRun.id == newest.c.run_id))
    return {run.source_id: run for run in runs}


def list_runs(session: Session, source_id: int, *, limit: int = 20) -> Sequence[IngestionRun]:
    return session.scalars(
        select(IngestionRun)
        .where(IngestionRun.source_id == source_id)
        .order_by(IngestionRun.id.desc())
        .limit(limit)
    ).all()


def mark_interrupted(session: Session, source_id: int) -> int:
    """Runs of a source still 'running' from a process that died: mark them interrupted."""
    result = session.execute(
        update(IngestionRun)
        .where(IngestionRun.source_id == source_id, IngestionRun.status == "running")
        .values(
            status="interrupted",
            finished_at=utcnow(),
            error="interrupted: the process ended before the run finished; "
            "the next run resumed from the last committed cursor",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def count_items(session: Session, source_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(FeedbackItem)
            .where(FeedbackItem.source_id == source_id)
        )
        or 0
    )


def unresolved_dead_letters(
    session: Session,
    *,
    ids: Sequence[int] | None = None,
    source_id: int | None = None,
    limit: int | None = None,
) -> Sequence[DeadLetter]:
    stmt = select(DeadLetter).where(DeadLetter.resolved_at.is_(None)).order_by(DeadLetter.id)
    if ids is not None:
        stmt = stmt.where(DeadLetter.id.in_(ids))
    if source_id is not None:
        stmt = stmt.where(DeadLetter.source_id == source_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.scalars(stmt).all()


def resolve_file_letters(session: Session, source_id: int, locations: Sequence[str]) -> int:
    """Mark resolved the dead letters of whole files (`location` is the file's name) once read."""
    result = session.execute(
        update(DeadLetter)
        .where(
            DeadLetter.source_id == source_id,
            DeadLetter.location.in_(locations),
            DeadLetter.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def get_idempotency_key(session: Session, key: str) -> IdempotencyKey | None:
    return session.get(IdempotencyKey, key)


def add_idempotency_key(
    session: Session, *, key: str, request_hash: str, response: dict[str, Any]
) -> None:
    session.add(IdempotencyKey(key=key, request_hash=request_hash, response=response))
    session.flush()
