"""Readers for the public labelled datasets in `../shared/data` (never copied into the repo).

Each reader returns plain Python lists so training, evaluation and caching share one view of
the data. Splits follow the datasets' own; the two datasets without splits (amazon_reviews,
glassdoor) are split 80/10/10 by a stable hash of the review id, so every run agrees on which
reviews are held out.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from classifiers.labels import GOEMOTIONS_LABELS, GOEMOTIONS_SENTIMENT_GROUPS, NEED_LABELS

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def data_dir() -> Path:
    """The shared data folder: $VOC_DATA_DIR, else `<repo>/../shared/data`."""
    path = Path(os.environ.get("VOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise FileNotFoundError(
            f"training data folder {path} not found; set VOC_DATA_DIR to the folder that holds "
            "goemotions/, sst/, tweeteval/, banking77/, glassdoor/, amazon_reviews/ and needs/"
        )
    return path


@dataclass
class Split:
    """Texts with one label each (`labels`) or several (`multi`, a list of label lists)."""

    texts: list[str] = field(default_factory=list)
    labels: list = field(default_factory=list)


def hash_split(key: str) -> str:
    """'train' / 'dev' / 'test' (80/10/10) from a stable hash of an id."""
    bucket = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def text_splits(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Split of each distinct text, given (id, text) rows split by `hash_split` of their id.

    Scraped datasets carry the same review under several ids, so an id split alone puts copies
    of one text in train and test. A text goes to train if any copy's id does, else to dev if
    any does, else to test: test and dev texts are never trained on (nor test texts tuned on).
    """
    rank = {"train": 0, "dev": 1, "test": 2}
    out: dict[str, str] = {}
    for key, text in rows:
        norm = _normalised(text)
        split = hash_split(key)
        if norm not in out or rank[split] < rank[out[norm]]:
            out[norm] = split
    return out


def _in_split(text: str, split: str, splits: dict[str, str], seen: set[str]) -> bool:
    """Whether `text` belongs to `split`; later copies of a dev or test text are left out."""
    norm = _normalised(text)
    if splits.get(norm) != split or (split != "train" and norm in seen):
        return False
    seen.add(norm)
    return True


