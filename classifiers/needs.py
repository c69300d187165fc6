"""The needs head (needs.v4): what a text says its author needs, from meaning and from wording.

Two branches, averaged, then per-label thresholds:
- a logistic regression on the encoder's pooled embedding joined with the sentiment and emotion
  heads' probabilities (the emotional need follows the emotions the text carries) and with six
  guideline cues: how often, and whether, the text uses the words `GUIDELINES.md` itself names
  for each need ("valued", "listened", "stress", "toxic" for emotional; "proud", "culture",
  "reputation", "mission" for social; ...). `GUIDELINE_CUES` is written from the guideline's
  text alone, never from the labelled rows;
- a logistic regression on character 2-5-gram TF-IDF of the text: the cues the guideline names
  ("culture", "care", "respect", "proud", "stress", "toxic", ...) and their misspellings.

Both read what one encoder pass already produced (the embedding and the other heads' outputs)
plus the raw text, so tagging stays one encoder pass; the TF-IDF branch costs well under a
millisecond per text. Training data: `needs/train.jsonl` (1,000 items) plus the project's own
`classifiers/train_data/needs_written.jsonl`, written under the same guideline; the written rows
are only ever training rows, never scored in the cross-validation.

Saved as `needs.safetensors` (weights, IDF) + `needs.json` (vocabulary, settings): no pickle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.labels import NEED_LABELS

FILES = ("needs.safetensors", "needs.json")
LEX_MAX_CHARS = 2_000  # the TF-IDF branch reads at most this much of a text (the encoder: 256 tokens)


# The words GUIDELINES.md names for each need (its definitions, lists and examples): nothing
# here was taken from the labelled data, and `tests/test_needs_head.py` checks that every cue is
# in the guideline. A cue ending in "*" matches any word it begins ("respect*": respected,
# respectful, disrespect is its own cue); any other matches as a whole word or phrase, plural
# "s" allowed.
GUIDELINE_CUES: dict[str, tuple[str, ...]] = {
    "functional": (
        "works", "breaks", "features", "quality", "durab*", "battery", "price", "value for money",
        "delivery", "timing", "availab*", "speed", "waiting", "ease of use", "easy", "refund",
        "booking", "answer", "fixing", "accura*", "pay", "bonus", "benefits", "hours", "schedul*",
        "workload", "staffing", "tools", "systems", "equipment", "process*", "bureaucra*",
        "training", "job security", "contract", "commute", "location", "career path", "promotion",
    ),
    "emotional": (
        "safe", "secure", "reassur*", "respect*", "disrespect*", "valued", "appreciat*",
        "cared for", "care", "listen*", "trust*", "calm", "in control", "delight*", "stress*",
        "anxi*", "frustrat*", "confus*", "ignor*", "humiliat*", "burned out", "burnout", "afraid",
        "peace of mind", "toxic", "support*", "treated", "feel", "felt", "well-being",
        "exhausted",
    ),
    "social": (
        "people", "culture", "family", "team", "camaraderie", "community", "inclusi*", "divers*",
        "reputation", "resume", "proud", "pride", "mission*", "purpose", "values", "ethic*",
        "unethical", "planet", "environmental", "friends", "recommend*", "tell everyone",
        "boycott", "embarrass*", "belong*", "identity", "status", "showing it off", "gives back",
    ),
}  # fmt: skip


def _cue_pattern(cues: Sequence[str]) -> re.Pattern[str]:
    parts = [re.escape(c[:-1]) + r"[\w-]*" if c.endswith("*") else re.escape(c) + "(?:e?s)?"
             for c in cues]  # fmt: skip
    return re.compile(rf"(?<![\w-])(?:{'|'.join(parts)})(?![\w-])", re.IGNORECASE)


_CUES = [_cue_pattern(GUIDELINE_CUES[label]) for label in NEED_LABELS]
N_CUES = 2 * len(NEED_LABELS)


def cue_features(texts: Sequence[str]) -> np.ndarray:
    """(n, 6): per need, how often the text uses its guideline words (0, 1/3, 2/3, 1 for 3+)
    and whether it does at all; read from the first LEX_MAX_CHARS characters."""
    out = np.zeros((len(texts), N_CUES), np.float32)
    for i, text in enumerate(texts):
        head = text[:LEX_MAX_CHARS]
        for j, pattern in enumerate(_CUES):
            hits = len(pattern.findall(head))
            out[i, j] = min(hits, 3) / 3
            out[i, len(NEED_LABELS) + j] = float(hits > 0)
    return out


@dataclass
class NeedsRecipe:
    """Every setting of the needs head; saved with it. Chosen by nested 5-fold CV."""

    emb_c: float = 1.0  # inverse L2 strength, embedding branch
    lex_c: float = 4.0  # inverse L2 strength, TF-IDF branch
    lex_weight: float = 0.5  # share of the TF-IDF branch in the averaged probability
    ngram_min: int = 2
    ngram_max: int = 5
    min_df: int = 2
    max_features: int = 50_000
    written_weight: float = 2.0  # sample weight of the project's written rows
    cues: bool = True  # join `cue_features` to the embedding branch's input (needs.v4)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stack(pooled: np.ndarray, emotion_probs: np.ndarray, sentiment_probs: np.ndarray) -> np.ndarray:
    """The embedding branch's input: embedding, 28 emotion and 3 sentiment probabilities."""
    return np.concatenate([pooled, emotion_probs, sentiment_probs], axis=1).astype(np.float32)


