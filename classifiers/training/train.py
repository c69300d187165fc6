"""Train the task heads on the shared encoder's pooled embeddings.

    python -m classifiers.training.train TASK [--encoder PATH] [--adapter DIR] [--out DIR]
    python -m classifiers.training.train custom --csv FILE --name NAME

TASK is sentiment | emotions | needs | touchpoint | all. Heads are fitted on `train` splits,
thresholds tuned on `dev`/`val` splits (never on `test`), and written with their metadata to
`classifiers/weights/` (or --out). Seeds are fixed, so a rerun gives the same weights.
The multi-task fine-tune of the encoder itself is `python -m classifiers.training.finetune`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifiers.config import BANK_TOUCHPOINTS
from classifiers.heads import HeadSpec, build_module
from classifiers.labels import GOEMOTIONS_LABELS, NEED_LABELS, SENTIMENT_LABELS
from classifiers.tagger import TAGGER_NAME, WEIGHTS_DIR
from classifiers.training import data, features

SEED = 13
TRAIN_MAX_LENGTH = 128
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)

# Banking77 intents grouped into the touchpoints of config.BANK_TOUCHPOINTS.
BANKING77_TOUCHPOINT: dict[str, str] = {}
for _tp, _intents in {
    "card_delivery": "card_arrival card_delivery_estimate card_linking activate_my_card "
    "getting_virtual_card get_physical_card order_physical_card getting_spare_card "
    "card_about_to_expire get_disposable_virtual_card disposable_card_limits "
    "virtual_card_not_working supported_cards_and_currencies visa_or_mastercard "
    "apple_pay_or_google_pay",
    "card_problems": "card_not_working lost_or_stolen_card pin_blocked contactless_not_working "
    "compromised_card card_swallowed change_pin card_acceptance declined_card_payment",
    "payments": "card_payment_not_recognised direct_debit_payment_not_recognised "
    "pending_card_payment transaction_charged_twice reverted_card_payment? "
    "card_payment_fee_charged extra_charge_on_statement",
    "transfers": "cancel_transfer transfer_not_received_by_recipient declined_transfer "
    "pending_transfer transfer_timing beneficiary_not_allowed transfer_fee_charged "
    "receiving_money failed_transfer transfer_into_account balance_not_updated_after_bank_transfer",
    "top_up": "automatic_top_up top_up_by_bank_transfer_charge pending_top_up top_up_limits "
    "top_up_reverted topping_up_by_card verify_top_up top_up_by_cash_or_cheque top_up_failed "
    "top_up_by_card_charge balance_not_updated_after_cheque_or_cash_deposit",
    "cash_atm": "pending_cash_withdrawal wrong_amount_of_cash_received atm_support "
    "declined_cash_withdrawal cash_withdrawal_not_recognised cash_withdrawal_charge "
    "wrong_exchange_rate_for_cash_withdrawal",
    "exchange": "exchange_rate card_payment_wrong_exchange_rate fiat_currency_support "
    "exchange_via_app exchange_charge",
    "account": "age_limit edit_personal_details why_verify_identity unable_to_verify_identity "
    "passcode_forgotten lost_or_stolen_phone request_refund Refund_not_showing_up "
    "terminate_account verify_source_of_funds verify_my_identity country_support",
}.items():
    for _intent in _intents.split():
        BANKING77_TOUCHPOINT[_intent] = _tp


def seed_everything(seed: int = SEED) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


# --- fitting ----------------------------------------------------------------------------------


@dataclass
class FitConfig:
    kind: str = "linear"
    hidden: int = 0
    epochs: int = 30
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 256
    dropout: float = 0.1
    balanced: bool = False  # multi-label: weight each label's positives by its negatives/positives


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    *,
    multi_label: bool,
    fit: FitConfig,
    sample_weight: np.ndarray | None = None,
    seed: int = SEED,
) -> torch.nn.Module:
    """Train a head with AdamW on fixed embeddings. y: class ids, or a 0/1 matrix if multi-label."""
    seed_everything(seed)
    n_out = y.shape[1] if multi_label else int(y.max()) + 1
    module = build_module(fit.kind, x.shape[1], n_out, fit.hidden, fit.dropout)
    opt = torch.optim.AdamW(module.parameters(), lr=fit.lr, weight_decay=fit.weight_decay)
    xt = torch.from_numpy(x).float()
    yt = torch.from_numpy(y).float() if multi_label else torch.from_numpy(y).long()
    wt = torch.ones(len(x)) if sample_weight is None else torch.from_numpy(sample_weight).float()
    pos_weight = None
    if multi_label and fit.balanced:
        pos = yt.sum(0).clamp(min=1)
        pos_weight = ((len(yt) - pos) / pos).clamp(max=20)
    steps = fit.epochs * int(np.ceil(len(x) / fit.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=fit.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(fit.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), fit.batch_size):
            idx = perm[start : start + fit.batch_size]
            logits = module(xt[idx])
            if multi_label:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, yt[idx], reduction="none", pos_weight=pos_weight
                ).mean(1)
            else:
                loss = torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none")
            loss = (loss * wt[idx]).sum() / wt[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return module.eval()


def predict(module: torch.nn.Module, x: np.ndarray, *, multi_label: bool) -> np.ndarray:
    """Probabilities of a head on fixed embeddings; always in eval mode (no dropout), whatever
    mode the module was left in by training or loading."""
    module.eval()
    with torch.no_grad():
        logits = module(torch.from_numpy(x).float())
    return (torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).numpy()


def calibrated_predict(spec: HeadSpec, module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """A head's probabilities as the tagger computes them: with the calibration in its spec
    (so the needs head is trained on the same inputs it is served)."""
    from classifiers.heads import Head

    head = Head(spec, module)
    with torch.no_grad():
        return head.probabilities(torch.from_numpy(x).float()).numpy()


def f1_binary(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float((pred & gold).sum())
    denom = float(pred.sum() + gold.sum())
    return 2 * tp / denom if denom else 0.0


def tune_thresholds(probs: np.ndarray, gold: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Per-label threshold maximising that label's F1 (on a dev split or out-of-fold scores)."""
    out = {}
    for j, label in enumerate(labels):
        g = gold[:, j].astype(bool)
        scores = [f1_binary(probs[:, j] >= t, g) for t in THRESHOLD_GRID]
        out[label] = float(THRESHOLD_GRID[int(np.argmax(scores))])
    return out


