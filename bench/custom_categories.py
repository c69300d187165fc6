"""Custom categories, measured: a team's own labels learned from a small CSV, then from corrections.

    nice -n 15 env VOC_TORCH_THREADS=1 .venv/bin/python bench/custom_categories.py [--seeds 5] [--k 8]
        [--sizes 50 100 200 500] [--quick]

Banking77's 77 intents stand for a team's custom category (`custom:intent`). Per seed:

1. the team's CSV: `k` labelled queries per intent drawn from the train pool, written to a temp
   dir and trained into the start head by the real `classifiers.training.custom.train_custom_head`;
2. corrections: 50, 100, 200, 500 queries drawn from the rest of the pool (nested: the first 50
   of the 100 ...; two scenarios below), labelled with their intent, passed as
   `Example(text, kind="custom:intent", label=intent)` to the real
   `classifiers.training.adapt.adapt` on the shipped heads folder (`classifiers.tagger.WEIGHTS_DIR`),
   with `held_out=` the dev queries so its judge runs; the adapted head is read back from the
   version it writes (`custom/intent/`);
3. the reference a team without adaptation has: `train_custom_head` retrained from scratch on
   the CSV plus the same corrections.

Every head is scored on the test split (3,080 queries, never drawn from nor chosen on): macro-F1
and accuracy, mean and range over the seeds. Banking77 has no dev split: a fixed 15% of train
(the same rows as bench/adaptation.py's) is the dev, never drawn into a CSV or a correction; it
chooses the custom head's method: the shipped refit (the head fitted afresh, as
`train_custom_head` fits it, on its CSV rows plus the corrections) against fine-tuning the live
head with its CSV rows replayed, at `CUSTOM_LR` (3e-3, 1e-2, 3e-2) x `CUSTOM_L2_SP` (1e-4, 1e-3,
1e-2), on random corrections at every size with two dev seeds of their own; the verdict says
whether the shipped method is the dev-best (the test curves are the shipped method's; when dev
prefers another, its test curve is printed beside them, as information). With
`--head-fit-grid`, also on dev, as a diagnosis of the fine-tune path:
`adapt(fit=HeadFit(correction_share, steps))` (0.5, 0.25, 0.1 x 300, 100, 1000).

Two correction scenarios: `random` (any pool query, as the issue's curves are drawn) and
`mistakes` (pool queries the CSV head labels wrong, in the same random order: what analysts
fixing wrong tags send).

The encoder runs once per text: train and test are embedded with `bench/adaptation.py`'s cache
(var/cache/bench-adaptation, shared with that bench), and `Tagger.embed` and
`Tagger.head_probabilities` are served from it while the bench runs (a text it lacks goes
through the encoder), so `train_custom_head` and `adapt()` run unchanged but skip the repeated
encoder passes. The bench checks the cache against a fresh encoder pass first. Prints markdown
and writes bench/custom_categories_results.json (`--quick`: ...results.quick.json).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from adaptation import _embed, dev_rows, summary  # noqa: E402

NAME = "intent"
KIND = f"custom:{NAME}"
# the shipped refit, and fine-tuning at CUSTOM_LR x CUSTOM_L2_SP
GRID = [("refit",)] + [("finetune", lr, l2_sp) for lr in (3e-3, 1e-2, 3e-2) for l2_sp in (1e-4, 1e-3, 1e-2)]
# adapt()'s HeadFit (correction_share, steps), a dev diagnosis only: the service passes none, and
# sentiment and emotion share it
FIT_GRID = [(share, steps) for share in (0.5, 0.25, 0.1) for steps in (300, 100, 1000)]
DEV_SEEDS = (100, 101)


@dataclass
class Draw:
    """One seed's rows of the train split: the team's CSV and the correction order (the rest of
    the pool, shuffled; a size n takes its first n)."""

    csv_rows: np.ndarray
    corrections: np.ndarray


def draw(labels: Sequence[str], held: np.ndarray, k: int, seed: int) -> Draw:
    """`k` rows per label for the CSV, from the rows not in `held`; the rest shuffled."""
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(np.arange(len(labels)), held)
    y = np.asarray(labels)[pool]
    picked = [rng.choice(pool[y == label], min(k, int((y == label).sum())), replace=False)
              for label in sorted(set(y))]
    csv_rows = np.sort(np.concatenate(picked))
    return Draw(csv_rows, rng.permutation(np.setdiff1d(pool, csv_rows)))


@contextlib.contextmanager
def encoder_cache(table: dict[str, np.ndarray], encoder_version: str) -> Iterator[None]:
    """Serve `Tagger.embed` and `Tagger.head_probabilities` from `table` (text -> pooled
    embedding of `encoder_version`); texts it lacks go through the encoder and join it. The
    probabilities served are none: every caller while the bench runs (`adapt()`) reads only
    the embeddings."""
    from classifiers.tagger import Tagger

    embed, head_probabilities = Tagger.embed, Tagger.head_probabilities

    def rows(tagger: Tagger, texts: Sequence[Any], encode: Any) -> np.ndarray:
        assert tagger.encoder_version == encoder_version, tagger.encoder_version
        missing = [t for t in dict.fromkeys(texts) if t not in table]
        if missing:
            table.update(zip(missing, encode(tagger, missing), strict=True))
        return np.stack([table[t] for t in texts]) if texts else np.zeros((0, tagger.encoder.dim), np.float32)

    def cached_embed(self: Tagger, texts: Sequence[str | bytes]) -> np.ndarray:
        return rows(self, texts, embed)

    def cached_head_probabilities(self: Tagger, texts: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return rows(self, texts, lambda tagger, missing: head_probabilities(tagger, missing)[0]), {}

    Tagger.embed, Tagger.head_probabilities = cached_embed, cached_head_probabilities  # type: ignore[method-assign]
    try:
        yield
    finally:
        Tagger.embed, Tagger.head_probabilities = embed, head_probabilities  # type: ignore[method-assign]


REFIT = ("refit",)  # the shipped method: the head refit on its CSV rows plus the corrections


@contextlib.contextmanager
def custom_fit(setting: tuple) -> Iterator[None]:
    """`adapt()` with the custom head's method set for the dev check: `REFIT`, or ("finetune",
    CUSTOM_LR, CUSTOM_L2_SP), the live head fine-tuned with its CSV rows replayed (module
    constants, read when a custom head is adapted; restored after)."""
    from classifiers.training import adapt as adapt_module

    shipped = adapt_module.CUSTOM_REFIT, adapt_module.CUSTOM_LR, adapt_module.CUSTOM_L2_SP
    if setting != REFIT:
        adapt_module.CUSTOM_REFIT, adapt_module.CUSTOM_LR, adapt_module.CUSTOM_L2_SP = False, setting[1], setting[2]
    try:
        yield
    finally:
        adapt_module.CUSTOM_REFIT, adapt_module.CUSTOM_LR, adapt_module.CUSTOM_L2_SP = shipped


def setting_name(setting: tuple) -> str:
    return "refit" if setting == REFIT else f"fine-tune lr={setting[1]:g} l2_sp={setting[2]:g}"


@dataclass
class Domain:
    """The texts and intents of the train pool and test split, their embeddings, the dev rows."""

    texts: list[str]
    labels: list[str]
    x: np.ndarray
    test_texts: list[str]
    test_labels: list[str]
    xt: np.ndarray
    dev: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def write_csv(path: Path, texts: Sequence[str], labels: Sequence[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def predict(folder: Path, tagger: Any, x: np.ndarray) -> np.ndarray:
    """The labels the custom head in `folder` gives embeddings `x`."""
    import torch

    from classifiers.custom import load_custom_head

    head = load_custom_head(str(folder), tagger)
    with torch.inference_mode():
        ids = head.head.probabilities(torch.from_numpy(np.asarray(x, np.float32))).argmax(1).numpy()
    return np.asarray(head.head.labels)[ids]


def scores(pred: np.ndarray, gold: Sequence[str]) -> tuple[float, float]:
    """(macro-F1 over the gold labels, accuracy)."""
    from classifiers.training.domains import macro_f1

    names = sorted(set(gold) | set(pred.tolist()))
    index = {label: i for i, label in enumerate(names)}
    p, g = np.array([index[label] for label in pred]), np.array([index[label] for label in gold])
    return macro_f1(p, g), float((p == g).mean())


SCENARIOS = {"random": "at random from the pool",
             "mistakes": "at random among the pool queries the CSV head gets wrong"}


def start_head(domain: Domain, tagger: Any, *, seed: int, k: int, tmp: Path) -> tuple[Draw, Path]:
    """One seed's draw and the start head its CSV trains (`train_custom_head`, written under `tmp`)."""
    from classifiers.training.custom import train_custom_head

    d = draw(domain.labels, domain.dev, k, seed)
    base = tmp / f"seed{seed}"
    base.mkdir(parents=True)
    csv_path = write_csv(base / "team.csv", [domain.texts[i] for i in d.csv_rows],
                         [domain.labels[i] for i in d.csv_rows])
    return d, train_custom_head(csv_path, NAME, tagger=tagger, out_dir=base / "csv")


