"""What each part of the needs head adds: nested 5-fold CV macro-F1 on needs/train.jsonl.

    python bench/needs_ablation.py [--fold-seeds 1 2 3]

Same protocol as `python -m classifiers.training.evaluate --tasks needs` (thresholds from an inner CV in
each training fold; the written rows only ever train), on the shipped encoder, for:
embedding only; + character n-gram TF-IDF branch; + the other heads' outputs; + the written
rows (needs.v3); + the guideline cues (needs.v4). The encoder passes run once, for all of them.
With --fold-seeds, the shipped recipe and the one without written rows are also scored with the
outer folds dealt by each of those seeds: how far the score moves with the split alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fold-seeds", type=int, nargs="*", default=[])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classifiers import TaggerConfig, load_tagger
    from classifiers.needs import NeedsRecipe
    from classifiers.training.evaluate import evaluate_needs, needs_inputs

    tagger = load_tagger(TaggerConfig(device="cpu"))
    shipped = NeedsRecipe(**tagger.needs_model.recipe.to_json()) if tagger.needs_model else \
        NeedsRecipe()  # fmt: skip
    print(f"encoder {tagger.model_versions['encoder']}, recipe {shipped.to_json()}")
    v3 = replace(shipped, cues=False)
    variants = [
        ("embedding only", replace(v3, lex_weight=0.0), False, False),
        ("+ char n-gram TF-IDF branch", v3, False, False),
        ("+ sentiment/emotion head outputs", v3, True, False),
        ("+ written rows (needs.v3)", v3, True, True),
        ("+ guideline cues (needs.v4)", replace(shipped, cues=True), True, True),
    ]
    inputs = needs_inputs(tagger)
    for name, recipe, head_outputs, written in variants:
        started = time.perf_counter()
        m = evaluate_needs(tagger, recipe, head_outputs=head_outputs, written=written,
                           inputs=inputs)  # fmt: skip
        per = " ".join(f"{k} {v:.3f}" for k, v in m["cv5_per_label_f1"].items())
        print(f"{name:36s} macro-F1 {m['cv5_macro_f1']:.4f}  ({per})  "
              f"{time.perf_counter() - started:.0f}s", flush=True)  # fmt: skip
    for seed in args.fold_seeds:
        with_rows = evaluate_needs(tagger, shipped, inputs=inputs, fold_seed=seed)["cv5_macro_f1"]
        without = evaluate_needs(tagger, shipped, written=False, inputs=inputs,
                                 fold_seed=seed)["cv5_macro_f1"]  # fmt: skip
        print(f"outer folds seed {seed}: needs.v4 {with_rows:.4f}, without written rows "
              f"{without:.4f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
