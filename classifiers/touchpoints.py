"""Zero/few-shot touchpoint inference by similarity to configured touchpoint prototypes.

Each touchpoint is represented by the embeddings of "name: description" and of each example
phrase. An item's score for a touchpoint is the mean of (a) its cosine to the normalised centroid
of those embeddings and (b) its best cosine to any single one, so a taxonomy works with a good
description alone and gets sharper with examples. Below the threshold the item is "unknown".

A touchpoint given by the source (a survey about delivery, a store's comment card) is the
truth: callers keep it and never replace it with an inferred one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from classifiers.config import TouchpointSpec
from classifiers.registry import registry

UNKNOWN = "unknown"


def spec_phrases(spec: TouchpointSpec) -> list[str]:
    """The texts that describe one touchpoint."""
    head = spec.name.replace("_", " ")
    return [f"{head}: {spec.description}" if spec.description else head, *spec.examples]


class TouchpointPrototypes:
    """Touchpoint scoring for one taxonomy and one embedding function."""

    def __init__(
        self,
        specs: Sequence[TouchpointSpec],
        embed: Callable[[list[str]], np.ndarray],
        threshold: float,
    ) -> None:
        if not specs:
            raise ValueError("a touchpoint taxonomy needs at least one TouchpointSpec")
        self.specs = tuple(specs)
        self.threshold = float(threshold)
        phrases: list[str] = []
        owner: list[int] = []
        for i, spec in enumerate(self.specs):
            for phrase in spec_phrases(spec):
                phrases.append(phrase)
                owner.append(i)
        emb = embed(phrases)
        self._phrase_emb = emb
        self._owner = np.asarray(owner)
        centroids = np.stack([emb[self._owner == i].mean(0) for i in range(len(self.specs))])
        self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        self._audience = np.asarray([s.audience for s in self.specs])

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """(n_items, n_touchpoints) similarity scores for L2-normalised item embeddings."""
        centroid = emb @ self._centroids.T
        phrase = emb @ self._phrase_emb.T
        best = np.full_like(centroid, -1.0)
        for i in range(len(self.specs)):
            best[:, i] = phrase[:, self._owner == i].max(1)
        return (centroid + best) / 2

    def audience_scores(self, emb: np.ndarray, audiences: Sequence[str | None] | None = None) -> np.ndarray:
        """`scores` with -inf for the touchpoints outside each item's audience (customer when
        None; all of them for an audience the taxonomy does not know)."""
        scores = self.scores(emb)
        wanted = [(a or "customer") for a in audiences] if audiences is not None else ["customer"] * len(scores)
        allowed = np.asarray(wanted, dtype=object)[:, None] == self._audience[None, :].astype(object)
        allowed[~allowed.any(1)] = True
        return np.where(allowed, scores, -np.inf)

    def assign(
        self, emb: np.ndarray, audiences: Sequence[str | None] | None = None
    ) -> list[tuple[str, float]]:
        """(touchpoint or "unknown", score) per item, among the touchpoints of its audience."""
        if len(emb) == 0:
            return []
        out = []
        for masked in self.audience_scores(emb, audiences):
            best = int(masked.argmax())
            value = float(masked[best])
            out.append((self.specs[best].name if value >= self.threshold else UNKNOWN, value))
        return out


@registry.register("touchpoint.v1")
def build_touchpoints(
    specs: Sequence[TouchpointSpec], embed: Callable[[list[str]], np.ndarray], threshold: float
) -> TouchpointPrototypes:
    return TouchpointPrototypes(specs, embed, threshold)
