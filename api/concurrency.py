"""How the API holds up under load: a bound on requests in progress, one request per
Idempotency-Key at a time, and reuse of heavy answers (docs/api.md#limits-and-503).

- `InFlightLimit`: beyond `api.max_in_flight` requests in progress (running, or queued for one
  of the `api.worker_threads`), a new request is answered 503 with `Retry-After` at once: a
  saturated service says so in a millisecond instead of letting callers queue for 30 s.
- `IdempotencyGate`: a re-send with the Idempotency-Key of a push still in progress waits for
  that push's answer (then replays it) instead of being processed as new; after
  `api.idempotency_wait_seconds` it gets 409 "in progress" with `Retry-After`.
- `ResponseCache` (`cached_answer`): an analytics answer (trends, journey, topics, a BI export
  page, a digest), once built, is reused while the data behind it is unchanged (a stamp of the
  newest writes it depends on) and for at most `api.cache_seconds`; requests for the same URL
  that arrive while it is being built wait for that one build.

All three are per process (the service serves from one process; several API processes behind a
load balancer each enforce their own limit, and the database's unique keys still keep a push
from being stored twice).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from feedback import repository

UNLIMITED_PATHS = frozenset({"/health"})  # health checks must answer even when saturated


@dataclass
class InFlight:
    """Requests in progress in this process, against their limit (read by /health and tests)."""

    limit: int
    retry_after_s: int
    count: int = 0
    rejected: int = 0


class InFlightLimit:
    """ASGI middleware: 503 with Retry-After, at once, when `state.limit` requests are in progress.

    It runs first, before authentication and before a worker thread is taken, so turning a
    request away costs no thread, no database connection and no key check.
    """

    def __init__(self, app: ASGIApp, *, state: InFlight) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        state = self.state  # one event loop: no lock needed around the count
        if state.count >= state.limit:
            state.rejected += 1
            response = JSONResponse(
                {"detail": f"the service is at its limit of {state.limit} requests in progress; "
                           f"retry after {state.retry_after_s} s (api.max_in_flight)"},
                status_code=503, headers={"Retry-After": str(state.retry_after_s)},
            )
            await response(scope, receive, send)
            return
        state.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            state.count -= 1


class IdempotencyGate:
    """Which Idempotency-Keys have a request in progress in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}

    def in_progress(self, key: str) -> bool:
        with self._lock:
            return key in self._running

    @contextmanager
    def hold(self, key: str, *, wait_s: float) -> Iterator[bool]:
        """Hold `key` for the block; first wait up to `wait_s` for a request that holds it to
        finish. Yields False (holding nothing) if it still holds the key after that."""
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                running = self._running.get(key)
                if running is None:
                    mine = self._running[key] = threading.Event()
                    break
            if not running.wait(timeout=max(0.0, deadline - time.monotonic())):
                yield False
                return
        try:
            yield True
        finally:
            with self._lock:
                del self._running[key]
            mine.set()


@dataclass
class _Entry:
    kind: str = ""
    stamp: Hashable = None
    built_at: float = 0.0
    response: tuple[bytes, int, str | None, dict[str, str]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ResponseCache:
    """Built responses by key, each valid while the stamp of what it was built from holds, and
    for `ttl_s` at most.

    `stamps` names the stamps of the moment (taken before a build, so a build never carries a
    stamp newer than its data); a build says which one its answer depends on (`kind`): an answer
    read from the rollups stays valid while they do, however many items are pushed meanwhile.
    """

    def __init__(self, ttl_s: float, *, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.builds = 0

    def get_or_build(self, key: Hashable, stamps: Mapping[str, Hashable],
                     build: Callable[[], tuple[Response, str]]) -> Response:
        """The response stored under `key` while its stamp holds, or `build()`'s (stored when it
        succeeds; a concurrent request for the same key waits for this build, not repeats it)."""
        if self.ttl_s <= 0:
            return build()[0]
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(key)
        with entry.lock:
            if (entry.response is not None and entry.kind in stamps and stamps[entry.kind] == entry.stamp
                    and time.monotonic() - entry.built_at < self.ttl_s):
                self.hits += 1
                return _rebuilt(entry.response)
            response, kind = build()
            self.builds += 1
            if 200 <= response.status_code < 300 and kind in stamps:
                entry.response = (bytes(response.body), response.status_code, response.media_type,
                                  {k: v for k, v in response.headers.items() if k != "content-length"})
                entry.kind, entry.stamp, entry.built_at = kind, stamps[kind], time.monotonic()
            return response


def _rebuilt(stored: tuple[bytes, int, str | None, dict[str, str]]) -> Response:
    body, status, media_type, headers = stored
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def cached_answer(request: Request, session: Session, build: Callable[[], Any], *,
                  audience: str | None = None, depends_on: str = "source") -> Response:
    """`build()`'s answer (a Response, a model or a dict, sent as FastAPI sends it), reused for
    the same URL while what it was computed from is unchanged (api.cache_seconds at most).

    `depends_on`: "source" — the answer's own `source` (or X-Source header) says: "rollups"
    answers hold while the rollups of `audience` do, others while no item, tag, rollup, topic,
    source or digest changed; "tags" — while no tag, topic or topic model changed; "items" —
    while nothing changed.
    """
    stamps: dict[str, Hashable] = {"items": repository.data_stamp(session)}
    if depends_on == "tags":
        stamps["tags"] = repository.tags_stamp(session)
    if depends_on == "source" and audience is not None:
        rollups = repository.rollup_stamp(session, audience)
        if rollups is not None:
            stamps["rollups"] = rollups

    def built() -> tuple[Response, str]:
        answer = build()
        if isinstance(answer, Response):
            source = answer.headers.get("X-Source")
        else:
            answer = JSONResponse(jsonable_encoder(answer))
            source = None
        if depends_on != "source":
            return answer, depends_on
        if source is None:
            source = json.loads(answer.body).get("source") if answer.media_type == "application/json" else None
        return answer, "rollups" if source == "rollups" else "items"

    return request.app.state.response_cache.get_or_build((request.method, str(request.url)), stamps, built)
