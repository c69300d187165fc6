"""Label sets and groupings shared by training, evaluation and the tagger.

Pure data, no model code: importing this module is free.
"""

from __future__ import annotations

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

# GoEmotions' 28 labels, in the order of `original_labels.txt` (ids are line numbers).
GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip

# Ekman grouping, as in the GoEmotions paper (Demszky et al. 2020, table 2 / ekman_mapping.json).
EKMAN_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism",
        "relief", "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}  # fmt: skip

# Sentiment grouping, as in the GoEmotions paper (sentiment_mapping.json); "ambiguous" is
# left out of sentiment training because it says nothing about polarity.
GOEMOTIONS_SENTIMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "positive": (
        "amusement", "excitement", "joy", "love", "desire", "optimism", "caring", "pride",
        "admiration", "gratitude", "relief", "approval",
    ),
    "negative": (
        "fear", "nervousness", "remorse", "embarrassment", "disappointment", "sadness",
        "grief", "disgust", "anger", "annoyance", "disapproval",
    ),
    "ambiguous": ("realization", "surprise", "curiosity", "confusion"),
    "neutral": ("neutral",),
}  # fmt: skip

# The customer/employee-experience grouping of the 28 GoEmotions labels. It follows what a CX
# team designs out (frustration, confusion, anxiety, disappointment, sadness) and designs in
# (delight, gratitude, trust, surprise). Every GoEmotions label belongs to exactly one group;
# a few labels that carry little CX meaning on their own (amusement, curiosity, desire,
# realization, pride, remorse, embarrassment, love) are put where a CX reader would expect
# them and the choice is documented in model_cards/emotions.md.
CX_EMOTION_GROUPS: dict[str, tuple[str, ...]] = {
    "frustration": ("anger", "annoyance", "disapproval", "disgust"),
    "confusion": ("confusion", "curiosity"),
    "anxiety": ("fear", "nervousness"),
    "disappointment": ("disappointment", "remorse", "embarrassment"),
    "sadness": ("sadness", "grief"),
    "delight": ("joy", "amusement", "excitement", "love", "admiration", "pride", "desire"),
    "gratitude": ("gratitude", "caring"),
    "trust": ("approval", "relief", "optimism"),
    "surprise": ("surprise", "realization"),
    "neutral": ("neutral",),
}

CX_GROUP_OF: dict[str, str] = {
    label: group for group, labels in CX_EMOTION_GROUPS.items() for label in labels
}

NEED_LABELS: tuple[str, ...] = ("functional", "emotional", "social")

# TweetEval emotion (an out-of-domain check): its 4 classes scored as the summed probability of
# the GoEmotions labels that carry them.
TWEETEVAL_EMOTION_LABELS: tuple[str, ...] = ("anger", "joy", "optimism", "sadness")
TWEETEVAL_EMOTION_MAP: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disgust", "disapproval"),
    "joy": ("joy", "amusement", "excitement", "love", "admiration", "gratitude"),
    "optimism": ("optimism", "desire", "caring", "approval", "relief", "pride"),
    "sadness": (
        "sadness", "disappointment", "grief", "remorse", "embarrassment", "fear", "nervousness",
    ),
}  # fmt: skip


def cx_emotions(emotion_labels: list[str]) -> list[str]:
    """CX groups of the given GoEmotions labels, in the order of CX_EMOTION_GROUPS."""
    present = {CX_GROUP_OF[label] for label in emotion_labels if label in CX_GROUP_OF}
    groups = [group for group in CX_EMOTION_GROUPS if group in present]
    if len(groups) > 1 and "neutral" in groups:
        groups.remove("neutral")
    return groups or ["neutral"]


assert set(CX_GROUP_OF) == set(GOEMOTIONS_LABELS), "every GoEmotions label needs one CX group"
assert sum(len(v) for v in CX_EMOTION_GROUPS.values()) == len(GOEMOTIONS_LABELS)
