"""The package layout is the architecture: inference never imports training."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_inference_module_imports_training_code():
    offenders = []
    for path in sorted((ROOT / "classifiers").glob("*.py")):
        bad = sorted(m for m in _imports(path) if m.startswith("classifiers.training"))
        if bad:
            offenders.append(f"{path.name}: {bad}")
    for package in ("feedback", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = sorted(m for m in _imports(path) if m.startswith("classifiers.training"))
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {bad}")
    assert not offenders, "inference code imports training code:\n" + "\n".join(offenders)


def test_loading_and_using_the_tagger_loads_no_training_module():
    code = (
        "import sys\n"
        "from classifiers.tagger import load_tagger\n"
        "r = load_tagger().tag(['The courier left my parcel in the rain'])\n"
        "assert r[0].sentiment\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('classifiers'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip().splitlines()[-1]  # fmt: skip
    loaded = out.split(",")
    assert "classifiers.tagger" in loaded
    assert not [m for m in loaded if m.startswith("classifiers.training")], loaded