def _vectorizer(recipe: NeedsRecipe, vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(recipe.ngram_min, recipe.ngram_max),
        min_df=1 if vocabulary else recipe.min_df, sublinear_tf=True,
        max_features=None if vocabulary else recipe.max_features, vocabulary=vocabulary,
        dtype=np.float32,
    )  # fmt: skip


@dataclass
class NeedsModel:
    labels: list[str]
    recipe: NeedsRecipe
    emb_coef: np.ndarray  # (labels, features)
    emb_bias: np.ndarray
    vocabulary: list[str]
    idf: np.ndarray
    lex_coef: np.ndarray  # (labels, vocabulary)
    lex_bias: np.ndarray
    thresholds: dict[str, float] = field(default_factory=dict)
    _vec: Any = None

    def _lexical(self, texts: Sequence[str]):
        if self._vec is None:
            vec = _vectorizer(self.recipe, {t: i for i, t in enumerate(self.vocabulary)})
            vec.idf_ = self.idf
            self._vec = vec
        return self._vec.transform([t[:LEX_MAX_CHARS] for t in texts])

    def probabilities(self, texts: Sequence[str], features: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities from the two branches; `features` from `stack`."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        p_emb = _sigmoid(_with_cues(texts, features, self.recipe) @ self.emb_coef.T + self.emb_bias)
        p_lex = _sigmoid(np.asarray(self._lexical(texts) @ self.lex_coef.T) + self.lex_bias)
        w = self.recipe.lex_weight
        return ((1 - w) * p_emb + w * p_lex).astype(np.float32)

    def save(self, out: Path) -> None:
        import torch
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        tensors = {
            "emb_coef": self.emb_coef, "emb_bias": self.emb_bias, "idf": self.idf,
            "lex_coef": self.lex_coef, "lex_bias": self.lex_bias,
        }  # fmt: skip
        save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()},
                  str(out / FILES[0]))  # fmt: skip
        meta = {"labels": self.labels, "recipe": self.recipe.to_json(),
                "thresholds": self.thresholds, "vocabulary": self.vocabulary}  # fmt: skip
        (out / FILES[1]).write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> NeedsModel:
        from safetensors.numpy import load_file

        meta = json.loads((folder / FILES[1]).read_text(encoding="utf-8"))
        t = load_file(str(folder / FILES[0]))
        return cls(
            # a recipe saved before the cues (needs.v3) had none
            labels=list(meta["labels"]), recipe=NeedsRecipe(**{"cues": False, **meta["recipe"]}),
            emb_coef=t["emb_coef"].astype(np.float32), emb_bias=t["emb_bias"].astype(np.float32),
            vocabulary=list(meta["vocabulary"]), idf=t["idf"].astype(np.float32),
            lex_coef=t["lex_coef"].astype(np.float32), lex_bias=t["lex_bias"].astype(np.float32),
            thresholds={k: float(v) for k, v in meta["thresholds"].items()},
        )  # fmt: skip


def _with_cues(texts: Sequence[str], features: np.ndarray, recipe: NeedsRecipe) -> np.ndarray:
    """The embedding branch's input: `stack`'s features, plus the guideline cues if the recipe
    uses them."""
    if not recipe.cues:
        return features
    return np.concatenate([features, cue_features(texts)], axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
