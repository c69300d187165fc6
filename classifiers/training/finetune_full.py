"""Full multi-task fine-tune of the shared encoder: every weight of all six layers.

    nice -n 5 python -m classifiers.training.finetune_full --out var/finetune/mt-full.v5

One encoder, trained jointly for sentiment on every domain the service reads (customer tweets,
product reviews, employee review headlines and pros/cons, movie sentences and phrases, Reddit
comments' sentiment grouping) and for the 28 GoEmotions labels, with a distillation term that
keeps the pooled, normalised embedding close to the frozen base model's (topics and touchpoint
prototypes read that embedding). Tagging stays one encoder pass: the result is an encoder whose
weights differ from the packaged base, shipped as a small *delta* (`encoder.delta`, int8 per
row for the matrices) and merged at load time.

Domain-balanced sampling: each step's sentiment rows are drawn so that every source has a fixed
share of the mass (`DOMAIN_SHARES`), whatever its size, and classes are balanced within a
source. The tweet test file (`twitter-2016test`) and every source's test slice are never read.

Resumable: `checkpoint.pt` (weights, optimiser, schedule, step) is written every
`--checkpoint-every` steps; rerunning the same command continues from it. Numbered snapshots
(`--snapshot-every`) are the candidates `classifiers.training.choose` scores on dev splits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from classifiers.encoder import apply_delta, default_encoder_path, merge_lora, pad_ids, quantize_delta
from classifiers.heads import build_module
from classifiers.labels import GOEMOTIONS_LABELS, SENTIMENT_LABELS
from classifiers.training import data
from classifiers.training.finetune import length_bucketed, tokenize_all

SEED = 13

# Share of each step's sentiment rows per source. The customer and employee sources are what the
# service exists for; movie sentences and Reddit keep the general reading the encoder had.
DOMAIN_SHARES: dict[str, float] = {
    "tweets": 0.30,
    "amazon": 0.14,
    "glassdoor": 0.12,
    "glassdoor_pc": 0.10,
    "sst5": 0.08,
    "sst2": 0.06,
    "goemotions": 0.20,
}


def sentiment_source(name: str, split: str) -> data.Split:
    """One sentiment source's split (labels negative / neutral / positive)."""
    readers = {
        "tweets": data.semeval_tweets,
        "amazon": data.amazon_reviews,
        "glassdoor": data.glassdoor,
        "glassdoor_pc": data.glassdoor_pros_cons,
        "sst5": data.sst5,
        "sst2": data.sst2,
        "goemotions": data.goemotions_sentiment,
    }
    return readers[name](split)


