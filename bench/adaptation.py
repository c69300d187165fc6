"""Learning from corrections, measured: learning curves on domains held out for this (issue 17).

    nice -n 15 env VOC_TORCH_THREADS=2 python bench/adaptation.py [--seeds 5] [--quick]
        [--domains employee_reviews_heldout product_reviews_heldout banking77 employee_reviews]

Each domain stands for one company: its `train` split is the pool an analyst corrects from, its
`dev` split chooses every setting (head fine-tuning, contrastive tuning, from how many
corrections the contrastive path is used, which suggestion method), its `test` split is never
corrected nor chosen on and is what the numbers are on.

Domains:

- employee_reviews_heldout / product_reviews_heldout: Glassdoor review headlines / Amazon device
  reviews, star-derived sentiment, **held out honestly**. The shipped v5 model cannot be the
  start here: its encoder (a full fine-tune) and heads were trained on these domains' train
  splits. The start is instead the project's own frozen-encoder recipe (v1: the packaged base
  MiniLM, which never saw a sentiment label, and a sentiment head fitted by
  `classifiers.training.train.fit_head` with the shipped settings `FITS["sentiment"]` on every
  head source of `HEAD_SENTIMENT_SOURCES` except the held-out domain's: for Glassdoor headlines
  both Glassdoor sources, headlines and pros/cons). Replay samples come from those sources too.
- banking77: bank queries, 77 intents grouped into 8 touchpoints (test: 3,080), with the shipped
  v5 encoder (Banking77 is not in its training); adapting touchpoints adds corrected queries as
  example phrases of their touchpoint.
- employee_reviews / product_reviews (not by default): the shipped v5 model on domains it was
  trained on, for reference.

Per sentiment domain, on dev (random draws, two seeds): the `HeadFit` grid at 200 corrections,
then the `ContrastiveFit` grid at 200, then head-only against contrastive at every size; the
contrastive path is used from the smallest size at which it beats head-only on dev at that size
and every larger one ("min_contrastive"). Then, five seeds, for every size: random corrections
adapted head-only, contrastively, and by the chosen rule; and suggested corrections (in rounds:
the model adapted on the labels so far picks the next ones from a random 60% of the pool) by
each suggestion method of `feedback.corrections.suggestions` (`margin`: margin uncertainty x
distance to the labelled items, greedily; `clusters`: one pick per cluster of an
uncertainty-weighted k-means), adapted by the chosen rule. Every adapted model is scored on dev
and test; the suggestion method is chosen by dev. Banking77 runs the random and suggestion
curves, with two touchpoint uncertainties: 1 - the prototype score the service stores with the
tag, and 1 - the gap between the two best touchpoints' prototype scores.

Last, the wall time of one whole `voc adapt` (`classifiers.training.adapt.adapt`: load, encode,
replay cold, contrastive tuning, head refit, judge, write) at 500 corrections, on the shipped
model. Embeddings are cached under var/cache. Prints markdown and writes
bench/adaptation_results.json (`--quick`: bench/adaptation_results.quick.json; `--out FILE` per
process and `--merge FILE... --out bench/adaptation_results.json` to run domains side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "var" / "cache" / "bench-adaptation"
HEAD_GRID = [{"steps": s, "lr": lr, "l2_sp": l2, "correction_share": 0.8}
             for s in (150, 400) for lr in (3e-4, 1e-3) for l2 in (1e-3, 1e-2)]
CONTRASTIVE_GRID = [{"steps": s, "lr": lr, "replay_share": 0.25} for s in (200, 600) for lr in (1e-3, 3e-3)]
SUGGESTERS = ("margin", "clusters")
HELD_OUT = {"employee_reviews_heldout": ("glassdoor", "glassdoor_pc"), "product_reviews_heldout": ("amazon",)}


def _embed(tagger: Any, name: str, texts: list[str]) -> np.ndarray:
    path = CACHE / f"{name}-{tagger.encoder_version.replace('/', '_')}-{len(texts)}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    x, _ = tagger.head_probabilities(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    print(f"  embedded {name}: {len(texts)} texts in {time.perf_counter() - started:.0f} s", flush=True)
    return x


def dev_rows(n_train: int) -> np.ndarray:
    """Banking77 has no dev split: a fixed 15% of its train split is the dev (never corrected;
    bench/custom_categories.py's dev too)."""
    return np.random.default_rng(77).choice(n_train, int(0.15 * n_train), replace=False)


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "std": float(np.std(values))}


