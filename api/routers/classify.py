"""Preview the taggers on texts without storing anything."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import TaggerDep

router = APIRouter(prefix="/v1", tags=["classify"])


class ClassifyIn(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=256)
    audience: Literal["customer", "employee"] = "customer"


@router.post("/classify")
def classify(body: ClassifyIn, tagger: TaggerDep) -> dict[str, Any]:
    """Sentiment, emotions, needs and touchpoint for each text (nothing is stored)."""
    results = tagger.tag(body.texts, audiences=[body.audience] * len(body.texts))
    return {
        "model": tagger.name,
        "model_versions": tagger.model_versions,
        "results": [
            {
                "text": text,
                "sentiment": r.sentiment,
                "sentiment_score": round(float(r.sentiment_score), 4),
                "sentiment_probs": {k: round(float(v), 4) for k, v in r.sentiment_probs.items()},
                "emotions": r.emotion_labels,
                "cx_emotions": r.cx_emotions,
                "needs": r.needs,
                "need_scores": {k: round(float(v), 4) for k, v in r.need_scores.items()},
                "touchpoint": r.touchpoint,
                "touchpoint_confidence": round(float(r.touchpoint_confidence), 4),
                "flags": r.flags,
            }
            for text, r in zip(body.texts, results, strict=True)
        ],
    }
