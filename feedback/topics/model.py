"""The topic model: BERTopic over the shared encoder's cached embeddings, saved as safetensors.

BERTopic is used with its "manual" pipeline: its dimensionality reduction and cluster models
are BERTopic's own empty ones, and the topic of each document comes from
`feedback.topics.clustering` (see there why). BERTopic then does what it is best at: c-TF-IDF
keywords without stop words, topic embeddings, `transform` for new documents (cosine to the
topic embeddings), and a safetensors save with a pointer to the embedding model. Outliers are
not given to BERTopic, so no pseudo-topic -1 competes in `transform`; a document whose best
cosine is below the fit's outlier threshold is an outlier.

Documents are never encoded here: embeddings are passed in (item_embeddings, or a benchmark's
cache). The model records which encoder made them and refuses others.

On disk, one version is a directory:
    bertopic/            BERTopic's safetensors save (topics.json, config.json,
                         topic_embeddings.safetensors, ctfidf.safetensors, ctfidf_config.json)
    topic_model.json     the embedding model pointer, outlier threshold, clustering params, sizes
Nothing is pickled: loading reads JSON and safetensors only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedback.topics.clustering import Clustering, ClusteringParams, cluster, unit
from feedback.topics.labels import (
    STOP_WORDS,
    clean,
    deduplicate,
    distinct_keywords,
    label_for,
    phrase_scores,
    rerank_candidates,
)

FORMAT = "voc-topic-model/1"
N_KEYWORDS = 10
CENTRAL_DOCS = 200  # documents per topic read for its label
QUOTE_CANDIDATES = 12


@dataclass
class TopicSummary:
    """What a fit says about one topic (by its model topic number)."""

    topic: int
    label: str
    keywords: list[str]
    size: int
    quote_candidates: list[int] = field(
        default_factory=list
    )  # document indices, most central first

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "label": self.label,
            "keywords": self.keywords,
            "size": self.size,
        }


def _vectorizer(n_docs: int) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        stop_words=sorted(STOP_WORDS),
        ngram_range=(1, 2),
        min_df=2 if n_docs < 10_000 else 5,
        max_features=200_000,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z'-]*[a-zA-Z]\b",
    )


def _empty_bertopic(n_docs: int) -> Any:
    from bertopic import BERTopic
    from bertopic.cluster import BaseCluster
    from bertopic.dimensionality import BaseDimensionalityReduction
    from bertopic.vectorizers import ClassTfidfTransformer

    return BERTopic(
        embedding_model=None,
        umap_model=BaseDimensionalityReduction(),
        hdbscan_model=BaseCluster(),
        vectorizer_model=_vectorizer(n_docs),
        ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
        top_n_words=N_KEYWORDS * 2,
        calculate_probabilities=False,
        verbose=False,
    )


class TopicModel:
    """A fitted or loaded topic model: BERTopic plus what it needs to assign new documents."""

    def __init__(self, bertopic: Any, meta: dict[str, Any]) -> None:
        self.bertopic = bertopic
        self.meta = meta

    @property
    def embedding_model(self) -> str:
        return str(self.meta["embedding_model"])

    @property
    def outlier_threshold(self) -> float:
        return float(self.meta["outlier_threshold"])

    @property
    def n_topics(self) -> int:
        return int(self.meta["n_topics"])

    @property
    def centroids(self) -> np.ndarray:
        """Unit topic embeddings, row = model topic number."""
        return unit(np.asarray(self.bertopic.topic_embeddings_, dtype=np.float32))

    def topics(self) -> dict[int, dict[str, Any]]:
        """Label, keywords and size per model topic number, as fitted."""
        return {int(k): v for k, v in self.meta["topics"].items()}

    def transform(self, docs: list[str], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model topic per document (-1: outlier) and its cosine, through BERTopic's transform."""
        if len(docs) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        embeddings = unit(embeddings)
        if embeddings.shape[1] != self.centroids.shape[1]:
            raise ValueError(
                f"embeddings have {embeddings.shape[1]} dimensions, the topic model "
                f"{self.centroids.shape[1]} ({self.embedding_model}); refit the topics"
            )
        predictions, similarity = self.bertopic.transform(list(docs), embeddings)
        predictions = np.asarray(predictions, dtype=np.int64)
        similarity = np.asarray(similarity, dtype=np.float32).reshape(-1)
        return np.where(similarity < self.outlier_threshold, -1, predictions), similarity

    def save(self, path: Path) -> Path:
        """Write BERTopic's safetensors save and topic_model.json under `path` (never pickle)."""
        path.mkdir(parents=True, exist_ok=True)
        vectorizer = self.bertopic.vectorizer_model
        if getattr(vectorizer, "vocabulary_", None) is not None:  # numpy ints are not JSON
            vectorizer.vocabulary_ = {word: int(i) for word, i in vectorizer.vocabulary_.items()}
        self.bertopic.save(
            path / "bertopic",
            serialization="safetensors",
            save_ctfidf=True,
            save_embedding_model=self.embedding_model,
        )
        (path / "topic_model.json").write_text(json.dumps(self.meta, indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> TopicModel:
        """Load a saved version (JSON and safetensors only; no encoder is loaded)."""
        from bertopic import _bertopic, _save_utils

        meta = json.loads((path / "topic_model.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path} holds topic model format {meta.get('format')!r}, not {FORMAT!r}"
            )
        topics, params, tensors, ctfidf_tensors, ctfidf_config, _ = _save_utils.load_local_files(
            path / "bertopic"
        )
        # BERTopic.load would try to build a SentenceTransformer from the pointer; topics never
        # encode documents (embeddings are stored per item), so the pointer stays a record.
        params.pop("embedding_model", None)
        model = _bertopic._create_model_from_files(
            topics, params, tensors, ctfidf_tensors, ctfidf_config, None, warn_no_backend=False
        )
        return cls(model, meta)


@dataclass
class FitResult:
    """A fitted model, with each training document's model topic (-1: outlier)."""

    model: TopicModel
    labels: np.ndarray
    similarity: np.ndarray
    summaries: dict[int, TopicSummary]
    clustering: Clustering
    anchor_of_topic: dict[int, int]  # model topic -> anchor row it was seeded from
    timings: dict[str, float]


def fit(
    docs: list[str],
    embeddings: np.ndarray,
    *,
    embedding_model: str,
    params: ClusteringParams | None = None,
    anchors: np.ndarray | None = None,
    phrase_embedder: Callable[[list[str]], np.ndarray] | None = None,
) -> FitResult:
    """Fit topics on `docs` with their cached `embeddings`; `anchors` seed a refit."""
    import logging

    logging.getLogger("BERTopic").setLevel(logging.WARNING)
    params = params or ClusteringParams()
    if len(docs) != len(embeddings):
        raise ValueError(f"{len(docs)} documents but {len(embeddings)} embeddings")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embeddings = unit(embeddings)
    grouping = cluster(embeddings, params, anchors=anchors)
    timings.update(grouping.timings)
    timings["cluster_s"] = time.perf_counter() - started

    started = time.perf_counter()
    inside = np.flatnonzero(grouping.labels >= 0)
    bertopic = _empty_bertopic(len(inside))
    predictions, _ = bertopic.fit_transform(
        [clean(docs[i]) for i in inside], embeddings[inside], y=grouping.labels[inside]
    )
    predictions = np.asarray(predictions, dtype=np.int64)
    # BERTopic numbers topics by size; carry that numbering over to every document and centroid.
    to_model = np.full(grouping.n_topics, -1, dtype=np.int64)
    to_model[grouping.labels[inside]] = predictions
    labels = np.where(grouping.labels >= 0, to_model[np.maximum(grouping.labels, 0)], -1)
    n_topics = int(predictions.max()) + 1
    centroids = np.zeros((n_topics, embeddings.shape[1]), dtype=np.float32)
    centroids[to_model] = grouping.centroids
    bertopic.topic_embeddings_ = centroids
    anchor_of_topic = {
        int(to_model[i]): int(a) for i, a in enumerate(grouping.seeds_from_anchors) if a is not None
    }
    timings["ctfidf_s"] = time.perf_counter() - started

    started = time.perf_counter()
    summaries = _summaries(
        bertopic, docs, labels, grouping.similarity, n_topics, centroids, phrase_embedder
    )
    bertopic.set_topic_labels({t: s.label for t, s in summaries.items()})
    timings["labels_s"] = time.perf_counter() - started
    meta = {
        "format": FORMAT,
        "embedding_model": embedding_model,
        "dim": int(embeddings.shape[1]),
        "outlier_threshold": round(float(grouping.outlier_threshold), 6),
        "n_topics": n_topics,
        "n_documents": len(docs),
        "outlier_share": round(grouping.outlier_share, 6),
        "params": params.to_json(),
        "found_groups": grouping.found_groups,
        "topics": {str(t): s.to_json() for t, s in summaries.items()},
    }
    return FitResult(
        model=TopicModel(bertopic, meta),
        labels=labels,
        similarity=grouping.similarity,
        summaries=summaries,
        clustering=grouping,
        anchor_of_topic=anchor_of_topic,
        timings=timings,
    )


def _summaries(
    bertopic: Any,
    docs: list[str],
    labels: np.ndarray,
    similarity: np.ndarray,
    n_topics: int,
    centroids: np.ndarray,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> dict[int, TopicSummary]:
    keywords: dict[int, list[str]] = {}
    labels_out: dict[int, str] = {}
    central: dict[int, list[int]] = {}
    order = np.argsort(-similarity, kind="stable")
    for i in order:
        topic = int(labels[i])
        if topic >= 0 and len(central.setdefault(topic, [])) < CENTRAL_DOCS:
            central[topic].append(int(i))
    for topic in range(n_topics):
        words = [w for w, _ in (bertopic.get_topic(topic) or []) if w]
        keywords[topic] = distinct_keywords(words, N_KEYWORDS)
    texts = {t: [docs[i] for i in central.get(t, [])] for t in range(n_topics)}
    phrase_vectors = None
    if embed is not None:  # one encoder call for every topic's candidate phrases
        wanted = sorted(
            {
                p
                for t in range(n_topics)
                for p in rerank_candidates(phrase_scores(keywords[t], texts[t]))
            }
        )
        if wanted:
            phrase_vectors = dict(zip(wanted, np.asarray(embed(wanted)), strict=True))
    for topic in range(n_topics):
        labels_out[topic] = label_for(
            keywords[topic], texts[topic], centroid=centroids[topic], phrase_vectors=phrase_vectors
        )
    labels_out = deduplicate(labels_out, keywords)
    sizes = np.bincount(labels[labels >= 0], minlength=n_topics)
    out = {}
    for topic in range(n_topics):
        readable = [i for i in central.get(topic, []) if 30 <= len(docs[i]) <= 400]
        out[topic] = TopicSummary(
            topic=topic,
            label=labels_out[topic],
            keywords=keywords[topic],
            size=int(sizes[topic]),
            quote_candidates=(readable or central.get(topic, []))[:QUOTE_CANDIDATES],
        )
    return out