@dataclass
class Setup:
    """One head domain: the pool, dev and test embeddings with their class ids, what a correction
    of a pool item trains on (`tp`: class ids, or a 0/1 label matrix for a multi-label head), the
    start model, its replay rows, and how its probabilities become the domain's classes."""

    name: str
    start: str  # what the curve starts from, in words
    xp: np.ndarray
    yp: np.ndarray
    xd: np.ndarray
    yd: np.ndarray
    xt: np.ndarray
    yt: np.ndarray
    champion: Any  # torch module
    calib: dict[str, Any]
    replay: tuple[np.ndarray, np.ndarray]
    tp: np.ndarray | None = None  # training targets of the pool (default: yp)
    classes: Any = None  # probs -> (n, classes) scores (default: the probabilities)

    def __post_init__(self) -> None:
        if self.tp is None:
            self.tp = self.yp
        if self.classes is None:
            self.classes = lambda p: p


def start_head(sources_out: tuple[str, ...]) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
    """The frozen base encoder's sentiment head trained without `sources_out` (module docstring)
    and a replay sample of its training rows (500 per source)."""
    from classifiers.labels import SENTIMENT_LABELS
    from classifiers.training import data
    from classifiers.training.train import FITS, HEAD_SENTIMENT_SOURCES, Features, fit_head

    feats = Features(None, None)
    idx = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    xs, ys, ws = [], [], []
    rng = np.random.default_rng(13)
    replay_x, replay_y = [], []
    for source, weight in HEAD_SENTIMENT_SOURCES.items():
        if source in sources_out:
            continue
        if source == "goemotions":
            ge, emb = feats.get("goemotions_train")
            sentiment = data.goemotions_sentiment("train")
            keep = dict(zip(sentiment.texts, sentiment.labels, strict=True))
            rows = [i for i, t in enumerate(ge.texts) if t in keep]
            x, labels = emb[rows], [keep[ge.texts[i]] for i in rows]
        else:
            split, x = feats.get(f"{source}_train")
            labels = split.labels
        y = np.array([idx[label] for label in labels])
        counts = np.bincount(y, minlength=3).astype(float)
        cw = np.where(counts > 0, len(y) / (3 * np.maximum(counts, 1)), 0)
        xs.append(x)
        ys.append(y)
        ws.append(weight * cw[y])
        take = rng.choice(len(y), size=min(500, len(y)), replace=False)
        replay_x.append(x[take])
        replay_y.append(y[take])
    started = time.perf_counter()
    path = CACHE / f"heldout-head-{'-'.join(sources_out)}.pt"
    import torch

    from classifiers.heads import build_module

    fit = FITS["sentiment"]
    if path.exists():
        module = build_module(fit.kind, 384, 3, fit.hidden)
        module.load_state_dict(torch.load(path))
        module.eval()
    else:
        module = fit_head(np.concatenate(xs), np.concatenate(ys), multi_label=False, fit=fit,
                          sample_weight=np.concatenate(ws))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(module.state_dict(), path)
        print(f"  start head trained on {sum(len(y) for y in ys)} rows without {sources_out} in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return module, (np.concatenate(replay_x), np.concatenate(replay_y))


def heldout_setup(name: str, sources_out: tuple[str, ...]) -> Setup:
    """A feedback domain of the head sources, held out: the base encoder and a head without it."""
    from classifiers.labels import SENTIMENT_LABELS
    from classifiers.training.train import Features

    module, replay = start_head(sources_out)
    feats = Features(None, None)
    idx = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    source = sources_out[0]
    splits = {}
    for split in ("train", "dev", "test"):
        sp, x = feats.get(f"{source}_{split}")
        splits[split] = (x, np.array([idx[label] for label in sp.labels]))
    return Setup(name=name, start=f"base encoder + sentiment head trained without {', '.join(sources_out)}",
                 xp=splits["train"][0], yp=splits["train"][1], xd=splits["dev"][0], yd=splits["dev"][1],
                 xt=splits["test"][0], yt=splits["test"][1], champion=module,
                 calib={"multi_label": False, "temperature": 1.0, "bias": None}, replay=replay)


TWEET_SAMPLE = {"train": 6000, "dev": 3000, "test": 6000}


def tweets_setup() -> Setup:
    """SemEval tweets, held out: no head source is a tweet (`HEAD_SENTIMENT_SOURCES`), so the
    v1 recipe (base encoder + the shipped settings' head on every head source) never saw one.
    Fixed random samples of the tweet splits keep the embedding cost down: 6,000 of the train
    pool, 3,000 of dev, 6,000 of the test file (twitter-2016test)."""
    from classifiers.labels import SENTIMENT_LABELS
    from classifiers.training import data
    from classifiers.training.train import Features

    module, replay = start_head(())
    feats = Features(None, None)
    xy = {}
    for split, n in TWEET_SAMPLE.items():
        path = CACHE / f"tweets-base-{split}-{n}.npz"
        if not path.exists():
            sp = data.semeval_tweets(split)
            take = np.sort(np.random.default_rng(7).choice(len(sp.texts), min(n, len(sp.texts)), replace=False))
            np.savez(path, x=feats.embed([sp.texts[i] for i in take]), rows=take,
                     y=np.array([SENTIMENT_LABELS.index(sp.labels[i]) for i in take]))
        saved = np.load(path)
        xy[split] = (saved["x"], saved["y"])
    return Setup(name="tweets_heldout", start="base encoder + sentiment head on every head source (none a tweet)",
                 xp=xy["train"][0], yp=xy["train"][1], xd=xy["dev"][0], yd=xy["dev"][1], xt=xy["test"][0],
                 yt=xy["test"][1], champion=module, calib={"multi_label": False, "temperature": 1.0, "bias": None},
                 replay=replay)


def shipped_setup(tagger: Any, name: str, loader: Any, replay: tuple[np.ndarray, np.ndarray]) -> Setup:
    from classifiers.labels import SENTIMENT_LABELS

    head = tagger.heads["sentiment"]
    pool, dev, test = loader("train"), loader("dev"), loader("test")
    xp, xd, xt = (_embed(tagger, f"{name}-{s}", split.texts) for s, split in (("train", pool), ("dev", dev),
                                                                              ("test", test)))
    yp, yd, yt = (np.array([SENTIMENT_LABELS.index(label) for label in split.labels]) for split in (pool, dev, test))
    return Setup(name=name, start=f"shipped {tagger.version} (trained on this domain's train split)", xp=xp, yp=yp,
                 xd=xd, yd=yd, xt=xt, yt=yt, champion=head.module,
                 calib={"multi_label": False, "temperature": head.spec.temperature, "bias": head.spec.bias},
                 replay=replay)


def tweet_emotion_setup(tagger: Any, replay: tuple[np.ndarray, np.ndarray]) -> Setup:
    """TweetEval emotion (anger, joy, optimism, sadness): tweets the shipped model never trained
    on (its emotions are GoEmotions' Reddit comments). A correction gives the tweet's emotion, a
    GoEmotions label of the same name, to the emotion head; a tweet's class is scored as
    model_cards/emotions.md does: the largest summed probability of the class's GoEmotions
    labels (`TWEETEVAL_EMOTION_MAP`)."""
    from classifiers.labels import GOEMOTIONS_LABELS, TWEETEVAL_EMOTION_LABELS, TWEETEVAL_EMOTION_MAP
    from classifiers.training import data

    head = tagger.heads["emotions"]
    splits = {s: data.tweeteval("emotion", s) for s in ("train", "val", "test")}
    x = {s: _embed(tagger, f"tweet_emotion-{s}", sp.texts) for s, sp in splits.items()}
    y = {s: np.asarray(sp.labels) for s, sp in splits.items()}
    tp = np.zeros((len(y["train"]), len(GOEMOTIONS_LABELS)), np.float32)
    tp[np.arange(len(tp)), [GOEMOTIONS_LABELS.index(TWEETEVAL_EMOTION_LABELS[c]) for c in y["train"]]] = 1.0
    cols = [[GOEMOTIONS_LABELS.index(m) for m in TWEETEVAL_EMOTION_MAP[c]] for c in TWEETEVAL_EMOTION_LABELS]

    def classes(p: np.ndarray) -> np.ndarray:
        scores = np.stack([p[:, c].sum(1) for c in cols], 1)
        return scores / np.maximum(scores.sum(1, keepdims=True), 1e-9)

    return Setup(name="tweet_emotion", start=f"shipped {tagger.version} emotion head (TweetEval not in training)",
                 xp=x["train"], yp=y["train"], xd=x["val"], yd=y["val"], xt=x["test"], yt=y["test"],
                 champion=head.module, calib={"multi_label": True, "temperature": head.spec.temperature,
                                              "bias": head.spec.bias},
                 replay=replay, tp=tp, classes=classes)


def head_domain(s: Setup, args: argparse.Namespace) -> dict[str, Any]:
    from classifiers.training.adapt import ContrastiveFit, HeadFit, adapt_head, head_probs
    from classifiers.training.domains import macro_f1
    from feedback.corrections.suggestions import margin_uncertainty, pick, pick_clusters

    def score(module: Any, x: np.ndarray, y: np.ndarray) -> float:
        return macro_f1(s.classes(head_probs(module, x, **s.calib)).argmax(1), y)

    def fitted(take: Any, head_fit: dict, seed: int, contrastive: dict | None) -> Any:
        take = np.asarray(take)
        return adapt_head(s.champion, s.xp[take], s.tp[take], multi_label=s.calib["multi_label"],
                          replay_x=s.replay[0],
                          replay_y=s.replay[1], fit=HeadFit(seed=seed, **head_fit),
                          contrastive=ContrastiveFit(seed=seed, **contrastive) if contrastive is not None else None)

    started = time.perf_counter()
    shipped, shipped_dev = score(s.champion, s.xt, s.yt), score(s.champion, s.xd, s.yd)
    print(f"{s.name}: start macro-F1 {shipped:.4f} test ({len(s.yt)}), {shipped_dev:.4f} dev ({len(s.yd)}); "
          f"pool {len(s.yp)}; {s.start}", flush=True)
    dev_seeds = range(2)

    def dev_draw(seed: int, n: int) -> np.ndarray:
        return np.random.default_rng(100 + seed).choice(len(s.yp), n, replace=False)

    dev_scores: dict[tuple[int, str, str], float] = {}

    def dev_score(n: int, head: Any, contrastive: Any) -> float:
        """Mean dev score over the dev seeds of a model adapted on `n` random corrections (each
        setting fitted once: the fits are seeded, so step 3 reuses steps 1 and 2's)."""
        key = (n, repr(head), repr(contrastive))
        if key not in dev_scores:
            dev_scores[key] = float(np.mean([score(fitted(dev_draw(seed, n), head, seed, contrastive), s.xd, s.yd)
                                             for seed in dev_seeds]))
        return dev_scores[key]

    def best_on_dev(grid: list, score_of: Any) -> tuple[Any, float]:
        scored = [(config, score_of(config)) for config in grid]
        return max(scored, key=lambda pair: pair[1])  # the first of equals, as the grid lists them

    # 1. head fine-tuning settings, on dev at 200 random corrections
    best_head, best_head_dev = best_on_dev(args.head_grid, lambda config: dev_score(200, config, None))
    print(f"  head-only chosen on dev: {best_head} (dev {best_head_dev:.4f})", flush=True)
    # 2. contrastive settings, on dev at 200
    best_con, best_con_dev = best_on_dev(args.contrastive_grid, lambda config: dev_score(200, best_head, config))
    print(f"  contrastive chosen on dev: {best_con} (dev {best_con_dev:.4f})", flush=True)
    # 3. head-only vs contrastive on dev at each size: from where is contrastive better?
    dev_compare = {str(n): {"head": dev_score(n, best_head, None), "contrastive": dev_score(n, best_head, best_con)}
                   for n in args.sizes}
    min_contrastive = None
    for n in sorted(args.sizes, reverse=True):
        if dev_compare[str(n)]["contrastive"] > dev_compare[str(n)]["head"]:
            min_contrastive = n
        else:
            break
    print(f"  dev head vs contrastive: {dev_compare}; contrastive from {min_contrastive}", flush=True)

    def chosen(n: int) -> dict | None:
        return best_con if min_contrastive is not None and n >= min_contrastive else None

    # 4. curves, five seeds: (dev, test) per fitted model
    names = ["random:head", "random:contrastive", "random"] + [f"suggested:{m}" for m in SUGGESTERS]
    curves: dict[str, dict[int, list[tuple[float, float]]]] = {k: {} for k in names}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(s.yp))
        for n in args.sizes:
            for method, con in (("head", None), ("contrastive", best_con)):
                module = fitted(order[:n], best_head, seed, con)
                curves[f"random:{method}"].setdefault(n, []).append((score(module, s.xd, s.yd),
                                                                     score(module, s.xt, s.yt)))
            curves["random"].setdefault(n, []).append(
                curves["random:contrastive" if chosen(n) is not None else "random:head"][n][-1])
        candidates = rng.choice(len(s.yp), int(0.6 * len(s.yp)), replace=False)
        for method in SUGGESTERS:
            picked: list[int] = []
            module = s.champion
            for n in args.sizes:
                probs = s.classes(head_probs(module, s.xp[candidates], **s.calib))
                unc = margin_uncertainty(probs)
                free = ~np.isin(candidates, picked)
                labelled = s.xp[picked] if picked else None
                chooser = pick if method == "margin" else pick_clusters
                new = chooser(unc[free], s.xp[candidates[free]], n - len(picked), labelled=labelled)
                picked += [int(candidates[free][i]) for i in new]
                module = fitted(picked, best_head, seed, chosen(n))
                curves[f"suggested:{method}"].setdefault(n, []).append((score(module, s.xd, s.yd),
                                                                        score(module, s.xt, s.yt)))
        print(f"  seed {seed}: " + "; ".join(f"{k} {[round(curves[k][n][-1][1], 3) for n in args.sizes]}"
                                            for k in names), flush=True)
    # 5. how far the frozen representation can go: the whole pool labelled (the chosen rule), and a
    # fresh logistic regression on the whole pool (no start model, no replay)
    from sklearn.linear_model import LogisticRegression

    everything = fitted(np.arange(len(s.yp)), best_head, 0, chosen(len(s.yp)))
    fresh = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(s.xp, s.yp)
    ceiling = {"n": int(len(s.yp)), "adapted_test": score(everything, s.xt, s.yt),
               "adapted_dev": score(everything, s.xd, s.yd),
               "fresh_logistic_test": macro_f1(fresh.predict(s.xt), s.yt),
               "fresh_logistic_dev": macro_f1(fresh.predict(s.xd), s.yd)}
    print(f"  whole pool labelled: {ceiling}", flush=True)
    return _result(s.start, shipped, shipped_dev, len(s.yt), len(s.yp), curves, args.sizes, started,
                   ceiling=ceiling,
                   fit=best_head, head_dev_at_200=best_head_dev, contrastive_fit=best_con,
                   contrastive_dev_at_200=best_con_dev, dev_head_vs_contrastive=dev_compare,
                   min_contrastive=min_contrastive)


