"""Multi-task LoRA fine-tune of the shared encoder (sentiment + emotions), CPU-friendly.

    nice -n 10 python -m classifiers.training.finetune --steps 1400 --out classifiers/weights/adapter

One low-rank adapter on every attention and feed-forward projection of the encoder is trained
jointly for sentiment (SST-2 phrases, SST-5, GoEmotions' sentiment grouping, Amazon and
Glassdoor train splits) and the 28 GoEmotions labels, with throwaway heads. At load time the
adapter is merged into the encoder weights (`encoder.merge_lora`), so tagging stays one pass;
the shipped heads are then refitted on the tuned encoder by `classifiers.training.train --adapter`.

A distillation term keeps the tuned, pooled, normalised embedding close to the frozen base
model's (precomputed from the base-encoder cache), so embeddings stay useful for topics and
touchpoint prototypes. The needs data is NOT used here: its 1,000 rows are kept for the needs
head and its honest 5-fold cross-validation.

Short max_length (64), pre-tokenised length-bucketed batches (`--bucket`: 28.9 vs 14.1
samples/s unbucketed in the same session, 2 CPU threads) and dynamic padding keep a step cheap.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from classifiers.encoder import default_encoder_path, lora_target_names, pad_ids
from classifiers.heads import build_module
from classifiers.labels import GOEMOTIONS_LABELS, SENTIMENT_LABELS
from classifiers.training import data
from classifiers.training.train import SEED, Features, multi_hot, seed_everything


class LoRALinear(nn.Module):
    """y = W x + b + (alpha / r) * B A x, with W, b frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.05) -> None:
        super().__init__()
        self.base = base
        self.rank, self.scale = rank, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.lora_A.T @ self.lora_B.T) * self.scale


def add_lora(model: nn.Module, rank: int, alpha: float, first_layer: int = 0) -> list[str]:
    """Wrap target nn.Linear layers of encoder layers >= first_layer in LoRALinear; freeze
    everything else (so backward stops at first_layer). Returns the wrapped names."""
    for p in model.parameters():
        p.requires_grad_(False)
    names = [n for n in lora_target_names(model)
             if int(n.split(".layer.")[1].split(".")[0]) >= first_layer]  # fmt: skip
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha))
    return names


