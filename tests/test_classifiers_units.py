"""Pure pieces of the classifiers, without loading the encoder (fast)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.inputs import decode, is_emoji_only, language_flag
from classifiers.labels import CX_EMOTION_GROUPS, GOEMOTIONS_LABELS, cx_emotions
from classifiers.training.train import THRESHOLD_GRID, fold_ids, tune_thresholds


@given(st.lists(st.sampled_from(GOEMOTIONS_LABELS), max_size=6))
def test_cx_emotions_is_a_nonempty_ordered_subset(labels):
    groups = cx_emotions(labels)
    assert groups and set(groups) <= set(CX_EMOTION_GROUPS)
    assert groups == [g for g in CX_EMOTION_GROUPS if g in groups]
    assert ("neutral" in groups) == (len(groups) == 1 and groups == ["neutral"])


@given(st.binary(max_size=200))
def test_decode_never_raises_on_bytes(raw):
    text, flags = decode(raw)
    assert isinstance(text, str)
    text.encode("utf-8")  # always encodable
    assert flags in ([], ["invalid_utf8"])


@settings(max_examples=200, deadline=None)  # the first call loads the language model
@given(st.text(max_size=300))
def test_flags_never_raise_on_text(text):
    decoded, _ = decode(text)
    decoded.encode("utf-8")
    is_emoji_only(decoded)
    flag = language_flag(decoded, None)
    assert flag is None or flag.startswith("non_english:")


def test_language_hints():
    assert language_flag("anything", "en-GB") is None
    assert language_flag("anything", "pt_BR") == "non_english:pt"


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**16))
def test_thresholds_come_from_the_grid(n, seed):
    rng = np.random.default_rng(seed)
    probs = rng.random((n, 3)).astype(np.float32)
    gold = (rng.random((n, 3)) > 0.5).astype(np.float32)
    thr = tune_thresholds(probs, gold, ["a", "b", "c"])
    assert set(thr) == {"a", "b", "c"} and all(t in THRESHOLD_GRID for t in thr.values())


def test_thresholds_separate_a_separable_label():
    probs = np.array([[0.1], [0.2], [0.8], [0.9]], dtype=np.float32)
    gold = np.array([[0], [0], [1], [1]], dtype=np.float32)
    assert 0.2 < tune_thresholds(probs, gold, ["x"])["x"] <= 0.8


def test_folds_cover_every_row_and_balance_rare_labels():
    y = np.zeros((100, 2), dtype=np.float32)
    y[:10, 1] = 1
    folds = fold_ids(y, 5)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    assert all((folds[:10] == k).sum() == 2 for k in range(5))


def test_merged_lora_equals_the_adapted_layer():
    from classifiers.encoder import merge_lora
    from classifiers.training.finetune import LoRALinear

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4))
    lora = LoRALinear(torch.nn.Linear(8, 4), rank=2, alpha=4, dropout=0.0)
    lora.base.load_state_dict(model[0].state_dict())
    torch.nn.init.normal_(lora.lora_B)
    x = torch.randn(3, 8)
    expected = lora(x)
    merge_lora(model, {"0.lora_A": lora.lora_A.detach(), "0.lora_B": lora.lora_B.detach()},
               scale=lora.scale)  # fmt: skip
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_predict_is_deterministic_whatever_mode_the_head_was_left_in():
    from classifiers.heads import build_module
    from classifiers.training.train import predict

    torch.manual_seed(0)
    head = build_module("mlp", 8, 3, hidden=16, dropout=0.5)
    head.train()  # as training or loading (build_module) leaves it
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    first = predict(head, x, multi_label=True)
    np.testing.assert_array_equal(first, predict(head, x, multi_label=True))


def test_length_bucketed_batches_keep_the_mix_and_cut_padding():
    from classifiers.training.finetune import batch_inputs, length_bucketed

    rng = np.random.default_rng(0)
    s_ids = [[101] + [7] * int(n) + [102] for n in rng.integers(1, 60, 500)]
    e_ids = [[101] + [7] * int(n) + [102] for n in rng.integers(1, 60, 96)]
    weights = np.full(len(s_ids), 1 / len(s_ids))
    batches = length_bucketed(np.random.default_rng(1), weights, len(e_ids), s_ids, e_ids,
                              batch=8, bucket=4)  # fmt: skip
    epoch = [next(batches) for _ in range(12)]  # 12 x 8 = one pass over the 96 emotion rows
    assert all(len(s) == 8 and len(e) == 8 for s, e in epoch)
    assert sorted(np.concatenate([e for _, e in epoch]).tolist()) == list(range(96))
    # padded width vs a random batch of the same rows: bucketing wastes much less
    bucketed = sum(batch_inputs([s_ids[i] for i in s])["input_ids"].numel() for s, _ in epoch)
    shuffled = np.random.default_rng(2).permutation(np.concatenate([s for s, _ in epoch]))
    unbucketed = sum(batch_inputs([s_ids[i] for i in shuffled[k : k + 8]])["input_ids"].numel()
                     for k in range(0, len(shuffled), 8))  # fmt: skip
    assert bucketed < 0.8 * unbucketed
    padded = batch_inputs([[101, 5, 102], [101, 102]])
    assert padded["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def _normalised(texts):
    import re

    # sentences of 6+ words: "great" or "great place to work" from two reviewers is no leak
    words = (re.sub(r"[^\w\s]", " ", t.lower()).split() for t in texts)
    return {" ".join(w) for w in words if len(w) >= 6}


def test_no_split_used_for_choosing_shares_a_sentence_with_a_test_split():
    import pytest

    from classifiers.training import data, features
    from classifiers.training.train import SENTIMENT_DEV_SPLITS

    try:
        data.data_dir()
    except FileNotFoundError:
        pytest.skip("../shared/data is not here")
    tests = {name: _normalised(features.DATASETS[name]().texts) for name in features.DATASETS
             if name.endswith("_test")}  # fmt: skip
    for name in (*SENTIMENT_DEV_SPLITS, "goemotions_dev"):
        dev = _normalised(features.DATASETS[name]().texts)
        for test_name, test in tests.items():
            shared = dev & test
            # GoEmotions' own dev and test share a handful of stock replies ("thanks for the help")
            assert len(shared) <= 0.002 * len(dev), f"{name} shares {len(shared)} texts with {test_name}"
    # why SST-5 dev is not among them: it holds the SST-2 test sentences (the GLUE SST-2 dev set)
    assert len(_normalised(data.sst5("dev").texts) & tests["sst2_test"]) > 800
