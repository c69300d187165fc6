"""Adapt the tagger to a deployment's corrections: retrain heads, judge against the champion.

    adapt(base_dir, out_dir, version=..., train=[...], held_out=[...])

`train` and `held_out` are `Example`s (text, kind, label) from analysts' corrections; the service
builds them (`jobs.adapt`), the benchmark simulates them (`bench/adaptation.py`). Nothing here
reads the database.

- **sentiment / emotion**: the champion's head (the live version's) is fine-tuned on the
  corrections' pooled embeddings, class-balanced, mixed with a replay sample of the original
  training data (when `../shared/data` is present; cached per encoder under `cache_dir`) and
  pulled towards the champion's weights (L2-SP), so a few hundred labels move the head towards
  the company's language without forgetting the rest.
- **contrastive** (SetFit's pair step), from `MIN_CONTRASTIVE` corrections of a kind on: a
  small residual projection in front of that kind's head (`classifiers.heads.Projected`, the
  identity at the start) is trained on pairs of corrected items, cosine 1 for the same label and
  0 for different ones, with replay pairs and an L2 pull towards the starting projection; then
  the head is refit on the projected embeddings. The encoder is not touched: tagging stays one
  encoder pass, the stored embedding is the encoder's, and the other heads read it unchanged.
- **need**: the hybrid needs head (`classifiers.needs`) is refit on its own training rows plus
  the corrections (weighted `NEED_CORRECTION_WEIGHT`), reading the challenger's sentiment and emotion
  outputs as it will when serving; the champion's thresholds are kept.
- **touchpoint**: the corrected texts become example phrases of their touchpoint (the
  prototypes of `classifiers.touchpoints` read them), stored in the version's heads.json.
- **custom:NAME** (a custom category head, `classifiers.custom`): the head is refit, as
  `voc train custom` fits it, on the CSV rows it was trained on (its `train.npz`) plus the
  corrections, and written into the version's `custom/NAME/`; heads without corrections are
  copied there as they were, so a version holds every head it tags with and a rollback restores
  them.
- topic corrections are served by analytics, not trained on here (topics are clusters).

The challenger is scored against the champion on the held-back corrections (never trained on):
per item, right or wrong, paired; a bootstrap of the mean difference gives its 95% interval.
It is `better` only when the pooled interval is above zero and no kind got worse on average.
The version's files are written to a temporary folder and renamed into place at the end, so a
crash leaves no half-written version.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifiers.labels import GOEMOTIONS_LABELS, SENTIMENT_LABELS

MIN_HELD_OUT = 10  # fewer held-back corrections than this cannot judge a challenger
# From this many corrections of a kind on, its head is adapted contrastively (a residual
# projection trained on pairs, then the head refit on it); below, and for a kind set to None,
# head-only. Chosen on the dev splits of the held-out domains by bench/adaptation.py
# (model_cards/adaptation.md): averaged over the two held-out sentiment domains' dev splits,
# head-only won at every size (contrastive won on Glassdoor headlines from 200 by under 2
# points, lost on tweets by 2.6 to 3.8); on TweetEval emotions' dev split head-only won at every size.
# So no kind uses it by default; `adapt(min_contrastive=...)` turns it on.
MIN_CONTRASTIVE: dict[str, int | None] = {"sentiment": None, "emotion": None}


@dataclass(frozen=True)
class Example:
    """One corrected item: its text, the kind and the label ('|'-joined for emotion)."""

    text: str
    kind: str
    label: str
    audience: str = "customer"


@dataclass
class HeadFit:
    """How a head is fine-tuned on corrections (chosen on the dev splits by bench/adaptation.py)."""

    steps: int = 300
    lr: float = 3e-4
    batch: int = 64
    correction_share: float = 0.5  # of each batch, the rest replay
    l2_sp: float = 1e-2  # pull towards the champion's weights
    balanced: bool = True  # class-balanced corrections
    replay_per_source: int = 500  # original training rows per source (0: none)
    seed: int = 13


@dataclass
class ContrastiveFit:
    """SetFit's pair step on the pooled embedding: a residual projection (rank `rank`, the
    identity at the start) trained so that two corrected items of one label have cosine 1 and
    of different labels cosine 0 (mean squared error, SetFit's CosineSimilarityLoss), with a
    share of each batch's pairs from the replay rows and an L2 pull towards the starting
    projection; the head is then refit (`HeadFit`) on the projected embeddings."""

    rank: int = 64
    steps: int = 300
    lr: float = 1e-3
    batch: int = 128  # pairs per step, half same-label, half different
    replay_share: float = 0.25  # of each batch's pairs
    l2: float = 1e-3
    seed: int = 13


# A custom head is refit on its CSV rows (its train.npz) plus the corrections: on Banking77 as a
# custom category (bench/custom_categories.py, model_cards/custom_categories.md) that beat
# fine-tuning the live head at every number of corrections. A head saved without its CSV rows
# is fine-tuned instead, at the rate the dev grid preferred and its best L2-SP pull (HeadFit's own
# rate, 3e-4, left it unchanged).
CUSTOM_LR = 1e-2
CUSTOM_L2_SP = 1e-4
CUSTOM_REFIT = True  # False: fine-tune even a head with its CSV rows (bench/custom_categories.py compares)

# The needs head is refit (both branches) on its original training rows plus the corrections,
# each correction weighted this much; the champion's thresholds are kept.
NEED_CORRECTION_WEIGHT = 3.0


@dataclass
class AdaptReport:
    version: str
    out_dir: str | None
    better: bool
    reason: str
    scores: dict[str, Any] = field(default_factory=dict)
    n_train: dict[str, int] = field(default_factory=dict)
    n_held_out: int = 0
    seconds: float = 0.0


# --- heads ------------------------------------------------------------------------------------


def _l2_sp(module: torch.nn.Module, anchor: list[torch.Tensor]) -> torch.Tensor:
    return sum(((p - a) ** 2).sum() for p, a in zip(module.parameters(), anchor, strict=True))  # type: ignore[return-value]


def fine_tune(champion: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, multi_label: bool,
              replay_x: np.ndarray | None = None, replay_y: np.ndarray | None = None,
              fit: HeadFit | None = None) -> torch.nn.Module:
    """A copy of `champion` fine-tuned on (x, y) mixed with replay rows; y: class ids, or a 0/1
    matrix when multi-label. Deterministic for `fit.seed`."""
    fit = fit or HeadFit()
    torch.manual_seed(fit.seed)
    rng = np.random.default_rng(fit.seed)
    module = copy.deepcopy(champion).float().train()
    anchor = [p.detach().clone() for p in module.parameters()]
    opt = torch.optim.Adam(module.parameters(), lr=fit.lr)
    xt = torch.from_numpy(np.asarray(x, np.float32))
    yt = torch.from_numpy(np.asarray(y, np.float32 if multi_label else np.int64))
    weights = np.ones(len(x), np.float32)
    if fit.balanced and not multi_label:
        counts = np.bincount(np.asarray(y), minlength=int(np.max(y)) + 1).astype(np.float32)
        weights = (len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)))[np.asarray(y)]
    wt = torch.from_numpy(weights.astype(np.float32))
    has_replay = replay_x is not None and replay_y is not None and len(replay_x) > 0
    if has_replay:
        rx = torch.from_numpy(np.asarray(replay_x, np.float32))
        ry = torch.from_numpy(np.asarray(replay_y, np.float32 if multi_label else np.int64))
    n_corr = max(1, int(fit.batch * fit.correction_share)) if has_replay else fit.batch
    n_rep = fit.batch - n_corr if has_replay else 0

    def loss_of(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if multi_label:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)
        return torch.nn.functional.cross_entropy(logits, target, reduction="none")

    for _ in range(fit.steps):
        idx = torch.from_numpy(rng.integers(0, len(x), size=min(n_corr, max(len(x), 1))))
        loss = (loss_of(module(xt[idx]), yt[idx]) * wt[idx]).sum() / wt[idx].sum()
        if n_rep:
            ridx = torch.from_numpy(rng.integers(0, len(rx), size=n_rep))
            loss = (loss * n_corr + loss_of(module(rx[ridx]), ry[ridx]).mean() * n_rep) / fit.batch
        loss = loss + fit.l2_sp * _l2_sp(module, anchor)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval()


def head_probs(module: torch.nn.Module, x: np.ndarray, *, multi_label: bool, temperature: float = 1.0,
               bias: Sequence[float] | None = None) -> np.ndarray:
    """Probabilities of a head on pooled embeddings (with its calibration)."""
    with torch.inference_mode():
        logits = module.float()(torch.from_numpy(np.asarray(x, np.float32))) / temperature
        if bias:
            logits = logits + torch.tensor(list(bias), dtype=torch.float32)
        return (torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).numpy()


def split_projected(module: torch.nn.Module) -> tuple[torch.nn.Module | None, torch.nn.Module]:
    """(projection or None, head) of a head module."""
    from classifiers.heads import Projected

    if isinstance(module, Projected):
        return module.proj, module.head
    return None, module


def project(proj: torch.nn.Module | None, x: np.ndarray) -> np.ndarray:
    """Embeddings through a projection (unchanged without one)."""
    if proj is None or x is None or len(x) == 0:
        return x
    with torch.inference_mode():
        return proj.float().eval()(torch.from_numpy(np.asarray(x, np.float32))).numpy()


def _pairs(y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` (i, j, same) pairs, half same-label and half different, anchors class-balanced (as
    SetFit draws one positive and one negative pair per sentence and iteration)."""
    classes = [np.flatnonzero(y == c) for c in np.unique(y)]
    classes = [c for c in classes if len(c)]
    anchors_class = rng.integers(0, len(classes), size=n)
    i = np.array([classes[c][rng.integers(len(classes[c]))] for c in anchors_class])
    same = np.arange(n) % 2 == 0
    if len(classes) < 2:
        same[:] = True
    j = np.empty(n, np.int64)
    for k in range(n):
        own = classes[anchors_class[k]]
        if same[k]:
            j[k] = own[rng.integers(len(own))]
        else:
            other = rng.integers(len(classes) - 1)
            other += other >= anchors_class[k]
            j[k] = classes[other][rng.integers(len(classes[other]))]
    return i, j, same.astype(np.float32)


def contrastive_tune(x: np.ndarray, y: np.ndarray, *, replay_x: np.ndarray | None = None,
                     replay_y: np.ndarray | None = None, start: torch.nn.Module | None = None,
                     fit: ContrastiveFit | None = None) -> torch.nn.Module:
    """A residual projection trained on same/different-label pairs of (x, y) (see
    `ContrastiveFit`); `start` continues a champion's projection. Deterministic for the seed."""
    from classifiers.heads import ResidualProjection

    fit = fit or ContrastiveFit()
    torch.manual_seed(fit.seed)
    rng = np.random.default_rng(fit.seed)
    proj = copy.deepcopy(start).float() if start is not None else ResidualProjection(x.shape[1], fit.rank)
    proj.train()
    anchor = [p.detach().clone() for p in proj.parameters()]
    opt = torch.optim.Adam(proj.parameters(), lr=fit.lr)
    xt = torch.from_numpy(np.asarray(x, np.float32))
    y = np.asarray(y)
    has_replay = replay_x is not None and replay_y is not None and len(replay_x) > 0 and fit.replay_share > 0
    n_rep = int(fit.batch * fit.replay_share) if has_replay else 0
    n_corr = fit.batch - n_rep
    if has_replay:
        rx = torch.from_numpy(np.asarray(replay_x, np.float32))
        ry = np.asarray(replay_y)
    for _ in range(fit.steps):
        i, j, same = _pairs(y, n_corr, rng)
        a, b, target = xt[i], xt[j], torch.from_numpy(same)
        if n_rep:
            ri, rj, rsame = _pairs(ry, n_rep, rng)
            a, b = torch.cat([a, rx[ri]]), torch.cat([b, rx[rj]])
            target = torch.cat([target, torch.from_numpy(rsame)])
        cos = (proj(a) * proj(b)).sum(-1)
        loss = torch.nn.functional.mse_loss(cos, target) + fit.l2 * _l2_sp(proj, anchor)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return proj.eval()


def adapt_head(champion: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, multi_label: bool,
               replay_x: np.ndarray | None = None, replay_y: np.ndarray | None = None,
               fit: HeadFit | None = None, contrastive: ContrastiveFit | None = None) -> torch.nn.Module:
    """The challenger's head for one kind: head-only (`fine_tune` behind the champion's
    projection, if it has one), or with `contrastive` a projection trained on pairs first
    (`contrastive_tune`, from the champion's; for a multi-label kind two items are a same-label
    pair when their label sets are equal) and the head refit on it."""
    from classifiers.heads import Projected

    proj, head = split_projected(champion)
    if contrastive is not None:
        if multi_label:  # a label set is one class of the pairs: same set, same class
            keys = {}
            y_ids = np.asarray([keys.setdefault(row.tobytes(), len(keys)) for row in np.asarray(y) > 0.5])
            r_ids = (np.asarray([keys.setdefault(row.tobytes(), len(keys)) for row in np.asarray(replay_y) > 0.5])
                     if replay_y is not None else None)
        else:
            y_ids, r_ids = y, replay_y
        proj = contrastive_tune(x, y_ids, replay_x=replay_x, replay_y=r_ids, start=proj, fit=contrastive)
    new_head = fine_tune(head, project(proj, x), y, multi_label=multi_label,
                         replay_x=project(proj, replay_x) if replay_x is not None else None,
                         replay_y=replay_y, fit=fit)
    return Projected(proj, new_head).eval() if proj is not None else new_head


# --- replay -----------------------------------------------------------------------------------


def replay_set(tagger: Any, kind: str, cache_dir: Path, *, per_source: int = 500,
               seed: int = 13) -> tuple[np.ndarray, np.ndarray] | None:
    """Embeddings and labels of a sample of the original training data for `kind` (None when the
    shared data folder is absent), cached per encoder version."""
    from classifiers.training import data

    try:
        data.data_dir()
    except FileNotFoundError:
        return None
    safe = tagger.encoder_version.replace("/", "_")
    path = Path(cache_dir) / f"replay-{kind}-{safe}-{per_source}-{seed}.npz"
    if path.exists():
        saved = np.load(path)
        return saved["x"], saved["y"]
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[Any] = []
    if kind == "sentiment":
        sources = [data.semeval_tweets("train"), data.amazon_reviews("train"), data.glassdoor("train"),
                   data.glassdoor_pros_cons("train"), data.sst5("train"), data.goemotions_sentiment("train")]
        for split in sources:
            take = rng.choice(len(split.texts), size=min(per_source, len(split.texts)), replace=False)
            texts += [split.texts[i] for i in take]
            labels += [SENTIMENT_LABELS.index(split.labels[i]) for i in take]
        y = np.asarray(labels, np.int64)
    else:  # emotion: GoEmotions train
        split = data.goemotions("train")
        take = rng.choice(len(split.texts), size=min(per_source * 4, len(split.texts)), replace=False)
        texts = [split.texts[i] for i in take]
        y = np.zeros((len(take), len(GOEMOTIONS_LABELS)), np.float32)
        for row, i in enumerate(take):
            for label in split.labels[i]:
                y[row, GOEMOTIONS_LABELS.index(label)] = 1.0
    x, _ = tagger.head_probabilities(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return x, y


# --- judging ----------------------------------------------------------------------------------


def paired_bootstrap(diff: np.ndarray, *, resamples: int = 2000, seed: int = 13) -> tuple[float, float]:
    """95% interval of the mean of paired per-item differences (challenger - champion)."""
    if len(diff) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def judge(per_kind: dict[str, tuple[np.ndarray, np.ndarray]], *, min_held_out: int = MIN_HELD_OUT,
          seed: int = 13) -> tuple[bool, str, dict[str, Any]]:
    """(better, why, scores) from per-kind (champion correct, challenger correct) 0/1 arrays."""
    kinds: dict[str, Any] = {}
    pooled: list[np.ndarray] = []
    for kind, (champion, challenger) in per_kind.items():
        diff = challenger.astype(float) - champion.astype(float)
        low, high = paired_bootstrap(diff, seed=seed)
        kinds[kind] = {"n": int(len(diff)), "champion": float(champion.mean()) if len(diff) else 0.0,
                       "challenger": float(challenger.mean()) if len(diff) else 0.0,
                       "gain": float(diff.mean()) if len(diff) else 0.0, "ci_low": low, "ci_high": high}
        pooled.append(diff)
    diff = np.concatenate(pooled) if pooled else np.zeros(0)
    low, high = paired_bootstrap(diff, seed=seed)
    scores = {"metric": "accuracy on held-back corrections (emotion: the exact set)", "kinds": kinds,
              "n": int(len(diff)), "gain": float(diff.mean()) if len(diff) else 0.0, "ci_low": low, "ci_high": high}
    if len(diff) < min_held_out:
        return False, f"{len(diff)} held-back corrections of the trained kinds; at least {min_held_out} " \
                      "are needed to judge a challenger", scores
    worse = [k for k, s in kinds.items() if s["gain"] < 0]
    if worse:
        return False, f"worse on held-back {', '.join(worse)} corrections", scores
    if low <= 0:
        return False, (f"gain {scores['gain']:+.3f} on {len(diff)} held-back corrections is within the noise "
                       f"(95% interval {low:+.3f} to {high:+.3f})"), scores
    return True, f"gain {scores['gain']:+.3f} (95% interval {low:+.3f} to {high:+.3f}) on {len(diff)} " \
                 "held-back corrections", scores


# --- custom category heads --------------------------------------------------------------------


def _known(examples: Sequence[Example], kind: str, labels: list[str], multi: bool) -> list[Example]:
    """The examples of `kind` whose labels the head has (a head retrained since may have dropped one)."""
    return [e for e in _labels_of(examples, kind)
            if (multi or e.label in labels) and all(part in labels for part in e.label.split("|") if part)]


def _adapt_custom(tagger: Any, train: Sequence[Example], held_out: Sequence[Example], embed: Any,
                  fit: HeadFit | None, per_kind: dict[str, tuple[np.ndarray, np.ndarray]],
                  n_train: dict[str, int], methods: dict[str, str], *,
                  version: str) -> dict[str, tuple[Path, Any, dict]]:
    """Each custom head of `tagger` refit on its CSV rows plus its `custom:NAME` corrections (a
    head without its CSV rows: fine-tuned on the corrections) and judged on the held-back ones,
    filling `per_kind`, `n_train` and `methods`.
    Returns name -> (the folder it was loaded from, the adapted module or None when it had no
    corrections, its new head.json)."""
    from classifiers.training.custom import fit_custom, replay_rows

    out: dict[str, tuple[Path, Any, dict]] = {}
    for custom in tagger.custom_heads:
        kind = f"custom:{custom.name}"
        source = custom.folder
        head, spec = custom.head, custom.head.spec
        labels, multi = list(head.labels), spec.multi_label
        rows, judged = _known(train, kind, labels, multi), _known(held_out, kind, labels, multi)
        module, thresholds = None, None
        meta = json.loads((source / "head.json").read_text())
        if rows:
            replay = replay_rows(source)
            xr, yr = embed(rows), _targets(rows, labels, multi)
            if replay is not None and CUSTOM_REFIT:  # the CSV rows plus the corrections (bench/custom_categories.py)
                module, thresholds = fit_custom(np.concatenate([replay[0], xr]), np.concatenate([replay[1], yr]),
                                                labels, multi_label=multi)
                methods[kind] = "refit"
                if multi and thresholds:
                    meta["thresholds"] = thresholds
            else:  # a head saved without its CSV rows: fine-tuned from the live one
                module = adapt_head(head.module, xr, yr, multi_label=multi,
                                    replay_x=replay[0] if replay else None, replay_y=replay[1] if replay else None,
                                    fit=dataclasses.replace(fit or HeadFit(), lr=CUSTOM_LR, l2_sp=CUSTOM_L2_SP))
                methods[kind] = "head"
            n_train[kind] = len(rows)
            meta["adapted"] = {"corrections": len(rows), "method": methods[kind], "from": meta["version"]}
            meta["version"] = f"custom.{custom.name}.{version}"  # the tagger version being written: unique
        if judged:
            xj, gold = embed(judged), _targets(judged, labels, multi)
            # a custom head has no calibration (temperature 1, bias 0: load_custom_head), so the
            # refit head and the fine-tuned one are read alike
            before = head_probs(head.module, xj, multi_label=multi, temperature=head.temperature,
                                bias=head.bias.tolist())
            after = before if module is None else head_probs(module, xj, multi_label=multi,
                                                             temperature=head.temperature, bias=head.bias.tolist())
            if multi:
                thr = head.thresholds.numpy()
                # the adapted head's thresholds: the refit's tuned ones, else the live head's
                new_thr = thr if module is None else np.asarray([meta["thresholds"].get(label, 0.5)
                                                                 for label in labels])
                per_kind[kind] = ((((before >= thr) == (gold > 0.5)).all(1)).astype(float),
                                  (((after >= new_thr) == (gold > 0.5)).all(1)).astype(float))
            else:
                per_kind[kind] = ((before.argmax(1) == gold).astype(float), (after.argmax(1) == gold).astype(float))
        out[custom.name] = (source, module, meta)
    return out


# --- the whole adaptation ---------------------------------------------------------------------


def _labels_of(examples: Sequence[Example], kind: str) -> list[Example]:
    return [e for e in examples if e.kind == kind and e.text.strip()]


def _targets(examples: Sequence[Example], labels: list[str], multi: bool) -> np.ndarray:
    """Class ids, or a 0/1 matrix for a multi-label kind ('|'-joined labels)."""
    if multi:
        y = np.zeros((len(examples), len(labels)), np.float32)
        for i, e in enumerate(examples):
            for label in e.label.split("|"):
                if label in labels:
                    y[i, labels.index(label)] = 1.0
        return y
    return np.asarray([labels.index(e.label) for e in examples], np.int64)


def needs_rows(tagger: Any, cache_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The needs head's own training rows (texts, pooled embeddings, 0/1 labels, sample weights):
    `needs/train.jsonl` from the shared data folder when present, and the project's written
    rows (weighted as the shipped recipe weights them), embedded once per encoder."""
    from classifiers.labels import NEED_LABELS
    from classifiers.needs import NeedsRecipe
    from classifiers.training import data
    from classifiers.training.needs import written_rows
    from classifiers.training.train import multi_hot

    texts, labels = written_rows()
    weights = [NeedsRecipe().written_weight] * len(texts)
    try:
        shared = data.needs()
        texts, labels = shared.texts + texts, shared.labels + labels
        weights = [1.0] * len(shared.texts) + weights
    except FileNotFoundError:
        pass
    safe = tagger.encoder_version.replace("/", "_")
    path = Path(cache_dir) / f"needs-{safe}-{len(texts)}.npy"
    if path.exists():
        emb = np.load(path)
    else:
        emb, _ = tagger.head_probabilities(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, emb)
    return texts, emb, multi_hot(labels, NEED_LABELS), np.asarray(weights, np.float64)


def adapt(base_dir: Path | str, out_dir: Path | str, *, version: str, train: Sequence[Example],
          held_out: Sequence[Example], touchpoints: tuple | None = None, device: str | None = None,
          cache_dir: Path | str | None = None, fit: HeadFit | None = None,
          contrastive: ContrastiveFit | None = None,
          min_contrastive: int | dict[str, int | None] | None = None,
          min_held_out: int = MIN_HELD_OUT, custom_heads: Sequence[str] = ()) -> AdaptReport:
    """Train a challenger from `base_dir` (the champion's heads folder) on `train`, judge it on
    `held_out`, and write it to `out_dir` (whatever the verdict: a rejected candidate keeps its
    files and numbers). A kind with at least `min_contrastive` corrections (one number, or per
    kind where a kind not named never is; None: `MIN_CONTRASTIVE`) is adapted contrastively
    (`ContrastiveFit`), else head-only.
    Raises on failure, leaving nothing at `out_dir`."""
    from classifiers.config import TaggerConfig
    from classifiers.needs import stack
    from classifiers.tagger import Tagger, read_heads_meta, with_examples
    from classifiers.touchpoints import TouchpointPrototypes
    from classifiers.training.custom import copy_head, save_head

    started = time.perf_counter()
    base_dir, out_dir = Path(base_dir).resolve(), Path(out_dir)
    cache = Path(cache_dir) if cache_dir else out_dir.parent / "cache"
    config = TaggerConfig(heads_dir=str(base_dir), device=device, custom_heads=tuple(custom_heads),
                          **({"touchpoints": touchpoints} if touchpoints else {}))
    tagger = Tagger(config)
    meta = read_heads_meta(base_dir)
    from safetensors.torch import load_file, save_file

    tensors = dict(load_file(str(base_dir / "heads.safetensors")))
    new_meta = json.loads(json.dumps(meta))
    per_kind: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n_train: dict[str, int] = {}
    methods: dict[str, str] = {}
    modules = {task: head.module for task, head in tagger.heads.items()}  # the challenger's heads
    pooled: dict[str, np.ndarray] = {}  # text -> embedding, one encoder pass per text

    def embed(examples: list[Example]) -> np.ndarray:
        missing = list(dict.fromkeys(e.text for e in examples if e.text not in pooled))
        if missing:
            x, _ = tagger.head_probabilities(missing)
            pooled.update(zip(missing, x, strict=True))
        return np.stack([pooled[e.text] for e in examples]) if examples else np.zeros((0, tagger.encoder.dim))

    def calibrated(task: str, module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
        spec = tagger.heads[task].spec
        return head_probs(module, x, multi_label=spec.multi_label, temperature=spec.temperature, bias=spec.bias)

    for kind, task in (("sentiment", "sentiment"), ("emotion", "emotions")):
        rows, judged = _labels_of(train, kind), _labels_of(held_out, kind)
        if not rows and not judged:
            continue
        head = tagger.heads[task]
        multi = head.spec.multi_label
        labels = list(head.labels)
        module = head.module
        if rows:
            per_source = (fit or HeadFit()).replay_per_source
            replay = replay_set(tagger, kind, cache, per_source=per_source) if per_source else None
            thresholds = MIN_CONTRASTIVE if min_contrastive is None else min_contrastive
            threshold = thresholds.get(kind) if isinstance(thresholds, dict) else thresholds
            use_contrastive = threshold is not None and len(rows) >= threshold
            module = adapt_head(head.module, embed(rows), _targets(rows, labels, multi), multi_label=multi,
                                replay_x=replay[0] if replay else None, replay_y=replay[1] if replay else None,
                                fit=fit, contrastive=(contrastive or ContrastiveFit()) if use_contrastive else None)
            modules[task] = module
            n_train[kind] = len(rows)
            methods[kind] = "contrastive" if use_contrastive else "head"
            prefix = f"{task}."
            dtype = next(v.dtype for k, v in tensors.items() if k.startswith(prefix))
            tensors = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
            for name, value in module.state_dict().items():
                tensors[prefix + name] = value.detach().to(dtype).contiguous()
            spec = new_meta["heads"][task]
            proj, _ = split_projected(module)
            spec.pop("projection", None)
            if proj is not None:
                spec["projection"] = int(proj.down.out_features)
            spec.setdefault("training", {})["adapted"] = {"corrections": len(rows), "replay": bool(replay),
                                                          "method": methods[kind], "from": meta["version"]}
        if judged:
            xj = embed(judged)
            gold = _targets(judged, labels, multi)
            before, after = calibrated(task, head.module, xj), calibrated(task, module, xj)
            if multi:
                thr = head.thresholds.numpy()
                per_kind[kind] = ((((before >= thr) == (gold > 0.5)).all(1)).astype(float),
                                  (((after >= thr) == (gold > 0.5)).all(1)).astype(float))
            else:
                per_kind[kind] = ((before.argmax(1) == gold).astype(float), (after.argmax(1) == gold).astype(float))

    # needs: the hybrid head refit on its own rows plus the corrections, reading the challenger's
    # sentiment and emotion outputs as it will when serving
    new_needs = None
    rows, judged = _labels_of(train, "need"), _labels_of(held_out, "need")
    champion_needs = tagger.needs_model
    if champion_needs is not None and (rows or judged):
        from classifiers.training.needs import fit as fit_needs

        labels = list(champion_needs.labels)

        def features(model_modules: dict[str, torch.nn.Module], x: np.ndarray) -> np.ndarray:
            return stack(x, calibrated("emotions", model_modules["emotions"], x),
                         calibrated("sentiment", model_modules["sentiment"], x))

        new_needs = champion_needs
        if rows:
            texts, emb, y, weights = needs_rows(tagger, cache)
            xr = embed(rows)
            all_texts = texts + [e.text for e in rows]
            all_x = features(modules, np.concatenate([emb, xr]))
            all_y = np.concatenate([y, _targets(rows, labels, True)])
            all_w = np.concatenate([weights, np.full(len(rows), NEED_CORRECTION_WEIGHT)])
            new_needs = fit_needs(all_texts, all_x, all_y, champion_needs.recipe, sample_weight=all_w)
            new_needs.thresholds = dict(champion_needs.thresholds)
            n_train["need"] = len(rows)
            methods["need"] = "refit"
            new_meta["heads"]["needs"].setdefault("training", {})["adapted"] = {
                "corrections": len(rows), "method": "refit", "from": meta["version"]}
        if judged:
            xj = embed(judged)
            texts_j = [e.text for e in judged]
            gold = _targets(judged, labels, True) > 0.5
            thr = np.array([champion_needs.thresholds.get(label, 0.5) for label in labels])
            champion_modules = {task: head.module for task, head in tagger.heads.items()}
            before = champion_needs.probabilities(texts_j, features(champion_modules, xj)) >= thr
            after = new_needs.probabilities(texts_j, features(modules, xj)) >= thr
            per_kind["need"] = ((before == gold).all(1).astype(float), (after == gold).all(1).astype(float))

    rows, judged = _labels_of(train, "touchpoint"), _labels_of(held_out, "touchpoint")
    if rows or judged:
        examples: dict[str, list[str]] = {k: list(v) for k, v in (meta.get("touchpoint_examples") or {}).items()}
        for e in rows:
            if e.label != "unknown":
                examples.setdefault(e.label, []).append(e.text)
        if rows:
            new_meta["touchpoint_examples"] = examples
            n_train["touchpoint"] = len(rows)
            methods["touchpoint"] = "examples"
        if judged:
            emb = tagger.embed([e.text for e in judged])
            audiences = [e.audience for e in judged]
            gold = np.asarray([e.label for e in judged])
            challenger = TouchpointPrototypes(with_examples(config.touchpoints, examples), tagger.embed,
                                              tagger.touchpoint_threshold)
            before = np.asarray([t for t, _ in tagger.touchpoints.assign(emb, audiences)])
            after = np.asarray([t for t, _ in challenger.assign(emb, audiences)])
            per_kind["touchpoint"] = ((before == gold).astype(float), (after == gold).astype(float))

    custom_out = _adapt_custom(tagger, train, held_out, embed, fit, per_kind, n_train, methods, version=version)

    better, reason, scores = judge(per_kind, min_held_out=min_held_out)
    if not n_train:
        better, reason = False, ("no corrections of a trained kind (sentiment, emotion, need, touchpoint, "
                                 "custom:NAME) to train on")
    scores["methods"] = methods
    new_meta["version"] = version
    new_meta["adapted"] = {"from": meta["version"], "corrections": n_train, "held_out": scores.get("n", 0),
                           "methods": methods, "better": better, "reason": reason}
    # Written next to the target, then renamed: a crash leaves no half-written version.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=out_dir.parent))
    try:
        save_file(tensors, str(tmp / "heads.safetensors"))
        (tmp / "heads.json").write_text(json.dumps(new_meta, indent=2, sort_keys=True))
        if new_needs is not None and new_needs is not champion_needs:
            new_needs.save(tmp)
        else:
            for name in ("needs.json", "needs.safetensors"):
                if (base_dir / name).exists():
                    shutil.copyfile(base_dir / name, tmp / name)
        for name, (source, module, head_meta) in custom_out.items():
            if module is None:
                copy_head(source, tmp / "custom" / name)
            else:
                save_head(tmp / "custom" / name, module, head_meta)
                if (source / "train.npz").exists():
                    shutil.copyfile(source / "train.npz", tmp / "custom" / name / "train.npz")
        if meta.get("adapter"):  # the encoder is not retrained: point at the champion's
            os.symlink((base_dir / meta["adapter"]).resolve(), tmp / meta["adapter"])
        if out_dir.exists():
            raise FileExistsError(f"{out_dir} exists already; versions are never overwritten")
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return AdaptReport(version=version, out_dir=str(out_dir), better=better, reason=reason, scores=scores,
                       n_train=n_train, n_held_out=int(scores.get("n", 0)), seconds=time.perf_counter() - started)
