"""What the tagger returns for one feedback item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TagResult:
    """Tags for one text. Scores are probabilities unless said otherwise."""

    sentiment: str  # negative | neutral | positive
    sentiment_score: float  # p_positive - p_negative, in [-1, 1]
    sentiment_probs: dict[str, float]
    emotions: dict[str, float]  # all 28 GoEmotions labels -> probability
    emotion_labels: list[str]  # labels above their tuned thresholds; ["neutral"] if none
    cx_emotions: list[str]  # CX groups of emotion_labels (labels.CX_EMOTION_GROUPS)
    needs: list[str]  # subset of functional | emotional | social
    need_scores: dict[str, float]
    touchpoint: str | None  # best touchpoint for the item's audience, or "unknown"
    touchpoint_confidence: float  # cosine similarity to that touchpoint's prototype
    flags: list[str] = field(default_factory=list)
    embedding: np.ndarray | None = None  # 384-d L2-normalised sentence embedding, when asked
    custom: dict[str, list[str]] = field(default_factory=dict)  # custom head name -> labels
    custom_scores: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> label -> p

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        """JSON-ready dict (the embedding as a list only when asked)."""
        out = {
            "sentiment": self.sentiment,
            "sentiment_score": self.sentiment_score,
            "sentiment_probs": self.sentiment_probs,
            "emotions": self.emotions,
            "emotion_labels": self.emotion_labels,
            "cx_emotions": self.cx_emotions,
            "needs": self.needs,
            "need_scores": self.need_scores,
            "touchpoint": self.touchpoint,
            "touchpoint_confidence": self.touchpoint_confidence,
            "flags": self.flags,
            "custom": self.custom,
            "custom_scores": self.custom_scores,
        }
        if with_embedding and self.embedding is not None:
            out["embedding"] = self.embedding.tolist()
        return out
