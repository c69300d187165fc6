"""API-key authentication and scope checks for every endpoint but /health.

A request carries its key as `Authorization: Bearer voc_<prefix>_<secret>` (or `X-API-Key`).
Scopes say what a key reads: `cx` customer feedback, `hr` employee feedback, `bi` the
aggregates export only (never raw text), `admin` everything. The guards here are added per
router in `api.main` (see the table there), so each endpoint states what it needs:

- `audience_guard()` — the audience of the request (query `audience`, a JSON body's `audience`
  and its items' audiences, or the stored item for `/v1/feedback/{item_id}`) needs `cx` for
  customer and `hr` for employee data; `admin` may do all.
- `require_scopes("admin")` — any one of the named scopes (admin always passes).

Checking scrypt hashes costs ~30 ms, so a verified key is remembered in memory (as a SHA-256 of
the key, bound to its stored hash) and later requests cost one primary-key lookup; revocation
is read from the database on every request, so it takes effect at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import SessionDep
from api.params import DB_INT_MAX
from feedback.apikeys import AUDIENCE_SCOPE, SCOPES, parse_key, verify_secret
from feedback.db import is_locked, session_scope, utcnow
from feedback.models import ApiKey, FeedbackItem

LAST_USED_EVERY_S = 60.0  # write last_used_at at most this often per key


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and scopes."""

    key_id: int | None
    name: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def has_any(self, *scopes: str) -> bool:
        return self.is_admin or bool(self.scopes.intersection(scopes))

    def can_read(self, audience: str) -> bool:
        """Whether the key may read raw or aggregated feedback of `audience`."""
        scope = AUDIENCE_SCOPE.get(audience)
        return self.is_admin or (scope is not None and scope in self.scopes)


AUTH_DISABLED = Principal(None, "auth disabled (api.auth_enabled = false)", frozenset(SCOPES))


