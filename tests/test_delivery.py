"""Digest delivery against real local servers: an SMTP server (aiosmtpd) and an HTTP webhook."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from feedback.config import DigestSettings
from feedback.insights.delivery import (
    build_email,
    deliver,
    post_webhook,
    send_email,
    slack_message,
)

PAYLOAD: dict[str, Any] = {
    "audience": "customer",
    "week": "2026-W39",
    "alerts": [
        {"message": "Negative feedback on delivery rose to 68% from 18% <script>x</script>"}
    ],
    "movers": [
        {
            "touchpoint": "delivery",
            "direction": "down",
            "mean_sentiment": -0.45,
            "delta_baseline": -0.8,
        }
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"digest" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    """A real SMTP server on an ephemeral local port, with login (plain connection, for tests)."""
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=_check_login, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class _Hook:
    """A local Slack-like webhook: records JSON bodies, answers with the scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []


@pytest.fixture
def webhook() -> Iterator[tuple[_Hook, str]]:
    hook = _Hook([])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            hook.bodies.append(json.loads(self.rfile.read(length)))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"try later")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()
        server.server_close()


# --- email ---------------------------------------------------------------------------------------


def test_email_has_text_and_html_parts_and_logs_in(smtp_server, monkeypatch) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    settings = DigestSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_user="digest",
        smtp_password_env="TEST_SMTP_PASSWORD",
        smtp_from="voc@example.com",
    )
    message = build_email(
        subject="Weekly CX digest, 2026-W39",
        sender=settings.smtp_from,
        to=["cx-lead@example.com"],
        text="# Digest\n\nplain words",
        html="<html><body><h1>Digest</h1><p>&lt;script&gt;</p></body></html>",
    )
    result = send_email(settings, message)
    assert result.ok, result.detail
    [(recipients, received)] = inbox.messages
    assert recipients == ["cx-lead@example.com"]
    assert received["Subject"] == "Weekly CX digest, 2026-W39"
    assert received.get_content_type() == "multipart/alternative"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in received.walk()
        if not p.is_multipart()
    }
    assert "plain words" in parts["text/plain"]
    assert "<h1>Digest</h1>" in parts["text/html"] and "&lt;script&gt;" in parts["text/html"]


def test_email_failures_are_reported_not_raised(smtp_server, monkeypatch) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    base = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_from": "voc@example.com"}
    message = build_email(
        subject="s", sender="voc@example.com", to=["a@example.com"], text="t", html="<p>t</p>"
    )
    bad_login = send_email(
        DigestSettings(
            **base, smtp_starttls=False, smtp_user="digest", smtp_password_env="TEST_SMTP_PASSWORD"
        ),
        message,
    )
    assert not bad_login.ok and "Authentication" in bad_login.detail
    # This server offers no STARTTLS: asking for it fails cleanly, nothing is sent in clear.
    no_tls = send_email(DigestSettings(**base, smtp_starttls=True), message)
    assert not no_tls.ok and "STARTTLS" in no_tls.detail.upper()
    unset = send_email(
        DigestSettings(
            **base,
            smtp_starttls=False,
            smtp_user="digest",
            smtp_password_env="NO_SUCH_VARIABLE_SET",
        ),
        message,
    )
    assert not unset.ok and "NO_SUCH_VARIABLE_SET" in unset.detail
    assert inbox.messages == []


# --- webhook -------------------------------------------------------------------------------------


def test_webhook_posts_slack_json_and_retries_on_503(webhook) -> None:
    hook, url = webhook
    hook.statuses = [503]
    result = post_webhook(
        url, slack_message(PAYLOAD, title="Weekly CX digest, 2026-W39"), backoff=0.01
    )
    assert result.ok and result.attempts == 2
    body = hook.bodies[-1]
    assert body["text"].startswith("*Weekly CX digest, 2026-W39*")
    assert body["blocks"][0]["type"] == "section"
    # Feedback-derived text cannot inject Slack markup (<!channel>, links) or HTML.
    assert "&lt;script&gt;" in body["text"] and "<script>" not in body["text"]
    assert "delivery" in body["text"]


def test_webhook_gives_up_on_client_errors_and_dead_hosts(webhook) -> None:
    hook, url = webhook
    hook.statuses = [400]
    result = post_webhook(url, {"text": "x"}, backoff=0.01)
    assert not result.ok and result.attempts == 1 and "400" in result.detail
    dead = post_webhook(
        f"http://127.0.0.1:{_free_port()}/hook", {"text": "x"}, retries=2, backoff=0.01
    )
    assert not dead.ok and dead.attempts == 2


def test_deliver_sends_each_audience_only_to_its_own_channels(
    smtp_server, webhook, monkeypatch
) -> None:
    inbox, port = smtp_server
    hook, url = webhook
    monkeypatch.setenv("TEST_HR_HOOK", url)
    settings = DigestSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="voc@example.com",
        webhook_url=None,
        email_to=["cx@example.com"],
        employee_webhook_url_env="TEST_HR_HOOK",
        employee_email_to=["hr@example.com"],
        public_url="https://voc.example.com/",
    )
    employee = {**PAYLOAD, "audience": "employee", "week": "2026-W40", "movers": []}
    results = deliver(
        employee,
        markdown="hr text",
        html="<p>hr</p>",
        title="Weekly employee digest",
        settings=settings,
    )
    assert [r.channel for r in results] == ["webhook", "email"] and all(r.ok for r in results)
    assert [rcpt for rcpt, _ in inbox.messages] == [["hr@example.com"]]
    assert (
        "https://voc.example.com/v1/digests/2026-W40?audience=employee&format=html"
        in hook.bodies[-1]["text"]
    )
    # The customer digest has no webhook configured here: email only, to the CX list.
    results = deliver(
        PAYLOAD, markdown="cx text", html="<p>cx</p>", title="Weekly CX digest", settings=settings
    )
    assert [r.channel for r in results] == ["email"]
    assert inbox.messages[-1][0] == ["cx@example.com"]
    assert len(hook.bodies) == 1
