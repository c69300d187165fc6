"""Tagging throughput: bare encoder pass vs the full `Tagger.tag`, in the same run.

    python bench/tagging.py [--n 1024] [--threads 2] [--batch 64]

Texts are real feedback (Amazon review bodies, Glassdoor pros/cons) of 30-60 word pieces.
(a) bare: tokenize + model forward + mean pool, batched by length, under inference_mode;
(b) full: `Tagger.tag` (decoding, flags, language check, the same pass, every head,
touchpoints, result objects). The two alternate round by round (a, b, a, b, ...) so load from
neighbours lands on both; prints texts/s for both (best round), the cost ratio full/bare and
the spread of the per-round paired ratios.
With CUDA, also a GPU path: fp16, tokenisation in worker threads, pre-tokenised batches.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pick_texts(tokenizer, n: int) -> list[str]:
    from classifiers.training.data import feedback_texts

    out = []
    for text in feedback_texts():
        if 30 <= len(tokenizer(text, truncation=True, max_length=64)["input_ids"]) <= 60:
            out.append(text)
            if len(out) == n:
                break
    return out


def bare_pass(encoder, texts: list[str], batch: int) -> None:
    """Tokenise (one fast-tokenizer call), then per length-sorted batch: pad, forward, mean-pool.

    The cheapest way this encoder can turn texts into pooled vectors: no heads, no flags, no
    result objects, no language check.
    """
    import torch

    ids = encoder.tokenizer(texts, truncation=True, max_length=encoder.max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            batch_ids, mask = encoder.pad([ids[i] for i in order[s : s + batch]])
            batch_ids, mask = batch_ids.to(encoder.device), mask.to(encoder.device)
            hidden = encoder.model(input_ids=batch_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            (hidden * m).sum(1) / m.sum(1)
    if encoder.device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> tuple[float, float]:
    """Best wall seconds and best CPU seconds (all threads of this process) over `repeats`."""
    (best,) = timed_rounds([fn], repeats)
    return best[0], best[1]


def timed_rounds(fns, repeats: int) -> list[tuple[float, float, list[float]]]:
    """Run every fn once per round, `repeats` rounds, interleaved (a, b, a, b, ...) so a
    neighbour's load lands on both sides of a comparison. Per fn: best wall seconds, best CPU
    seconds (all threads of this process) and the wall seconds of every round."""
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t, c = time.perf_counter(), time.process_time()
            fn()
            walls[i].append(time.perf_counter() - t)
            cpus[i].append(time.process_time() - c)
    return [(min(w), min(c), w) for w, c in zip(walls, cpus, strict=True)]


def gpu_path(tagger, texts: list[str], batch: int) -> float:
    """texts/s on CUDA: fp16 model, tokenisation in threads overlapping the forward passes."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    enc = tagger.encoder
    chunks = [texts[s : s + batch] for s in range(0, len(texts), batch)]

    def prep(chunk):
        ids, _ = enc.tokenize(chunk)
        batch_ids, mask = enc.pad(ids)
        return batch_ids.pin_memory(), mask.pin_memory()

    def run():
        with ThreadPoolExecutor(4) as pool, torch.inference_mode():
            for chunk, (ids, mask) in zip(chunks, pool.map(prep, chunks), strict=True):
                pooled = enc.forward_pooled(ids.to("cuda", non_blocking=True),
                                            mask.to("cuda", non_blocking=True))  # fmt: skip
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                probs = {t: h.probabilities(pooled) for t, h in tagger.heads.items()}
                if tagger.needs_model is not None:  # the hybrid needs head reads text: CPU
                    tagger._needs(chunk, pooled.float().cpu().numpy(),
                                  probs["emotions"].cpu().numpy(),
                                  probs["sentiment"].cpu().numpy())  # fmt: skip
        torch.cuda.synchronize()

    run()
    return len(texts) / timed(run, 3)[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from classifiers import TaggerConfig, load_tagger

    tagger = load_tagger(TaggerConfig(device="cpu", batch_size=args.batch))
    texts = pick_texts(tagger.encoder.tokenizer, args.n)
    print(f"{len(texts)} texts of 30-60 word pieces, {args.threads} threads, batch {args.batch}, "
          f"torch {torch.__version__}, models {tagger.model_versions}")  # fmt: skip
    tagger.tag(texts[:64])  # warm-up (also embeds the touchpoint prototypes)
    n = len(texts)
    (bare, bare_cpu, bare_rounds), (full, full_cpu, full_rounds) = timed_rounds(
        [lambda: bare_pass(tagger.encoder, texts, args.batch), lambda: tagger.tag(texts)],
        args.repeats,
    )
    paired = sorted(f / b for f, b in zip(full_rounds, bare_rounds, strict=True))
    # On a shared machine wall time depends on the neighbours; CPU seconds much less so.
    # "per core-second" x cores projects the throughput of an otherwise idle machine.
    print(f"bare encoder pass: {n / bare:8.1f} texts/s wall, {n / bare_cpu:8.1f} per core-second")
    print(f"full Tagger.tag:   {n / full:8.1f} texts/s wall, {n / full_cpu:8.1f} per core-second")
    print(f"cost ratio full/bare: {full / bare:.3f} wall, {full_cpu / bare_cpu:.3f} CPU "
          f"(target <= 1.15); per round, paired: median {paired[len(paired) // 2]:.3f}, "
          f"range {paired[0]:.3f}-{paired[-1]:.3f}")
    print(f"projected on {args.threads} idle cores: full {n / full_cpu * args.threads:.1f} "
          f"texts/s (target >= 150); load average now {os.getloadavg()[0]:.1f}")
    if torch.cuda.is_available():
        gpu = load_tagger(TaggerConfig(device="cuda", batch_size=256))
        big = (texts * 8)[: max(len(texts), 8192)]
        print(f"GPU path (fp16, threaded tokenisation): {gpu_path(gpu, big, 256):8.1f} texts/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
