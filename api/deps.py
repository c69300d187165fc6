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


def _bad_text(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None: a lone surrogate (no UTF-8 text can hold one)
    or a NUL character (PostgreSQL text cannot; SQLite would cut C strings at it)."""
    if has_surrogates(value):
        return "not valid Unicode: a lone surrogate (\\ud800-\\udfff) that UTF-8 cannot encode"
    if "\x00" in value:
        return "a NUL character (\\u0000), which no text column can hold"
    return None


def bad_text_at(value: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str] | None:
    """Where in a parsed JSON document a key or string cannot be stored as text, and why."""
    if isinstance(value, str):
        why = _bad_text(value)
        return (loc, why) if why else None
    if isinstance(value, list):
        for index, child in enumerate(value):
            found = bad_text_at(child, (*loc, index))
            if found is not None:
                return found
    if isinstance(value, dict):
        for key, child in value.items():
            why = _bad_text(key)
            if why:  # the location names it escaped: the answer must encode too
                return (*loc, key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")), why
            found = bad_text_at(child, (*loc, key))
            if found is not None:
                return found
    return None


def _invalid(loc: tuple[str | int, ...], why: str) -> RequestValidationError:
    return RequestValidationError([{"type": "string_unicode", "loc": loc, "input": None, "msg": why}])


async def valid_unicode(request: Request) -> None:
    """422 for text no database can store: a query parameter with a NUL character, or a JSON body
    with a lone surrogate ("\\ud800": JSON can escape one, but no UTF-8 text can hold it) or a NUL
    ("\\u0000": PostgreSQL text cannot hold it)."""
    for key, value in request.query_params.multi_items():
        why = _bad_text(key) or _bad_text(value)
        if why:
            raise _invalid(("query", key.replace("\x00", "\\u0000")), why)
    if "json" not in request.headers.get("content-type", ""):
        return
    body = await request.body()
    if not SURROGATE_ESCAPE.search(body) and b"\\u0000" not in body:
        return  # raw UTF-8 cannot hold a surrogate or a NUL unescaped in valid JSON: only an escape can
    try:
        document = await request.json()  # parsed once: the endpoint's body reads the same
    except ValueError:
        return  # the endpoint's own validation answers a body that is not JSON
    found = bad_text_at(document, ("body",))
    if found is not None:
        raise _invalid(*found)


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