def shrunk_thresholds(probs: np.ndarray, gold: np.ndarray, labels: list[str],
                      weight: float = 0.5) -> dict[str, float]:  # fmt: skip
    """Per-label thresholds pulled halfway toward the one best shared threshold.

    With 28 labels, some with a few dozen dev examples, a threshold tuned per label overfits
    dev: on GoEmotions dev split in halves (tune on one, score the other, 5 shuffles x 2) the
    shrunk thresholds score macro-F1 0.435, per-label 0.430, one shared threshold 0.426.
    """
    own = tune_thresholds(probs, gold, labels)
    shared = max(THRESHOLD_GRID, key=lambda t: float(np.mean(
        [f1_binary(probs[:, j] >= t, gold[:, j] > 0) for j in range(len(labels))])))  # fmt: skip
    return {label: round(float(weight * own[label] + (1 - weight) * shared), 4) for label in labels}


def multi_hot(rows: list[list[str]], labels: list[str] | tuple[str, ...]) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, row in enumerate(rows):
        for label in row:
            out[i, index[label]] = 1.0
    return out


# --- embeddings -------------------------------------------------------------------------------


class Features:
    """Cached embeddings of the datasets under one encoder (+ adapter)."""

    def __init__(self, encoder: str | None = None, adapter: str | None = None) -> None:
        self.encoder_name = encoder
        self.adapter = adapter
        self.tag = (encoder or "base").replace("/", "_")
        if adapter:  # the cache follows the adapter's content, not its folder name
            files = [f for f in ("adapter.safetensors", "encoder_delta.safetensors")
                     if (Path(adapter) / f).exists()]  # fmt: skip
            digest = hashlib.sha1(b"".join((Path(adapter) / f).read_bytes() for f in files))
            self.tag += f"+adapter-{digest.hexdigest()[:10]}"
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            from classifiers.encoder import Encoder

            self._encoder = Encoder(
                self.encoder_name, max_length=TRAIN_MAX_LENGTH, adapter_dir=self.adapter
            )
        return self._encoder

    def get(self, name: str) -> tuple[data.Split, np.ndarray]:
        if name.endswith("_sample"):  # every 3rd row: reuse the full set's cache when present
            full = name[: -len("_sample")]
            split = features.DATASETS[full]()
            if features._key(self.tag, full, split.texts, TRAIN_MAX_LENGTH).exists():
                split, emb = self.get(full)
                return data.Split(split.texts[::3], split.labels[::3]), emb[::3]
        split = features.DATASETS[name]()
        path = features._key(self.tag, name, split.texts, TRAIN_MAX_LENGTH)
        if path.exists():
            return split, np.load(path)
        return split, features.embeddings(self.encoder, self.tag, name, split.texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=128)[0]


