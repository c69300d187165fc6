"""Request-scoped dependencies: settings, the database session (the request owns the transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.shares import configured_estimator
from feedback.config import Settings
from feedback.db import session_scope


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
