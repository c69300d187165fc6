"""Tag a JSONL file of feedback items: one output line per input line, in order.

    python -m classifiers.classify_file input.jsonl output.jsonl

Input lines are `{"id": ..., "text": ..., "audience": optional}`. A line that is not valid JSON,
not an object, or has no string `text` gets an output line with an `error` field (and its
`id` when one could be read), never a crash.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from classifiers.config import TaggerConfig

CHUNK = 512  # lines tagged per call: bounded memory on big files


def _parse(line_no: int, raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(item, None) for a usable line, or (None, error line)."""
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        return None, {"id": None, "line": line_no, "error": f"invalid JSON: {exc.msg}"}
    if not isinstance(obj, dict):
        return None, {"id": None, "line": line_no, "error": "line is not a JSON object"}
    text = obj.get("text")
    if not isinstance(text, str):
        return None, {"id": obj.get("id"), "line": line_no,
                      "error": "missing or non-string field 'text'"}  # fmt: skip
    audience = obj.get("audience")
    return {"id": obj.get("id"), "text": text,
            "audience": audience if isinstance(audience, str) else None}, None  # fmt: skip


def classify_jsonl(input_path: str | Path, output_path: str | Path,
                   config: TaggerConfig | None = None, *,
                   tagger: Any = None) -> dict[str, int]:  # fmt: skip
    """Tag every line of `input_path` into `output_path`; returns counts of tagged and errors.

    Pass an already loaded `tagger` (the service's) or a `config` to load one.
    """
    from classifiers.tagger import load_tagger

    tagger = tagger or load_tagger(config)
    counts = {"tagged": 0, "errors": 0}
    with open(input_path, "rb") as src, open(output_path, "w", encoding="utf-8") as dst:
        pending: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []

        def flush() -> None:
            items = [item for item, _ in pending if item is not None]
            results = iter(tagger.tag([i["text"] for i in items],
                                      audiences=[i["audience"] for i in items]))  # fmt: skip
            for item, error in pending:
                if item is None:
                    out = error
                    counts["errors"] += 1
                else:
                    r = next(results)
                    out = {
                        "id": item["id"], "sentiment": r.sentiment,
                        "sentiment_score": round(r.sentiment_score, 4),
                        "emotions": r.emotion_labels, "cx_emotions": r.cx_emotions,
                        "needs": r.needs, "touchpoint": r.touchpoint,
                        "touchpoint_confidence": r.touchpoint_confidence, "flags": r.flags,
                        "model_versions": tagger.model_versions,
                    }  # fmt: skip
                    if r.custom:
                        out["custom"] = r.custom
                    counts["tagged"] += 1
                dst.write(json.dumps(out, ensure_ascii=False) + "\n")
            pending.clear()

        for line_no, raw in enumerate(src, start=1):
            if not raw.strip():
                continue
            pending.append(_parse(line_no, raw))
            if len(pending) >= CHUNK:
                flush()
        flush()
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m classifiers.classify_file INPUT.jsonl OUTPUT.jsonl")
    print(classify_jsonl(sys.argv[1], sys.argv[2]))
