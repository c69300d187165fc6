"""How the API holds up under load: a bound on requests in progress, one request per
Idempotency-Key at a time, and reuse of heavy answers (docs/api.md#limits-and-503).

- `InFlightLimit`: beyond `api.max_in_flight` requests in progress (running, or queued for one
  of the `api.worker_threads`), a new request is answered 503 with `Retry-After` at once: a
  saturated service says so in a millisecond instead of letting callers queue for 30 s.
- `PushQueue`: pushes write one at a time on SQLite (`api.concurrent_pushes` at a time on
  PostgreSQL), queued on the event loop (no thread is held while waiting); a re-send with the
  Idempotency-Key of a push still in progress waits for that push's answer (then replays it)
  instead of being processed as new; after `api.idempotency_wait_seconds` it gets 409
  "in progress" with `Retry-After`.
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
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
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


class PushQueue:
    """Pushes of this process: `writers` write at a time (1 on SQLite, whose writers take turns
    anyway), and one per Idempotency-Key at a time.

    Both waits happen on the event loop, before a worker thread is taken: a queued push holds no
    thread (reads go on) and no database connection, and the next one starts the moment one
    before commits, instead of polling SQLite's lock with sleeps.
    """

    def __init__(self, writers: int = 1) -> None:
        self.writers = writers
        self._write: anyio.Semaphore | None = None
        self._keys: dict[str, anyio.Event] = {}

    def in_progress(self, key: str) -> bool:
        return key in self._keys

    @asynccontextmanager
    async def turn(self, key: str | None, *, key_wait_s: float, write_wait_s: float,
                   retry_after_s: int) -> AsyncIterator[None]:
        """Wait for `key` to be free (up to `key_wait_s`, else 409 in progress), then for the
        write turn (up to `write_wait_s`, else 503), both with Retry-After; hold them for the block."""
        if key is not None:
            with anyio.move_on_after(key_wait_s):
                while key in self._keys:
                    await self._keys[key].wait()
            if key in self._keys:
                raise HTTPException(status_code=409, headers={"Retry-After": str(retry_after_s)},
                                    detail=f"a request with Idempotency-Key {key!r} is still in progress; "
                                           f"retry after {retry_after_s} s to get its answer")
            self._keys[key] = anyio.Event()
        try:
            if self._write is None:  # made on the event loop that uses it
                self._write = anyio.Semaphore(self.writers)
            acquired = False
            with anyio.move_on_after(write_wait_s):
                await self._write.acquire()
                acquired = True
            if not acquired:
                raise HTTPException(status_code=503, headers={"Retry-After": str(retry_after_s)},
                                    detail=f"busy storing other pushes; retry after {retry_after_s} s")
            try:
                yield
            finally:
                self._write.release()
        finally:
            if key is not None:
                self._keys.pop(key).set()


async def push_turn(request: Request) -> AsyncIterator[None]:
    """Dependency of a push: its turn in the app's `PushQueue`, held until it has committed."""
    api = request.app.state.settings.api
    key = request.headers.get("idempotency-key") or None
    async with request.app.state.push_queue.turn(key, key_wait_s=api.idempotency_wait_seconds,
                                                 write_wait_s=api.write_wait_seconds,
                                                 retry_after_s=api.retry_after_seconds):
        yield


@dataclass
class _Entry:
    kind: str = ""
    stamp: Hashable = None
    started_at: float = 0.0  # when the build began (monotonic): it read the data of that moment or later
    built_at: float = 0.0
    response: tuple[bytes, int, str | None, dict[str, str]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ResponseCache:
    """Built responses by key, each valid while the stamp of what it was built from holds, and
    for `ttl_s` at most.

    `stamps` names the stamps of the moment (taken before a build, so a build never carries a
    stamp newer than its data); a build says which one its answer depends on (`kind`): an answer
    read from the rollups stays valid while they do, however many items are pushed meanwhile.
    Requests for a key that arrive while it is being built wait, and take the next answer built
    after they arrived: under load one build answers all of them, and none gets an answer older
    than itself.
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
        arrived = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(key)
        with entry.lock:  # one build per key at a time; the others wait for it
            if entry.response is not None and time.monotonic() - entry.built_at < self.ttl_s and (
                    (entry.kind in stamps and stamps[entry.kind] == entry.stamp)  # nothing it read changed
                    or entry.started_at >= arrived):  # built after this request arrived: as fresh as its own
                self.hits += 1
                return _rebuilt(entry.response)
            started = time.monotonic()
            response, kind = build()
            self.builds += 1
            if 200 <= response.status_code < 300 and kind in stamps:
                entry.response = (bytes(response.body), response.status_code, response.media_type,
                                  {k: v for k, v in response.headers.items() if k != "content-length"})
                entry.kind, entry.stamp = kind, stamps[kind]
                entry.started_at, entry.built_at = started, time.monotonic()
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
            # A model serialises in pydantic-core: the same JSON as jsonable_encoder, which walks
            # every value in Python (38 of a 12-month trend's 53 ms in bench/api_latency.py).
            answer = JSONResponse(answer.model_dump(mode="json") if isinstance(answer, BaseModel)
                                  else jsonable_encoder(answer))
            source = None
        if depends_on != "source":
            return answer, depends_on
        if source is None:
            source = json.loads(answer.body).get("source") if answer.media_type == "application/json" else None
        return answer, "rollups" if source == "rollups" else "items"

    return request.app.state.response_cache.get_or_build((request.method, str(request.url)), stamps, built)