def lora_state(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for name in names:
        layer: Any = model.get_submodule(name)
        out[f"{name}.lora_A"] = layer.lora_A.detach().clone().contiguous()
        out[f"{name}.lora_B"] = layer.lora_B.detach().clone().contiguous()
    return out


def sentiment_pool(feats: Features, feats_dim: int = 384
                   ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Sentiment training texts, labels, sampling weights and base embeddings (NaN: none)."""
    from classifiers.training.train import SENTIMENT_SOURCES

    texts: list[str] = []
    ys, ws, embs = [], [], []
    idx = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    for source, weight in SENTIMENT_SOURCES.items():
        if source == "goemotions":
            ge, emb = feats.get("goemotions_train")
            sent = data.goemotions_sentiment("train")
            keep = dict(zip(sent.texts, sent.labels, strict=True))
            rows = [i for i, t in enumerate(ge.texts) if t in keep]
            t_, l_, e_ = [ge.texts[i] for i in rows], [keep[ge.texts[i]] for i in rows], emb[rows]
        elif source == "sst2":
            # 60k short phrases: no cached base embedding, so no distillation term for them
            sp = data.sst2("train")
            t_, l_ = sp.texts, sp.labels
            e_ = np.full((len(t_), feats_dim), np.nan, dtype=np.float32)
        else:
            sp, emb = feats.get(f"{source}_train")
            t_, l_, e_ = sp.texts, sp.labels, emb
        y = np.array([idx[label] for label in l_])
        counts = np.bincount(y, minlength=3).astype(float)
        cw = np.where(counts > 0, len(y) / (3 * np.maximum(counts, 1)), 0)
        # each source's total sampling mass is proportional to `weight` * sqrt(size)
        w = cw[y] / cw[y].sum() * weight * math.sqrt(len(y))
        texts += t_
        ys.append(y)
        ws.append(w)
        embs.append(e_)
    w = np.concatenate(ws)
    return texts, np.concatenate(ys), w / w.sum(), np.concatenate(embs)


def tokenize_all(tok: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Word-piece ids of every text, cut to `max_length` ([CLS] and [SEP] included)."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), 4096):
        ids += tok(texts[start : start + 4096], truncation=True, max_length=max_length)["input_ids"]
    return ids


def batch_inputs(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    """The model's keyword inputs for one batch of word-piece ids."""
    ids, mask = pad_ids(rows)
    return {"input_ids": ids, "attention_mask": mask}


def length_bucketed(rng: np.random.Generator, s_weights: np.ndarray, n_emotions: int,
                    s_ids: list[list[int]], e_ids: list[list[int]], batch: int,
                    bucket: int, e_batch: int | None = None
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Endless (sentiment, emotion) index batches of `batch` and `e_batch` (default: `batch`)
    rows. Sentiment rows are drawn by `s_weights`, emotion rows in shuffled epochs; every
    `bucket` steps' worth of each is sorted by length and cut into batches, which are then
    served in random order. Each step still sees the same mix as unbucketed sampling, but pads
    to the longest of similar texts."""
    e_batch = batch if e_batch is None else e_batch
    s_len = np.array([len(r) for r in s_ids])
    e_len = np.array([len(r) for r in e_ids])
    e_order, e_pos = rng.permutation(n_emotions), 0
    while True:
        s_draw = rng.choice(len(s_ids), size=batch * bucket, p=s_weights)
        if e_pos + e_batch * bucket > len(e_order):
            e_order, e_pos = rng.permutation(n_emotions), 0
        e_draw = e_order[e_pos : e_pos + e_batch * bucket]
        e_pos += e_batch * bucket
        s_draw = s_draw[np.argsort(s_len[s_draw], kind="stable")]
        e_draw = e_draw[np.argsort(e_len[e_draw], kind="stable")]
        for k in rng.permutation(bucket):
            yield s_draw[k * batch : (k + 1) * batch], e_draw[k * e_batch : (k + 1) * e_batch]


def save_adapter(out: Path, model: nn.Module, names: list[str], sent_head: nn.Module,
                 emo_head: nn.Module, args: argparse.Namespace, step: int,
                 seconds: float) -> None:  # fmt: skip
    """adapter.safetensors (fp16 LoRA A/B), joint_heads.safetensors and adapter.json."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() for k, v in lora_state(model, names).items()}
    save_file(state, str(out / "adapter.safetensors"))
    # the jointly trained heads: `train --adapter` starts from them instead of re-embedding the
    # whole training set under the tuned encoder
    joint = {f"sentiment.{k}": v for k, v in sent_head.state_dict().items()}
    joint |= {f"emotions.{k}": v for k, v in emo_head.state_dict().items()}
    save_file({k: v.contiguous() for k, v in joint.items()}, str(out / "joint_heads.safetensors"))
    meta = {
        "version": args.version, "rank": args.rank, "alpha": args.alpha, "targets": names,
        "first_layer": args.first_layer, "steps": step, "planned_steps": args.steps,
        "batch_per_task": args.batch, "lr": args.lr, "distill": args.distill,
        "emotion_weight": args.emotion_weight, "max_length": args.max_length, "seed": SEED,
        "data_seed": args.data_seed, "bucket": args.bucket,
        "tasks": ["sentiment", "emotions"], "seconds": round(seconds),
        "joint_heads": args.joint_heads, "init_heads": args.init_heads,
    }  # fmt: skip
    (out / "adapter.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--batch", type=int, default=32, help="per task, per step")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--head-lr", type=float, default=3e-3)
    parser.add_argument("--distill", type=float, default=1.0, help="weight of the embedding term")
    parser.add_argument("--emotion-weight", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--bucket", type=int, default=16,
                        help="sort this many steps' worth of texts by length into batches (1: off)")
    parser.add_argument("--first-layer", type=int, default=0,
                        help="adapt only encoder layers >= this (cheaper backward on CPU)")
    parser.add_argument("--out", default="classifiers/weights/adapter")
    parser.add_argument("--version", default="lora-mt.v2")
    parser.add_argument("--speed-test", action="store_true", help="20 steps, print samples/s")
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--data-seed", type=int, default=0,
                        help="offset of the batch-sampling seed (give a continued run a new one)")
    parser.add_argument("--snapshot-every", type=int, default=0,
                        help="also keep a numbered copy (OUT-stepN) every this many steps")
    parser.add_argument("--init-heads", default=None,
                        help="weights folder whose sentiment/emotions heads start the joint heads")
    parser.add_argument("--init-adapter", default=None,
                        help="adapter folder to continue from: its LoRA matrices (where the layer is "
                             "adapted here too) and its joint heads start this run")
    args = parser.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("VOC_TORCH_THREADS", "2")))
    seed_everything(SEED)
    random.seed(SEED)
    from transformers import AutoModel, AutoTokenizer

    path = default_encoder_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    names = add_lora(model, args.rank, args.alpha, args.first_layer)
    dim = model.config.hidden_size
    head_kinds: dict[str, dict[str, Any]] = {"sentiment": {"kind": "mlp", "hidden": 256},
                  "emotions": {"kind": "mlp", "hidden": 512}}  # fmt: skip
    init: dict[str, torch.Tensor] = {}
    if args.init_adapter:  # warm start: continue an earlier run (possibly over more layers)
        from safetensors.torch import load_file

        prev = Path(args.init_adapter)
        prev_meta = json.loads((prev / "adapter.json").read_text())
        if (prev_meta["rank"], prev_meta["alpha"]) != (args.rank, args.alpha):
            raise SystemExit("--init-adapter needs the same --rank and --alpha")
        lora = load_file(str(prev / "adapter.safetensors"))
        for key, value in lora.items():
            name, _, part = key.rpartition(".")
            if name in names:
                getattr(model.get_submodule(name), part).data.copy_(value.float())
        init = {k: v.float() for k, v in load_file(str(prev / "joint_heads.safetensors")).items()}
        for task in head_kinds:
            head_kinds[task] = dict(prev_meta["joint_heads"][task])
        args.init_heads = f"continued from {prev_meta['version']} ({prev_meta['steps']} steps)"
    elif args.init_heads:  # start from heads fitted on the frozen encoder: good from step 0
        from safetensors.torch import load_file

        init_meta = json.loads((Path(args.init_heads) / "heads.json").read_text())["heads"]
        init = load_file(str(Path(args.init_heads) / "heads.safetensors"))
        for task in head_kinds:
            head_kinds[task] = {"kind": init_meta[task]["kind"],
                                "hidden": init_meta[task]["hidden"]}  # fmt: skip
    heads = {}
    for task, n_out in (("sentiment", 3), ("emotions", len(GOEMOTIONS_LABELS))):
        heads[task] = build_module(head_kinds[task]["kind"], dim, n_out,
                                   head_kinds[task]["hidden"])  # fmt: skip
        if init:
            heads[task].load_state_dict({k[len(task) + 1 :]: v for k, v in init.items()
                                         if k.startswith(f"{task}.")})  # fmt: skip
    sent_head, emo_head = heads["sentiment"], heads["emotions"]
    args.joint_heads = head_kinds

    feats = Features()  # the base encoder's cached embeddings: distillation targets
    s_texts, s_y, s_w, s_emb = sentiment_pool(feats)
    ge, ge_emb = feats.get("goemotions_train")
    e_y = multi_hot(ge.labels, GOEMOTIONS_LABELS)
    print(f"sentiment pool {len(s_texts)}, goemotions {len(ge.texts)}", flush=True)

    lora_params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([
        {"params": lora_params, "lr": args.lr, "weight_decay": 0.0},
        {"params": [*sent_head.parameters(), *emo_head.parameters()], "lr": args.head_lr,
         "weight_decay": 1e-2},
    ])  # fmt: skip
    steps = 20 if args.speed_test else args.steps
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[args.lr, args.head_lr], total_steps=steps, pct_start=0.06
    )
    # a continued run draws other batches than the run it continues (--data-seed)
    rng = np.random.default_rng(SEED + args.data_seed)
    # Token ids once, up front: each step then pads a batch of similar lengths instead of
    # tokenising and padding a random mix (the long tail of each batch set its width).
    s_ids = tokenize_all(tok, s_texts, args.max_length)
    e_ids = tokenize_all(tok, ge.texts, args.max_length)
    batches = length_bucketed(rng, s_w, len(e_ids), s_ids, e_ids, args.batch, args.bucket)
    model.train()
    sent_head.train()
    emo_head.train()
    t0 = time.time()
    log = {"loss": 0.0, "s": 0.0, "e": 0.0, "d": 0.0}
    for step in range(1, steps + 1):
        s_idx, e_idx = next(batches)
        enc = batch_inputs([s_ids[i] for i in s_idx] + [e_ids[i] for i in e_idx])
        hidden = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        pooled = nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
        base = torch.from_numpy(np.concatenate([s_emb[s_idx], ge_emb[e_idx]])).float()
        b = args.batch
        loss_s = nn.functional.cross_entropy(sent_head(pooled[:b]), torch.from_numpy(s_y[s_idx]))
        loss_e = nn.functional.binary_cross_entropy_with_logits(
            emo_head(pooled[b:]), torch.from_numpy(e_y[e_idx])
        ) * len(GOEMOTIONS_LABELS) / 4  # BCE over 28 labels is tiny per label: rescale
        has_base = ~torch.isnan(base[:, 0])
        cos = (pooled[has_base] * base[has_base]).sum(-1)
        loss_d = (1 - cos).mean() * 100  # cosine distance, in hundredths
        loss = loss_s + args.emotion_weight * loss_e + args.distill * loss_d
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora_params, 1.0)
        opt.step()
        sched.step()
        for k, v in (("loss", loss), ("s", loss_s), ("e", loss_e), ("d", loss_d)):
            log[k] += float(v.detach())
        if args.checkpoint_every and step % args.checkpoint_every == 0 and step < steps:
            save_adapter(Path(args.out), model, names, sent_head, emo_head, args, step,
                         time.time() - t0)  # fmt: skip
        if args.snapshot_every and step % args.snapshot_every == 0 and step < steps:
            # numbered copies, so the run's checkpoints can be compared on dev afterwards
            save_adapter(Path(args.out).with_name(f"{Path(args.out).name}-step{step}"), model,
                         names, sent_head, emo_head, args, step, time.time() - t0)  # fmt: skip
        if step % 25 == 0 or step == steps:
            rate = step * 2 * args.batch / (time.time() - t0)
            print(f"step {step}/{steps} " + " ".join(f"{k}={v / 25:.3f}" for k, v in log.items())
                  + f" {rate:.1f} samples/s", flush=True)  # fmt: skip
            log = dict.fromkeys(log, 0.0)
    rate = steps * 2 * args.batch / (time.time() - t0)
    print(f"{steps} steps in {time.time() - t0:.0f}s: {rate:.1f} samples/s", flush=True)
    if args.speed_test:
        return 0
    save_adapter(Path(args.out), model, names, sent_head, emo_head, args, steps, time.time() - t0)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