# --- tasks ------------------------------------------------------------------------------------

# Sentiment sources and how much each counts. The encoder fine-tune also reads the 60k SST-2
# phrases; the heads fitted on cached embeddings do not (embedding them all costs too much CPU
# for what SST-5's full sentences already teach a head about movie reviews).
SENTIMENT_SOURCES = {
    "sst2": 1.0, "sst5": 1.0, "goemotions": 1.0, "amazon": 1.0, "glassdoor": 1.0,
    "glassdoor_pc": 0.5,
}  # fmt: skip
HEAD_SENTIMENT_SOURCES = {k: v for k, v in SENTIMENT_SOURCES.items() if k != "sst2"}


def sentiment_split(feats: Features, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, source weight) for sentiment from every source's `split` ('train' or 'dev')."""
    xs, ys, ws = [], [], []
    idx = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    for source, weight in HEAD_SENTIMENT_SOURCES.items():
        if source == "goemotions":
            ge, emb = feats.get(f"goemotions_{split}")
            sent = data.goemotions_sentiment(split)
            keep = dict(zip(sent.texts, sent.labels, strict=True))
            rows = [i for i, t in enumerate(ge.texts) if t in keep]
            xs.append(emb[rows])
            labels = [keep[ge.texts[i]] for i in rows]
        else:
            sp, emb = feats.get(f"{source}_{split}")
            xs.append(emb)
            labels = sp.labels
        y = np.array([idx[label] for label in labels])
        counts = np.bincount(y, minlength=3).astype(float)
        # balance classes within a source, then give each source its share
        cw = np.where(counts > 0, len(y) / (3 * np.maximum(counts, 1)), 0)
        ws.append(weight * cw[y])
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def train_sentiment(feats: Features, fit: FitConfig) -> tuple[HeadSpec, torch.nn.Module, dict]:
    joint = joint_head(feats, "sentiment")
    if joint is not None:  # trained with the adapter
        module, meta = joint
        spec = HeadSpec("sentiment", "", meta["kind"], list(SENTIMENT_LABELS), False, {},
                        meta["hidden"])  # fmt: skip
        return spec, module, {**sentiment_dev_metrics(feats, module), "joint_with_adapter": True}
    x, y, w = sentiment_split(feats, "train")
    module = fit_head(x, y, multi_label=False, fit=fit, sample_weight=w)
    spec = HeadSpec("sentiment", "", fit.kind, list(SENTIMENT_LABELS), False, {}, fit.hidden)
    return spec, module, {**sentiment_dev_metrics(feats, module), "train_rows": len(y)}


