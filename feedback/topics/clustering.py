"""Grouping documents into topics: find dense groups on a sample, assign everyone by centroid.

BERTopic's default (UMAP + HDBSCAN over every document) leaves 30-50% of real feedback as
outliers, its topic count swings from run to run, and UMAP over 100k documents does not fit a
3-minute budget on two cores. This setup keeps what HDBSCAN is good at (finding how many
dense groups there are, and where) and drops the rest:

1. UMAP (cosine, 5 dimensions, fixed seed) + HDBSCAN on a sample of at most `sample_size`
   documents find the dense groups (none may hold more than `max_cluster_share` of the
   sample); each group's centroid is the mean of its members'
   *original* embeddings (not the UMAP coordinates, which change from fit to fit).
2. On a refit, the previous version's centroids are the seeds (`anchors`); a group found in
   step 1 becomes a new topic only if no anchor is close to it (`novelty_similarity`) and its
   documents are clearly better served by it than by their nearest anchor (`novelty_gain`).
   This is what keeps topics and their ids stable across refits.
3. Every document goes to its nearest seed by cosine; seeds that end up with fewer than
   `min_topic_size` documents are dropped (their documents go to the next nearest). Each
   topic's centroid is then the mean of its documents, and every document goes to its
   nearest centroid once more: so `transform` gives a fitted document the topic it was fitted
   in, and the next refit's seeds follow the drift of each topic.
4. A document is an outlier only if its best cosine is below the outlier threshold: the
   `outlier_quantile` quantile of the best similarities, and never above `outlier_floor`. So
   outliers stay below that share by construction (5% by default), not 30-50%.

`transform` for new documents is the same nearest-centroid rule with the same threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClusteringParams:
    """How topics are found; every value is saved with the model version that used it."""

    sample_size: int = 15_000
    n_neighbors: int = 15
    n_components: int = 5
    min_cluster_size: int | None = None  # None: adaptive, `min_cluster_share` of the sample
    min_cluster_share: float = 0.005
    min_cluster_floor: int = 10
    min_samples: int = 3
    max_cluster_share: float = 0.05  # HDBSCAN may not pick a group this big: its parts instead
    novelty_similarity: float = 0.8
    novelty_gain: float = 0.05
    outlier_quantile: float = 0.05
    outlier_floor: float = 0.45
    random_state: int = 42

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ClusteringParams:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def cluster_size_for(self, n_sample: int) -> int:
        """HDBSCAN's min_cluster_size for a sample of `n_sample` documents."""
        if self.min_cluster_size is not None:
            return self.min_cluster_size
        return max(self.min_cluster_floor, int(round(self.min_cluster_share * n_sample)))


