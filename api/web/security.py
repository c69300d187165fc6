"""Sessions, CSRF and headers of the web app.

- A session cookie (`voc_session`): HttpOnly, SameSite=Lax, Path=/, Secure over https (or as
  `web.secure_cookies` says), expiring with the session (`web.session_hours`). It opens the pages
  of what its API key or user may read, checked with the API's own `Principal`
  (api.auth): cx customer, hr employee, admin all, bi no pages.
- CSRF: every form carries a token that must match the session's (signed in) or the
  `voc_csrf` cookie's (the sign-in form, before there is a session); SameSite=Lax already keeps
  other sites' POSTs from carrying the session cookie, the token covers the rest.
- Sign-in attempts are limited per client address (`web.sign_in_attempts` failures per
  `web.sign_in_window_seconds`); past that, 429 until the window has passed. The count is per
  process: a deployment with several server processes multiplies it by their number.
- Every page carries a Content-Security-Policy that allows scripts, styles and images from the
  app only (no inline script, no CDN), and no framing.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import AUTH_DISABLED, Principal
from api.deps import SessionDep
from feedback.accounts import SessionOwner, session_owner
from feedback.apikeys import AUDIENCE_SCOPE

SESSION_COOKIE = "voc_session"
CSRF_COOKIE = "voc_csrf"
CSRF_FIELD = "csrf_token"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Paths that are not pages: the API, its docs (Swagger UI brings its own scripts) and health.
NOT_PAGES = ("/v1/", "/docs", "/redoc", "/openapi.json", "/health")


class PageHeaders:
    """ASGI middleware: the security headers on every page and static asset of the web app
    (an answer that sets its own Content-Security-Policy, a digest's HTML, keeps it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(NOT_PAGES):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in PAGE_HEADERS.items():
                    if name.lower().encode() in present:
                        continue
                    if name == "Cache-Control" and path.startswith("/static/"):
                        value = "public, max-age=3600"
                    headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SignInLimiter:
    """Failed sign-ins per client address in a sliding window."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts, self.window_s = attempts, window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures[client]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.attempts:
                return 0
            return max(1, int(failures[0] + self.window_s - now) + 1)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def sign_in_limiter(request: Request) -> SignInLimiter:
    limiter = getattr(request.app.state, "sign_in_limiter", None)
    if limiter is None:
        web = request.app.state.settings.web
        limiter = request.app.state.sign_in_limiter = SignInLimiter(web.sign_in_attempts, web.sign_in_window_seconds)
    return limiter


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure_cookies(request: Request) -> bool:
    configured = request.app.state.settings.web.secure_cookies
    return request.url.scheme == "https" if configured is None else configured


@dataclass(frozen=True)
class Visitor:
    """Who is looking at a page: their principal (the API's), and the form token to send back."""

    principal: Principal
    csrf_token: str
    owner: SessionOwner | None  # None when api.auth_enabled is false

    @property
    def audiences(self) -> list[str]:
        """The audiences this visitor may read, customer first."""
        return [a for a in ("customer", "employee") if self.principal.can_read(a)]

    @property
    def name(self) -> str:
        return self.principal.name


class SignInRequired(Exception):
    """No live session: the handler sends the browser to the sign-in page."""


def current_owner(request: Request, session: SessionDep) -> SessionOwner | None:
    token = request.cookies.get(SESSION_COOKIE)
    return session_owner(session, token) if token else None


def visitor(request: Request, session: SessionDep) -> Visitor:
    """The signed-in visitor; SignInRequired (a redirect to /signin) without a live session."""
    if not request.app.state.settings.api.auth_enabled:
        return Visitor(AUTH_DISABLED, csrf_cookie_token(request), None)
    owner = current_owner(request, session)
    if owner is None:
        raise SignInRequired()
    principal = Principal(owner.api_key_id, owner.name, owner.scopes)
    if not any(principal.can_read(a) for a in AUDIENCE_SCOPE):
        # bi (the export only) and any key without cx, hr or admin: no pages.
        raise HTTPException(status_code=403, detail=f"{owner.name} may read no pages: the web app needs "
                                                    f"scope cx, hr or admin (this one has: "
                                                    f"{', '.join(sorted(owner.scopes)) or 'none'})")
    return Visitor(principal, owner.csrf_token, owner)


VisitorDep = Annotated[Visitor, Depends(visitor)]


def csrf_cookie_token(request: Request) -> str:
    """The pre-session CSRF token: the `voc_csrf` cookie's, or a new one (set by the page)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = request.state.new_csrf = secrets.token_urlsafe(32)
    return token


def check_csrf(expected: str, given: str | None) -> None:
    """403 unless the form's token is the expected one (constant-time comparison)."""
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(status_code=403, detail="this form has expired or did not come from this site: "
                                                    "reload the page and try again")
