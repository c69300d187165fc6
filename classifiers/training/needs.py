"""Training of the needs head (needs.v4; inference lives in `classifiers.needs`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifiers.labels import NEED_LABELS
from classifiers.needs import LEX_MAX_CHARS, NeedsModel, NeedsRecipe, _vectorizer, _with_cues

WRITTEN = Path(__file__).resolve().parent.parent / "train_data" / "needs_written.jsonl"


def fit(texts: Sequence[str], features: np.ndarray, y: np.ndarray, recipe: NeedsRecipe,
        sample_weight: np.ndarray | None = None) -> NeedsModel:  # fmt: skip
    """Fit both branches on (texts, stacked features, 0/1 label matrix)."""
    from sklearn.linear_model import LogisticRegression

    labels = list(NEED_LABELS)
    vec = _vectorizer(recipe)
    lex = vec.fit_transform([t[:LEX_MAX_CHARS] for t in texts])
    features = _with_cues(texts, features, recipe)
    emb_coef, emb_bias, lex_coef, lex_bias = [], [], [], []
    for j in range(len(labels)):
        yj = (y[:, j] > 0).astype(int)
        m = LogisticRegression(C=recipe.emb_c, class_weight="balanced", max_iter=3000)
        m.fit(features, yj, sample_weight=sample_weight)
        emb_coef.append(m.coef_[0])
        emb_bias.append(m.intercept_[0])
        if recipe.lex_weight == 0:  # embedding branch only (an ablation)
            lex_coef.append(np.zeros(lex.shape[1]))
            lex_bias.append(0.0)
            continue
        m = LogisticRegression(C=recipe.lex_c, class_weight="balanced", max_iter=3000)
        m.fit(lex, yj, sample_weight=sample_weight)
        lex_coef.append(m.coef_[0])
        lex_bias.append(m.intercept_[0])
    vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    return NeedsModel(
        labels=labels, recipe=recipe,
        emb_coef=np.array(emb_coef, np.float32), emb_bias=np.array(emb_bias, np.float32),
        vocabulary=vocab, idf=vec.idf_.astype(np.float32),
        lex_coef=np.array(lex_coef, np.float32), lex_bias=np.array(lex_bias, np.float32),
    )  # fmt: skip


def written_rows() -> tuple[list[str], list[list[str]]]:
    """The project's own labelled texts (see the module docstring)."""
    texts, labels = [], []
    with WRITTEN.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append([n for n in row["needs"] if n in NEED_LABELS])
    return texts, labels


Extra = tuple[list[str], np.ndarray, np.ndarray]  # written rows: texts, features, labels


def fit_with_extra(texts: Sequence[str], features: np.ndarray, y: np.ndarray, recipe: NeedsRecipe,
                   extra: Extra | None = None) -> NeedsModel:  # fmt: skip
    """`fit` on the rows plus the `extra` (written) rows, those weighted `written_weight`."""
    if extra is None or not extra[0]:
        return fit(texts, features, y, recipe)
    weight = np.concatenate([np.ones(len(texts)), np.full(len(extra[0]), recipe.written_weight)])
    return fit(list(texts) + list(extra[0]), np.concatenate([features, extra[1]]),
               np.concatenate([y, extra[2]]), recipe, sample_weight=weight)  # fmt: skip


def out_of_fold(texts: Sequence[str], features: np.ndarray, y: np.ndarray, folds: np.ndarray,
                recipe: NeedsRecipe, extra: Extra | None = None) -> np.ndarray:
    """Out-of-fold probabilities for every row; `extra` rows are added to every training fold
    and never scored."""
    texts = list(texts)
    out = np.zeros(y.shape, np.float32)
    for k in np.unique(folds):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        model = fit_with_extra([texts[i] for i in train], features[train], y[train], recipe, extra)
        out[test] = model.probabilities([texts[i] for i in test], features[test])
    return out
