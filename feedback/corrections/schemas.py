"""Request and response shapes of the corrections and model-version endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from classifiers.custom import CUSTOM_KIND

# the built-in kinds, or custom:NAME for a custom category head (`models.custom_heads`)
KIND_PATTERN = rf"^(sentiment|emotion|need|touchpoint|topic|{CUSTOM_KIND})$"
Kind = Annotated[str, Field(pattern=KIND_PATTERN, examples=["sentiment", "custom:product_area"])]


class CorrectionIn(BaseModel):
    """One item's corrected label: `label` for sentiment, touchpoint (a name of the taxonomy),
    topic (its id) and a single-label custom category; `labels` (the whole set) for emotion,
    need and a multi-label custom category."""

    kind: Kind
    label: str | None = Field(default=None, max_length=1000, examples=["negative"])
    labels: list[str] | None = Field(default=None, max_length=28, examples=[["functional", "social"]])

    @model_validator(mode="after")
    def _one_of(self) -> CorrectionIn:
        if (self.label is None) == (self.labels is None):
            raise ValueError("give `label` (sentiment, touchpoint, topic, a single-label custom category) or "
                             "`labels` (emotion, need, a multi-label custom category), not both")
        return self


class BatchCorrectionIn(CorrectionIn):
    """A correction in a batch: the item by `item_id`, or by `source` and `external_id`."""

    item_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    source: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, max_length=255)


class CorrectionBatchIn(BaseModel):
    corrections: list[BatchCorrectionIn] = Field(min_length=1, max_length=1000)


class CorrectionOut(BaseModel):
    id: int
    item_id: int
    audience: str
    kind: str
    label: str = Field(description="emotion and need: the set, '|'-joined ('' for none)")
    labels: list[str] | None = None
    model_label: str | None = Field(description="what the model said when corrected")
    held_out: bool = Field(description="in the evaluation slice adaptation never trains on")
    created_by: str
    created_at: datetime
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None


class CorrectionsOut(BaseModel):
    corrections: list[CorrectionOut]
    next_cursor: int | None = None


class SuggestionOut(BaseModel):
    item_id: int
    audience: str
    text: str
    kind: str
    model_label: str | None
    uncertainty: float = Field(description="1 - (top probability - second): near 1, the model is torn")
    reason: str


class SuggestionsOut(BaseModel):
    kind: str
    suggestions: list[SuggestionOut]
    method: str


class ModelVersionOut(BaseModel):
    name: str
    status: str
    live: bool
    base: str | None = None
    created_at: datetime | None = None
    promoted_at: datetime | None = None
    n_train: int = 0
    n_held_out: int = 0
    scores: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None


class ModelsOut(BaseModel):
    live: str
    versions: list[ModelVersionOut]
    promotions: list[dict[str, Any]]
