"""Send a digest: a Slack-compatible webhook message, and an email with text and HTML parts.

Where a digest goes is configured in `settings.digests`; secrets (the webhook URL, the SMTP
password) are read from the environment variables the settings name. Each channel reports
what happened instead of raising, so one failing channel does not stop the other.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import time
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx

from feedback.config import DigestSettings

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class DeliveryResult:
    """What one channel did."""

    channel: str  # webhook | email
    ok: bool
    detail: str
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _env(name: str | None, what: str) -> str | None:
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ValueError(
            f"{what}: environment variable {name} is not set; export it or change the setting"
        )
    return value


def webhook_url(settings: DigestSettings, audience: str) -> str | None:
    """The webhook for an audience's digest: the URL, or the one in the named env var."""
    if audience == "employee":
        return settings.employee_webhook_url or _env(
            settings.employee_webhook_url_env, "digests.employee_webhook_url_env"
        )
    return settings.webhook_url or _env(settings.webhook_url_env, "digests.webhook_url_env")


def recipients(settings: DigestSettings, audience: str) -> list[str]:
    """Who gets an audience's digest by email."""
    return list(settings.employee_email_to if audience == "employee" else settings.email_to)


def slack_escape(text: str) -> str:
    """Escape text for Slack mrkdwn (&, <, > are its only control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(
    payload: dict[str, Any], *, title: str, link: str | None = None
) -> dict[str, Any]:
    """A Slack-compatible message: `text` for any webhook, `blocks` for Slack's layout."""
    alerts = payload.get("alerts", [])
    lines = [f"*{slack_escape(title)}*"]
    if alerts:
        lines.append(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}:")
        lines += [f"• {slack_escape(a['message'])}" for a in alerts[:8]]
    else:
        lines.append("No alerts this week: nothing moved beyond its normal variation.")
    for mover in payload.get("movers", [])[:3]:
        name = mover.get("touchpoint") or mover.get("org_unit")
        arrow = "▼" if mover["direction"] == "down" else "▲"
        lines.append(
            f"{arrow} {slack_escape(str(name))}: mean sentiment {mover['mean_sentiment']:+.2f} "
            f"({mover['delta_baseline']:+.2f} vs baseline)"
        )
    if link:
        lines.append(f"<{link}|Read the digest>")
    text = "\n".join(lines)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
    }


def post_webhook(
    url: str,
    message: dict[str, Any],
    *,
    retries: int = 3,
    timeout: float = 10.0,
    backoff: float = 1.0,
    client: httpx.Client | None = None,
) -> DeliveryResult:
    """POST the message as JSON; retry on timeouts, connection errors, 429 and 5xx."""
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    detail = ""
    try:
        for attempt in range(1, retries + 1):
            try:
                response = http.post(url, json=message)
            except httpx.TransportError as exc:
                detail = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return DeliveryResult("webhook", True, f"HTTP {response.status_code}", attempt)
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRY_STATUS:
                    return DeliveryResult("webhook", False, detail, attempt)
                wait = response.headers.get("retry-after")
                if wait and wait.isdigit() and attempt < retries:
                    time.sleep(min(float(wait), 30.0))
                    continue
            if attempt < retries:
                time.sleep(backoff * 2 ** (attempt - 1))
        return DeliveryResult("webhook", False, detail, retries)
    finally:
        if own:
            http.close()


def build_email(*, subject: str, sender: str, to: list[str], text: str, html: str) -> EmailMessage:
    """A multipart/alternative email: the plain text first, the HTML as the preferred part."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] or None)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_email(settings: DigestSettings, message: EmailMessage) -> DeliveryResult:
    """Send through the configured SMTP server (STARTTLS and login when configured)."""
    if not settings.smtp_host:
        return DeliveryResult("email", False, "digests.smtp_host is not set")
    try:
        password = _env(settings.smtp_password_env, "digests.smtp_password_env")
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
        ) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, password or "")
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        log.warning("digest email failed: %s", exc)
        return DeliveryResult("email", False, f"{type(exc).__name__}: {exc}")
    if refused:
        return DeliveryResult("email", False, f"refused: {', '.join(sorted(refused))}")
    return DeliveryResult("email", True, f"sent to {message['To']}")


def deliver(
    payload: dict[str, Any], *, markdown: str, html: str, title: str, settings: DigestSettings
) -> list[DeliveryResult]:
    """Send a rendered digest to every channel configured for its audience."""
    audience = payload["audience"]
    results: list[DeliveryResult] = []
    link = None
    if settings.public_url:
        base = settings.public_url.rstrip("/")
        link = f"{base}/v1/digests/{payload['week']}?audience={audience}&format=html"
    try:
        url = webhook_url(settings, audience)
    except ValueError as exc:
        results.append(DeliveryResult("webhook", False, str(exc), 0))
        url = None
    if url:
        results.append(
            post_webhook(
                url,
                slack_message(payload, title=title, link=link),
                retries=settings.webhook_retries,
                timeout=settings.timeout_seconds,
            )
        )
    to = recipients(settings, audience)
    if to:
        text = markdown if link is None else f"{markdown}\n{link}\n"
        results.append(
            send_email(
                settings,
                build_email(subject=title, sender=settings.smtp_from, to=to, text=text, html=html),
            )
        )
    return results