@dataclass
class Clustering:
    """The result: a topic index per document (-1 outlier) and one unit centroid per topic."""

    labels: np.ndarray
    centroids: np.ndarray
    similarity: np.ndarray  # each document's cosine to its nearest centroid
    outlier_threshold: float
    seeds_from_anchors: list[int | None] = field(default_factory=list)  # anchor row per topic
    found_groups: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_topics(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def outlier_share(self) -> float:
        return float((self.labels < 0).mean()) if self.labels.size else 0.0


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def group_centroids(embeddings: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Unit mean embedding of each label 0..n-1 (labels < 0 ignored)."""
    sums = np.zeros((n, embeddings.shape[1]), dtype=np.float64)
    keep = labels >= 0
    np.add.at(sums, labels[keep], embeddings[keep])
    return unit(sums.astype(np.float32))


def nearest(
    embeddings: np.ndarray, centroids: np.ndarray, chunk: int = 16_384
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid by cosine, and that cosine, for each (unit) embedding."""
    n = embeddings.shape[0]
    best = np.empty(n, dtype=np.int64)
    sim = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk):
        scores = embeddings[start : start + chunk] @ centroids.T
        best[start : start + chunk] = scores.argmax(1)
        sim[start : start + chunk] = scores.max(1)
    return best, sim


def find_groups(
    embeddings: np.ndarray, params: ClusteringParams
) -> tuple[np.ndarray, dict[str, float]]:
    """UMAP + HDBSCAN on a sample: the unit centroids of the dense groups found."""
    import time

    from hdbscan import HDBSCAN
    from umap import UMAP

    rng = np.random.default_rng(params.random_state)
    n = embeddings.shape[0]
    sample = (
        np.sort(rng.choice(n, params.sample_size, replace=False))
        if n > params.sample_size
        else np.arange(n)
    )
    x = embeddings[sample]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    reducer = UMAP(
        n_neighbors=min(params.n_neighbors, len(sample) - 1),
        n_components=params.n_components,
        min_dist=0.0,
        metric="cosine",
        random_state=params.random_state,
        low_memory=True,
        n_jobs=1,
    )
    reduced = reducer.fit_transform(x)
    timings["umap_s"] = time.perf_counter() - started
    started = time.perf_counter()
    size = params.cluster_size_for(len(sample))
    # Without a cap, HDBSCAN's excess-of-mass picks one giant group on varied corpora (most of
    # 100k mixed texts in one topic); capped, it picks that group's parts.
    biggest = max(10 * size, int(params.max_cluster_share * len(sample)))
    labels = (
        HDBSCAN(
            min_cluster_size=size,
            min_samples=min(params.min_samples, size),
            max_cluster_size=biggest,
            core_dist_n_jobs=1,
        )
        .fit(reduced)
        .labels_
    )
    timings["hdbscan_s"] = time.perf_counter() - started
    k = int(labels.max()) + 1
    return group_centroids(x, labels, k), timings


def novel_groups(
    embeddings: np.ndarray, groups: np.ndarray, anchors: np.ndarray, params: ClusteringParams
) -> list[int]:
    """The found groups that are new topics: far from every anchor, and much better at their docs.

    A group is new if no anchor has cosine >= `novelty_similarity` to its centroid, and the
    documents nearest to it are on average at least `novelty_gain` more similar to it than to
    their nearest anchor. The second test keeps a resample's slightly shifted copy of an
    existing topic from being added as a new one (which would take documents from the old one).
    """
    closest = (groups @ anchors.T).max(1)
    candidates = np.flatnonzero(closest < params.novelty_similarity)
    if not candidates.size:
        return []
    best_group, group_sim = nearest(embeddings, groups)
    _, anchor_sim = nearest(embeddings, anchors)
    novel = []
    for row in candidates:
        members = best_group == row
        if (
            members.any()
            and float((group_sim[members] - anchor_sim[members]).mean()) >= params.novelty_gain
        ):
            novel.append(int(row))
    return novel


def cluster(
    embeddings: np.ndarray,
    params: ClusteringParams | None = None,
    *,
    anchors: np.ndarray | None = None,
) -> Clustering:
    """Topics for `embeddings` (unit rows), seeded by `anchors` (previous centroids) if given."""
    params = params or ClusteringParams()
    embeddings = unit(embeddings)
    n = embeddings.shape[0]
    if n < 2 * params.min_cluster_floor:
        raise ValueError(
            f"{n} documents are too few to find topics (at least "
            f"{2 * params.min_cluster_floor} are needed)"
        )
    groups, timings = find_groups(embeddings, params)
    seeds: list[np.ndarray] = []
    origin: list[int | None] = []
    if anchors is not None and len(anchors):
        anchors = unit(anchors)
        seeds.extend(anchors)
        origin.extend(range(len(anchors)))
        if len(groups):
            for row in novel_groups(embeddings, groups, anchors, params):
                seeds.append(groups[row])
                origin.append(None)
    else:
        seeds.extend(groups)
        origin.extend([None] * len(groups))
    if not seeds:  # HDBSCAN found no structure: one topic of everything
        seeds, origin = [unit(embeddings.mean(0, keepdims=True))[0]], [None]
    centroids = np.stack(seeds).astype(np.float32)
    sample_n = min(n, params.sample_size)
    min_topic_size = max(2, int(math.ceil(params.cluster_size_for(sample_n) * n / sample_n)))
    labels, sim = nearest(embeddings, centroids)
    # Drop seeds too small to be a topic, smallest first, until every topic is big enough.
    while len(centroids) > 1:
        counts = np.bincount(labels, minlength=len(centroids))
        small = np.flatnonzero(counts < min_topic_size)
        if not small.size:
            break
        drop = small[np.argsort(counts[small])][: max(1, small.size // 2)]
        keep = np.setdiff1d(np.arange(len(centroids)), drop)
        centroids = centroids[keep]
        origin = [origin[i] for i in keep]
        labels, sim = nearest(embeddings, centroids)
    # The topic's centroid is the mean of its documents (so the next refit follows drift), and
    # the final topics are nearest to those centroids: `assign` gives a fitted document its topic.
    centroids = group_centroids(embeddings, labels, len(centroids))
    labels, sim = nearest(embeddings, centroids)
    threshold = min(params.outlier_floor, float(np.quantile(sim, params.outlier_quantile)))
    labels = np.where(sim < threshold, -1, labels)
    present = np.flatnonzero(np.bincount(labels[labels >= 0], minlength=len(centroids)))
    if present.size < len(centroids):  # a topic whose every document became an outlier
        remap = np.full(len(centroids), -1)
        remap[present] = np.arange(present.size)
        labels = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)
        origin = [origin[i] for i in present]
        centroids = centroids[present]
    return Clustering(
        labels=labels,
        centroids=centroids,
        similarity=sim,
        outlier_threshold=threshold,
        seeds_from_anchors=origin,
        found_groups=len(groups),
        timings=timings,
    )


def assign(
    embeddings: np.ndarray, centroids: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-centroid topics for new documents (-1 below `threshold`), and their cosine."""
    if embeddings.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    labels, sim = nearest(unit(embeddings), unit(centroids))
    return np.where(sim < threshold, -1, labels), sim
