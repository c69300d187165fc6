"""Custom categories: a user's own labelled CSV -> an extra head on the shared embedding.

    python -m classifiers.training.train custom --csv tickets.csv --name product_area

The CSV needs `text` and `label` columns; a row with several labels separates them with `|`
(then the head is multi-label, one sigmoid per label, thresholds tuned by cross-validation).
The head is saved under `var/models/custom/NAME/` and loaded with
`TaggerConfig(custom_heads=("NAME",))` (the service: `models.custom_heads: [NAME]`); its labels
appear in `TagResult.custom["NAME"]` and its probabilities in `TagResult.custom_scores["NAME"]`.
It is trained on the tagger's own embedding (shipped encoder + adapter), so it costs no
extra encoder pass.

Analysts correct a custom category like any other tag (a `custom:NAME` correction), and
`voc adapt` retrains the head on those corrections: the adapted head is written into the new
tagger version's folder (`<version>/custom/NAME/`), judged on the held-back corrections and
promoted or rolled back with the rest of the version. A tagger whose heads folder holds a
`custom/NAME/` loads that one in place of the CSV-trained head (`head_folder`).
"""

from __future__ import annotations

import json
import os
import re
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


# A head's name is a folder, a key of the tags' JSON and part of a correction kind (custom:NAME).
_NAME_CHAR = r"[A-Za-z0-9_.\-]"
NAME = re.compile(rf"[A-Za-z0-9_]{_NAME_CHAR}{{0,89}}")
# A custom category kind as the API's patterns accept it: looser than NAME (any name character
# first), so a kind naming no head reaches the service, which answers with the heads there are.
CUSTOM_KIND = rf"custom:{_NAME_CHAR}{{1,90}}"


def check_name(name: str) -> str:
    """`name` if it can name a custom head, else ValueError saying what may."""
    if not NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"custom head name {name!r}: use 1-90 letters, digits, '_', '.' or '-' (not starting "
                         "with '.' or '-'), e.g. product_area")
    return name


@dataclass
class CustomHead:
    name: str
    version: str
    head: Head
    folder: Path  # where it was loaded from

    def decide(self, probs: np.ndarray) -> list[str]:
        """Labels for one row of probabilities (argmax if single-label)."""
        if not self.head.spec.multi_label:
            return [self.head.labels[int(probs.argmax())]]
        thr = self.head.thresholds.numpy()
        return [self.head.labels[j] for j in np.flatnonzero(probs >= thr)]


def head_folder(name_or_path: str, heads_dir: Path | str | None = None) -> Path:
    """The folder of a custom head: the copy in a tagger version's heads folder
    (`heads_dir/custom/NAME/`, adapted from corrections or kept as it was) when there is one,
    unless the head was retrained from its CSV since (then that one); else the folder path
    given, else the head trained under var/models/custom/NAME/. Raises FileNotFoundError."""
    given = Path(name_or_path)
    trained = next((folder for folder in (given, CUSTOM_DIR / name_or_path) if (folder / "head.json").exists()),
                   None)
    name = json.loads((trained / "head.json").read_text())["name"] if trained else name_or_path
    kept = Path(heads_dir) / "custom" / name if heads_dir is not None else None
    if kept is not None and (kept / "head.json").exists():
        base = json.loads((kept / "head.json").read_text()).get("trained_at")
        if trained is None or json.loads((trained / "head.json").read_text()).get("trained_at") == base:
            return kept
    if trained is not None:
        return trained
    raise FileNotFoundError(
        f"no custom head {name_or_path!r} (looked in {CUSTOM_DIR / name_or_path}); train one with "
        f"`voc train custom --csv FILE --name {name_or_path}`"
    )


def head_meta(name_or_path: str, heads_dir: Path | str | None = None) -> dict:
    """A custom head's head.json (its name, labels, multi_label, version), without loading torch."""
    return json.loads((head_folder(name_or_path, heads_dir) / "head.json").read_text())


def load_custom_head(name_or_path: str, tagger: Tagger, heads_dir: Path | str | None = None) -> CustomHead:
    """A custom head by name (under var/models/custom/) or folder path; the adapted one of the
    tagger version in `heads_dir` when it has one."""
    from safetensors.torch import load_file

    from classifiers.heads import HeadSpec, load_head

    folder = head_folder(name_or_path, heads_dir)
    meta = json.loads((folder / "head.json").read_text())
    check_name(meta["name"])
    if meta["encoder"] != tagger.encoder_version:
        raise ValueError(
            f"custom head {meta['name']!r} was trained on encoder {meta['encoder']!r} but the "
            f"tagger runs {tagger.encoder_version!r}; retrain it with "
            f"`python -m classifiers.training.train custom --csv {meta['source_csv']} --name {meta['name']}`"
        )
    spec = HeadSpec(meta["name"], meta["version"], meta["kind"], meta["labels"],
                    meta["multi_label"], meta["thresholds"])  # fmt: skip
    head = load_head(spec, load_file(str(folder / "head.safetensors")), tagger.encoder.dim)
    return CustomHead(meta["name"], meta["version"], head.to(tagger.device), folder)
