"""Choose a fine-tuned encoder checkpoint on the dev split of every domain, never on a test split.

    python -m classifiers.training.choose var/finetune/mt-full.v5-step2000 ... var/finetune/mt-full.v5

Each candidate (a folder written by `classifiers.training.finetune_full`: encoder delta + the
heads trained jointly with it) is scored by the mean of: the sentiment macro-F1 on the dev split
of each domain in `classifiers.training.domains.DEV` (tweets, product reviews, employee review
headlines, employee pros/cons, movie phrases, Reddit) and the GoEmotions dev macro-F1 of the
28 emotions (thresholds tuned on the same dev split, as the shipped head's are). Prints one row
per candidate and the best; `--json FILE` keeps the table.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from classifiers.labels import GOEMOTIONS_LABELS
from classifiers.training import data, domains


def score_candidate(folder: Path, max_length: int = 256) -> dict[str, float]:
    """Dev macro-F1 per domain, GoEmotions dev macro-F1, and their mean."""
    from safetensors.torch import load_file

    from classifiers.encoder import Encoder
    from classifiers.heads import build_module
    from classifiers.training.train import f1_binary, multi_hot, shrunk_thresholds

    meta = json.loads((folder / "adapter.json").read_text())
    encoder = Encoder(max_length=max_length, adapter_dir=folder, dtype="float32")
    joint = load_file(str(folder / "joint_heads.safetensors"))
    heads = {}
    for task, n_out in (("sentiment", 3), ("emotions", len(GOEMOTIONS_LABELS))):
        spec = meta["joint_heads"][task]
        module = build_module(spec["kind"], encoder.dim, n_out, spec["hidden"])
        module.load_state_dict({k[len(task) + 1 :]: v for k, v in joint.items() if k.startswith(f"{task}.")})
        heads[task] = module.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        # Reddit's sentiment dev split is a subset of GoEmotions dev: one encoder pass for both
        ge = data.goemotions("dev")
        ge_emb = torch.from_numpy(encoder.encode(ge.texts, batch_size=128)[0])
        ge_row = {text: i for i, text in enumerate(ge.texts)}
        for name, load in domains.DEV.items():
            split = load()
            if name == "reddit":
                emb = ge_emb[[ge_row[t] for t in split.texts]]
            else:
                emb = torch.from_numpy(encoder.encode(split.texts, batch_size=128)[0])
            probs = torch.softmax(heads["sentiment"](emb), -1).numpy()
            gold = domains.label_ids(split.labels)
            pred = domains.predict_labels(probs, domains.is_binary(split.labels))
            out[name] = round(domains.macro_f1(pred, gold), 4)
        probs = torch.sigmoid(heads["emotions"](ge_emb)).numpy()
    gold_e = multi_hot(ge.labels, GOEMOTIONS_LABELS)
    thr = shrunk_thresholds(probs, gold_e, list(GOEMOTIONS_LABELS))
    out["reddit_emotions"] = round(float(np.mean([
        f1_binary(probs[:, j] >= thr[label], gold_e[:, j] > 0)
        for j, label in enumerate(GOEMOTIONS_LABELS)])), 4)  # fmt: skip
    out["mean"] = round(float(np.mean(list(out.values()))), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.choose", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    table = {}
    for c in args.candidates:
        table[c] = score_candidate(Path(c))
        print(c, json.dumps(table[c]), flush=True)
    best = max(table, key=lambda c: table[c]["mean"])
    print(f"best on dev: {best} (mean {table[best]['mean']})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"best": best, "candidates": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