# Dev splits for choosing between sentiment recipes and checkpoints. SST-5 `dev` is NOT one of
# them: 872 of its 1,101 sentences are the GLUE SST-2 dev set, which is this project's SST-2
# *test* (`sst/alps_sst2_test.tsv`); the rest are neutral. `tests/test_classifiers_units.py`
# checks that no split here shares a sentence with a test split.
SENTIMENT_DEV_SPLITS = ("sst2_dev", "goemotions_dev", "amazon_dev", "glassdoor_dev",
                        "glassdoor_pc_dev", "tweets_dev")  # fmt: skip


def sentiment_dev_metrics(feats: Features, module: torch.nn.Module) -> dict[str, float]:
    """Dev-split accuracies used to choose between recipes (never the test splits): SST-2
    phrases (binary), GoEmotions' sentiment grouping, Amazon and Glassdoor (3 classes), and
    their mean."""
    idx = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    out: dict[str, float] = {}
    for name in SENTIMENT_DEV_SPLITS:
        split, x = feats.get(name)
        labels = split.labels
        if name == "goemotions_dev":  # texts with one sentiment group only
            sent = data.goemotions_sentiment("dev")
            keep = dict(zip(sent.texts, sent.labels, strict=True))
            rows = [i for i, t in enumerate(split.texts) if t in keep]
            x, labels = x[rows], [keep[split.texts[i]] for i in rows]
        p = predict(module, x, multi_label=False)
        if name == "sst2_dev":  # binary: positive when p(positive) > p(negative)
            hit = (p[:, 2] > p[:, 0]) == (np.array(labels) == "positive")
        else:
            hit = p.argmax(1) == np.array([idx[label] for label in labels])
        out[f"{name}_accuracy"] = float(np.mean(hit))
    out["dev_mean_accuracy"] = float(np.mean(list(out.values())))
    return out


def joint_head(feats: Features, task: str) -> tuple[torch.nn.Module, dict] | None:
    """The head trained jointly with the adapter (classifiers.training.finetune), if there is one."""
    if not feats.adapter:
        return None
    path = Path(feats.adapter) / "joint_heads.safetensors"
    if not path.exists():
        return None
    from safetensors.torch import load_file

    meta = json.loads((Path(feats.adapter) / "adapter.json").read_text())["joint_heads"][task]
    n_out = len(SENTIMENT_LABELS) if task == "sentiment" else len(GOEMOTIONS_LABELS)
    module = build_module(meta["kind"], 384, n_out, meta["hidden"])
    prefix = f"{task}."
    module.load_state_dict({k[len(prefix) :]: v for k, v in load_file(str(path)).items()
                            if k.startswith(prefix)})  # fmt: skip
    return module.eval(), meta


def train_emotions(feats: Features, fit: FitConfig) -> tuple[HeadSpec, torch.nn.Module, dict]:
    dv, xd = feats.get("goemotions_dev")
    labels = list(GOEMOTIONS_LABELS)
    joint = joint_head(feats, "emotions")
    if joint is not None:  # trained with the adapter: only the thresholds are tuned here
        module, meta = joint
        fit = FitConfig(kind=meta["kind"], hidden=meta["hidden"])
        train_rows = 0
    else:
        tr, x = feats.get("goemotions_train")
        module = fit_head(x, multi_hot(tr.labels, labels), multi_label=True, fit=fit)
        train_rows = len(tr.texts)
    gold = multi_hot(dv.labels, labels)
    probs = predict(module, xd, multi_label=True)
    thresholds = shrunk_thresholds(probs, gold, labels)
    f1s = [
        f1_binary(probs[:, j] >= thresholds[label], gold[:, j] > 0)
        for j, label in enumerate(labels)
    ]
    spec = HeadSpec("emotions", "", fit.kind, labels, True, thresholds, fit.hidden)
    info = {"dev_macro_f1": float(np.mean(f1s)), "train_rows": train_rows,
            "joint_with_adapter": joint is not None}  # fmt: skip
    return spec, module, info


