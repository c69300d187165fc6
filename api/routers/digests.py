"""Weekly digests: list them, the latest one, one week's as JSON, Markdown or HTML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from api.concurrency import cached_answer
from api.deps import SessionDep
from feedback.insights import repository as repo
from feedback.insights.service import digest_summary
from feedback.models import Digest

router = APIRouter(prefix="/v1/digests", tags=["digests"])

Audience = Literal["customer", "employee"]
Format = Literal["json", "md", "html"]
# The digest's own HTML runs no script and loads nothing: even a rendering bug cannot run code.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
}


def _respond(digest: Digest, fmt: Format) -> Response:
    if fmt == "html":
        return HTMLResponse(digest.html, headers=HTML_HEADERS)
    if fmt == "md":
        return PlainTextResponse(digest.markdown, media_type="text/markdown; charset=utf-8")
    body: dict[str, Any] = {**digest_summary(digest), "payload": digest.payload}
    return JSONResponse(body)


def _missing(audience: str, week: str | None = None) -> HTTPException:
    which = f"for {week}" if week else "yet"
    hint = f"--week {week} " if week else ""
    return HTTPException(
        status_code=404,
        detail=(
            f"no {audience} digest {which}; make one with `voc digest {hint}--audience {audience}` "
            "(the scheduler makes one every week)"
        ),
    )


@router.get("")
def list_digests(
    session: SessionDep,
    audience: Audience = "customer",
    limit: Annotated[int, Query(ge=1, le=520)] = 52,
) -> dict[str, Any]:
    """One audience's stored digests, newest week first, with their number of alerts.

    One audience per call, like every digest endpoint, so that a key which reads only customer
    (cx) or only employee (hr) feedback is checked against the audience it asks for.
    """
    rows = repo.list_digests(session, audience=audience, limit=limit)
    return {"digests": [digest_summary(d) for d in rows]}


def _cached(request: Request, session: Session, build: Callable[[], Response]) -> Response:
    """A digest is large (HTML with inline charts, the whole payload) and changes weekly: the
    built answer is reused until something is stored (or api.cache_seconds pass)."""
    return cached_answer(request, session, build, depends_on="items")


@router.get("/latest")
def latest_digest(
    request: Request, session: SessionDep, audience: Audience = "customer", format: Format = "json"
) -> Response:  # noqa: A002 - the query parameter's name
    """The digest of the latest week for an audience."""
    def build() -> Response:
        digest = repo.latest_digest(session, audience=audience)
        if digest is None:
            raise _missing(audience)
        return _respond(digest, format)

    return _cached(request, session, build)


@router.get("/{week}")
def get_digest(
    request: Request,
    session: SessionDep,
    week: Annotated[str, Path(pattern=r"^\d{4}-W\d{2}$", description="ISO week, e.g. 2026-W47")],
    audience: Audience = "customer",
    format: Format = "json",
) -> Response:  # noqa: A002
    """One week's digest as JSON (the payload), Markdown or self-contained HTML."""
    def build() -> Response:
        digest = repo.get_digest(session, audience=audience, week=week)
        if digest is None:
            raise _missing(audience, week)
        return _respond(digest, format)

    return _cached(request, session, build)
