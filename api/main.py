"""The FastAPI application: `create_app()` builds it; models load on first use, not at start."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routers import classify, digests, feedback, health, trends
from feedback.config import Settings, get_settings
from feedback.db import make_engine, session_factory
from feedback.ingest.readers import IngestError


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


def create_app(settings: Settings | None = None, *, tagger: Any = None) -> FastAPI:
    """Build the app; `tagger` can be injected (tests share one loaded tagger)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.engine.dispose()

    app = FastAPI(
        title="VOC/VOE feedback analysis",
        version="0.1.0",
        description="Voice of the Customer and of the Employee: tagged feedback, trends by touchpoint.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.session_factory = session_factory(app.state.engine)
    app.state.tagger_provider = (lambda: tagger) if tagger is not None else _tagger_provider(settings)

    @app.exception_handler(IngestError)
    async def _ingest_error(_: Request, exc: IngestError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    app.include_router(health.router)
    app.include_router(feedback.router)
    app.include_router(trends.router)
    app.include_router(classify.router)
    app.include_router(digests.router)
    return app
