"""Feedback items: push a batch, list with filters, get one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep
from api.concurrency import push_turn
from api.deps import SessionDep, SettingsDep
from api.params import IdCursor, Moment, RowId
from feedback import repository
from feedback.config import Settings
from feedback.ingest.service import get_or_create_source, ingest_payloads
from feedback.schemas import FeedbackBatchIn, FeedbackOut, FeedbackPage, IngestResult
from feedback.sources import idempotency
from feedback.sources.service import push_mapping

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


STORE_ATTEMPTS = 3


@router.post("", response_model=IngestResult, status_code=200,
             responses={409: {"description": "Idempotency-Key reused with a different body, or a "
                                             "request with it still in progress (see Retry-After)"}})
def push_feedback(
    _turn: Annotated[None, Depends(push_turn)],
    batch: FeedbackBatchIn,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=200,
        description="Retries with the same key and body get the first answer back; nothing is "
                    "stored twice. A retry sent while the first is still in progress waits for "
                    "its answer (up to api.idempotency_wait_seconds, then 409 with Retry-After)",
    )] = None,
) -> IngestResult:
    """Store a batch; items already stored (same source and external id) are not duplicated.

    Its turn (`push_turn`) is taken before this runs: one push writes at a time, and a re-send
    of a push still in progress waits for it, then finds its answer stored and replays it."""
    if not idempotency_key:
        result = _store(batch, session, settings, response, key=None, request_hash="")
        session.commit()
        return result
    request_hash = idempotency.fingerprint(batch.model_dump(mode="json"))
    stored = _replay(session, idempotency_key, request_hash, response)
    if stored is not None:
        return stored
    result = _store(batch, session, settings, response, key=idempotency_key, request_hash=request_hash)
    # Committed before the turn ends (the session would commit only after): a re-send waiting
    # for the key must find this answer stored.
    session.commit()
    return result


def _store(batch: FeedbackBatchIn, session: Session, settings: Settings, response: Response, *,
           key: str | None, request_hash: str) -> IngestResult:
    """Store the batch (and its idempotency key). A unique key broken by a concurrent request is
    not the caller's fault: the first push to a new source, or the same new items from another
    request. Then the answer stored under the key is replayed, or the batch is stored again on
    what the other request committed (its items now count as unchanged)."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            result = _store_batch(batch, session, settings)
            if key:
                idempotency.remember(session, key, request_hash, result.model_dump(mode="json"))
            return result
        except IntegrityError:
            session.rollback()
            stored = _replay(session, key, request_hash, response) if key else None
            if stored is not None:
                return stored
            if attempt == STORE_ATTEMPTS:
                raise HTTPException(status_code=409, detail="concurrent requests kept storing these "
                                                            "items; retry the request") from None
    raise AssertionError("unreachable")


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


EMPLOYEE_ITEMS = ("employee items are read through the privacy rules (aggregates and /v1/quotes: groups of at "
                  "least privacy.min_group_size_comments people, no ids, dates or team values, docs/privacy.md); "
                  "reading them one by one needs scope admin")


def _employee_items_allowed(principal: Principal) -> None:
    """One employee item, with its team, tenure, time and score, singles its author out (docs/privacy.md
    rule 5): only admin reads them raw; hr reads employee feedback through the privacy rules."""
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail=EMPLOYEE_ITEMS)


@router.get("", response_model=FeedbackPage, responses={403: {"description": EMPLOYEE_ITEMS}})
def list_feedback(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    audience: str | None = None,
    touchpoint: str | None = None,
    channel: str | None = None,
    org_unit: str | None = None,
    source: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    q: Annotated[str | None, Query(max_length=500, description=(
        'Search the text: words, "quoted phrases", -excluded words. PostgreSQL matches whole words '
        "(full-text search); SQLite matches substrings."))] = None,
    cursor: IdCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedbackPage:
    """Items oldest first, with their tags; page with `cursor`, search with `q`. Employee items
    (audience=employee, or no audience: both) need scope admin."""
    if audience != "customer":
        _employee_items_allowed(principal)
    items = repository.list_items(session, audience=audience, touchpoint=touchpoint, channel=channel,
                                  org_unit=org_unit, source=source, since=since, until=until, q=q,
                                  after_id=cursor, limit=limit)
    next_cursor = items[-1].id if len(items) == limit else None
    return FeedbackPage(items=[FeedbackOut.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get("/{item_id}", response_model=FeedbackOut, responses={403: {"description": EMPLOYEE_ITEMS}})
def get_feedback(item_id: RowId, session: SessionDep, principal: PrincipalDep) -> FeedbackOut:
    """One item with its tags (an employee item needs scope admin)."""
    item = repository.get_item(session, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"no feedback item with id {item_id}")
    if item.audience == "employee":
        _employee_items_allowed(principal)
    return FeedbackOut.model_validate(item)