def goemotions(split: str) -> Split:
    """GoEmotions: labels are lists of label names (multi-label, 28 classes)."""
    out = Split()
    with open(data_dir() / "goemotions" / f"original_{split}.tsv", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            out.texts.append(parts[0])
            out.labels.append([GOEMOTIONS_LABELS[int(i)] for i in parts[1].split(",")])
    return out


def goemotions_sentiment(split: str) -> Split:
    """GoEmotions collapsed to negative/neutral/positive; ambiguous and mixed items dropped."""
    group_of = {
        label: group for group, labels in GOEMOTIONS_SENTIMENT_GROUPS.items() for label in labels
    }
    src = goemotions(split)
    out = Split()
    for text, labels in zip(src.texts, src.labels, strict=True):
        groups = {group_of[label] for label in labels} - {"ambiguous"}
        if len(groups) == 1:
            out.texts.append(text)
            out.labels.append(groups.pop())
    return out


def sst2(split: str) -> Split:
    """SST-2 (alps phrase-level); `test` is the GLUE SST-2 dev set. Labels negative/positive."""
    out = Split()
    with open(data_dir() / "sst" / f"alps_sst2_{split}.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            text, _, label = line.rstrip("\n").rpartition("\t")
            if text.strip():
                out.texts.append(text.strip())
                out.labels.append("positive" if label.strip() == "1" else "negative")
    return out


def sst5(split: str, *, collapse: bool = True) -> Split:
    """SST-5 sentences, by default collapsed to 3 classes (1-2 neg, 3 neutral, 4-5 pos)."""
    out = Split()
    with open(data_dir() / "sst" / f"sst5_{split}.txt", encoding="utf-8") as f:
        for line in f:
            label, _, text = line.rstrip("\n").partition("\t")
            stars = int(label.replace("__label__", ""))
            out.texts.append(text)
            out.labels.append(_stars_to_sentiment(stars) if collapse else stars)
    return out


def tweeteval(task: str, split: str) -> Split:
    """TweetEval `emotion` or `sentiment`; labels are the integer class ids."""
    root = data_dir() / "tweeteval"
    texts = (root / f"{task}_{split}_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (root / f"{task}_{split}_labels.txt").read_text(encoding="utf-8").splitlines()
    return Split([t.strip() for t in texts], [int(x) for x in labels])


def banking77(split: str) -> Split:
    """Banking77 queries with their intent name."""
    out = Split()
    with open(data_dir() / "banking77" / f"{split}.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out.texts.append(row["text"])
            out.labels.append(row["category"])
    return out


def _stars_to_sentiment(stars: int) -> str:
    return "negative" if stars <= 2 else "neutral" if stars == 3 else "positive"


def amazon_reviews(split: str) -> Split:
    """Amazon device reviews (title + text) with star-derived sentiment; hash split by id, copies
    of one review kept in one split (`text_splits`)."""
    with open(data_dir() / "amazon_reviews" / "reviews.csv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["text"].strip()]

    def text_of(row: dict[str, str]) -> str:
        title, text = row["title"].strip(), row["text"].strip()
        return f"{title}. {text}" if title else text

    splits = text_splits([(r["review_id"], text_of(r)) for r in rows])
    out, seen = Split(), set[str]()
    for row in rows:
        text = text_of(row)
        if _in_split(text, split, splits, seen):
            out.texts.append(text)
            out.labels.append(_stars_to_sentiment(int(float(row["rating"]))))
    return out


def glassdoor(split: str) -> Split:
    """Glassdoor review headlines ('summary') with rating-derived sentiment; hash split by id."""
    out = Split()
    with open(data_dir() / "glassdoor" / "reviews.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            summary = html.unescape(row["summary"]).strip()
            if hash_split(row["review_id"]) != split or len(summary) < 3:
                continue
            out.texts.append(summary)
            out.labels.append(_stars_to_sentiment(int(float(row["rating_overall"]))))
    return out


def glassdoor_pros_cons(split: str) -> Split:
    """Glassdoor pros (positive) and cons (negative) of at least 4 words; hash split by id."""
    out = Split()
    with open(data_dir() / "glassdoor" / "reviews.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if hash_split(row["review_id"]) != split:
                continue
            for column, label in (("pros", "positive"), ("cons", "negative")):
                text = html.unescape(row[column]).strip()
                if len(text.split()) >= 4:
                    out.texts.append(text)
                    out.labels.append(label)
    return out


def feedback_texts(limit: int | None = None) -> list[str]:
    """Real feedback-like text (amazon review bodies, glassdoor pros/cons), for benchmarks."""
    texts: list[str] = []
    with open(data_dir() / "amazon_reviews" / "reviews.csv", encoding="utf-8", newline="") as f:
        texts += [row["text"].strip() for row in csv.DictReader(f) if row["text"].strip()]
    with open(data_dir() / "glassdoor" / "reviews.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            texts += [html.unescape(row["pros"]).strip(), html.unescape(row["cons"]).strip()]
    texts = [t for t in texts if t]
    return texts[:limit] if limit else texts


def needs() -> Split:
    """needs/train.jsonl: labels are lists drawn from functional/emotional/social."""
    out = Split()
    with open(data_dir() / "needs" / "train.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.texts.append(row["text"])
            out.labels.append([n for n in row["needs"] if n in NEED_LABELS])
    return out


SEMEVAL_TEST_SET = "twitter-2016test"


def semeval_tweets(split: str) -> Split:
    """SemEval 2013-2016 task 4A tweets (negative/neutral/positive).

    `test` is every row of `twitter-2016test` (this project's tweet test split, never trained
    on or chosen on); the other files are split 80/20 into `train` and `dev` by a stable hash
    of the tweet id (hash_split's dev and test buckets both go to dev). A train or dev tweet
    whose text also appears in the test file is dropped, and copies of one text stay in one
    split (`text_splits`).
    """
    with open(data_dir() / "semeval_tweets" / "train.tsv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if (r.get("text") or "").strip()]
    test_texts = {_normalised(r["text"]) for r in rows if r["set"] == SEMEVAL_TEST_SET}
    out, seen = Split(), set[str]()
    if split == "test":
        for r in rows:
            norm = _normalised(r["text"])
            if r["set"] == SEMEVAL_TEST_SET and norm not in seen:
                seen.add(norm)
                out.texts.append(r["text"].strip())
                out.labels.append(r["label"])
        return out
    rest = [r for r in rows if r["set"] != SEMEVAL_TEST_SET
            and _normalised(r["text"]) not in test_texts]  # fmt: skip
    splits = text_splits([(r["id"], r["text"]) for r in rest])
    splits = {k: ("train" if v == "train" else "dev") for k, v in splits.items()}
    for r in rest:
        if _in_split(r["text"], split, splits, seen):
            out.texts.append(r["text"].strip())
            out.labels.append(r["label"])
    return out
