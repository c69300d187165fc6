"""The custom-categories bench's draws and encoder cache: the CSV and the corrections never
touch the dev rows, and `adapt()` reads cached embeddings only while the bench runs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from conftest import bench_module


def _bench():
    return bench_module("custom_categories")


def test_the_csv_takes_k_per_label_and_nothing_comes_from_dev() -> None:
    bench = _bench()
    labels = [f"intent{i % 7}" for i in range(700)]
    dev = bench.dev_rows(len(labels))
    assert len(dev) == 105 and len(set(dev.tolist())) == 105
    d = bench.draw(labels, dev, 8, seed=3)
    csv_labels = [labels[i] for i in d.csv_rows]
    assert all(csv_labels.count(f"intent{c}") == 8 for c in range(7))
    used = np.concatenate([d.csv_rows, d.corrections])
    assert not np.isin(used, dev).any()
    assert sorted(used.tolist()) == sorted(set(range(700)) - set(dev.tolist()))  # the rest is the correction pool
    again = bench.draw(labels, dev, 8, seed=3)
    assert (again.corrections == d.corrections).all() and (again.csv_rows == d.csv_rows).all()
    assert not (bench.draw(labels, dev, 8, seed=4).corrections[:50] == d.corrections[:50]).all()


def test_scores_are_macro_f1_over_the_gold_labels_and_accuracy() -> None:
    bench = _bench()
    f1, accuracy = bench.scores(np.array(["a", "a", "b", "c"]), ["a", "b", "b", "b"])
    assert accuracy == 0.5
    assert abs(f1 - np.mean([2 / 3, 2 / 4])) < 1e-9  # a: 1 of 2 predicted, b: 1 of 3 gold; c is not gold


def test_the_encoder_cache_serves_known_texts_and_is_removed_after() -> None:
    from classifiers.tagger import Tagger

    bench = _bench()
    original = Tagger.embed
    tagger = SimpleNamespace(encoder_version="enc", heads={}, custom_heads=[], device="cpu")
    table = {"late card": np.full(4, 0.5, np.float32), "refund": np.zeros(4, np.float32)}
    with bench.encoder_cache(table, "enc"):
        x = Tagger.embed(tagger, ["refund", "late card"])
        pooled, probs = Tagger.head_probabilities(tagger, ["late card"])
    assert (x == np.stack([table["refund"], table["late card"]])).all()
    assert (pooled == table["late card"]).all() and probs == {}
    assert Tagger.embed is original
