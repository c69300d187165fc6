"""Calibrate the heads and choose the share estimator, on dev splits of every domain.

    python -m classifiers.training.calibrate [--heads-dir classifiers/weights]

1. Sentiment: the head's logits are scaled by a temperature (and, as a candidate, shifted by a
   per-class bias), fitted by minimising the log-loss over the dev split of every domain
   (`classifiers.training.domains`), each domain weighing the same whatever its size. The
   variant kept is the one with the best mean dev macro-F1 (ties: lower calibration error).
2. Share negative: classify-and-count, ACC, PCC and PACC (`classifiers.quantify`) are scored by
   leave-one-domain-out on dev: each domain's share is estimated with rates measured on the
   other domains. The method with the smallest mean error is kept, its rates refitted on all.
3. Emotions: one temperature for the 28 sigmoids (log-loss on GoEmotions dev), then the
   thresholds are re-tuned on the calibrated scores (shrunk halfway to the shared best).

Everything is written into heads.json (`temperature`, `bias`, `thresholds`, `quantification`,
`calibration`); no test split is read.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifiers.labels import GOEMOTIONS_LABELS
from classifiers.quantify import METHODS, ShareEstimator, rates
from classifiers.training import data, domains


def fit_scaling(logits: list[np.ndarray], golds: list[np.ndarray], *, bias: bool,
                multi_label: bool = False) -> tuple[float, list[float]]:  # fmt: skip
    """Temperature (and bias) minimising the mean over groups of each group's mean log-loss."""
    t_log = torch.zeros(1, requires_grad=True)  # temperature = exp(t_log)
    n_out = logits[0].shape[1]
    b = torch.zeros(n_out, requires_grad=bias)
    xs = [torch.from_numpy(x).float() for x in logits]
    ys = [torch.from_numpy(y) for y in golds]
    params = [t_log, b] if bias else [t_log]
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        total = torch.zeros(())
        for x, y in zip(xs, ys, strict=True):
            z = x / torch.exp(t_log) + b
            if multi_label:
                total = total + torch.nn.functional.binary_cross_entropy_with_logits(z, y.float())
            else:
                total = total + torch.nn.functional.cross_entropy(z, y.long())
        loss = total / len(xs)
        loss.backward()
        return loss

    opt.step(loss_fn)
    return float(torch.exp(t_log).detach()), [round(float(v), 6) for v in b.detach()]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def share_errors(probs: dict[str, np.ndarray], golds: dict[str, np.ndarray]
                 ) -> dict[str, dict[str, float]]:  # fmt: skip
    """Leave-one-domain-out error of each method's estimated share negative, per dev domain."""
    out: dict[str, dict[str, float]] = {m: {} for m in METHODS}
    for held in probs:
        others = [d for d in probs if d != held]
        for method in METHODS:
            est = fitted_estimator(method, {d: probs[d] for d in others},
                                   {d: golds[d] for d in others})  # fmt: skip
            p, g = probs[held], golds[held]
            pred = domains.predict_labels(p, domains.is_binary_ids(g))
            value = est.estimate(n=len(g), count=float((pred == 0).sum()), prob_sum=float(p[:, 0].sum()))
            out[method][held] = abs(float(value) - float((g == 0).mean()))
    return out


def fitted_estimator(method: str, probs: dict[str, np.ndarray], golds: dict[str, np.ndarray]
                     ) -> ShareEstimator:  # fmt: skip
    """`method`'s rates for the negative label, the mean over domains of each domain's rates."""
    tprs, fprs = [], []
    for d, p in probs.items():
        g = golds[d] == 0
        if not g.any() or g.all():
            continue
        pred = domains.predict_labels(p, domains.is_binary_ids(golds[d]))
        scores = p[:, 0] if method in ("pcc", "pacc") else (pred == 0).astype(float)
        tpr, fpr = rates(scores, g)
        tprs.append(tpr)
        fprs.append(fpr)
    return ShareEstimator("negative", method, float(np.mean(tprs)), float(np.mean(fprs)))


