"""Request-scoped dependencies: settings, the database session (the request owns the transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

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


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
TaggerDep = Annotated[Any, Depends(get_tagger)]
