"""Learning from corrections, measured: learning curves on domains held out for this (issue 17).

    nice -n 15 env VOC_TORCH_THREADS=2 python bench/adaptation.py [--seeds 5] [--sizes 50 100 200 500]

Each domain stands for one company: its `train` split is the pool an analyst corrects from, its
`dev` split chooses the head fine-tuning settings (once, at 200 random corrections), its `test`
split is never corrected and is what the numbers are on. Domains (sentiment macro-F1 of the
shipped model in model_cards/sentiment.md; touchpoints in model_cards/touchpoints.md):

- product_reviews: Amazon device reviews, star-derived sentiment (test: 371 reviews, 8 negative)
- employee_reviews: Glassdoor review headlines, rating-derived sentiment (test: 610)
- banking77: bank queries, 77 intents grouped into 8 touchpoints (test: 3,080); adapting
  touchpoints adds corrected queries as example phrases of their touchpoint

For 50, 100, 200 and 500 corrections, drawn (a) at random and (b) by the suggestions (the
method of GET /v1/corrections/suggestions, in rounds: the model adapted on the labels so far
picks the next ones from a random 60% of the pool per seed), the champion's head is
fine-tuned exactly as `voc adapt` does (`classifiers.training.adapt.fine_tune`, with replay)
and scored on the test split; five seeds, mean and spread (min..max). Last, the wall time of
one whole adaptation (`classifiers.training.adapt.adapt`: load, encode, replay, train, judge,
write) at 500 corrections, with a cold replay cache. Embeddings are cached under var/cache.
Prints markdown and writes bench/adaptation_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "var" / "cache" / "bench-adaptation"
GRID = [{"steps": s, "lr": lr, "l2_sp": l2, "correction_share": c}
        for s in (150, 400) for lr in (3e-4, 1e-3) for l2 in (1e-3, 1e-2) for c in (0.5, 0.8)]


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


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "std": float(np.std(values))}


def sentiment_domain(tagger: Any, name: str, loader: Any, args: argparse.Namespace,
                     replay: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    from classifiers.labels import SENTIMENT_LABELS
    from classifiers.training.adapt import HeadFit, fine_tune, head_probs
    from classifiers.training.domains import macro_f1
    from feedback.corrections.suggestions import margin_uncertainty, pick

    head = tagger.heads["sentiment"]
    pool, dev, test = loader("train"), loader("dev"), loader("test")
    xp, xd, xt = (_embed(tagger, f"{name}-{s}", split.texts) for s, split in (("train", pool), ("dev", dev),
                                                                              ("test", test)))
    yp, yd, yt = (np.array([SENTIMENT_LABELS.index(label) for label in split.labels]) for split in (pool, dev, test))
    calib = {"multi_label": False, "temperature": head.spec.temperature, "bias": head.spec.bias}

    def score(module: Any, x: np.ndarray, y: np.ndarray) -> float:
        return macro_f1(head_probs(module, x, **calib).argmax(1), y)

    shipped = score(head.module, xt, yt)
    print(f"{name}: shipped macro-F1 {shipped:.4f} on {len(yt)} test items (pool {len(yp)})", flush=True)
    # choose the fine-tuning settings on dev, at 200 random corrections, two seeds
    best, best_score = None, -1.0
    for config in GRID:
        dev_scores = []
        for seed in range(2):
            take = np.random.default_rng(100 + seed).choice(len(yp), 200, replace=False)
            fit = HeadFit(seed=seed, **config)
            module = fine_tune(head.module, xp[take], yp[take], multi_label=False, replay_x=replay[0],
                               replay_y=replay[1], fit=fit)
            dev_scores.append(score(module, xd, yd))
        if np.mean(dev_scores) > best_score:
            best, best_score = config, float(np.mean(dev_scores))
    print(f"  chosen on dev: {best} (dev macro-F1 {best_score:.4f}; shipped {score(head.module, xd, yd):.4f})",
          flush=True)
    curves: dict[str, dict[int, list[float]]] = {"random": {}, "suggested": {}}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(yp))
        for n in args.sizes:
            take = order[:n]
            module = fine_tune(head.module, xp[take], yp[take], multi_label=False, replay_x=replay[0],
                               replay_y=replay[1], fit=HeadFit(seed=seed, **best))
            curves["random"].setdefault(n, []).append(score(module, xt, yt))
        # suggestions, in rounds: pick with the model adapted on what is labelled so far
        candidates = rng.choice(len(yp), int(0.6 * len(yp)), replace=False)
        picked: list[int] = []
        module = head.module
        for n in args.sizes:
            probs = head_probs(module, xp[candidates], **calib)
            unc = margin_uncertainty(probs)
            unc[np.isin(candidates, picked)] = 0.0
            labelled = xp[picked] if picked else None
            new = pick(unc, xp[candidates], n - len(picked), labelled=labelled)
            picked += [int(candidates[i]) for i in new]
            module = fine_tune(head.module, xp[picked], yp[picked], multi_label=False, replay_x=replay[0],
                               replay_y=replay[1], fit=HeadFit(seed=seed, **best))
            curves["suggested"].setdefault(n, []).append(score(module, xt, yt))
        print(f"  seed {seed}: random {[round(curves['random'][n][-1], 3) for n in args.sizes]} "
              f"suggested {[round(curves['suggested'][n][-1], 3) for n in args.sizes]}", flush=True)
    return {"shipped": shipped, "n_test": int(len(yt)), "n_pool": int(len(yp)), "fit": best,
            "dev_at_200": best_score,
            "curves": {k: {str(n): summary(v) for n, v in c.items()} for k, c in curves.items()}}


def touchpoint_domain(tagger: Any, args: argparse.Namespace) -> dict[str, Any]:
    from classifiers.config import BANK_TOUCHPOINTS
    from classifiers.tagger import with_examples
    from classifiers.touchpoints import TouchpointPrototypes
    from classifiers.training import data
    from classifiers.training.domains import macro_f1
    from classifiers.training.train import BANKING77_TOUCHPOINT
    from feedback.corrections.suggestions import pick

    names = [s.name for s in BANK_TOUCHPOINTS]
    pool, test = data.banking77("train"), data.banking77("test")
    xp = _embed(tagger, "banking77-train", pool.texts)
    xt = _embed(tagger, "banking77-test", test.texts)
    yp = np.array([names.index(BANKING77_TOUCHPOINT[label]) for label in pool.labels])
    yt = np.array([names.index(BANKING77_TOUCHPOINT[label]) for label in test.labels])
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

    shipped = macro_f1(predict(prototypes([]), xt)[0], yt)
    print(f"banking77 touchpoints: shipped macro-F1 {shipped:.4f} on {len(yt)} test queries", flush=True)
    curves: dict[str, dict[int, list[float]]] = {"random": {}, "suggested": {}}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(yp))
        for n in args.sizes:
            curves["random"].setdefault(n, []).append(macro_f1(predict(prototypes(list(order[:n])), xt)[0], yt))
        candidates = rng.choice(len(yp), int(0.6 * len(yp)), replace=False)
        picked: list[int] = []
        for n in args.sizes:
            _, confidence = predict(prototypes(picked), xp[candidates])
            unc = 1.0 - np.clip(confidence, 0.0, 1.0)  # as the service: 1 - the stored touchpoint score
            unc[np.isin(candidates, picked)] = 0.0
            new = pick(unc, xp[candidates], n - len(picked), labelled=xp[picked] if picked else None)
            picked += [int(candidates[i]) for i in new]
            curves["suggested"].setdefault(n, []).append(macro_f1(predict(prototypes(picked), xt)[0], yt))
        print(f"  seed {seed}: random {[round(curves['random'][n][-1], 3) for n in args.sizes]} "
              f"suggested {[round(curves['suggested'][n][-1], 3) for n in args.sizes]}", flush=True)
    return {"shipped": shipped, "n_test": int(len(yt)), "n_pool": int(len(yp)),
            "curves": {k: {str(n): summary(v) for n, v in c.items()} for k, c in curves.items()}}


def wall_time(tagger: Any, n: int) -> dict[str, Any]:
    """One whole adaptation at `n` Glassdoor corrections (one in five held back), replay cache cold."""
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
                       cache_dir=Path(tmp) / "cache")
        seconds = time.perf_counter() - started
    print(f"one adaptation at {n} corrections: {seconds:.0f} s ({report.reason})", flush=True)
    return {"corrections": n, "seconds": round(seconds, 1), "better": report.better, "reason": report.reason,
            "torch_threads": int(os.environ.get("VOC_TORCH_THREADS", "2"))}


def markdown(results: dict[str, Any], sizes: list[int]) -> str:
    lines = ["| domain (test split) | shipped | strategy | " + " | ".join(f"{n} corrections" for n in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for name, r in results["domains"].items():
        for strategy in ("random", "suggested"):
            cells = []
            for n in sizes:
                s = r["curves"][strategy][str(n)]
                cells.append(f"{s['mean']:.3f} ({s['min']:.3f}..{s['max']:.3f})")
            lines.append(f"| {name} (n={r['n_test']}) | {r['shipped']:.3f} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--domains", nargs="+", default=["product_reviews", "employee_reviews", "banking77"])
    parser.add_argument("--no-wall-time", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    from classifiers import TaggerConfig, load_tagger
    from classifiers.training import data
    from classifiers.training.adapt import replay_set

    started = time.perf_counter()
    tagger = load_tagger(TaggerConfig())
    results: dict[str, Any] = {"seeds": args.seeds, "sizes": args.sizes, "domains": {}}
    loaders = {"product_reviews": data.amazon_reviews, "employee_reviews": data.glassdoor}
    replay = None
    for name in args.domains:
        if name == "banking77":
            results["domains"][name] = touchpoint_domain(tagger, args)
            continue
        replay = replay or replay_set(tagger, "sentiment", CACHE)
        results["domains"][name] = sentiment_domain(tagger, name, loaders[name], args, replay)
    if not args.no_wall_time:
        results["wall_time"] = wall_time(tagger, 500)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (ROOT / "bench" / "adaptation_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results, args.sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
