"""Request-scoped dependencies: settings, the database session (the request owns the transaction)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.shares import configured_estimator
from feedback.config import Settings
from feedback.db import session_scope
from feedback.ingest.readers import has_surrogates

SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def lone_surrogate(value: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """Where in a parsed JSON document a key or string holds a lone surrogate; None if nowhere."""
    if isinstance(value, str):
        return loc if has_surrogates(value) else None
    if isinstance(value, list):
        for index, child in enumerate(value):
            found = lone_surrogate(child, (*loc, index))
            if found is not None:
                return found
    if isinstance(value, dict):
        for key, child in value.items():
            if has_surrogates(key):  # the location names it escaped: the answer must encode too
                return (*loc, key.encode("utf-8", "backslashreplace").decode())
            found = lone_surrogate(child, (*loc, key))
            if found is not None:
                return found
    return None


async def valid_unicode(request: Request) -> None:
    """422 for a JSON body with a lone surrogate ("\\ud800"): JSON can escape one, but no UTF-8
    text, and so no database, can hold it."""
    if "json" not in request.headers.get("content-type", ""):
        return
    if not SURROGATE_ESCAPE.search(await request.body()):
        return  # raw UTF-8 cannot hold a surrogate: only an escape can (or a pair, for an emoji)
    try:
        document = await request.json()  # parsed once: the endpoint's body reads the same
    except ValueError:
        return  # the endpoint's own validation answers a body that is not JSON
    loc = lone_surrogate(document, ("body",))
    if loc is not None:
        raise RequestValidationError([{"type": "string_unicode", "loc": loc, "input": None,
                                       "msg": "not valid Unicode: a lone surrogate (\\ud800-\\udfff) "
                                              "that UTF-8 cannot encode"}])


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session per request: committed if the handler returns, rolled back if it raises."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


def get_tagger(request: Request) -> Any:
    """The tagger, loaded on first use (never at import or start-up)."""
    return request.app.state.tagger_provider()


def get_share_estimator(request: Request) -> ShareEstimator:
    """How shares are estimated: the estimator stored with the configured heads (heads.json
    only; no model is loaded)."""
    return configured_estimator(request.app.state.settings)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
TaggerDep = Annotated[Any, Depends(get_tagger)]
ShareEstimatorDep = Annotated[ShareEstimator, Depends(get_share_estimator)]
