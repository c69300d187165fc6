"""The FastAPI application: `create_app()` builds it; models load on first use, not at start."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from threadpoolctl import threadpool_limits

from api.auth import AuthenticateFirst, audience_guard, require_scopes
from api.concurrency import InFlight, InFlightLimit, PushQueue, ResponseCache
from api.deps import valid_unicode
from api.routers import (
    aggregates,
    classify,
    compare,
    corrections,
    custom,
    digests,
    drivers,
    feedback,
    health,
    journey,
    quotes,
    sources,
    topics,
    trends,
    webhooks,
)
from feedback.config import Settings, get_settings
from feedback.db import is_locked, make_engine, session_factory
from feedback.ingest.readers import IngestError
from feedback.schemas import ErrorOut

# Answers other than 422 (FastAPI's validation errors) that carry a message: {"detail": "..."}.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description} for status, description in (
        (400, "The request cannot be answered as asked; the message says what would work"),
        (401, "No API key, or not a valid one"),
        (403, "The key lacks the scope this needs"),
        (404, "No such item, topic, source or digest (or one of an audience the key cannot read)"),
        (409, "Conflicts with what is stored; the message says how to resolve it"),
        (503, "Saturated (api.max_in_flight requests in progress) or the database busy with a "
              "job's write: retry after the Retry-After header's seconds"),
    )
}


def _tagger_provider(settings: Settings) -> Callable[[], Any]:
    lock = threading.Lock()
    holder: dict[str, Any] = {}

    def provide() -> Any:
        if "tagger" not in holder:
            with lock:
                if "tagger" not in holder:
                    from jobs.tasks import load_service_tagger  # heavy: torch, transformers

                    holder["tagger"] = load_service_tagger(settings)
        return holder["tagger"]

    return provide


def _pool_size(settings: Settings) -> dict[str, Any]:
    """Pool arguments for the API's engine: a connection for every worker thread and more."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}  # one in-memory database per connection: no pool to size
    return {"pool_size": settings.api.connections(), "max_overflow": settings.api.threads()}


def create_app(settings: Settings | None = None, *, tagger: Any = None) -> FastAPI:
    """Build the app; `tagger` can be injected (tests share one loaded tagger)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Endpoints are sync: each runs on one of these threads, and has a pooled connection of
        # its own (api.pool_size >= threads), so no request ever waits for a connection.
        to_thread.current_default_thread_limiter().total_tokens = settings.api.threads()
        # numpy's BLAS on one thread: requests already run side by side on those threads, and a
        # BLAS spinning up threads inside each one on busy cores is slow (a key-driver
        # regression's X'X took 370 ms on two threads with the cores loaded, 2 ms on one).
        blas = threadpool_limits(limits=1, user_api="blas")
        # What is alive now (modules, the app, loaded models) lives as long as the process: out of
        # the collector's way, so a request that allocates much (the employee tables: a cell per
        # week and group) does not pay for full collections walking it (half their time before);
        # and young collections less often (a quarter of an employee page's CPU at the default 700).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(50_000, *thresholds[1:])
        yield
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        blas.restore_original_limits()
        app.state.engine.dispose()

    app = FastAPI(
        title="VOC/VOE feedback analysis",
        version="0.1.0",
        description="Voice of the Customer and of the Employee: tagged feedback, trends by touchpoint.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url, busy_timeout_s=settings.api.write_wait_seconds,
                                   **_pool_size(settings))
    app.state.in_flight = InFlight(limit=settings.api.in_flight_limit(),
                                   retry_after_s=settings.api.retry_after_seconds)
    app.state.push_queue = PushQueue(settings.api.push_writers(make_url(settings.database_url).get_backend_name()))
    app.state.response_cache = ResponseCache(settings.api.cache_seconds)
    app.state.session_factory = session_factory(app.state.engine)
    app.state.tagger_provider = (lambda: tagger) if tagger is not None else _tagger_provider(settings)

    @app.exception_handler(IngestError)
    async def _ingest_error(_: Request, exc: IngestError) -> JSONResponse:
        # Shaped as the 422 every endpoint declares (FastAPI's validation errors): a list.
        return JSONResponse(status_code=422, content={"detail": [{"type": "ingest", "loc": ["body"],
                                                                  "msg": str(exc)}]})

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, exc: OperationalError) -> Response:
        if not is_locked(exc):
            raise exc
        # A job held the write lock longer than api.write_wait_seconds: busy, not broken.
        retry = settings.api.retry_after_seconds
        return JSONResponse(status_code=503, headers={"Retry-After": str(retry)},
                            content={"detail": f"the database is busy with another write; retry after "
                                               f"{retry} s"})

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    # Who may call what (docs/api.md#auth; tests/test_auth.py checks the whole matrix): every
    # router but /health and the HMAC-signed webhooks needs an API key with the scope below.
    # audience_guard(): cx for customer data, hr for employee data (admin: all).
    # AuthenticateFirst checks the key before the body is read, so a caller without one gets 401
    # whatever it sent; the guards below then check its scopes.
    app.add_middleware(AuthenticateFirst)
    if settings.web.enabled:
        from api import web  # the insight pages at / (docs/web.md); their own session cookie, not a key

        web.install(app)
    # Added last, so it runs first: a saturated service answers 503 before anything else.
    app.add_middleware(InFlightLimit, state=app.state.in_flight)
    unicode = Depends(valid_unicode)
    by_audience = [unicode, Depends(audience_guard("customer"))]
    app.include_router(health.router)
    keyed: dict[str, Any] = {"responses": ERRORS}
    app.include_router(feedback.router, dependencies=[unicode, Depends(audience_guard(None))],  # no audience: both
                       **keyed)
    app.include_router(classify.router, dependencies=by_audience, **keyed)
    for analytics in (trends, journey, compare, drivers, quotes, custom):
        app.include_router(analytics.router, dependencies=by_audience, **keyed)
    app.include_router(aggregates.router, dependencies=[Depends(audience_guard("customer", also=("bi",)))],
                       **keyed)
    app.include_router(digests.router, dependencies=by_audience, **keyed)
    app.include_router(sources.router, dependencies=[unicode, Depends(require_scopes("admin"))], **keyed)
    app.include_router(topics.router, dependencies=[unicode], **keyed)  # each endpoint checks the topic's audience
    # cx corrects customer items, hr employee items (each endpoint checks the item's audience)
    app.include_router(corrections.router, dependencies=[unicode], **keyed)
    app.include_router(webhooks.router, responses=ERRORS)  # no API key: each delivery is HMAC-signed instead
    return app
