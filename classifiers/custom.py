"""Custom categories: a user's own labelled CSV -> an extra head on the shared embedding.

    python -m classifiers.training.train custom --csv tickets.csv --name product_area

The CSV needs `text` and `label` columns; a row with several labels separates them with `|`
(then the head is multi-label, one sigmoid per label, thresholds tuned by cross-validation).
The head is saved under `var/models/custom/NAME/` and loaded with
`TaggerConfig(custom_heads=("NAME",))`; its labels appear in `TagResult.custom["NAME"]`.
It is trained on the tagger's own embedding (shipped encoder + adapter), so it costs no
extra encoder pass.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from classifiers.heads import Head
    from classifiers.tagger import Tagger

REPO_ROOT = Path(__file__).resolve().parent.parent
CUSTOM_DIR = Path(
    os.environ.get("VOC_CUSTOM_MODELS_DIR", REPO_ROOT / "var" / "models" / "custom")
)


@dataclass
class CustomHead:
    name: str
    version: str
    head: Head

    def decide(self, probs: np.ndarray) -> list[str]:
        """Labels for one row of probabilities (argmax if single-label)."""
        if not self.head.spec.multi_label:
            return [self.head.labels[int(probs.argmax())]]
        thr = self.head.thresholds.numpy()
        return [self.head.labels[j] for j in np.flatnonzero(probs >= thr)]


def load_custom_head(name_or_path: str, tagger: Tagger) -> CustomHead:
    """A custom head by name (under var/models/custom/) or folder path."""
    from safetensors.torch import load_file

    from classifiers.heads import HeadSpec, load_head

    folder = Path(name_or_path)
    if not (folder / "head.json").exists():
        folder = CUSTOM_DIR / name_or_path
    if not (folder / "head.json").exists():
        raise FileNotFoundError(
            f"no custom head {name_or_path!r} (looked in {folder}); train one with "
            f"`python -m classifiers.training.train custom --csv FILE --name {name_or_path}`"
        )
    meta = json.loads((folder / "head.json").read_text())
    if meta["encoder"] != tagger.encoder_version:
        raise ValueError(
            f"custom head {meta['name']!r} was trained on encoder {meta['encoder']!r} but the "
            f"tagger runs {tagger.encoder_version!r}; retrain it with "
            f"`python -m classifiers.training.train custom --csv {meta['source_csv']} --name {meta['name']}`"
        )
    spec = HeadSpec(meta["name"], meta["version"], meta["kind"], meta["labels"],
                    meta["multi_label"], meta["thresholds"])  # fmt: skip
    head = load_head(spec, load_file(str(folder / "head.safetensors")), tagger.encoder.dim)
    return CustomHead(meta["name"], meta["version"], head.to(tagger.device))
