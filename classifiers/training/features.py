"""Embeddings of the training and evaluation sets, cached on disk (under var/cache, not git).

Training the heads and evaluating them both need the pooled encoder vector of tens of thousands
of texts; computing it once per encoder (base, or base + a given adapter) keeps every later
step to seconds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from classifiers.training import data
from classifiers.training.needs import written_rows

CACHE_DIR = Path(os.environ.get("VOC_CACHE_DIR", data.REPO_ROOT / "var" / "cache"))


def _key(encoder_tag: str, name: str, texts: list[str], max_length: int) -> Path:
    digest = hashlib.sha1("\x1f".join(texts).encode()).hexdigest()[:12]
    safe = encoder_tag.replace("/", "_")
    return CACHE_DIR / safe / f"{name}-L{max_length}-{digest}.npy"


def embeddings(encoder, encoder_tag: str, name: str, texts: list[str],
               batch_size: int = 128) -> np.ndarray:  # fmt: skip
    """Cached L2-normalised embeddings of `texts` under `encoder` (an `Encoder`)."""
    path = _key(encoder_tag, name, texts, encoder.max_length)
    if path.exists():
        return np.load(path)
    emb, _ = encoder.encode(texts, batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb


# Every dataset the heads and the evaluation read, by a short name.
DATASETS: dict[str, Callable[[], data.Split]] = {
    "goemotions_train": lambda: data.goemotions("train"),
    "goemotions_dev": lambda: data.goemotions("dev"),
    "goemotions_test": lambda: data.goemotions("test"),
    "sst2_train": lambda: data.sst2("train"),
    "sst2_dev": lambda: data.sst2("dev"),
    "sst2_test": lambda: data.sst2("test"),
    "sst5_train": lambda: data.sst5("train"),
    "sst5_dev": lambda: data.sst5("dev"),
    "sst5_test": lambda: data.sst5("test"),
    "tweeteval_sentiment_val": lambda: data.tweeteval("sentiment", "val"),
    "tweeteval_emotion_test": lambda: data.tweeteval("emotion", "test"),
    "amazon_train": lambda: data.amazon_reviews("train"),
    "amazon_dev": lambda: data.amazon_reviews("dev"),
    "amazon_test": lambda: data.amazon_reviews("test"),
    "glassdoor_train": lambda: data.glassdoor("train"),
    "glassdoor_dev": lambda: data.glassdoor("dev"),
    "glassdoor_test": lambda: data.glassdoor("test"),
    "glassdoor_pc_train": lambda: data.glassdoor_pros_cons("train"),
    "glassdoor_pc_dev": lambda: data.glassdoor_pros_cons("dev"),
    "glassdoor_pc_test": lambda: data.glassdoor_pros_cons("test"),
    "tweets_train": lambda: data.semeval_tweets("train"),
    "tweets_dev": lambda: data.semeval_tweets("dev"),
    "tweets_test": lambda: data.semeval_tweets("test"),
    "banking77_train": lambda: data.banking77("train"),
    "banking77_train_sample": lambda: data.Split(data.banking77("train").texts[::3],
                                                 data.banking77("train").labels[::3]),
    "banking77_test": lambda: data.banking77("test"),
    "needs": data.needs,
    "needs_written": lambda: data.Split(*written_rows()),
}


def dataset_with_embeddings(encoder, encoder_tag: str, name: str) -> tuple[data.Split, np.ndarray]:
    """A dataset and its cached embeddings."""
    split = DATASETS[name]()
    return split, embeddings(encoder, encoder_tag, name, split.texts)


if __name__ == "__main__":  # python -m classifiers.training.features [NAMES...]: fill the cache
    import sys
    import time

    import torch

    from classifiers.training.train import Features

    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    feats = Features(adapter=os.environ.get("VOC_ADAPTER_DIR"))
    for name in sys.argv[1:] or list(DATASETS):
        t = time.time()
        split, emb = feats.get(name)
        print(f"{name}: {emb.shape} in {time.time() - t:.0f}s", flush=True)