class _VerifiedKeys:
    """Keys whose scrypt check passed: key id -> (stored hash, sha256 of the presented key)."""

    def __init__(self) -> None:
        self._verified: dict[int, tuple[str, bytes]] = {}
        self._last_used: dict[int, float] = {}
        self._lock = threading.Lock()

    def known(self, row: ApiKey, presented: str) -> bool:
        entry = self._verified.get(row.id)
        return entry is not None and entry == (row.key_hash, hashlib.sha256(presented.encode()).digest())

    def remember(self, row: ApiKey, presented: str) -> None:
        with self._lock:
            self._verified[row.id] = (row.key_hash, hashlib.sha256(presented.encode()).digest())

    def forget_touch(self, key_id: int) -> None:
        with self._lock:
            self._last_used.pop(key_id, None)

    def should_touch(self, key_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last_used.get(key_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
                return False
            self._last_used[key_id] = now
            return True


def _verified_keys(request: Request) -> _VerifiedKeys:
    cache = getattr(request.app.state, "verified_keys", None)
    if cache is None:
        cache = request.app.state.verified_keys = _VerifiedKeys()
    return cache


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller, from its API key; 401 without a valid, unrevoked key."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = _authenticate(request, session)
    request.state.principal = principal
    return principal


def _authenticate(request: Request, session: Session) -> Principal:
    if not request.app.state.settings.api.auth_enabled:
        return AUTH_DISABLED
    presented = _presented_key(request)
    if not presented:
        raise _unauthorized("an API key is required: send 'Authorization: Bearer voc_...' "
                            "(create one with `voc keys create --name NAME --scope cx`)")
    parsed = parse_key(presented)
    if parsed is None:
        raise _unauthorized("malformed API key: keys look like voc_<8 characters>_<secret>")
    prefix, secret = parsed
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise _unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise _unauthorized(f"API key {prefix} was revoked on {row.revoked_at.date().isoformat()}")
    cache = _verified_keys(request)
    if not cache.known(row, presented):
        if not verify_secret(secret, row.key_hash):
            raise _unauthorized("unknown API key")
        cache.remember(row, presented)
    if cache.should_touch(row.id):
        _touch(request, row.id)
    return Principal(row.id, row.name, frozenset(row.scopes or ()))


def _touch(request: Request, key_id: int) -> None:
    """Note when a key was last used, in a transaction of its own that never waits: while a job
    writes, it is skipped (and tried on a later request), so a read never waits behind a write."""
    factory = request.app.state.session_factory
    try:
        with session_scope(factory) as session, _no_wait(session):
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
    except OperationalError as exc:
        if not is_locked(exc):
            raise
        _verified_keys(request).forget_touch(key_id)


@contextmanager
def _no_wait(session: Session) -> Iterator[None]:
    """SQLite: fail at once, not after the busy timeout, if another connection is writing."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    waited = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(waited or 0)}")


def needs_key(path: str) -> bool:
    """Whether a request to `path` needs an API key: all of /v1 but the HMAC-signed webhooks."""
    return path.startswith("/v1/") and not path.startswith("/v1/webhooks/")


class AuthenticateFirst:
    """ASGI middleware: a request that needs a key is authenticated before its body is read.

    FastAPI parses a JSON body before it runs any dependency, so without this a caller with no
    key learns from a 422 (or 400) how its body was wrong before it is told it may not ask. The
    principal found here is what `get_principal` returns later in the same request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_key(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await run_in_threadpool(self._authenticate, request)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _authenticate(request: Request) -> None:
        with session_scope(request.app.state.session_factory) as session:
            request.state.principal = _authenticate(request, session)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _forbidden(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)


def require_scopes(*scopes: str) -> Callable[..., Principal]:
    """A dependency: the key must have one of `scopes` (admin always passes)."""
    def check(principal: PrincipalDep) -> Principal:
        if not principal.has_any(*scopes):
            raise _forbidden(f"this endpoint needs a key with scope {' or '.join(scopes)} "
                             f"(this key has: {', '.join(sorted(principal.scopes)) or 'none'})")
        return principal

    return check


def _need(audience: str, principal: Principal, also: tuple[str, ...]) -> None:
    if audience not in AUDIENCE_SCOPE:
        return  # validation of the parameter answers this one (422)
    if principal.can_read(audience) or principal.has_any(*also):
        return
    allowed = " or ".join((AUDIENCE_SCOPE[audience], *also, "admin"))
    raise _forbidden(f"{audience} feedback needs a key with scope {allowed} "
                     f"(this key has: {', '.join(sorted(principal.scopes)) or 'none'})")


async def _body_audiences(request: Request) -> set[str]:
    if request.method not in ("POST", "PUT", "PATCH"):
        return set()
    if "json" not in request.headers.get("content-type", ""):
        return set()
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return set()  # the endpoint's own validation answers malformed bodies
    found: set[str] = set()
    if isinstance(body, dict):
        if isinstance(body.get("audience"), str):
            found.add(body["audience"])
        items = body.get("items")
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and isinstance(item.get("audience"), str):
                found.add(item["audience"])
    return found


def audience_guard(default: str | None = "customer", *, also: tuple[str, ...] = (),
                   body_default: str = "customer") -> Callable[..., Awaitable[Principal]]:
    """A dependency: the request's audience needs cx (customer) or hr (employee).

    `default` is the audience the endpoint assumes when none is given; None means the endpoint
    then returns every audience, so the key must read both. A JSON body without an audience
    (a push, a classify call) is `body_default`. `also` names extra scopes that may call the
    endpoint for any audience (bi on the aggregates export).
    """
    async def check(request: Request, principal: PrincipalDep, session: SessionDep) -> Principal:
        readable = [a for a in AUDIENCE_SCOPE if principal.can_read(a)]
        if not readable and not principal.has_any(*also):
            needed = " or ".join(("cx", "hr", *also, "admin"))
            raise _forbidden(f"this endpoint needs a key with scope {needed} "
                             f"(this key has: {', '.join(sorted(principal.scopes)) or 'none'})")
        item_id = request.path_params.get("item_id")
        if item_id is not None and request.url.path.startswith("/v1/feedback/"):
            # One stored item: its own audience decides; another audience's item looks absent.
            audience = session.scalar(select(FeedbackItem.audience).where(FeedbackItem.id == _int(item_id)))
            if audience is not None and not principal.can_read(audience):
                raise HTTPException(status_code=404, detail=f"no feedback item with id {item_id}")
            return principal
        audiences = set(request.query_params.getlist("audience")) | await _body_audiences(request)
        if not audiences and request.method in ("POST", "PUT", "PATCH"):
            audiences = {body_default}
        if not audiences and default is not None:
            audiences = {default}
        if not audiences and len(readable) < len(AUDIENCE_SCOPE):
            raise _forbidden(f"this key reads only {', '.join(readable) or 'aggregated'} feedback: "
                             f"add audience={readable[0] if readable else 'customer'}")
        for audience in audiences:
            _need(audience, principal, also)
        return principal

    return check


def _int(value: Any) -> int:
    """`value` as a row id; -1 (no row) where it is none, and where the database's integer
    cannot hold it (the parameter's own validation then answers 422)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if 0 <= number <= DB_INT_MAX else -1
