"""Models that tag feedback: sentiment, emotions, needs and touchpoint from one encoder pass.

Importing this package is cheap: torch and the models load on first use (`load_tagger`).
"""

from classifiers.config import (
    BANK_TOUCHPOINTS,
    DEFAULT_TOUCHPOINTS,
    TaggerConfig,
    TouchpointSpec,
)
from classifiers.labels import CX_EMOTION_GROUPS, GOEMOTIONS_LABELS, NEED_LABELS, SENTIMENT_LABELS
from classifiers.registry import registry
from classifiers.schemas import TagResult

__all__ = [
    "BANK_TOUCHPOINTS",
    "CX_EMOTION_GROUPS",
    "DEFAULT_TOUCHPOINTS",
    "GOEMOTIONS_LABELS",
    "NEED_LABELS",
    "SENTIMENT_LABELS",
    "TagResult",
    "Tagger",
    "TaggerConfig",
    "TouchpointSpec",
    "load_tagger",
    "registry",
]


def __getattr__(name: str):
    # Tagger and load_tagger pull in torch: import them only when asked for.
    if name in ("Tagger", "load_tagger"):
        from classifiers import tagger

        return getattr(tagger, name)
    raise AttributeError(f"module 'classifiers' has no attribute {name!r}")
