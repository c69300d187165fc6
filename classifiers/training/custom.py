"""Training of custom category heads (loading them is `classifiers.custom`).

`train_custom_head` fits a head on a labelled CSV and saves it with its training rows' pooled
embeddings (`train.npz`, float16), which `voc adapt` replays when it retrains the head on
analysts' `custom:NAME` corrections (`classifiers.training.adapt`), so a few corrections move
the head without it forgetting the CSV.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifiers.custom import CUSTOM_DIR

if TYPE_CHECKING:
    from classifiers.tagger import Tagger


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
    odd = sorted({label for row in labels for label in row if label.startswith("(")})
    if odd:
        raise ValueError(f"label {odd[0]!r} in {Path(path).name} starts with '(': those names are kept for the "
                         "buckets the service adds, such as '(untagged)'; rename it")
    return texts, labels


def train_custom_head(csv_path: str | Path, name: str, *, text_column: str = "text",
                      label_column: str = "label", tagger: Tagger | None = None,
                      out_dir: Path | None = None) -> Path:  # fmt: skip
    """Fit a head on the tagger's embeddings of the CSV's texts and save it."""
    from classifiers.custom import check_name

    check_name(name)
    from classifiers.tagger import load_tagger
    from classifiers.training.train import multi_hot

    texts, labels = read_labelled_csv(csv_path, text_column, label_column)
    tagger = tagger or load_tagger()
    x = tagger.embed(texts)
    classes = sorted({label for row in labels for label in row})
    multi_label = any(len(row) > 1 for row in labels)
    y = multi_hot(labels, classes) if multi_label else np.array([classes.index(row[0]) for row in labels])
    module, thresholds = fit_custom(x, y, classes, multi_label=multi_label)
    out = (out_dir or CUSTOM_DIR) / name
    meta = {
        "name": name, "version": f"custom.{name}.v{_next_number(out)}", "kind": "linear", "labels": classes,
        "multi_label": multi_label, "thresholds": thresholds, "rows": len(texts),
        "encoder": tagger.encoder_version, "source_csv": Path(csv_path).name,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    save_head(out, module, meta)
    np.savez_compressed(out / "train.npz", x=x.astype(np.float16), y=y)
    return out


def fit_custom(x: np.ndarray, y: np.ndarray, classes: list[str], *, multi_label: bool) -> tuple[object, dict]:
    """A custom head (linear, 80 epochs at 3e-2) fitted on pooled embeddings `x` and labels `y`
    (class ids, or a 0/1 matrix when multi-label, then with thresholds tuned out of fold from
    20 rows on); returns (module, thresholds). The CSV training and the adaptation on
    corrections (`classifiers.training.adapt`, refitting on the CSV rows plus the corrections)
    both fit with it."""
    from classifiers.training.train import FitConfig, fit_head, predict, tune_thresholds

    fit = FitConfig(kind="linear", epochs=80, lr=3e-2, weight_decay=1e-3, batch_size=64)
    thresholds: dict[str, float] = {}
    if multi_label and len(x) >= 20:  # out-of-fold thresholds
        folds = np.arange(len(x)) % 5
        oof = np.zeros_like(y, dtype=np.float32)
        for k in range(5):
            m = fit_head(x[folds != k], y[folds != k], multi_label=True, fit=fit, seed=k)
            oof[folds == k] = predict(m, x[folds == k], multi_label=True)
        thresholds = tune_thresholds(oof, y, classes)
    return fit_head(x, y, multi_label=multi_label, fit=fit), thresholds


def _next_number(folder: Path) -> int:
    """1 for a new head, else one more than the version it replaces (tags name the version, so
    `voc custom fill` knows which items a retrained head has not labelled yet)."""
    try:
        return int(json.loads((folder / "head.json").read_text())["version"].rsplit(".v", 1)[1]) + 1
    except (FileNotFoundError, KeyError, IndexError, ValueError):
        return 1


def save_head(folder: Path, module: object, meta: dict) -> None:
    """Write a custom head (`head.safetensors` keyed by its name, and `head.json`) to `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    name = meta["name"]
    save_file({f"{name}.{k}": v.detach().float().contiguous() for k, v in module.state_dict().items()},  # type: ignore[attr-defined]
              str(folder / "head.safetensors"))  # fmt: skip
    (folder / "head.json").write_text(json.dumps(meta, indent=2) + "\n")


def replay_rows(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The pooled embeddings and labels a custom head was trained on (None for a head trained
    before they were saved)."""
    path = Path(folder) / "train.npz"
    if not path.exists():
        return None
    with np.load(path) as rows:
        return rows["x"].astype(np.float32), rows["y"]


def copy_head(source: Path, target: Path) -> None:
    """A custom head's folder copied into a tagger version (its replay rows too)."""
    shutil.copytree(source, target, dirs_exist_ok=False)


