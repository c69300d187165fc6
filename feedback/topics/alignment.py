"""Aligning a refit's topics to the previous version's, so matching topics keep their ids.

A one-to-one matching (Hungarian algorithm, `scipy.optimize.linear_sum_assignment`) maximises
the summed score of matched pairs, where a pair's score combines:

- the cosine between the two topics' centroids (unit mean embeddings), and
- where documents were in both fits, the Jaccard overlap of their documents (the share of
  documents the two topics have in common): the most direct evidence that a topic is the same.

A pair is accepted only if it is similar enough (`min_similarity` on the centroids, or
`min_overlap` on the documents); the rest of the new topics are new, and the rest of the old
ones vanished (the taxonomy retires them; their ids are never reused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_SIMILARITY = 0.8
MIN_OVERLAP = 0.3


@dataclass(frozen=True)
class Match:
    """A new topic matched to an old one, with the evidence."""

    new: int
    old: int
    similarity: float
    overlap: float | None


def overlap_matrix(
    old_labels: np.ndarray, new_labels: np.ndarray, n_old: int, n_new: int
) -> np.ndarray:
    """Jaccard overlap of documents between old topic i and new topic j, over shared documents.

    `old_labels[k]` and `new_labels[k]` are the same document's topic in each fit (-1: outlier
    or absent).
    """
    both = (old_labels >= 0) & (new_labels >= 0)
    inter = np.zeros((n_old, n_new), dtype=np.float64)
    np.add.at(inter, (old_labels[both], new_labels[both]), 1.0)
    old_sizes = np.bincount(old_labels[old_labels >= 0], minlength=n_old).astype(np.float64)
    new_sizes = np.bincount(new_labels[new_labels >= 0], minlength=n_new).astype(np.float64)
    union = old_sizes[:, None] + new_sizes[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def align(
    old_centroids: np.ndarray,
    new_centroids: np.ndarray,
    *,
    overlap: np.ndarray | None = None,
    min_similarity: float = MIN_SIMILARITY,
    min_overlap: float = MIN_OVERLAP,
) -> list[Match]:
    """The best one-to-one matching of new topics to old ones (see the module docstring)."""
    n_old, n_new = len(old_centroids), len(new_centroids)
    if n_old == 0 or n_new == 0:
        return []
    a = old_centroids / np.maximum(np.linalg.norm(old_centroids, axis=1, keepdims=True), 1e-12)
    b = new_centroids / np.maximum(np.linalg.norm(new_centroids, axis=1, keepdims=True), 1e-12)
    similarity = a @ b.T
    if overlap is not None and overlap.shape != (n_old, n_new):
        raise ValueError(f"overlap is {overlap.shape}, expected {(n_old, n_new)}")
    score = similarity if overlap is None else 0.5 * similarity + 0.5 * overlap
    acceptable = similarity >= min_similarity
    if overlap is not None:
        acceptable |= overlap >= min_overlap
    # Pairs that may not match score far below any acceptable one, so the assignment never
    # trades an acceptable pair for one it would reject anyway.
    cost = np.where(acceptable, -score, 10.0)
    rows, cols = linear_sum_assignment(cost)
    matches = []
    for i, j in zip(rows, cols, strict=True):
        if acceptable[i, j]:
            matches.append(
                Match(
                    new=int(j),
                    old=int(i),
                    similarity=float(similarity[i, j]),
                    overlap=None if overlap is None else float(overlap[i, j]),
                )
            )
    return sorted(matches, key=lambda m: m.new)