def calibrate_sentiment(raw: dict[str, np.ndarray], golds: dict[str, np.ndarray]) -> dict[str, Any]:
    """Fit the candidates, measure each on dev, keep the best; plus the share estimator."""
    logits = {d: np.log(np.clip(p, 1e-7, 1.0)) for d, p in raw.items()}
    order = list(raw)
    variants: dict[str, tuple[float, list[float]]] = {"none": (1.0, [0.0, 0.0, 0.0])}
    variants["temperature"] = fit_scaling([logits[d] for d in order], [golds[d] for d in order], bias=False)
    variants["temperature_bias"] = fit_scaling([logits[d] for d in order], [golds[d] for d in order],
                                               bias=True)  # fmt: skip
    report: dict[str, Any] = {}
    for name, (t, b) in variants.items():
        probs = {d: softmax(logits[d] / t + np.array(b)) for d in order}
        per = {}
        for d in order:
            pred = domains.predict_labels(probs[d], domains.is_binary_ids(golds[d]))
            per[d] = {"macro_f1": round(domains.macro_f1(pred, golds[d]), 4),
                      "negative_recall": round(domains.recall(pred, golds[d], 0), 4),
                      "ece": round(domains.ece(probs[d], golds[d]), 4),
                      "negative_ece": round(domains.negative_ece(probs[d], golds[d]), 4)}  # fmt: skip
        report[name] = {"temperature": round(t, 4), "bias": b, "domains": per,
                        "mean_macro_f1": round(float(np.mean([v["macro_f1"] for v in per.values()])), 4),
                        "mean_ece": round(float(np.mean([v["ece"] for v in per.values()])), 4)}  # fmt: skip
    best = max(report, key=lambda k: (report[k]["mean_macro_f1"], -report[k]["mean_ece"]))
    t, b = variants[best]
    probs = {d: softmax(logits[d] / t + np.array(b)) for d in order}
    errors = share_errors(probs, golds)
    mean_err = {m: round(float(np.mean(list(e.values()))), 4) for m, e in errors.items()}
    method = min(mean_err, key=mean_err.get)
    estimator = fitted_estimator(method, probs, golds)
    return {
        "chosen": best, "temperature": t, "bias": b, "variants": report,
        "share_negative_lodo_error": {m: {d: round(v, 4) for d, v in e.items()} for m, e in errors.items()},
        "share_negative_lodo_mean_error": mean_err, "estimator": estimator.to_json(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads-dir", default=None, help="weights folder (default: the shipped one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    from classifiers.config import TaggerConfig
    from classifiers.tagger import WEIGHTS_DIR, Tagger
    from classifiers.training.train import multi_hot, shrunk_thresholds

    heads_dir = Path(args.heads_dir) if args.heads_dir else WEIGHTS_DIR
    tagger = Tagger(TaggerConfig(heads_dir=str(heads_dir), batch_size=128))
    for head in tagger.heads.values():  # fit from the raw scores
        head.set_calibration()
    raw, golds = {}, {}
    for d, load in domains.DEV.items():
        split = load()
        raw[d] = tagger.head_probabilities(split.texts)[1]["sentiment"]
        golds[d] = domains.label_ids(split.labels)
        print(f"dev {d}: {len(split.texts)} texts", flush=True)
    sentiment = calibrate_sentiment(raw, golds)
    print(json.dumps({k: v for k, v in sentiment.items() if k != "variants"}, indent=1), flush=True)
    for name, v in sentiment["variants"].items():
        print(f"  {name}: mean dev macro-F1 {v['mean_macro_f1']}, mean ECE {v['mean_ece']}", flush=True)

    ge = data.goemotions("dev")
    emo = tagger.head_probabilities(ge.texts)[1]["emotions"]
    gold = multi_hot(ge.labels, GOEMOTIONS_LABELS)
    e_logits = np.log(np.clip(emo, 1e-7, 1)) - np.log(np.clip(1 - emo, 1e-7, 1))
    e_t, _ = fit_scaling([e_logits], [gold], bias=False, multi_label=True)
    e_probs = 1 / (1 + np.exp(-e_logits / e_t))
    thresholds = shrunk_thresholds(e_probs, gold, list(GOEMOTIONS_LABELS))
    print(f"emotions: temperature {e_t:.3f}", flush=True)

    path = heads_dir / "heads.json"
    meta = json.loads(path.read_text())
    meta["heads"]["sentiment"]["temperature"] = round(sentiment["temperature"], 6)
    meta["heads"]["sentiment"]["bias"] = sentiment["bias"]
    meta["heads"]["emotions"]["temperature"] = round(e_t, 6)
    meta["heads"]["emotions"]["bias"] = []
    meta["heads"]["emotions"]["thresholds"] = thresholds
    meta["quantification"] = {"negative": sentiment["estimator"]}
    meta["calibration"] = {"command": "python -m classifiers.training.calibrate",
                           "sentiment": sentiment, "emotions": {"temperature": round(e_t, 6)}}  # fmt: skip
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
