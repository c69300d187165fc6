"""File classification, custom heads, model cards: the tagger's edges, on the real model."""

from __future__ import annotations

import json

import pytest

from classifiers import TaggerConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagger():
    from classifiers import load_tagger

    return load_tagger(TaggerConfig(device="cpu"))


def test_classify_jsonl_keeps_every_line(tmp_path, tagger):
    from classifiers.classify_file import classify_jsonl

    src = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "The delivery was late and the box was crushed"}),
        json.dumps({"id": "b", "text": "Supportive manager, great team", "audience": "employee"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "c"}),
        json.dumps({"id": "d", "text": ""}),
        json.dumps({"id": 7, "text": "Fantastic service, thank you so much"}),
    ]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "e", "text": "caf\xe9"}\n')
    out = tmp_path / "out.jsonl"
    counts = classify_jsonl(src, out, TaggerConfig(device="cpu"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and counts == {"tagged": 5, "errors": 3}
    assert [r.get("id") for r in rows] == ["a", "b", None, None, "c", "d", 7, "e"]
    assert rows[0]["sentiment"] == "negative" and rows[6]["sentiment"] == "positive"
    for key in ("sentiment", "sentiment_score", "emotions", "cx_emotions", "needs", "touchpoint",
                "touchpoint_confidence", "flags", "model_versions"):  # fmt: skip
        assert key in rows[0]
    assert "error" in rows[2] and "error" in rows[3] and "text" in rows[4]["error"]
    assert "empty" in rows[5]["flags"]
    assert rows[1]["touchpoint"] in {"manager", "day_to_day", "unknown"}


def test_custom_head_roundtrip(tmp_path, tagger):
    from classifiers.tagger import Tagger
    from classifiers.training.custom import train_custom_head

    csv = tmp_path / "areas.csv"
    rows = [("The battery drains overnight", "battery"), ("Battery life is awful", "battery"),
            ("Charge lasts only two hours", "battery"), ("Battery died after a week", "battery"),
            ("The screen cracked", "screen"), ("Screen is too dim to read", "screen"),
            ("Display has dead pixels", "screen"), ("The screen flickers", "screen"),
            ("Speaker sound is tinny", "audio"), ("Volume is too quiet", "audio"),
            ("Audio crackles at high volume", "audio"), ("Great bass from the speaker", "audio")]
    csv.write_text("text,label\n" + "\n".join(f"{t},{label}" for t, label in rows) + "\n")
    path = train_custom_head(csv, "area", tagger=tagger, out_dir=tmp_path / "custom")
    assert (path / "head.safetensors").exists() and (path / "head.json").exists()
    t = Tagger(TaggerConfig(device="cpu", custom_heads=(str(path),)))
    res = t.tag(["my battery runs out too fast", "the display is cracked"])
    assert [r.custom["area"] for r in res] == [["battery"], ["screen"]]
    assert t.model_versions["custom:area"] == "custom.area.v1"


def test_custom_csv_errors_carry_the_fix(tmp_path):
    from classifiers.training.custom import read_labelled_csv

    bad = tmp_path / "survey.csv"
    bad.write_text("id,comment\n1,hello\n")
    with pytest.raises(ValueError, match="column 'text' not found in survey.csv"):
        read_labelled_csv(bad)


def test_multilabel_csv(tmp_path):
    from classifiers.training.custom import read_labelled_csv

    f = tmp_path / "m.csv"
    f.write_text('text,label\n"a b",x|y\nc,x\nd,y\ne,x\n')
    texts, labels = read_labelled_csv(f)
    assert labels[0] == ["x", "y"] and len(texts) == 4


def test_model_cards_match_metrics():
    from classifiers.training.cards import CARDS_DIR, FACTS, load_metrics, render

    for task in FACTS:
        doc = load_metrics(task)
        assert doc["command"] == "python -m classifiers.training.evaluate"
        card = (CARDS_DIR / f"{task}.md").read_text()
        assert card == render(task, doc), f"{task}.md is stale: run python -m classifiers.training.cards"


def test_metrics_come_from_shipped_models(tagger):
    from classifiers.training.cards import FACTS, load_metrics

    for task in FACTS:
        assert load_metrics(task)["model_versions"] == tagger.model_versions
