"""Reproduce the shipped models from `../shared/data` with one command.

    python -m classifiers.training.pipeline            # or: make models
    python -m classifiers.training.pipeline --from choose   # skip the (resumable) fine-tune

Steps, each a module of its own that can also be run alone:
1. `finetune_full`: the full multi-task fine-tune of the encoder (resumable: rerun to continue),
   starting from the LoRA adapter `classifiers/weights/adapter` (lora-mt.v4, itself made by
   `classifiers.training.finetune`), writing numbered snapshots;
2. `choose`: every snapshot scored on the dev split of every domain; the best is copied into
   `classifiers/weights/encoder/`;
3. `train all --adapter classifiers/weights/encoder`: the heads (sentiment and emotions are the
   ones trained jointly with the encoder; touchpoint threshold; needs);
4. `calibrate`: temperatures, thresholds and the share estimator, on dev;
5. `train needs` again: the needs head reads the calibrated sentiment and emotion outputs;
6. `evaluate` then `cards`: the test-split numbers and the model cards.

On two CPU cores step 1 takes about an hour (3,000 steps of 48 texts); the rest about 20 min.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from classifiers.tagger import WEIGHTS_DIR

STEPS = ("finetune", "choose", "heads", "calibrate", "needs", "evaluate")
RUN_DIR = Path("var/finetune/mt-full.v5")
ENCODER_DIR = WEIGHTS_DIR / "encoder"
FILES = ("adapter.json", "encoder_delta.safetensors", "joint_heads.safetensors")


def candidates(run: Path, last: int) -> list[Path]:
    """The final run folder and its last `last` snapshots."""
    snaps = sorted(run.parent.glob(f"{run.name}-step*"), key=lambda p: int(p.name.rsplit("step", 1)[1]))
    return [*snaps[-last:], run]


def install(chosen: Path, table: dict) -> None:
    """Copy the chosen encoder into the shipped weights, with what chose it."""
    ENCODER_DIR.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(chosen / name, ENCODER_DIR / name)
    meta = json.loads((ENCODER_DIR / "adapter.json").read_text())
    meta["chosen_on_dev"] = table
    (ENCODER_DIR / "adapter.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", choices=STEPS, default="finetune")
    parser.add_argument("--steps", type=int, default=3000, help="fine-tune steps")
    parser.add_argument("--candidates", type=int, default=4, help="snapshots compared with the final one")
    args = parser.parse_args(argv)
    todo = STEPS[STEPS.index(args.start):]
    from classifiers.training import calibrate, cards, choose, evaluate, finetune_full, train

    if "finetune" in todo:
        finetune_full.main(["--steps", str(args.steps), "--out", str(RUN_DIR), "--snapshot-every", "250"])
    if "choose" in todo:
        report = RUN_DIR.parent / "choose.json"
        choose.main([*map(str, candidates(RUN_DIR, args.candidates)), "--json", str(report)])
        table = json.loads(report.read_text())
        install(Path(table["best"]), table)
    if "heads" in todo:
        train.main(["all", "--adapter", str(ENCODER_DIR), "--version", "v5"])
    if "calibrate" in todo:
        calibrate.main([])
    if "needs" in todo:
        train.main(["needs", "--adapter", str(ENCODER_DIR), "--version", "v5"])
    if "evaluate" in todo:
        evaluate.main([])
        cards.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
