"""The domains the service is judged on, each with a dev split (choosing) and a test split
(reporting), and the per-domain measures every choice and every card reads.

| domain             | dev (choose, calibrate)                 | test (report)                  |
|--------------------|-----------------------------------------|--------------------------------|
| tweets             | SemEval non-test tweets (20%) + TweetEval sentiment val | SemEval twitter-2016test |
| product_reviews    | Amazon reviews, dev slice               | Amazon reviews, test slice     |
| employee_reviews   | Glassdoor headlines, dev slice          | Glassdoor headlines, test slice |
| employee_pros_cons | Glassdoor pros (+) / cons (-), dev      | the same, test slice (binary)  |
| movie              | SST-2 dev phrases (binary)              | SST-5 test sentences, 3 classes |
| reddit             | GoEmotions dev, sentiment grouping      | GoEmotions test, same grouping |

SST-5's own dev split is not used: it holds the SST-2 test sentences.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from classifiers.labels import SENTIMENT_LABELS
from classifiers.training import data

Loader = Callable[[], data.Split]


def _tweets_dev() -> data.Split:
    sem = data.semeval_tweets("dev")
    tw = data.tweeteval("sentiment", "val")
    return data.Split(sem.texts + tw.texts, sem.labels + [SENTIMENT_LABELS[i] for i in tw.labels])


DEV: dict[str, Loader] = {
    "tweets": _tweets_dev,
    "product_reviews": lambda: data.amazon_reviews("dev"),
    "employee_reviews": lambda: data.glassdoor("dev"),
    "employee_pros_cons": lambda: data.glassdoor_pros_cons("dev"),
    "movie": lambda: data.sst2("dev"),
    "reddit": lambda: data.goemotions_sentiment("dev"),
}
TEST: dict[str, Loader] = {
    "tweets": lambda: data.semeval_tweets("test"),
    "product_reviews": lambda: data.amazon_reviews("test"),
    "employee_reviews": lambda: data.glassdoor("test"),
    "employee_pros_cons": lambda: data.glassdoor_pros_cons("test"),
    "movie": lambda: data.sst5("test"),
    "reddit": lambda: data.goemotions_sentiment("test"),
}
# The feedback domains the product exists for (the targets name these).
FEEDBACK_DOMAINS = ("tweets", "product_reviews", "employee_reviews")


def is_binary(labels: list[str]) -> bool:
    """A split labelled only negative/positive (SST-2 phrases, pros/cons)."""
    return "neutral" not in set(labels)


def predict_labels(probs: np.ndarray, binary: bool) -> np.ndarray:
    """Label ids: argmax, or for a binary split the larger of p(negative) and p(positive)."""
    if binary:
        return np.where(probs[:, 2] > probs[:, 0], 2, 0)
    return probs.argmax(1)


def label_ids(labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    return np.array([index[label] for label in labels])


def macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    """Macro-F1 over the classes present in `gold`."""
    scores = []
    for c in np.unique(gold):
        tp = float(((pred == c) & (gold == c)).sum())
        denom = float((pred == c).sum() + (gold == c).sum())
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def recall(pred: np.ndarray, gold: np.ndarray, c: int) -> float:
    g = gold == c
    return float((pred[g] == c).mean()) if g.any() else float("nan")


def macro_recall(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean([recall(pred, gold, c) for c in np.unique(gold)]))


def _calibration_gap(score: np.ndarray, outcome: np.ndarray, bins: int, *, right_closed: bool) -> float:
    """Mean over equal-width bins (weighted by their share of items) of |mean score - rate of
    the outcome|; bins are (lo, hi] when `right_closed`, else [lo, hi) with the last [lo, 1]."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        if right_closed:
            m = (score > lo) & (score <= hi)
        else:
            m = (score >= lo) & ((score < hi) if i < bins - 1 else (score <= hi))
        if m.any():
            total += m.mean() * abs(score[m].mean() - outcome[m].mean())
    return float(total)


def ece(probs: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top label's probability (15 equal-width bins)."""
    hit = (probs.argmax(1) == gold).astype(float)
    return _calibration_gap(probs.max(1), hit, bins, right_closed=True)


def negative_ece(probs: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """Calibration error of p(negative) against being negative (what shares are built on)."""
    return _calibration_gap(probs[:, 0], (gold == 0).astype(float), bins, right_closed=False)


def is_binary_ids(gold: np.ndarray) -> bool:
    """`is_binary` for label ids (no neutral: id 1)."""
    return not bool((gold == 1).any())
