"""Custom categories: a user's own labelled CSV -> an extra head on the shared embedding.

    python -m classifiers.train custom --csv tickets.csv --name product_area

The CSV needs `text` and `label` columns; a row with several labels separates them with `|`
(then the head is multi-label, one sigmoid per label, thresholds tuned by cross-validation).
The head is saved under `var/models/custom/NAME/` and loaded with
`TaggerConfig(custom_heads=("NAME",))`; its labels appear in `TagResult.custom["NAME"]`.
It is trained on the tagger's own embedding (shipped encoder + adapter), so it costs no
extra encoder pass.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifiers.data import REPO_ROOT

if TYPE_CHECKING:
    from classifiers.heads import Head
    from classifiers.tagger import Tagger

CUSTOM_DIR = Path(
    os.environ.get("VOC_CUSTOM_MODELS_DIR", REPO_ROOT / "var" / "models" / "custom")
)


def read_labelled_csv(
    path: str | Path, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], list[list[str]]]:
    """Texts and label lists from a CSV; rows without text or label are skipped."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for needed in (text_column, label_column):
            if needed not in columns:
                raise ValueError(
                    f"column {needed!r} not found in {Path(path).name} (columns: "
                    f"{', '.join(columns)}); pass --text-column / --label-column"
                )
        texts, labels = [], []
        for row in reader:
            text = (row[text_column] or "").strip()
            row_labels = [x.strip() for x in (row[label_column] or "").split("|") if x.strip()]
            if text and row_labels:
                texts.append(text)
                labels.append(row_labels)
    if len(texts) < 4:
        raise ValueError(f"{path} has {len(texts)} labelled rows; a custom head needs at least 4")
    return texts, labels


def train_custom_head(csv_path: str | Path, name: str, *, text_column: str = "text",
                      label_column: str = "label", tagger: Tagger | None = None,
                      out_dir: Path | None = None) -> Path:  # fmt: skip
    """Fit a head on the tagger's embeddings of the CSV's texts and save it."""
    from safetensors.torch import save_file

    from classifiers.tagger import load_tagger
    from classifiers.train import FitConfig, fit_head, multi_hot, predict, tune_thresholds

    texts, labels = read_labelled_csv(csv_path, text_column, label_column)
    tagger = tagger or load_tagger()
    x = tagger.embed(texts)
    classes = sorted({label for row in labels for label in row})
    multi_label = any(len(row) > 1 for row in labels)
    fit = FitConfig(kind="linear", epochs=80, lr=3e-2, weight_decay=1e-3, batch_size=64)
    thresholds: dict[str, float] = {}
    if multi_label:
        y = multi_hot(labels, classes)
        if len(texts) >= 20:  # out-of-fold thresholds
            folds = np.arange(len(texts)) % 5
            oof = np.zeros_like(y)
            for k in range(5):
                m = fit_head(x[folds != k], y[folds != k], multi_label=True, fit=fit, seed=k)
                oof[folds == k] = predict(m, x[folds == k], multi_label=True)
            thresholds = tune_thresholds(oof, y, classes)
        module = fit_head(x, y, multi_label=True, fit=fit)
    else:
        y = np.array([classes.index(row[0]) for row in labels])
        module = fit_head(x, y, multi_label=False, fit=fit)
    out = (out_dir or CUSTOM_DIR) / name
    out.mkdir(parents=True, exist_ok=True)
    save_file({f"{name}.{k}": v.contiguous() for k, v in module.state_dict().items()},
              str(out / "head.safetensors"))  # fmt: skip
    meta = {
        "name": name, "version": f"custom.{name}.v1", "kind": "linear", "labels": classes,
        "multi_label": multi_label, "thresholds": thresholds, "rows": len(texts),
        "encoder": tagger.encoder_version, "source_csv": Path(csv_path).name,
    }  # fmt: skip
    (out / "head.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


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
            f"`python -m classifiers.train custom --csv FILE --name {name_or_path}`"
        )
    meta = json.loads((folder / "head.json").read_text())
    if meta["encoder"] != tagger.encoder_version:
        raise ValueError(
            f"custom head {meta['name']!r} was trained on encoder {meta['encoder']!r} but the "
            f"tagger runs {tagger.encoder_version!r}; retrain it with "
            f"`python -m classifiers.train custom --csv {meta['source_csv']} --name {meta['name']}`"
        )
    spec = HeadSpec(meta["name"], meta["version"], meta["kind"], meta["labels"],
                    meta["multi_label"], meta["thresholds"])  # fmt: skip
    head = load_head(spec, load_file(str(folder / "head.safetensors")), tagger.encoder.dim)
    return CustomHead(meta["name"], meta["version"], head.to(tagger.device))
