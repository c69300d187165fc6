"""The hybrid needs head (classifiers/needs.py): fitting, save/load, and the written data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.labels import NEED_LABELS
from classifiers.needs import NeedsModel, NeedsRecipe, stack
from classifiers.training.needs import WRITTEN, fit, out_of_fold

GUIDELINE_CUES = [
    ("Management does not care about us and the stress is constant.", "emotional"),
    ("My manager makes me feel valued and respected.", "emotional"),
    ("Proud to work here, inclusive culture and great coworkers.", "social"),
    ("I recommend it to all my friends and family.", "social"),
    ("Battery dies after two hours and the charger is slow.", "functional"),
    ("Pay is below market and the bonus is small.", "functional"),
]


def _toy(n_repeat: int = 8):
    """A tiny separable set: each cue text (lightly varied) with its one need."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for k in range(n_repeat):
        for text, need in GUIDELINE_CUES:
            texts.append(f"{text} ({k})")
            labels.append(need)
    y = np.array([[float(label == need) for label in NEED_LABELS] for need in labels])
    feats = stack(rng.normal(size=(len(texts), 8)).astype(np.float32),
                  rng.random((len(texts), 28)), rng.random((len(texts), 3)))  # fmt: skip
    return texts, feats, y


def test_fit_learns_the_wording_and_survives_save_and_load(tmp_path: Path):
    texts, feats, y = _toy()
    model = fit(texts, feats, y, NeedsRecipe(min_df=1))
    model.thresholds = dict.fromkeys(NEED_LABELS, 0.5)
    probs = model.probabilities(texts, feats)
    assert probs.shape == (len(texts), 3)
    # the features are noise: the text branch alone must put each cue's need on top
    assert (probs.argmax(1) == y.argmax(1)).mean() == 1.0
    model.save(tmp_path)
    again = NeedsModel.load(tmp_path)
    np.testing.assert_allclose(again.probabilities(texts, feats), probs, rtol=1e-5, atol=1e-6)
    assert again.thresholds == model.thresholds and again.recipe == model.recipe
    assert not list(tmp_path.glob("*.pkl")) and (tmp_path / "needs.json").exists()


def test_empty_batch_and_unseen_words():
    texts, feats, y = _toy()
    model = fit(texts, feats, y, NeedsRecipe(min_df=1))
    assert model.probabilities([], feats[:0]).shape == (0, 3)
    out = model.probabilities(["zzzz qqqq"], feats[:1])  # no known n-gram: embedding branch only
    assert np.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()


def test_written_rows_only_train_and_are_never_scored():
    texts, feats, y = _toy()
    folds = np.arange(len(texts)) % 4
    extra = (["Totally unrelated written row"] * 3, feats[:3], y[:3])
    oof = out_of_fold(texts, feats, y, folds, NeedsRecipe(min_df=1), extra=extra)
    assert oof.shape == y.shape  # one out-of-fold row per real row, none for the written ones
    assert (oof.argmax(1) == y.argmax(1)).mean() >= 0.9


def test_written_data_follows_the_guideline_format():
    rows = [json.loads(line) for line in WRITTEN.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 150
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["text"].lower() for r in rows}) == len(rows)
    for r in rows:
        assert set(r["needs"]) <= set(NEED_LABELS) and r["needs"] == sorted(r["needs"])
        assert r["source"] == "written" and r["audience"] in ("customer", "employee")
    counts = {label: sum(label in r["needs"] for r in rows) for label in NEED_LABELS}
    assert min(counts.values()) >= 40  # aimed at the two rare needs as much as functional


def test_written_data_does_not_copy_the_shared_labelled_set():
    from classifiers.training import data

    try:
        shared = {t.strip().lower() for t in data.needs().texts}
    except FileNotFoundError:
        pytest.skip("../shared/data is not here")
    rows = [json.loads(line) for line in WRITTEN.read_text(encoding="utf-8").splitlines()]
    assert not [r["text"] for r in rows if r["text"].strip().lower() in shared]


def test_guideline_cues_come_from_the_guideline_alone():
    import re

    from classifiers.needs import GUIDELINE_CUES as CUES
    from classifiers.training import data

    try:
        text = (data.data_dir() / "needs" / "GUIDELINES.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        pytest.skip("../shared/data is not here")
    text = " ".join(text.lower().replace("\u2019", "'").split())
    words = set(re.findall(r"[\w'-]+", text))
    for label, cues in CUES.items():
        for cue in cues:
            if cue.endswith("*"):
                assert any(w.startswith(cue[:-1]) for w in words), (label, cue)
            else:
                assert re.search(rf"(?<![\w-]){re.escape(cue)}", text), (label, cue)


def test_cue_features_count_guideline_words_as_whole_words():
    from classifiers.needs import cue_features

    cues = cue_features(["I feel valued and respected, proud of our culture", "repay careful"])
    functional, emotional, social = cues[0, :3]
    assert functional == 0 and emotional == 1.0 and social == pytest.approx(2 / 3)
    assert cues[0, 3:].tolist() == [0, 1, 1]
    assert not cues[1].any()  # "pay" is not in "repay", nor "care" in "careful"


def test_the_registry_loads_the_shipped_hybrid_needs_head():
    from classifiers.heads import HeadSpec
    from classifiers.registry import registry
    from classifiers.tagger import WEIGHTS_DIR, read_heads_meta

    meta = read_heads_meta(WEIGHTS_DIR)["heads"]["needs"]
    spec = HeadSpec.from_json("needs", meta)
    assert spec.registry_name in registry and spec.kind == "hybrid"
    model = registry.get(spec.registry_name)(spec, WEIGHTS_DIR)
    assert isinstance(model, NeedsModel) and model.recipe.cues
    assert model.labels == list(NEED_LABELS)