def curve(domain: Domain, tagger: Any, *, seed: int, csv_start: tuple[Draw, Path], sizes: Sequence[int],
          eval_rows: np.ndarray | None, scenarios: Sequence[str], scratch: bool, tmp: Path,
          head_fit: dict | None = None) -> dict[str, Any]:
    """One seed from its draw and CSV start head (`start_head`): per scenario (`SCENARIOS`)
    `adapt()` at each size (and with `scratch` the retrain on CSV + corrections), scored on the
    dev rows `eval_rows`, or on test when None; `head_fit`: `HeadFit` fields passed to
    `adapt(fit=...)` (the service passes none)."""
    from classifiers.tagger import WEIGHTS_DIR
    from classifiers.training.adapt import Example, HeadFit, adapt
    from classifiers.training.custom import train_custom_head

    if eval_rows is None:
        x_eval, gold = domain.xt, domain.test_labels
    else:
        x_eval, gold = domain.x[eval_rows], [domain.labels[i] for i in eval_rows]
    d, start = csv_start
    base = tmp / f"seed{seed}"
    base.mkdir(parents=True)
    texts, labels = domain.texts, domain.labels
    orders = {"random": d.corrections}
    if "mistakes" in scenarios:
        wrong = predict(start, tagger, domain.x[d.corrections]) != np.asarray(labels)[d.corrections]
        orders["mistakes"] = d.corrections[wrong]  # still in the seed's random order
    held_out = [Example(texts[i], KIND, labels[i]) for i in domain.dev]
    out: dict[str, Any] = {"start": scores(predict(start, tagger, x_eval), gold), "adapt_seconds": {}}
    for scenario in scenarios:
        got: dict[str, Any] = {"adapted": {}, "scratch": {}, "judge": {}, "available": int(len(orders[scenario]))}
        for n in sizes:
            take = orders[scenario][:n]
            if len(take) < n:
                raise ValueError(f"seed {seed}: {len(take)} {scenario} corrections in the pool, {n} asked for")
            started = time.perf_counter()
            report = adapt(WEIGHTS_DIR, base / scenario / f"n{n}", version=f"bench-{seed}-{scenario}-{n}",
                           train=[Example(texts[i], KIND, labels[i]) for i in take], held_out=held_out,
                           cache_dir=base / "cache", fit=HeadFit(seed=seed, **(head_fit or {})),
                           custom_heads=(str(start),))
            out["adapt_seconds"].setdefault(n, []).append(time.perf_counter() - started)
            assert report.n_train == {KIND: n}, report.n_train
            got["adapted"][n] = scores(predict(Path(report.out_dir) / "custom" / NAME, tagger, x_eval), gold)
            got["judge"][n] = {"better": report.better, **{key: report.scores["kinds"][KIND][key]
                                                           for key in ("champion", "challenger")}}
            if scratch:
                rows = np.concatenate([d.csv_rows, take])
                union = write_csv(base / f"{scenario}+{n}.csv", [texts[i] for i in rows], [labels[i] for i in rows])
                folder = train_custom_head(union, NAME, tagger=tagger, out_dir=base / f"scratch-{scenario}{n}")
                got["scratch"][n] = scores(predict(folder, tagger, x_eval), gold)
        out[scenario] = got
    return out