def needs_cv_predictions(x: np.ndarray, y: np.ndarray, fit: FitConfig, folds: int = 5,
                         seed: int = SEED) -> np.ndarray:  # fmt: skip
    """Out-of-fold probabilities from a `folds`-fold split (stratified on the rare labels)."""
    order = fold_ids(y, folds, seed)
    out = np.zeros_like(y)
    for k in range(folds):
        train, test = order != k, order == k
        module = fit_head(x[train], y[train], multi_label=True, fit=fit, seed=seed + k)
        out[test] = predict(module, x[test], multi_label=True)
    return out


def fold_ids(y: np.ndarray, folds: int, seed: int = SEED) -> np.ndarray:
    """Fold number per row, dealing rows of each label combination round-robin."""
    rng = np.random.default_rng(seed)
    keys = ["".join(str(int(v)) for v in row) for row in y]
    out = np.zeros(len(y), dtype=int)
    for key in sorted(set(keys)):
        rows = np.flatnonzero(np.array(keys) == key)
        rng.shuffle(rows)
        out[rows] = (np.arange(len(rows)) + rng.integers(folds)) % folds
    return out


NEEDS_FIT = FitConfig(kind="linear", epochs=60, lr=3e-2, weight_decay=1e-3, batch_size=64,
                      balanced=True)  # needs.v2 (embedding only); kept for custom heads' defaults


def needs_inputs(feats: Features, heads: dict, name: str) -> tuple[list[str], np.ndarray,
                                                                   np.ndarray]:  # fmt: skip
    """Texts, stacked features (embedding + the emotion and sentiment heads' probabilities) and
    the 0/1 label matrix of a needs dataset ('needs' or 'needs_written')."""
    from classifiers.needs import stack

    sp, x = feats.get(name)
    emo = calibrated_predict(heads["emotions"][0], heads["emotions"][1], x)
    sent = calibrated_predict(heads["sentiment"][0], heads["sentiment"][1], x)
    return sp.texts, stack(x, emo, sent), multi_hot(sp.labels, list(NEED_LABELS))


def train_needs(feats: Features, heads: dict) -> tuple[HeadSpec, Any, dict]:
    """needs.v4 (classifiers/needs.py) on train.jsonl + the written rows; thresholds from
    out-of-fold probabilities of a 5-fold CV (written rows only ever train)."""
    from classifiers.needs import NeedsRecipe
    from classifiers.training.needs import fit_with_extra, out_of_fold

    recipe = NeedsRecipe()
    texts, x, y = needs_inputs(feats, heads, "needs")
    wt, wx, wy = needs_inputs(feats, heads, "needs_written")
    oof = out_of_fold(texts, x, y, fold_ids(y, 5), recipe, extra=(wt, wx, wy))
    labels = list(NEED_LABELS)
    thresholds = tune_thresholds(oof, y, labels)
    model = fit_with_extra(texts, x, y, recipe, extra=(wt, wx, wy))
    model.thresholds = thresholds
    spec = HeadSpec("needs", "", "hybrid", labels, True, thresholds, 0)
    info = {"train_rows": len(texts), "written_rows": len(wt), "recipe": recipe.to_json(),
            "oof_macro_f1": float(np.mean([f1_binary(oof[:, j] >= thresholds[label], y[:, j] > 0)
                                           for j, label in enumerate(labels)]))}  # fmt: skip
    return spec, model, info


