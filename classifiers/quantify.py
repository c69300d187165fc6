"""Honest shares: how many items of a group carry a label, estimated rather than counted.

Counting the items a classifier labels negative (classify-and-count, CC) is biased whenever the
classifier's errors are not symmetric: a model that reads 30% of negative tweets as neutral
under-reports the share negative by that much, in every trend. The estimators here are the
standard quantification methods (Forman 2008; Bella et al. 2010; QuaPy implements the same):

- ``cc``:   share of items whose label is L;
- ``acc``:  CC adjusted by the classifier's true and false positive rates, measured on dev:
            (cc - fpr) / (tpr - fpr);
- ``pcc``:  mean calibrated probability of L;
- ``pacc``: PCC adjusted the same way, with tpr/fpr the mean probability of L over dev items
            that do / do not carry L.

All four are linear in sums a database already keeps per cell (counts and probability sums),
so they work on rollups and add up across days and weeks. Which one a label uses is chosen on
dev splits by leave-one-domain-out (`classifiers.training.calibrate`) and stored with the heads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

METHODS = ("cc", "acc", "pcc", "pacc")
# Below this tpr - fpr the adjustment would only amplify noise: the raw share is kept.
MIN_SEPARATION = 0.05


@dataclass(frozen=True)
class ShareEstimator:
    """How the share of one label is estimated, with the rates measured on dev."""

    label: str
    method: str = "cc"
    tpr: float = 1.0  # acc: P(label | has it); pacc: mean p(label) over items that have it
    fpr: float = 0.0  # acc: P(label | has it not); pacc: mean p(label) over the others

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown share method {self.method!r}; methods: {', '.join(METHODS)}")

    @property
    def uses_probabilities(self) -> bool:
        return self.method in ("pcc", "pacc")

    def estimate(self, *, n: float, count: float, prob_sum: float) -> float | None:
        """The estimated share over `n` items, from how many got the label (`count`) and the
        sum of their calibrated probabilities of it (`prob_sum`); None when `n` is 0."""
        if not n:
            return None
        raw = prob_sum / n if self.uses_probabilities else count / n
        if self.method in ("cc", "pcc"):
            return min(1.0, max(0.0, raw))
        return adjust(raw, self.tpr, self.fpr)

    def interval(self, *, n: float, count: float, prob_sum: float, prob_sumsq: float,
                 z: float = 1.959964) -> tuple[float | None, float | None]:  # fmt: skip
        """A normal-approximation 95% interval: sampling of items only (the dev rates are taken
        as known), widened by the adjustment's 1 / (tpr - fpr)."""
        est = self.estimate(n=n, count=count, prob_sum=prob_sum)
        if est is None or n < 2:
            return None, None
        if self.uses_probabilities:
            mean = prob_sum / n
            var = max(0.0, (prob_sumsq - n * mean * mean) / (n - 1))
        else:
            p = count / n
            var = p * (1 - p) * n / (n - 1)
        half = z * math.sqrt(var / n)
        if self.method in ("acc", "pacc"):
            half /= max(self.tpr - self.fpr, MIN_SEPARATION)
        return max(0.0, est - half), min(1.0, est + half)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "method": self.method, "tpr": round(self.tpr, 6),
                "fpr": round(self.fpr, 6)}  # fmt: skip

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ShareEstimator:
        return cls(label=raw["label"], method=raw.get("method", "cc"),
                   tpr=float(raw.get("tpr", 1.0)), fpr=float(raw.get("fpr", 0.0)))  # fmt: skip


def adjust(raw: float, tpr: float, fpr: float) -> float:
    """(raw - fpr) / (tpr - fpr), clipped to [0, 1]; the raw share when the rates do not
    separate (tpr - fpr under MIN_SEPARATION)."""
    if tpr - fpr < MIN_SEPARATION:
        return min(1.0, max(0.0, raw))
    return min(1.0, max(0.0, (raw - fpr) / (tpr - fpr)))


def rates(scores: Any, gold: Any) -> tuple[float, float]:
    """(mean score over gold items, mean score over the others): tpr/fpr for `acc` when the
    scores are 0/1 decisions, for `pacc` when they are probabilities."""
    import numpy as np

    s, g = np.asarray(scores, float), np.asarray(gold, bool)
    tpr = float(s[g].mean()) if g.any() else 1.0
    fpr = float(s[~g].mean()) if (~g).any() else 0.0
    return tpr, fpr


# What the service reports when no estimator was fitted with the heads (older weights).
COUNT_NEGATIVE = ShareEstimator("negative", "cc")


def share_estimator(meta: dict[str, Any], label: str = "negative") -> ShareEstimator:
    """The estimator stored in a heads.json (`quantification` block), else classify-and-count."""
    raw = (meta.get("quantification") or {}).get(label)
    return ShareEstimator.from_json(raw) if raw else ShareEstimator(label, "cc")


_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # as classifiers.tagger.WEIGHTS_DIR


def load_share_estimator(heads_dir: str | Path | None = None, label: str = "negative") -> ShareEstimator:
    """The estimator of `label` stored with the heads in `heads_dir` (None: the shipped heads).

    Reads heads.json only (no model, no torch), so analytics can call it per request; cached by
    the file's modification time, so heads replaced under a running service are picked up. A
    missing or unreadable heads.json falls back to classify-and-count, as older weights do.
    """
    path = Path(heads_dir) / "heads.json" if heads_dir else _WEIGHTS_DIR / "heads.json"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return ShareEstimator(label, "cc")
    return _read_estimator(str(path), stamp, label)


@lru_cache(maxsize=16)
def _read_estimator(path: str, stamp: int, label: str) -> ShareEstimator:
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ShareEstimator(label, "cc")
    return share_estimator(meta, label)
