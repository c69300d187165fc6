"""How long `GET /v1/custom/{name}`'s table takes on a large range: counted by the database
(`_sql_cells`, a single-label head's customer cells) against read item by item (`_item_cells`,
what multi-label heads and employee cells use), on the same rows, in one run.

    .venv/bin/python bench/custom_trends.py [--items 230000] [--repeat 5]

230,000 customer items are 12 weeks of a deployment taking a million a year, the default range
of the endpoint. Items and tags (with a five-label custom head's labels and probabilities, as
the tag job stores them) are bulk-inserted into a fresh, migrated SQLite database; nothing goes
through the tagger (this measures reads). Prints the median and best of `--repeat` runs of
each path and their ratio, and checks both give the same cells.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

from feedback.db import make_engine, session_scope  # noqa: E402
from feedback.migrate import upgrade  # noqa: E402

LABELS = ("billing", "shipping", "subscription", "app", "store")
SENTIMENTS = ("negative", "neutral", "positive")


def build(url: str, items: int, seed: int = 7) -> None:
    from sqlalchemy import insert

    from feedback.models import FeedbackItem, Source, Tag

    upgrade(url)
    rng = np.random.default_rng(seed)
    start = datetime(2026, 9, 7, tzinfo=UTC)
    seconds = (12 * 7 * 86400 - 1) * np.arange(items) // max(items - 1, 1)
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.execute(insert(Source), [{"id": 1, "name": "bench", "connector": "file", "audience": "customer"}])
    chunk = 20_000
    for first in range(0, items, chunk):
        ids = range(first + 1, min(items, first + chunk) + 1)
        rows, tags = [], []
        for i in ids:
            probs = rng.dirichlet(np.ones(len(LABELS)))
            sentiment = SENTIMENTS[int(rng.integers(3))]
            created = start + timedelta(seconds=int(seconds[i - 1]))
            rows.append({"id": i, "source_id": 1, "external_id": str(i), "content_hash": f"h{i}",
                         "audience": "customer", "text": "a comment", "created_at": created, "ingested_at": created,
                         "extra": {}})
            tags.append({"item_id": i, "model": "bench", "model_version": "v5",
                         "model_versions": {"custom:area": "custom.area.v1"}, "sentiment": sentiment,
                         "sentiment_score": {"negative": -0.8, "neutral": 0.0, "positive": 0.8}[sentiment],
                         "sentiment_probs": {}, "emotions": [], "emotion_scores": {}, "cx_emotions": [], "needs": [],
                         "need_scores": {}, "flags": [], "tagged_at": created,
                         "custom": {"area": {"labels": [LABELS[int(probs.argmax())]],
                                             "scores": {k: round(float(p), 4) for k, p in zip(LABELS, probs,
                                                                                            strict=True)}}}})
        with session_scope(engine) as session:
            session.execute(insert(FeedbackItem), rows)
            session.execute(insert(Tag), tags)
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=230_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    from feedback.analytics.cells import Slice
    from feedback.analytics.custom import _item_cells, _sql_cells

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/custom.db"
        started = time.perf_counter()
        build(url, args.items)
        print(f"{args.items:,} items with custom labels written in {time.perf_counter() - started:.0f} s", flush=True)
        where = Slice(start=datetime(2026, 9, 7, tzinfo=UTC), end=datetime(2026, 11, 30, tzinfo=UTC))
        engine = make_engine(url)
        times: dict[str, list[float]] = {"database (_sql_cells)": [], "items (_item_cells)": []}
        cells = {}
        for _ in range(args.repeat):
            for name, fn in (("database (_sql_cells)", _sql_cells), ("items (_item_cells)", _item_cells)):
                with session_scope(engine) as session:
                    t0 = time.perf_counter()
                    got = fn(session, "area", where, "week")
                    times[name].append(time.perf_counter() - t0)
                cells[name] = {k: (c.n, c.negative, c.corrected) for k, c in got.items()}
        engine.dispose()
    same = cells["database (_sql_cells)"] == cells["items (_item_cells)"]
    print(f"\n12 weekly cells x {len(LABELS)} labels over {args.items:,} customer items (SQLite), "
          f"{args.repeat} runs each; same cells: {same}\n")
    print("| path | median s | best s |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} |")
    ratio = statistics.median(times["items (_item_cells)"]) / statistics.median(times["database (_sql_cells)"])
    print(f"\nthe database path takes 1/{ratio:.1f} of the item path's time")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
