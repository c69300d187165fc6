"""API shapes of sources and their runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from feedback.sources.config import MappingConfig, RetryConfig


class RunOut(BaseModel):
    """One pull of a source."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    location: str | None
    items_seen: int
    items_new: int
    items_updated: int
    items_unchanged: int
    items_dead: int
    error: str | None
    encoding: str | None = Field(default=None, description="The encoding its file was read in (given or detected)")


class SourceOut(BaseModel):
    """A source as stored: its declaration (credentials as env-var names only) and state."""

    name: str
    connector: str
    audience: str
    channel: str | None = None
    schedule: str | None
    enabled: bool
    origin: str = Field(description="'config' (voc.toml wins on restart) or 'api'")
    options: dict[str, Any] = Field(default_factory=dict)
    mapping: dict[str, Any] = Field(default_factory=dict)
    credentials_env: dict[str, str] = Field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    items: int | None = None
    last_run: RunOut | None = None
    error: str | None = Field(default=None, description="Why the stored declaration is not usable")


class SourcePatch(BaseModel):
    """Fields to change; absent fields stay."""

    model_config = ConfigDict(extra="forbid")

    audience: Literal["customer", "employee"] | None = None
    channel: str | None = None
    schedule: str | None = None
    enabled: bool | None = None
    options: dict[str, Any] | None = None
    mapping: MappingConfig | None = None
    credentials_env: dict[str, str] | None = None
    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    retry: RetryConfig | None = None
    reset_cursor: bool = Field(
        default=False, description="Forget the cursor: the next pull starts over"
    )


class PullOut(BaseModel):
    """The result of a pull started through the API."""

    source: str
    status: str
    run_id: int | None = None
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