def run(domain: Domain, tagger: Any, *, seeds: Sequence[int], k: int, sizes: Sequence[int],
        grid: Sequence[tuple[float, float]], fit_grid: Sequence[tuple[float, int]],
        dev_seeds: Sequence[int]) -> dict[str, Any]:
    """The dev check of (`CUSTOM_LR`, `CUSTOM_L2_SP`) on random corrections, the dev diagnosis
    of `HeadFit` (correction_share, steps) at the shipped constants beside the retrain from
    scratch, then the test curves over `seeds` for every scenario (module docstring)."""
    from classifiers.training import adapt as adapt_module

    shipped = REFIT if adapt_module.CUSTOM_REFIT else ("finetune", adapt_module.CUSTOM_LR, adapt_module.CUSTOM_L2_SP)
    started = time.perf_counter()
    dev_f1: dict[tuple, dict[int, float]] = {}
    # each seed's CSV start head, trained once: the same (deterministic) head for every setting
    starts: dict[int, tuple[Draw, Path]] = {}
    with tempfile.TemporaryDirectory() as kept:

        def start(seed: int) -> tuple[Draw, Path]:
            if seed not in starts:
                starts[seed] = start_head(domain, tagger, seed=seed, k=k, tmp=Path(kept))
            return starts[seed]

        with tempfile.TemporaryDirectory() as tmp:
            for i, setting in enumerate(grid):
                with custom_fit(setting):
                    runs = [curve(domain, tagger, seed=s, csv_start=start(s), sizes=sizes, eval_rows=domain.dev,
                                  scenarios=("random",), scratch=False, tmp=Path(tmp) / f"dev{i}") for s in dev_seeds]
                dev_f1[setting] = {n: float(np.mean([r["random"]["adapted"][n][0] for r in runs])) for n in sizes}
                print(f"  dev {setting_name(setting)}: "
                      + ", ".join(f"{n}: {v:.3f}" for n, v in dev_f1[setting].items()), flush=True)
            dev_start = float(np.mean([r["start"][0] for r in runs]))  # the same CSV heads for every setting
        best = max(grid, key=lambda setting: np.mean(list(dev_f1[setting].values())))
        dev_fit: dict[str, dict[int, float]] = {}
        finetune = ("finetune", adapt_module.CUSTOM_LR, adapt_module.CUSTOM_L2_SP)
        with tempfile.TemporaryDirectory() as tmp, custom_fit(finetune):
            for i, (share, steps) in enumerate(fit_grid):
                runs = [curve(domain, tagger, seed=s, csv_start=start(s), sizes=sizes, eval_rows=domain.dev,
                              scenarios=("random",), scratch=i == 0, tmp=Path(tmp) / f"fit{i}",
                              head_fit={"correction_share": share, "steps": steps}) for s in dev_seeds]
                if i == 0:
                    dev_fit["scratch"] = {n: float(np.mean([r["random"]["scratch"][n][0] for r in runs]))
                                          for n in sizes}
                dev_fit[f"{share:g}/{steps}"] = {n: float(np.mean([r["random"]["adapted"][n][0] for r in runs]))
                                                 for n in sizes}
                print(f"  dev correction_share={share:g} steps={steps}: "
                      + ", ".join(f"{n}: {v:.3f}" for n, v in dev_fit[f"{share:g}/{steps}"].items()), flush=True)
        settings = [shipped] if best == shipped else [shipped, best]
        tests: dict[tuple, list[dict[str, Any]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for j, setting in enumerate(settings):
                tests[setting] = []
                with custom_fit(setting):
                    for s in seeds:
                        r = curve(domain, tagger, seed=s, csv_start=start(s), sizes=sizes, eval_rows=None,
                                  scenarios=tuple(SCENARIOS), scratch=setting == shipped,
                                  tmp=Path(tmp) / f"setting{j}")
                        tests[setting].append(r)
                        print(f"  seed {s} {setting_name(setting)}: start {r['start'][0]:.3f}; " + "; ".join(
                            f"{sc} adapted {[round(r[sc]['adapted'][n][0], 3) for n in sizes]}"
                            + (f" scratch {[round(r[sc]['scratch'][n][0], 3) for n in sizes]}"
                               if r[sc]["scratch"] else "")
                            for sc in SCENARIOS), flush=True)

    def stats(runs: list[dict[str, Any]], scenario: str, key: str) -> dict[str, dict[str, dict[str, float]]]:
        return {metric: {str(n): summary([r[scenario][key][n][m] for r in runs]) for n in sizes}
                for m, metric in enumerate(("macro_f1", "accuracy"))}

    main = tests[shipped]
    out: dict[str, Any] = {
        "k": k, "csv_rows": int(len(starts[seeds[0]][0].csv_rows)), "sizes": list(sizes),
        "seeds": list(seeds), "dev_seeds": list(dev_seeds), "n_test": len(domain.test_labels),
        "n_dev": int(len(domain.dev)), "n_pool": len(domain.labels) - int(len(domain.dev)),
        "shipped": setting_name(shipped),
        "dev_start_macro_f1": dev_start,
        "dev_macro_f1": [{"setting": setting_name(setting), **{str(n): v for n, v in c.items()}}
                         for setting, c in dev_f1.items()],
        "dev_best": setting_name(best), "shipped_is_dev_best": best == shipped,
        "dev_head_fit": {key: {str(n): v for n, v in c.items()} for key, c in dev_fit.items()},
        "start": {metric: summary([r["start"][m] for r in main]) for m, metric in enumerate(("macro_f1", "accuracy"))},
        "scenarios": {},
        "adapt_seconds": {str(n): float(np.mean([t for r in main for t in r["adapt_seconds"][n]])) for n in sizes},
    }
    for scenario in SCENARIOS:
        got: dict[str, Any] = {"corrections": SCENARIOS[scenario],
                               "available": summary([r[scenario]["available"] for r in main]),
                               "curves": {"adapted": stats(main, scenario, "adapted"),
                                          "scratch": stats(main, scenario, "scratch")}}
        if best != shipped:
            got["curves"]["adapted_dev_best"] = stats(tests[best], scenario, "adapted")
        got["judge_better"] = {str(n): int(sum(r[scenario]["judge"][n]["better"] for r in main)) for n in sizes}
        got["judge_dev_accuracy"] = {
            str(n): {key: float(np.mean([r[scenario]["judge"][n][key] for r in main]))
                     for key in ("champion", "challenger")} for n in sizes}
        out["scenarios"][scenario] = got
    out["per_seed"] = [{"seed": s, "start_macro_f1": r["start"][0], **{
        scenario: {str(n): {"adapted_macro_f1": r[scenario]["adapted"][n][0],
                            "scratch_macro_f1": r[scenario]["scratch"][n][0],
                            "judge_better": r[scenario]["judge"][n]["better"]} for n in sizes}
        for scenario in SCENARIOS}} for s, r in zip(seeds, main, strict=True)]
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def markdown(r: dict[str, Any]) -> str:
    sizes = r["sizes"]

    def cell(s: dict[str, float]) -> str:
        return f"{s['mean']:.3f} ({s['min']:.3f}..{s['max']:.3f})"

    shipped, best = r["shipped"], r["dev_best"]
    names = {"adapted": f"`adapt()`, shipped: {shipped}",
             "scratch": "retrain from scratch on CSV + corrections",
             "adapted_dev_best": f"`adapt()`, dev-best: {best} (not shipped)"}
    lines = [f"Banking77 intents as a custom category: a CSV of {r['k']} queries per intent ({r['csv_rows']} rows) "
             f"trains the start head; test n={r['n_test']}; mean (min..max) over {len(r['seeds'])} seeds"]
    for got in r["scenarios"].values():
        lines += ["", f"Corrections {got['corrections']} (pool {r['n_pool']}; {got['available']['mean']:.0f} "
                  "available on average):", "",
                  "| metric | curve | start (CSV) | " + " | ".join(str(n) for n in sizes) + " |",
                  "|---|---|---|" + "---|" * len(sizes)]
        for metric in ("macro_f1", "accuracy"):
            for name, c in got["curves"].items():
                lines.append(f"| {metric.replace('_', '-')} | {names[name]} | {cell(r['start'][metric])} | "
                             + " | ".join(cell(c[metric][str(n)]) for n in sizes) + " |")
        lines.append(f"| dev accuracy | `adapt()`'s judge on the {r['n_dev']} dev queries: champion -> challenger "
                     f"(better in how many of {len(r['seeds'])}) | | " + " | ".join(
                         f"{got['judge_dev_accuracy'][str(n)]['champion']:.3f} -> "
                         f"{got['judge_dev_accuracy'][str(n)]['challenger']:.3f} ({got['judge_better'][str(n)]})"
                         for n in sizes) + " |")
    lines += ["", f"Dev macro-F1 of `adapt()` on random corrections, refit or fine-tuned at CUSTOM_LR x CUSTOM_L2_SP "
              f"(dev n={r['n_dev']}, mean over dev seeds {r['dev_seeds']}; their CSV heads score "
              f"{r['dev_start_macro_f1']:.3f}):", "",
              "| custom head method | " + " | ".join(str(n) for n in sizes) + " | mean |",
              "|---|" + "---|" * (len(sizes) + 1)]
    for row in r["dev_macro_f1"]:
        mark = " (shipped)" if row["setting"] == shipped else ""
        mark += " (dev-best)" if row["setting"] == best else ""
        lines.append(f"| {row['setting']}{mark} | " + " | ".join(f"{row[str(n)]:.3f}" for n in sizes)
                     + f" | {np.mean([row[str(n)] for n in sizes]):.3f} |")
    lines += ["", "Dev macro-F1 of the fine-tune path with `adapt(fit=HeadFit(correction_share=..., steps=...))` at "
              "CUSTOM_LR and CUSTOM_L2_SP (the service passes no `fit`: 0.5 / 300), and the retrain from scratch on "
              "the same rows (CSV heads: "
              f"{r['dev_start_macro_f1']:.3f}):", "",
              "| correction_share / steps | " + " | ".join(str(n) for n in sizes) + " | mean |",
              "|---|" + "---|" * (len(sizes) + 1)]
    for key, c in r["dev_head_fit"].items():
        label = "retrain from scratch on CSV + corrections" if key == "scratch" else key
        label += " (default)" if key == "0.5/300" else ""
        lines.append(f"| {label} | " + " | ".join(f"{c[str(n)]:.3f}" for n in sizes)
                     + f" | {np.mean([c[str(n)] for n in sizes]):.3f} |")
    verdict = (f"the shipped method ({shipped}) is the dev-best" if r["shipped_is_dev_best"] else
               f"dev prefers {best} over the shipped {shipped}")
    lines += ["", f"- {verdict}; one `adapt()` call (load, fine-tune, judge on {r['n_dev']}, write) took "
              + ", ".join(f"{s:.1f} s at {n}" for n, s in r["adapt_seconds"].items())
              + f" with cached embeddings; whole run {r['seconds']:.0f} s"]
    return "\n".join(lines)


def load_domain(tagger: Any) -> Domain:
    from classifiers.training import data

    pool, test = data.banking77("train"), data.banking77("test")
    return Domain(texts=pool.texts, labels=pool.labels, x=_embed(tagger, "banking77-train", pool.texts),
                  test_texts=test.texts, test_labels=test.labels, xt=_embed(tagger, "banking77-test", test.texts),
                  dev=dev_rows(len(pool.texts)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--k", type=int, default=8, help="CSV rows per intent")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--quick", action="store_true", help="2 seeds, one dev seed, sizes 50 and 200 (iteration only)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--head-fit-grid", action="store_true",
                        help="also diagnose the fine-tune path's HeadFit (correction_share x steps) on dev")
    args = parser.parse_args()
    dev_seeds, fit_grid = DEV_SEEDS, (FIT_GRID if args.head_fit_grid else FIT_GRID[:1])
    if args.quick:
        args.seeds, args.sizes, dev_seeds, fit_grid = min(args.seeds, 2), [50, 200], DEV_SEEDS[:1], FIT_GRID[:2]
    out = Path(args.out) if args.out else ROOT / "bench" / (
        "custom_categories_results.quick.json" if args.quick else "custom_categories_results.json")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    from classifiers import TaggerConfig, load_tagger

    tagger = load_tagger(TaggerConfig(device="cpu"))
    domain = load_domain(tagger)
    table = dict(zip(domain.texts + domain.test_texts, np.concatenate([domain.x, domain.xt]), strict=True))
    table.update({t.strip(): v for t, v in list(table.items())})  # the CSV reader strips texts
    check = np.random.default_rng(0).choice(len(domain.texts), 32, replace=False)
    diff = float(np.abs(tagger.embed([domain.texts[i] for i in check]) - domain.x[check]).max())
    print(f"cache check: 32 train queries re-encoded, max |difference| {diff:.1e}", flush=True)
    assert diff < 1e-2, diff
    with encoder_cache(table, tagger.encoder_version):
        results = run(domain, tagger, seeds=list(range(args.seeds)), k=args.k, sizes=args.sizes,
                      grid=GRID, fit_grid=fit_grid, dev_seeds=dev_seeds)
    results.update({"quick": args.quick, "encoder": tagger.encoder_version, "tagger": tagger.version,
                    "torch_threads": torch.get_num_threads(), "cache_check_max_diff": diff})
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
