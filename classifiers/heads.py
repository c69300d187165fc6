"""Task heads: small torch modules that read the shared pooled embedding.

A head is stored as tensors in `heads.safetensors` (keys prefixed by the task) plus a spec in
`heads.json`: its registry name, kind ("linear" or "mlp"), labels, whether it is multi-label,
and its decision thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classifiers.registry import registry


@dataclass
class HeadSpec:
    """Everything but the tensors: what a head predicts and how its scores become labels."""

    task: str
    registry_name: str
    kind: str  # "linear" | "mlp"
    labels: list[str]
    multi_label: bool
    thresholds: dict[str, float] = field(default_factory=dict)
    hidden: int = 0  # mlp hidden width
    # calibration, fitted on dev (classifiers.training.calibrate): logits / temperature + bias
    temperature: float = 1.0
    bias: list[float] = field(default_factory=list)
    # rank of a residual projection in front of the head (0: none): contrastive adaptation to a
    # deployment's corrections (classifiers.training.adapt) reshapes the embedding this head
    # reads, and only this head; the stored embedding and the other heads are untouched
    projection: int = 0

    def to_json(self) -> dict[str, Any]:
        out = {
            "registry": self.registry_name, "kind": self.kind, "labels": self.labels,
            "multi_label": self.multi_label, "thresholds": self.thresholds, "hidden": self.hidden,
            "temperature": self.temperature, "bias": self.bias,
        }  # fmt: skip
        if self.projection:
            out["projection"] = self.projection
        return out

    @classmethod
    def from_json(cls, task: str, raw: dict[str, Any]) -> HeadSpec:
        return cls(
            task=task, registry_name=raw["registry"], kind=raw["kind"], labels=list(raw["labels"]),
            multi_label=bool(raw["multi_label"]), thresholds=dict(raw.get("thresholds") or {}),
            hidden=int(raw.get("hidden") or 0), temperature=float(raw.get("temperature") or 1.0),
            bias=[float(b) for b in raw.get("bias") or []], projection=int(raw.get("projection") or 0),
        )  # fmt: skip


class ResidualProjection(nn.Module):
    """x -> normalise(x + up(gelu(down(x)))): the identity while `up` is zero (how it starts),
    a low-rank reshaping of the embedding space once trained contrastively."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank)
        self.up = nn.Linear(rank, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x + self.up(nn.functional.gelu(self.down(x))), dim=-1)


class Projected(nn.Module):
    """A head behind a residual projection (tensors `proj.*` and `head.*`)."""

    def __init__(self, proj: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.proj = proj
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(x))


def build_module(
    kind: str, dim: int, n_out: int, hidden: int = 0, dropout: float = 0.1, projection: int = 0
) -> nn.Module:
    """The torch module for a head kind (behind a residual projection of rank `projection`)."""
    if projection:
        return Projected(ResidualProjection(dim, projection), build_module(kind, dim, n_out, hidden, dropout))
    if kind == "linear":
        return nn.Sequential(nn.Linear(dim, n_out))
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_out)
        )
    raise ValueError(f"unknown head kind {kind!r} (expected 'linear' or 'mlp')")


class Head:
    """A loaded head: scores a batch of pooled embeddings, turns scores into labels."""

    def __init__(self, spec: HeadSpec, module: nn.Module) -> None:
        self.spec = spec
        self.module = module.eval()
        self.labels = spec.labels
        self.thresholds = torch.tensor(
            [spec.thresholds.get(label, 0.5) for label in spec.labels], dtype=torch.float32
        )
        self.set_calibration(spec.temperature, spec.bias)

    def set_calibration(self, temperature: float = 1.0, bias: list[float] | None = None) -> None:
        """Scale the logits by 1 / temperature and add `bias` (one per label) before the
        softmax or sigmoid: probabilities that mean what they say, fitted on dev splits."""
        self.temperature = float(temperature)
        self.bias = torch.tensor(bias or [0.0] * len(self.labels), dtype=torch.float32)

    def to(self, device: str) -> Head:
        self.module.to(device)
        return self

    def probabilities(self, pooled: torch.Tensor) -> torch.Tensor:
        """Per-label probabilities (sigmoid if multi-label, else softmax), float32."""
        logits = self.module(pooled.to(next(self.module.parameters()).dtype)).float()
        logits = logits / self.temperature + self.bias.to(logits.device)
        return torch.sigmoid(logits) if self.spec.multi_label else torch.softmax(logits, dim=-1)

    def decide(self, probs: torch.Tensor) -> torch.Tensor:
        """Boolean matrix: which labels each row gets (multi-label: above threshold)."""
        return probs >= self.thresholds.to(probs.device)


def load_head(spec: HeadSpec, tensors: dict[str, torch.Tensor], dim: int) -> Head:
    """Rebuild a head from its spec and the `<task>.`-prefixed tensors."""
    prefix = f"{spec.task}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    module = build_module(spec.kind, dim, len(spec.labels), spec.hidden, projection=spec.projection)
    module.load_state_dict(state)
    return Head(spec, module)


# v1: heads fitted on the frozen encoder's pooled embedding.
# v2: heads trained jointly with a multi-task LoRA adapter merged into the encoder.
# v3: the adapter continued over all six layers; needs.v3 is the hybrid head of
#     classifiers/needs.py (embedding + head outputs + character n-grams).
# v4: the adapter lora-mt.v4 (1,650 more steps); needs.v4 adds the guideline cues.
# v5: a full fine-tune of all six layers (mt-full.v5) on every domain's sentiment, with tweets;
#     calibrated heads (temperature and bias fitted on dev).
# Torch heads are built as factory(spec, tensors, dim); hybrid needs heads, which keep their own
# files, as factory(spec, folder).
for _name in ("sentiment.v1", "emotions.v1", "needs.v1", "sentiment.v2", "emotions.v2", "needs.v2",
              "sentiment.v3", "emotions.v3", "sentiment.v4", "emotions.v4", "sentiment.v5",
              "emotions.v5"):  # fmt: skip
    registry.register(_name)(load_head)


def load_needs_hybrid(spec: HeadSpec, folder: Path | str) -> Any:
    """The hybrid needs head saved in `folder` (needs.safetensors + needs.json)."""
    from classifiers.needs import NeedsModel

    return NeedsModel.load(Path(folder))


for _name in ("needs.v3", "needs.v4", "needs.v5"):
    registry.register(_name)(load_needs_hybrid)