def sentiment_pool() -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Training texts, label ids, sampling probabilities and source name per row."""
    idx = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    texts: list[str] = []
    ys, ps, srcs = [], [], []
    for source, share in DOMAIN_SHARES.items():
        sp = sentiment_source(source, "train")
        if source == "sst2":  # 60k phrases for a 6% share: every third is plenty
            sp = data.Split(sp.texts[::3], sp.labels[::3])
        y = np.array([idx[label] for label in sp.labels])
        counts = np.bincount(y, minlength=3).astype(float)
        present = counts > 0
        # classes balanced within a source, the source's total mass = its share
        cw = np.where(present, 1.0 / np.maximum(counts, 1) / present.sum(), 0.0)
        texts += sp.texts
        ys.append(y)
        ps.append(cw[y] * share)
        srcs += [source] * len(y)
    p = np.concatenate(ps)
    return texts, np.concatenate(ys), p / p.sum(), srcs


def base_embeddings(model: nn.Module, ids: list[list[int]], cache: Path) -> np.ndarray:
    """Pooled, normalised embeddings of the frozen base model (the distillation targets),
    cached on disk by the ids' content."""
    digest = hashlib.sha1(json.dumps(ids).encode()).hexdigest()[:16]
    path = cache / f"base-{digest}.npy"
    if path.exists():
        return np.load(path)
    unique = list(dict.fromkeys(tuple(r) for r in ids))  # GoEmotions texts appear twice
    emb = np.zeros((len(unique), model.config.hidden_size), np.float32)
    order = np.argsort([len(r) for r in unique], kind="stable")
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), 256):
            chunk = order[start : start + 256]
            batch, mask = pad_ids([list(unique[i]) for i in chunk])
            emb[chunk] = pooled(model, batch, mask).numpy()
    row = {key: i for i, key in enumerate(unique)}
    out = emb[[row[tuple(r)] for r in ids]]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def pooled(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean-pooled, L2-normalised last hidden state: what every head and topics read."""
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    return nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)


def trainable_names(model: nn.Module) -> list[str]:
    """Every parameter of the transformer layers (the word-piece embeddings stay frozen: they
    are half the model, and freezing them keeps the shipped delta small)."""
    return [n for n, _ in model.named_parameters() if n.startswith("encoder.layer.")]


def save_delta(out: Path, model: nn.Module, base_state: dict[str, torch.Tensor], names: list[str],
               heads: dict[str, nn.Module], meta: dict[str, Any]) -> None:  # fmt: skip
    """encoder_delta.safetensors (int8 rows + scales for matrices, fp16 vectors),
    joint_heads.safetensors and adapter.json (kind "delta")."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = dict(model.named_parameters())
    delta = {n: (state[n].detach() - base_state[n]).float() for n in names}
    save_file(quantize_delta(delta), str(out / "encoder_delta.safetensors"))
    joint = {f"{task}.{k}": v.detach().float().contiguous() for task, head in heads.items()
             for k, v in head.state_dict().items()}  # fmt: skip
    save_file(joint, str(out / "joint_heads.safetensors"))
    (out / "adapter.json").write_text(json.dumps({"kind": "delta", **meta}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.finetune_full",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--s-batch", type=int, default=32, help="sentiment rows per step")
    parser.add_argument("--e-batch", type=int, default=16, help="GoEmotions rows per step")
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--distill", type=float, default=0.5, help="weight of the embedding term")
    parser.add_argument("--emotion-weight", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--bucket", type=int, default=16)
    parser.add_argument("--init-adapter", default="classifiers/weights/adapter",
                        help="LoRA adapter merged into the base before training (its joint heads "
                             "start the heads); 'none' to start from the base model")
    parser.add_argument("--out", default="var/finetune/mt-full.v5")
    parser.add_argument("--version", default="mt-full.v5")
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--snapshot-every", type=int, default=200)
    parser.add_argument("--speed-test", action="store_true", help="20 steps, print samples/s")
    args = parser.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    torch.manual_seed(SEED)
    from transformers import AutoModel, AutoTokenizer

    out = Path(args.out)
    path = default_encoder_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    base_state = {n: p.detach().clone() for n, p in model.named_parameters()}
    cache = Path(os.environ.get("VOC_CACHE_DIR", data.REPO_ROOT / "var" / "cache")) / "finetune"

    # the data: token ids once, up front; the base model's embeddings as distillation targets
    s_texts, s_y, s_p, s_src = sentiment_pool()
    ge = data.goemotions("train")
    idx = {label: j for j, label in enumerate(GOEMOTIONS_LABELS)}
    e_y = np.zeros((len(ge.texts), len(GOEMOTIONS_LABELS)), np.float32)
    for i, labels in enumerate(ge.labels):
        e_y[i, [idx[label] for label in labels]] = 1.0
    s_ids = tokenize_all(tok, s_texts, args.max_length)
    e_ids = tokenize_all(tok, ge.texts, args.max_length)
    t0 = time.time()
    both = base_embeddings(model, s_ids + e_ids, cache)
    s_base, e_base = both[: len(s_ids)], both[len(s_ids) :]
    counts = {src: s_src.count(src) for src in DOMAIN_SHARES}
    print(f"sentiment pool {counts}; goemotions {len(e_ids)}; base embeddings "
          f"{time.time() - t0:.0f}s", flush=True)  # fmt: skip

    init = "base"
    heads_init: dict[str, torch.Tensor] = {}
    head_kinds = {"sentiment": {"kind": "mlp", "hidden": 256},
                  "emotions": {"kind": "mlp", "hidden": 512}}  # fmt: skip
    if args.init_adapter and args.init_adapter != "none":
        from safetensors.torch import load_file

        prev = Path(args.init_adapter)
        prev_meta = json.loads((prev / "adapter.json").read_text())
        if prev_meta.get("kind", "lora") == "lora":
            merge_lora(model, load_file(str(prev / "adapter.safetensors")),
                       prev_meta["alpha"] / prev_meta["rank"])  # fmt: skip
        else:
            apply_delta(model, load_file(str(prev / "encoder_delta.safetensors")))
        heads_init = {k: v.float() for k, v in load_file(str(prev / "joint_heads.safetensors")).items()}
        head_kinds = {t: dict(prev_meta["joint_heads"][t]) for t in head_kinds}
        init = f"{prev_meta['version']} merged"
    heads = {}
    for task, n_out in (("sentiment", 3), ("emotions", len(GOEMOTIONS_LABELS))):
        heads[task] = build_module(head_kinds[task]["kind"], model.config.hidden_size, n_out,
                                   head_kinds[task]["hidden"])  # fmt: skip
        if heads_init:
            heads[task].load_state_dict({k[len(task) + 1 :]: v for k, v in heads_init.items()
                                         if k.startswith(f"{task}.")})  # fmt: skip

    names = trainable_names(model)
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    enc_params = [p for n, p in model.named_parameters() if n in names]
    head_params = [p for h in heads.values() for p in h.parameters()]
    opt = torch.optim.AdamW([
        {"params": enc_params, "lr": args.lr, "weight_decay": 0.01},
        {"params": head_params, "lr": args.head_lr, "weight_decay": 0.01},
    ])  # fmt: skip
    steps = 20 if args.speed_test else args.steps
    warm = max(1, int(args.warmup * steps))

    def lr_factor(step: int) -> float:  # linear warm-up, then linear decay to 10%
        if step < warm:
            return (step + 1) / warm
        return max(0.1, 1 - 0.9 * (step - warm) / max(1, steps - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    start = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not args.speed_test:  # resume where the last run stopped
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        for task, head in heads.items():
            head.load_state_dict(state["heads"][task])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = state["step"]
        init = state["init"]
        print(f"resumed from {ckpt} at step {start}", flush=True)
    # a resumed run draws fresh batches from a seed that depends on where it resumed
    rng = np.random.default_rng(SEED + start)
    batches = length_bucketed(rng, s_p, len(e_ids), s_ids, e_ids, args.s_batch, args.bucket,
                              e_batch=args.e_batch)
    s_yt, e_yt = torch.from_numpy(s_y), torch.from_numpy(e_y)
    s_bt, e_bt = torch.from_numpy(s_base), torch.from_numpy(e_base)

    def meta(step: int, seconds: float) -> dict[str, Any]:
        return {"version": args.version, "init": init, "steps": step, "planned_steps": steps,
                "s_batch": args.s_batch, "e_batch": args.e_batch, "lr": args.lr,
                "head_lr": args.head_lr, "distill": args.distill,
                "emotion_weight": args.emotion_weight, "max_length": args.max_length,
                "seed": SEED, "domain_shares": DOMAIN_SHARES, "joint_heads": head_kinds,
                "sentiment_rows_seen": step * args.s_batch, "emotion_rows_seen": step * args.e_batch,
                "seconds": round(seconds), "tasks": ["sentiment", "emotions", "distill"]}  # fmt: skip

    model.train()
    for h in heads.values():
        h.train()
    t0 = time.time()
    log = dict.fromkeys(("loss", "s", "e", "d"), 0.0)
    n_labels = len(GOEMOTIONS_LABELS)
    for step in range(start + 1, steps + 1):
        si, ei = next(batches)
        ids, mask = pad_ids([s_ids[i] for i in si] + [e_ids[i] for i in ei])
        emb = pooled(model, ids, mask)
        b = len(si)
        loss_s = nn.functional.cross_entropy(heads["sentiment"](emb[:b]), s_yt[si])
        loss_e = nn.functional.binary_cross_entropy_with_logits(
            heads["emotions"](emb[b:]), e_yt[ei]) * n_labels / 4  # fmt: skip
        target = torch.cat([s_bt[si], e_bt[ei]])
        loss_d = (1 - (emb * target).sum(-1)).mean() * 100  # cosine distance, in hundredths
        loss = loss_s + args.emotion_weight * loss_e + args.distill * loss_d
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
        opt.step()
        sched.step()
        for k, v in (("loss", loss), ("s", loss_s), ("e", loss_e), ("d", loss_d)):
            log[k] += float(v.detach())
        done = step - start
        if step % 25 == 0 or step == steps:
            rate = done * (args.s_batch + args.e_batch) / (time.time() - t0)
            print(f"step {step}/{steps} " + " ".join(f"{k}={v / 25:.3f}" for k, v in log.items())
                  + f" {rate:.1f} samples/s", flush=True)  # fmt: skip
            log = dict.fromkeys(log, 0.0)
        if args.speed_test:
            continue
        if args.snapshot_every and step % args.snapshot_every == 0 and step < steps:
            save_delta(out.with_name(f"{out.name}-step{step}"), model, base_state, names, heads,
                       meta(step, time.time() - t0))  # fmt: skip
        if args.checkpoint_every and step % args.checkpoint_every == 0 and step < steps:
            tmp = ckpt.with_suffix(".tmp")
            out.mkdir(parents=True, exist_ok=True)
            torch.save({"model": {n: p.detach() for n, p in model.named_parameters() if n in names},
                        "heads": {t: h.state_dict() for t, h in heads.items()},
                        "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                        "init": init}, tmp)  # fmt: skip
            tmp.replace(ckpt)  # atomic: a kill mid-write leaves the previous checkpoint
    seconds = time.time() - t0
    print(f"{steps - start} steps in {seconds:.0f}s: "
          f"{(steps - start) * (args.s_batch + args.e_batch) / seconds:.1f} samples/s", flush=True)
    if args.speed_test:
        return 0
    save_delta(out, model, base_state, names, heads, meta(steps, seconds))
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
