"""Feedback items: push a batch, list with filters, get one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from api.params import IdCursor, RowId
from feedback import repository
from feedback.config import Settings
from feedback.ingest.service import get_or_create_source, ingest_payloads
from feedback.schemas import FeedbackBatchIn, FeedbackOut, FeedbackPage, IngestResult
from feedback.sources import idempotency
from feedback.sources.service import push_mapping

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post("", response_model=IngestResult, status_code=200,
             responses={409: {"description": "Idempotency-Key reused with a different body"}})
def push_feedback(
    batch: FeedbackBatchIn,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=200,
        description="Retries with the same key and body get the first answer back; nothing is "
                    "stored twice",
    )] = None,
) -> IngestResult:
    """Store a batch; items already stored (same source and external id) are not duplicated."""
    request_hash = idempotency.fingerprint(batch.model_dump(mode="json")) if idempotency_key else ""
    if idempotency_key:
        stored = _replay(session, idempotency_key, request_hash, response)
        if stored is not None:
            return stored
    try:
        result = _store_batch(batch, session, settings)
        if idempotency_key:
            idempotency.remember(session, idempotency_key, request_hash,
                                 result.model_dump(mode="json"))
    except IntegrityError:
        # A concurrent request with the same key (or the same new items) won the race: answer
        # as it did, or let the client retry.
        session.rollback()
        stored = (_replay(session, idempotency_key, request_hash, response)
                  if idempotency_key else None)
        if stored is None:
            raise HTTPException(status_code=409, detail="a concurrent request stored these items; "
                                                        "retry the request") from None
        return stored
    return result


def _replay(session: Session, key: str, request_hash: str,
            response: Response) -> IngestResult | None:
    try:
        stored = idempotency.replay(session, key, request_hash)
    except idempotency.IdempotencyConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    if stored is None:
        return None
    response.headers["Idempotent-Replayed"] = "true"
    return IngestResult.model_validate(stored)


def _store_batch(batch: FeedbackBatchIn, session: Session, settings: Settings) -> IngestResult:
    source = get_or_create_source(session, name=batch.source, connector="push", audience=batch.audience)
    # Every item with the same keys: the ingest maps the columns of the first item to all.
    payloads = [item.model_dump() for item in batch.items]
    stats = ingest_payloads(session, source=source, payloads=payloads, settings=settings,
                            mapping=push_mapping(source), location=f"push:{batch.source}")
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
    cursor: IdCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedbackPage:
    """Items oldest first, with their tags; page with `cursor`."""
    items = repository.list_items(session, audience=audience, touchpoint=touchpoint, channel=channel,
                                  org_unit=org_unit, source=source, since=since, until=until,
                                  after_id=cursor, limit=limit)
    next_cursor = items[-1].id if len(items) == limit else None
    return FeedbackPage(items=[FeedbackOut.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get("/{item_id}", response_model=FeedbackOut)
def get_feedback(item_id: RowId, session: SessionDep) -> FeedbackOut:
    """One item with its tags."""
    item = repository.get_item(session, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"no feedback item with id {item_id}")
    return FeedbackOut.model_validate(item)
