"""API-facing shapes of the domain (pydantic): stable, documented, versioned with the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from feedback.sources.config import SOURCE_NAME


class FeedbackIn(BaseModel):
    """One pushed feedback item; field names match the file columns."""

    model_config = ConfigDict(extra="allow")

    external_id: str | None = Field(default=None, max_length=255)
    text: str = Field(min_length=1, max_length=200_000)
    created_at: datetime | None = None
    audience: Literal["customer", "employee"] | None = None
    channel: str | None = None
    touchpoint: str | None = None
    journey_stage: str | None = None
    segment: str | None = None
    org_unit: str | None = None
    language: str | None = None
    nps: int | None = Field(default=None, ge=0, le=10)
    csat: int | None = Field(default=None, ge=1, le=5)
    stars: float | None = Field(default=None, ge=1, le=5)
    author: str | None = None


class FeedbackBatchIn(BaseModel):
    """A pushed batch."""

    source: str = Field(default="api", pattern=SOURCE_NAME.pattern,
                        description="Source name; created on first use (letters, digits and _ . : @ -, "
                                    "at most 200, as /v1/sources takes).")
    audience: Literal["customer", "employee"] = "customer"
    items: list[FeedbackIn] = Field(min_length=1, max_length=10_000)


class ErrorOut(BaseModel):
    """An error answer: what went wrong and, where there is one, the fix."""

    detail: str


class IngestResult(BaseModel):
    """What a push did."""

    source: str
    seen: int
    new: int
    updated: int
    unchanged: int
    dead_lettered: int
    errors: list[str] = Field(default_factory=list)


class TagOut(BaseModel):
    """Tags of an item, naming the models that made them."""

    model_config = ConfigDict(from_attributes=True)

    model: str
    model_version: str
    model_versions: dict[str, Any]
    sentiment: str
    sentiment_score: float
    emotions: list[str]
    cx_emotions: list[str]
    needs: list[str]
    need_scores: dict[str, float]
    touchpoint: str | None = Field(description="Inferred touchpoint (only where the source gave none)")
    touchpoint_confidence: float | None
    topic_id: int | None
    flags: list[str]
    custom: dict[str, Any] | None = Field(default=None, description="custom category heads (models.custom_heads): "
                                          "name -> {labels, scores}; docs/custom.md")
    tagged_at: datetime


class FeedbackOut(BaseModel):
    """A stored item (text PII-redacted, author pseudonymised)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source_id: int
    external_id: str
    audience: str
    channel: str | None
    touchpoint: str | None
    journey_stage: str | None
    segment: str | None
    org_unit: str | None
    language: str | None
    text: str
    nps: int | None
    csat: int | None
    stars: float | None
    author: str | None
    created_at: datetime
    ingested_at: datetime
    extra: dict[str, Any]
    tag: TagOut | None = None


class FeedbackPage(BaseModel):
    """A page of items with the cursor for the next one."""

    items: list[FeedbackOut]
    next_cursor: int | None


class TrendsOut(BaseModel):
    """Trend rows for one dimension."""

    by: str
    interval: str
    audience: str
    rows: list[dict[str, Any]]
    source: str | None = Field(default=None, description="rollups, items, or items+privacy (employee)")
    start: datetime | None = Field(default=None, description="start actually used (employee: a Monday)")
    end: datetime | None = None
    filters: dict[str, str] = Field(default_factory=dict)
    share_method: str = Field(default="cc", description="how share_negative is estimated: cc, acc, pcc or "
                              "pacc (share_negative_cc is always the count); docs/api.md#shares")
    share_rates: dict[str, float] | None = Field(default=None, description="acc/pacc: the dev tpr and fpr used")
    model_versions: list[dict[str, Any]] = Field(
        default_factory=list, description="the tagger versions these items' tags come from, with their share "
        "(more than one while items are re-tagged after a promotion or rollback): docs/api.md#corrections")
    corrected_labels: int = Field(default=0, description="labels of these items that analysts corrected "
                                  "(served in place of the model's): docs/api.md#corrections")
