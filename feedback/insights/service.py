"""Make, store and send digests. The caller (a job run, a CLI command) owns the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from feedback.config import Settings
from feedback.db import utcnow
from feedback.insights import repository as repo
from feedback.insights.delivery import DeliveryResult, deliver
from feedback.insights.digest import DigestOptions, build_payload
from feedback.insights.render import render_html, render_markdown, title
from feedback.insights.weeks import parse_week, weeks_before
from feedback.models import Digest


def make_digest(
    session: Session,
    *,
    settings: Settings,
    audience: str,
    week: str,
    options: DigestOptions | None = None,
) -> Digest:
    """Build and render the digest of `audience` for `week` and store it (replacing any older)."""
    payload = build_payload(
        session, audience=audience, week=week, settings=settings, options=options
    )
    payload["generated_at"] = utcnow().isoformat(timespec="seconds")
    markdown, html = render_markdown(payload), render_html(payload)
    digest = repo.get_digest(session, audience=audience, week=week)
    if digest is None:
        digest = Digest(audience=audience, week=week)
        session.add(digest)
    digest.payload, digest.markdown, digest.html = payload, markdown, html
    digest.created_at = utcnow()
    session.flush()
    return digest


def has_feedback(session: Session, *, audience: str, week: str) -> bool:
    """Whether the week or the weeks before it hold any feedback of the audience."""
    parse_week(week)
    return repo.has_items(
        session, audience=audience, first_week=weeks_before(week, 8)[0], last_week=week
    )


def deliver_digest(digest: Digest, *, settings: Settings) -> list[DeliveryResult]:
    """Send a stored digest to the webhook and the email recipients configured for its audience."""
    return deliver(
        digest.payload,
        markdown=digest.markdown,
        html=digest.html,
        title=title(digest.payload),
        settings=settings.digests,
    )


def digest_summary(digest: Digest) -> dict[str, Any]:
    """The few facts about a stored digest that a listing shows."""
    payload = digest.payload or {}
    return {
        "audience": digest.audience,
        "week": digest.week,
        "created_at": digest.created_at.isoformat() if digest.created_at else None,
        "alerts": len(payload.get("alerts", [])),
        "movers": len(payload.get("movers", [])),
        "headline": [a.get("message") for a in payload.get("alerts", [])][:3],
    }
