"""Feedback items: push a batch, list with filters, get one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import SessionDep, SettingsDep
from feedback import repository
from feedback.ingest.service import get_or_create_source, ingest_payloads
from feedback.schemas import FeedbackBatchIn, FeedbackOut, FeedbackPage, IngestResult

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post("", response_model=IngestResult, status_code=200)
def push_feedback(batch: FeedbackBatchIn, session: SessionDep, settings: SettingsDep) -> IngestResult:
    """Store a batch; items already stored (same source and external id) are not duplicated."""
    source = get_or_create_source(session, name=batch.source, connector="push", audience=batch.audience)
    payloads = [item.model_dump(exclude_none=True) for item in batch.items]
    stats = ingest_payloads(session, source=source, payloads=payloads, settings=settings,
                            location=f"push:{batch.source}")
    return IngestResult(source=batch.source, seen=stats.seen, new=stats.new, updated=stats.updated,
                        unchanged=stats.unchanged, dead_lettered=stats.dead, errors=stats.dead_reasons)


@router.get("", response_model=FeedbackPage)
def list_feedback(
    session: SessionDep,
    settings: SettingsDep,
    audience: str | None = None,
    touchpoint: str | None = None,
    channel: str | None = None,
    org_unit: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[int | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedbackPage:
    """Items oldest first, with their tags; page with `cursor`."""
    items = repository.list_items(session, audience=audience, touchpoint=touchpoint, channel=channel,
                                  org_unit=org_unit, source=source, since=since, until=until,
                                  after_id=cursor, limit=limit)
    next_cursor = items[-1].id if len(items) == limit else None
    return FeedbackPage(items=[FeedbackOut.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get("/{item_id}", response_model=FeedbackOut)
def get_feedback(item_id: int, session: SessionDep) -> FeedbackOut:
    """One item with its tags."""
    item = repository.get_item(session, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"no feedback item with id {item_id}")
    return FeedbackOut.model_validate(item)
