"""Webhook deliveries: `POST /v1/webhooks/{source}`, authenticated by an HMAC-SHA256 signature.

No API key here: senders (survey tools, app stores, help desks) sign the raw body with a shared
secret instead, which the source names by environment variable (`credentials_env.secret`).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from api.deps import SessionDep, SettingsDep, bad_text_at
from feedback.schemas import IngestResult
from feedback.sources import repository
from feedback.sources.config import CredentialsError
from feedback.sources.connectors.push import SignatureError
from feedback.sources.service import ingest_webhook, webhook_connector

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
MAX_BODY_BYTES = 10 * 1024 * 1024


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature is over these bytes."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(
            status_code=413, detail=f"body over {MAX_BODY_BYTES} bytes; send smaller batches"
        )
    return body


@router.post("/{source_name}", response_model=IngestResult)
def receive(
    source_name: str,
    body: Annotated[bytes, Depends(raw_body)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> IngestResult:
    """Store a signed delivery: items already stored (same id) are not duplicated on redelivery."""
    source = repository.get_source(session, source_name)
    if source is None or source.connector != "webhook":
        raise HTTPException(status_code=404, detail=f"no webhook source named {source_name!r}")
    if not source.enabled:
        raise HTTPException(status_code=403, detail=f"webhook source {source_name!r} is disabled")
    try:
        connector = webhook_connector(source, settings=settings)
    except CredentialsError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    try:
        connector.verify(body, request.headers)  # type: ignore[attr-defined]
    except SignatureError as exc:
        raise HTTPException(status_code=401, detail=f"webhook signature rejected: {exc}") from None
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=f"the body is not JSON: {exc}") from None
    found = bad_text_at(document, ())
    if found is not None:
        raise HTTPException(status_code=400, detail=f"the body cannot be stored at {list(found[0])}: {found[1]}")
    stats = ingest_webhook(
        session, source=source, connector=connector, document=document, settings=settings
    )
    return IngestResult(
        source=source_name,
        seen=stats.seen,
        new=stats.new,
        updated=stats.updated,
        unchanged=stats.unchanged,
        dead_lettered=stats.dead,
        errors=stats.dead_reasons,
    )
