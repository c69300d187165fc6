"""What each part of the needs head adds: nested 5-fold CV macro-F1 on needs/train.jsonl.

    python bench/needs_ablation.py

Same protocol as `python -m classifiers.evaluate --tasks needs` (thresholds from an inner CV in
each training fold; the written rows only ever train), on the shipped encoder, for:
embedding only; + character n-gram TF-IDF branch; + the other heads' outputs; + the written
rows (needs.v3); + the guideline cues (needs.v4). The encoder passes run once, for all of them.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classifiers import TaggerConfig, load_tagger
    from classifiers.evaluate import evaluate_needs, needs_inputs
    from classifiers.needs import NeedsRecipe

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