def touchpoint_scores(feats: Features, split_bank: str, split_out: str):
    """Scores of bank queries (in scope) and GoEmotions comments (out of scope)."""
    from classifiers.touchpoints import TouchpointPrototypes

    protos = TouchpointPrototypes(BANK_TOUCHPOINTS, feats.embed, threshold=0.0)
    bank, xb = feats.get(f"banking77_{split_bank}_sample" if split_bank == "train"
                         else f"banking77_{split_bank}")  # fmt: skip
    _, xo = feats.get(f"goemotions_{split_out}")
    names = [s.name for s in BANK_TOUCHPOINTS]
    gold = np.array([names.index(BANKING77_TOUCHPOINT[label]) for label in bank.labels])
    return protos.scores(xb), gold, protos.scores(xo[:2000])


def tune_touchpoint_threshold(feats: Features) -> tuple[float, dict]:
    """Threshold maximising accuracy on Banking77 train (every 3rd query, in scope) + 2,000
    GoEmotions dev comments (off topic)."""
    sb, gold, so = touchpoint_scores(feats, "train", "dev")
    best_b, best_o = sb.max(1), so.max(1)
    correct = sb.argmax(1) == gold
    grid = np.round(np.arange(0.0, 0.8, 0.01), 3)
    acc = [
        (float(((best_b >= t) & correct).sum() + (best_o < t).sum()) / (len(sb) + len(so)))
        for t in grid
    ]
    t = float(grid[int(np.argmax(acc))])
    return t, {"tuning_accuracy": float(max(acc)), "top1_in_scope": float(correct.mean())}


# --- writing ----------------------------------------------------------------------------------