def _result(start: str, shipped: float, shipped_dev: float | None, n_test: int, n_pool: int,
            curves: dict[str, dict[int, list[tuple[float, float]]]], sizes: list[int], started: float,
            **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"start": start, "shipped": shipped, "shipped_dev": shipped_dev, "n_test": n_test,
                           "n_pool": n_pool, **extra, "curves": {}, "dev_curves": {}}
    for k, c in curves.items():
        out["curves"][k] = {str(n): summary([t for _, t in v]) for n, v in c.items()}
        out["dev_curves"][k] = {str(n): float(np.mean([d for d, _ in v])) for n, v in c.items()}
    suggested = [k for k in curves if k.startswith("suggested:")]
    best = max(suggested, key=lambda k: np.mean([out["dev_curves"][k][str(n)] for n in sizes]))
    out["suggester"] = best.split(":", 1)[1]
    out["curves"]["suggested"] = out["curves"][best]
    out["dev_curves"]["suggested"] = out["dev_curves"][best]
    out["targets"] = targets(out, sizes)
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def targets(r: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    """The issue's two curve targets, read off the test curves."""
    out: dict[str, Any] = {}
    if "200" in r["curves"]["random"]:
        gain = r["curves"]["random"]["200"]["mean"] - r["shipped"]
        out["gain_at_200_random"] = gain
        out["plus_8_at_200"] = bool(r["shipped"] < 0.75 and gain >= 0.08)
    top = str(max(sizes))
    half = [n for n in sizes if n <= max(sizes) // 2]
    if half:
        goal = r["curves"]["random"][top]["mean"]
        reached = [n for n in half if r["curves"]["suggested"][str(n)]["mean"] >= goal]
        out["random_at_max"] = goal
        out["suggested_at_half"] = r["curves"]["suggested"][str(max(half))]["mean"]
        out["suggested_reach_random_max_with_half"] = bool(reached)
    return out


def touchpoint_domain(tagger: Any, args: argparse.Namespace) -> dict[str, Any]:
    from classifiers.config import BANK_TOUCHPOINTS
    from classifiers.tagger import with_examples
    from classifiers.touchpoints import TouchpointPrototypes
    from classifiers.training import data
    from classifiers.training.domains import macro_f1
    from classifiers.training.train import BANKING77_TOUCHPOINT
    from feedback.corrections.suggestions import pick, pick_clusters, top2_uncertainty

    started = time.perf_counter()
    names = [s.name for s in BANK_TOUCHPOINTS]
    pool, test = data.banking77("train"), data.banking77("test")
    xp = _embed(tagger, "banking77-train", pool.texts)
    xt = _embed(tagger, "banking77-test", test.texts)
    yp = np.array([names.index(BANKING77_TOUCHPOINT[label]) for label in pool.labels])
    yt = np.array([names.index(BANKING77_TOUCHPOINT[label]) for label in test.labels])
    dev = dev_rows(len(yp))
    pool_rows = np.setdiff1d(np.arange(len(yp)), dev)
    known = dict(zip(pool.texts, xp, strict=True))

    def embed(texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in known]
        if missing:
            known.update(zip(missing, tagger.embed(missing), strict=True))
        return np.stack([known[t] for t in texts])

    def prototypes(take: list[int]) -> TouchpointPrototypes:
        examples: dict[str, list[str]] = {}
        for i in take:
            examples.setdefault(names[yp[i]], []).append(pool.texts[i])
        return TouchpointPrototypes(with_examples(BANK_TOUCHPOINTS, examples), embed, tagger.touchpoint_threshold)

    def predict(protos: TouchpointPrototypes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assigned = protos.assign(x)
        pred = np.array([names.index(t) if t in names else -1 for t, _ in assigned])
        return pred, np.array([c for _, c in assigned])

    def both(protos: TouchpointPrototypes) -> tuple[float, float]:
        return (macro_f1(predict(protos, xp[dev])[0], yp[dev]), macro_f1(predict(protos, xt)[0], yt))

    shipped_dev, shipped = both(prototypes([]))
    print(f"banking77 touchpoints: shipped macro-F1 {shipped:.4f} on {len(yt)} test queries", flush=True)
    # uncertainty: 1 - the stored prototype score ("margin", "clusters": as the service without a
    # tagger), or 1 - the gap between the two best touchpoints' scores ("top2", "top2-clusters")
    suggesters = (*SUGGESTERS, "top2", "top2-clusters")
    names_c = ["random"] + [f"suggested:{m}" for m in suggesters]
    curves: dict[str, dict[int, list[tuple[float, float]]]] = {k: {} for k in names_c}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(pool_rows)
        for n in args.sizes:
            curves["random"].setdefault(n, []).append(both(prototypes(list(order[:n]))))
        candidates = rng.choice(pool_rows, int(0.6 * len(yp)), replace=False)
        for method in suggesters:
            picked: list[int] = []
            for n in args.sizes:
                protos = prototypes(picked)
                if method.startswith("top2"):
                    unc = top2_uncertainty(protos.scores(xp[candidates]))
                else:
                    unc = 1.0 - np.clip(predict(protos, xp[candidates])[1], 0.0, 1.0)
                free = ~np.isin(candidates, picked)
                chooser = pick_clusters if method.endswith("clusters") else pick
                new = chooser(unc[free], xp[candidates[free]], n - len(picked),
                              labelled=xp[picked] if picked else None)
                picked += [int(candidates[free][i]) for i in new]
                curves[f"suggested:{method}"].setdefault(n, []).append(both(prototypes(picked)))
        print(f"  seed {seed}: " + "; ".join(f"{k} {[round(curves[k][n][-1][1], 3) for n in args.sizes]}"
                                            for k in names_c), flush=True)
    return _result("shipped v5 prototypes (Banking77 not in training)", shipped, shipped_dev, len(yt),
                   len(pool_rows), curves, args.sizes, started)


def wall_time(n: int) -> dict[str, Any]:
    """One whole adaptation at `n` Glassdoor corrections (one in five held back) on the shipped
    model, replay cache cold, contrastive path forced (min_contrastive 0)."""
    from classifiers.tagger import WEIGHTS_DIR
    from classifiers.training import data
    from classifiers.training.adapt import Example, adapt

    pool = data.glassdoor("train")
    take = np.random.default_rng(0).choice(len(pool.texts), n, replace=False)
    examples = [Example(pool.texts[i], "sentiment", pool.labels[i], "employee") for i in take]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = adapt(WEIGHTS_DIR, Path(tmp) / "versions" / "bench", version="bench",
                       train=[e for i, e in enumerate(examples) if i % 5], held_out=examples[::5],
                       cache_dir=Path(tmp) / "cache", min_contrastive=0)
        seconds = time.perf_counter() - started
    print(f"one adaptation at {n} corrections: {seconds:.0f} s ({report.reason})", flush=True)
    return {"corrections": n, "seconds": round(seconds, 1), "better": report.better, "reason": report.reason,
            "methods": report.scores.get("methods"), "torch_threads": int(os.environ.get("VOC_TORCH_THREADS", "2"))}


def markdown(results: dict[str, Any], sizes: list[int]) -> str:
    lines = ["| domain (test split) | start | curve | " + " | ".join(f"{n}" for n in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for name, r in results["domains"].items():
        for curve in r["curves"]:
            if curve == "suggested":
                continue
            label = curve + (" (chosen on dev)" if curve == f"suggested:{r['suggester']}" else "")
            cells = []
            for n in sizes:
                s = r["curves"][curve][str(n)]
                cells.append(f"{s['mean']:.3f} ({s['min']:.3f}..{s['max']:.3f})")
            lines.append(f"| {name} (n={r['n_test']}) | {r['shipped']:.3f} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, r in results["domains"].items():
        t = r["targets"]
        line = [f"- {name}: start = {r['start']}; pool {r['n_pool']}; test {r['shipped']:.3f}"
                + (f", dev {r['shipped_dev']:.3f}" if r.get("shipped_dev") is not None else "")]
        if "fit" in r:
            line.append(f"head-only settings chosen on dev {r['fit']} (dev at 200: {r['head_dev_at_200']:.3f}); "
                        f"contrastive {r['contrastive_fit']} (dev at 200: {r['contrastive_dev_at_200']:.3f}); "
                        "dev head/contrastive by size " + ", ".join(
                            f"{n}: {v['head']:.3f}/{v['contrastive']:.3f}"
                            for n, v in r["dev_head_vs_contrastive"].items())
                        + f"; contrastive used from {r['min_contrastive']}")
        if "ceiling" in r:
            c = r["ceiling"]
            line.append(f"whole pool ({c['n']}) labelled: adapted {c['adapted_test']:.3f} test, fresh logistic "
                        f"regression {c['fresh_logistic_test']:.3f} test / {c['fresh_logistic_dev']:.3f} dev")
        line.append(f"suggester chosen on dev: {r['suggester']}")
        if "gain_at_200_random" in t:
            line.append(f"gain at 200 random {t['gain_at_200_random']:+.3f} (+8 target met: {t['plus_8_at_200']})")
        if "random_at_max" in t:
            line.append(f"random at {max(sizes)} {t['random_at_max']:.3f}, suggested at {max(sizes) // 2} "
                        f"{t['suggested_at_half']:.3f} (reached: {t['suggested_reach_random_max_with_half']})")
        line.append(f"{r['seconds']:.0f} s")
        lines.append("; ".join(line))
    if "wall_time" in results:
        w = results["wall_time"]
        lines.append(f"- one whole adaptation at {w['corrections']} corrections ({w['methods']}): {w['seconds']} s on "
                     f"{w['torch_threads']} torch thread(s); {w['reason']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 250, 500])
    parser.add_argument("--domains", nargs="+",
                        default=["tweet_emotion", "tweets_heldout", "employee_reviews_heldout", "banking77"])
    parser.add_argument("--quick", action="store_true", help="2 seeds, small grids (iteration only)")
    parser.add_argument("--no-wall-time", action="store_true")
    parser.add_argument("--out", default=None, help="results file (default bench/adaptation_results.json); "
                        "written after each domain, so domains can run as separate processes")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="only merge these results files into --out and print the table")
    args = parser.parse_args()
    out = Path(args.out) if args.out else ROOT / "bench" / (
        "adaptation_results.quick.json" if args.quick else "adaptation_results.json")
    if args.merge:
        parts = [json.loads(Path(p).read_text()) for p in args.merge]
        results = {**parts[0], "domains": {}, "seconds": {}}
        for part in parts:
            results["domains"].update(part["domains"])
            results["seconds"].update({name: r["seconds"] for name, r in part["domains"].items()})
            if "wall_time" in part:
                results["wall_time"] = part["wall_time"]
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(markdown(results, results["sizes"]))
        return 0
    args.head_grid, args.contrastive_grid = HEAD_GRID, CONTRASTIVE_GRID
    if args.quick:
        args.seeds = min(args.seeds, 2)
        args.head_grid = [{"steps": 150, "lr": 3e-4, "l2_sp": 1e-3, "correction_share": 0.8},
                          {"steps": 400, "lr": 1e-3, "l2_sp": 1e-3, "correction_share": 0.8}]
        args.contrastive_grid = CONTRASTIVE_GRID[:2]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    from classifiers import TaggerConfig, load_tagger
    from classifiers.training import data
    from classifiers.training.adapt import replay_set

    started = time.perf_counter()
    tagger = load_tagger(TaggerConfig())
    results: dict[str, Any] = {"seeds": args.seeds, "sizes": args.sizes, "quick": args.quick, "domains": {}}
    loaders = {"product_reviews": data.amazon_reviews, "employee_reviews": data.glassdoor}
    for name in args.domains:
        if name == "banking77":
            results["domains"][name] = touchpoint_domain(tagger, args)
        elif name == "tweet_emotion":
            replay = replay_set(tagger, "emotion", CACHE)
            results["domains"][name] = head_domain(tweet_emotion_setup(tagger, replay), args)
        elif name == "tweets_heldout":
            results["domains"][name] = head_domain(tweets_setup(), args)
        elif name in HELD_OUT:
            results["domains"][name] = head_domain(heldout_setup(name, HELD_OUT[name]), args)
        else:
            replay = replay_set(tagger, "sentiment", CACHE)
            results["domains"][name] = head_domain(shipped_setup(tagger, name, loaders[name], replay), args)
        print(json.dumps(results["domains"][name]["targets"]), flush=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_wall_time:
        results["wall_time"] = wall_time(500)
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results, args.sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
