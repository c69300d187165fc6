"""Texts and cached shared-encoder embeddings for the topic benchmarks (bench/eval_topics.py,
bench/topics_fit.py).

Embeddings come from the service's own encoder (the tagger's when it loads, else the same
packaged MiniLM through `classifiers.encoder.Encoder`) and are cached as float16 under
`var/cache/topics/` (gitignored), keyed by the encoder and a hash of the texts, so every later
run of a benchmark reuses them: the topic model never encodes documents itself.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("VOC_DATA_DIR", REPO.parent / "shared" / "data"))
CACHE = REPO / "var" / "cache" / "topics"


def banking77_test() -> tuple[list[str], list[str]]:
    """Banking77 test queries and their intents (3,080)."""
    with (DATA / "banking77" / "test.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def glassdoor(field: str = "cons") -> list[str]:
    """One free-text field of every Glassdoor review (HTML entities decoded), empty ones dropped."""
    with (DATA / "glassdoor" / "reviews.csv").open(encoding="utf-8") as f:
        texts = [html.unescape(r[field] or "").strip() for r in csv.DictReader(f)]
    return [t for t in texts if t]


def mixed_100k(n: int = 100_000) -> list[str]:
    """About 100k real feedback-like texts: bank queries, employee reviews, product reviews,
    Reddit comments, tweets and movie-review sentences, deduplicated, in a fixed order."""
    texts: list[str] = []
    for split in ("train", "test"):
        with (DATA / "banking77" / f"{split}.csv").open(encoding="utf-8") as f:
            texts += [r["text"] for r in csv.DictReader(f)]
    for field in ("cons", "pros", "summary"):
        texts += glassdoor(field)
    with (DATA / "amazon_reviews" / "reviews.csv").open(encoding="utf-8") as f:
        texts += [r["text"] for r in csv.DictReader(f)]
    for split in ("train", "dev", "test"):
        with (DATA / "goemotions" / f"original_{split}.tsv").open(encoding="utf-8") as f:
            texts += [line.split("\t", 1)[0] for line in f]
        with (DATA / "sst" / f"sst5_{split}.txt").open(encoding="utf-8") as f:
            texts += [line.split(" ", 1)[1].strip() if " " in line else line.strip() for line in f]
    for split in ("train", "val", "test"):
        with (DATA / "tweeteval" / f"emotion_{split}_text.txt").open(encoding="utf-8") as f:
            texts += list(f)
    with (DATA / "tweeteval" / "sentiment_val_text.txt").open(encoding="utf-8") as f:
        texts += list(f)
    seen: set[str] = set()
    unique = []
    for t in texts:
        t = t.strip()
        if t and t not in seen:
            seen.add(t)
            unique.append(t)
    return unique[:n]


def _encoder():
    """The tagger's encoder when the tagger loads, else the packaged encoder (same weights)."""
    try:
        from classifiers import TaggerConfig, load_tagger

        tagger = load_tagger(TaggerConfig())
        return tagger.model_versions["encoder"], tagger.embed
    except Exception:  # noqa: BLE001 - the tagger's heads may not be trained in this checkout
        from classifiers.encoder import Encoder

        encoder = Encoder(None)
        return encoder.name + (f"+{encoder.adapter}" if encoder.adapter else ""), (
            lambda texts: encoder.encode(list(texts))[0]
        )


def _base_encoder():
    """The packaged all-MiniLM-L6-v2 without the project's adapter: BERTopic's own default
    embedding model (`all-MiniLM-L6-v2`), loaded offline."""
    from classifiers.encoder import Encoder

    encoder = Encoder(None)
    return encoder.name, lambda texts: encoder.encode(list(texts))[0]


def embed_cached(texts: list[str], *, name: str, base: bool = False) -> np.ndarray:
    """Shared-encoder embeddings of `texts` (float32, L2-normalised), computed once and cached;
    with `base`, the untuned packaged encoder's (BERTopic's default embedding model)."""
    digest = hashlib.sha1("\x1e".join(texts).encode("utf-8")).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    encoder_name, embed = _base_encoder() if base else _encoder()
    safe = encoder_name.replace("/", "_").replace("+", "_")
    # keyed by the encoder too: a new adapter's vectors are not the old one's
    hit = CACHE / f"{name}-{digest}-{safe}.npy"
    if hit.exists():
        return np.load(hit).astype(np.float32)
    started = time.perf_counter()
    out = np.zeros((len(texts), 384), dtype=np.float16)
    chunk = 2048
    for start in range(0, len(texts), chunk):
        out[start : start + chunk] = embed(texts[start : start + chunk]).astype(np.float16)
        print(
            f"  embedded {min(start + chunk, len(texts))}/{len(texts)} "
            f"({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
    np.save(hit, out)
    return out.astype(np.float32)


if __name__ == "__main__":
    # Warm the caches: python bench/topic_corpora.py
    docs, _ = banking77_test()
    embed_cached(docs, name="banking77-test")
    embed_cached(glassdoor("cons"), name="glassdoor-cons")
    embed_cached(mixed_100k(), name="mixed-100k")