def write_weights(out: Path, heads: dict[str, tuple[HeadSpec, Any, dict]],
                  touchpoint: tuple[float, dict], *, version: str, encoder: str,
                  adapter: str | None, extra: dict | None = None) -> None:  # fmt: skip
    """heads.safetensors + heads.json in `out`."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    meta_heads = {}
    for task, (spec, module, info) in heads.items():
        spec.registry_name = f"{task}.{version}"
        if spec.kind == "hybrid":  # needs.v3+: its own files (classifiers/needs.py)
            module.save(out)
            meta_heads[task] = {**spec.to_json(), "training": info}
            continue
        for key, value in module.state_dict().items():
            tensors[f"{task}.{key}"] = value.detach().float().contiguous()
        meta_heads[task] = {**spec.to_json(), "training": info}
    save_file(tensors, str(out / "heads.safetensors"))
    meta = {
        "name": TAGGER_NAME,
        "version": version,
        "encoder": encoder,
        "adapter": adapter,
        "train_max_length": TRAIN_MAX_LENGTH,
        "seed": SEED,
        "heads": meta_heads,
        "touchpoint": {"registry": "touchpoint.v1", "threshold": touchpoint[0], **touchpoint[1]},
        **(extra or {}),
    }
    (out / "heads.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


FITS = {
    "sentiment": FitConfig(kind="mlp", hidden=256, epochs=12, lr=3e-3, weight_decay=1e-2),
    "emotions": FitConfig(kind="mlp", hidden=1024, epochs=20, lr=2e-3, weight_decay=1e-2,
                          dropout=0.2),  # dev macro-F1 0.407 vs 0.400 (512) vs 0.369 (linear)
    "needs": NEEDS_FIT,
}


def train_all(tasks: list[str], *, out: Path, encoder: str | None, adapter: str | None,
              version: str) -> None:  # fmt: skip
    from classifiers.encoder import DEFAULT_ENCODER_NAME

    feats = Features(encoder, adapter)
    existing = {}
    if (out / "heads.json").exists() and set(tasks) != {"sentiment", "emotions", "needs",
                                                         "touchpoint"}:  # fmt: skip
        existing = _load_existing(out)
    heads = dict(existing.get("heads", {}))
    touchpoint = existing.get("touchpoint")
    trainers = {"sentiment": train_sentiment, "emotions": train_emotions}
    # needs reads the sentiment and emotion heads' outputs: train it after them
    tasks = sorted(tasks, key=lambda t: t == "needs")
    for task in tasks:
        t0 = time.time()
        if task == "touchpoint":
            touchpoint = tune_touchpoint_threshold(feats)
            print(f"touchpoint: threshold {touchpoint[0]} {touchpoint[1]}", flush=True)
        else:
            heads[task] = (train_needs(feats, heads) if task == "needs"
                           else trainers[task](feats, FITS[task]))  # fmt: skip
            print(f"{task}: {heads[task][2]} ({time.time() - t0:.0f}s)", flush=True)
    missing = [t for t in ("sentiment", "emotions", "needs") if t not in heads]
    if missing or touchpoint is None:
        raise SystemExit(f"no trained heads for {missing or ['touchpoint']} in {out}; "
                         "run `python -m classifiers.training.train all` first")  # fmt: skip
    adapter_rel = None
    if adapter:
        adapter_rel = os.path.relpath(adapter, out)
    # calibration and share estimators fitted on these heads (classifiers.training.calibrate)
    # stay with them when another task is retrained
    kept = {k: v for k, v in existing.get("extra", {}).items()
            if not {"sentiment", "emotions"} & set(tasks)}  # fmt: skip
    write_weights(out, heads, touchpoint, version=version,
                  encoder=encoder or DEFAULT_ENCODER_NAME, adapter=adapter_rel, extra=kept)  # fmt: skip
    print(f"wrote {out}/heads.safetensors and heads.json", flush=True)


def _load_existing(out: Path) -> dict:
    """Heads already in `out`, so one task can be retrained without the others."""
    from safetensors.torch import load_file

    meta = json.loads((out / "heads.json").read_text())
    tensors = load_file(str(out / "heads.safetensors"))
    heads: dict[str, tuple[HeadSpec, Any, dict]] = {}
    for task, raw in meta["heads"].items():
        spec = HeadSpec.from_json(task, raw)
        if spec.kind == "hybrid":
            from classifiers.needs import NeedsModel

            heads[task] = (spec, NeedsModel.load(out), raw.get("training", {}))
            continue
        dim = tensors[f"{task}.0.weight"].shape[1]
        module = build_module(spec.kind, dim, len(spec.labels), spec.hidden)
        prefix = f"{task}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)})  # fmt: skip
        heads[task] = (spec, module, raw.get("training", {}))
    tp = meta["touchpoint"]
    info = {k: v for k, v in tp.items() if k not in ("registry", "threshold")}
    extra = {k: meta[k] for k in ("quantification", "calibration") if k in meta}
    return {"heads": heads, "touchpoint": (tp["threshold"], info), "extra": extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["sentiment", "emotions", "needs", "touchpoint", "all",
                                         "custom"])  # fmt: skip
    parser.add_argument("--encoder", help="local HF model dir or id (default: packaged MiniLM)")
    parser.add_argument("--adapter", help="LoRA adapter dir to merge into the encoder")
    parser.add_argument("--out", help="weights folder (default: classifiers/weights)")
    parser.add_argument("--version", default=None,
                        help="registry version (v1: frozen encoder; v5, the default with --adapter: "
                             "tuned)")  # fmt: skip
    parser.add_argument("--csv", help="custom: labelled CSV with text,label columns")
    parser.add_argument("--name", help="custom: name of the custom head")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    args = parser.parse_args(argv)
    # one thread: head fitting is many small ops, and threads only spin on a shared CPU
    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "1")))
    if args.task == "custom":
        from classifiers.training.custom import train_custom_head

        if not args.csv or not args.name:
            parser.error("custom needs --csv FILE and --name NAME")
        path = train_custom_head(args.csv, args.name, text_column=args.text_column,
                                 label_column=args.label_column)  # fmt: skip
        print(f"wrote custom head {args.name!r} to {path}")
        return 0
    tasks = ["sentiment", "emotions", "needs", "touchpoint"] if args.task == "all" else [args.task]
    version = args.version or ("v5" if args.adapter else "v1")
    train_all(tasks, out=Path(args.out) if args.out else WEIGHTS_DIR, encoder=args.encoder,
              adapter=args.adapter, version=version)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
