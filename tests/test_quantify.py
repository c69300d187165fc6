"""Share estimators, calibration fitting, the shipped encoder delta and the tweet splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.quantify import METHODS, ShareEstimator, adjust, rates, share_estimator


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(METHODS), n=st.integers(1, 10_000), frac=st.floats(0, 1),
       pfrac=st.floats(0, 1), tpr=st.floats(0, 1), fpr=st.floats(0, 1))  # fmt: skip
def test_every_estimate_is_a_share(method, n, frac, pfrac, tpr, fpr):
    est = ShareEstimator("negative", method, tpr, fpr).estimate(n=n, count=frac * n, prob_sum=pfrac * n)
    assert est is not None and 0.0 <= est <= 1.0


def test_adjusted_count_recovers_the_true_share_under_prior_shift():
    # a classifier that finds 70% of negatives and wrongly flags 10% of the rest
    rng = np.random.default_rng(0)
    tpr, fpr = 0.7, 0.1
    for true_share in (0.05, 0.3, 0.63, 0.9):
        gold = rng.random(200_000) < true_share
        pred = np.where(gold, rng.random(gold.size) < tpr, rng.random(gold.size) < fpr)
        cc = ShareEstimator("negative", "cc").estimate(n=gold.size, count=pred.sum(), prob_sum=0)
        acc = ShareEstimator("negative", "acc", tpr, fpr).estimate(n=gold.size, count=pred.sum(), prob_sum=0)
        assert abs(acc - true_share) < 0.01
        if true_share > 0.3:  # counting under-reports a large share, as the issue saw
            assert cc < true_share - 0.05


def test_probabilistic_adjustment_and_rates():
    gold = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    p = np.array([0.9, 0.8, 0.4, 0.2, 0.1, 0.1, 0.0, 0.2])
    tpr, fpr = rates(p, gold)
    assert tpr == pytest.approx(0.7) and fpr == pytest.approx(0.12)
    est = ShareEstimator("negative", "pacc", tpr, fpr).estimate(n=8, count=0, prob_sum=p.sum())
    assert est == pytest.approx(3 / 8)
    assert ShareEstimator("negative", "pcc").estimate(n=8, count=0, prob_sum=p.sum()) == pytest.approx(p.mean())


def test_no_separation_means_no_adjustment_and_no_items_no_share():
    assert adjust(0.4, 0.52, 0.5) == 0.4
    assert ShareEstimator("negative", "pacc", 0.8, 0.1).estimate(n=0, count=0, prob_sum=0) is None
    lo, hi = ShareEstimator("negative", "pacc", 0.8, 0.1).interval(n=100, count=0, prob_sum=30, prob_sumsq=12)
    assert lo is not None and hi is not None and lo < 0.3 / 0.7 - 1 / 7 < hi


def test_unknown_method_and_missing_block():
    with pytest.raises(ValueError, match="methods: cc, acc, pcc, pacc"):
        ShareEstimator("negative", "median")
    assert share_estimator({}).method == "cc"
    raw = {"quantification": {"negative": {"label": "negative", "method": "pacc", "tpr": 0.8, "fpr": 0.1}}}
    assert share_estimator(raw) == ShareEstimator("negative", "pacc", 0.8, 0.1)


def test_temperature_fit_recovers_a_known_temperature():
    from classifiers.training.calibrate import fit_scaling

    gen = torch.Generator().manual_seed(0)
    true_logits = torch.randn(20_000, 3, generator=gen) * 2
    y = torch.multinomial(torch.softmax(true_logits, -1), 1, generator=gen).squeeze(1).numpy()
    overconfident = (true_logits * 3).numpy()  # a head 3x too sure of itself
    t, bias = fit_scaling([overconfident], [y], bias=False)
    assert t == pytest.approx(3.0, rel=0.08)
    assert bias == [0.0, 0.0, 0.0]


def test_quantised_delta_reproduces_the_fine_tuned_weights():
    from classifiers.encoder import apply_delta, quantize_delta

    gen = torch.Generator().manual_seed(1)
    base = {"w": torch.randn(64, 32, generator=gen), "b": torch.randn(64, generator=gen)}
    delta = {"w": torch.randn(64, 32, generator=gen) * 0.01, "b": torch.randn(64, generator=gen) * 0.01}
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(base["w"].clone())
    model.b = torch.nn.Parameter(base["b"].clone())
    packed = quantize_delta(delta)
    assert packed["w.q8"].dtype == torch.int8 and packed["b.f16"].dtype == torch.float16
    apply_delta(model, packed)
    err = (model.w.detach() - (base["w"] + delta["w"])).abs().max()
    assert err <= delta["w"].abs().max() / 127  # half a quantisation step per row, at most one
    assert torch.allclose(model.b.detach(), base["b"] + delta["b"], atol=1e-4)


def test_tweet_test_split_is_twitter_2016test_and_never_trained_on():
    from classifiers.training import data

    try:
        data.data_dir()
    except FileNotFoundError:
        pytest.skip("../shared/data is not here")
    test = data.semeval_tweets("test")
    train, dev = data.semeval_tweets("train"), data.semeval_tweets("dev")
    norm = data._normalised
    test_texts = {norm(t) for t in test.texts}
    assert len(test.texts) > 20_000
    assert not test_texts & {norm(t) for t in train.texts}
    assert not test_texts & {norm(t) for t in dev.texts}
    assert not {norm(t) for t in train.texts} & {norm(t) for t in dev.texts}
    assert set(test.labels) == {"negative", "neutral", "positive"}


def test_domain_balanced_pool_gives_each_source_its_share():
    from classifiers.training import data
    from classifiers.training.finetune_full import DOMAIN_SHARES, sentiment_pool

    try:
        data.data_dir()
    except FileNotFoundError:
        pytest.skip("../shared/data is not here")
    texts, y, p, src = sentiment_pool()
    assert len(texts) == len(y) == len(p) == len(src)
    assert p.sum() == pytest.approx(1.0)
    src = np.array(src)
    for source, share in DOMAIN_SHARES.items():
        assert p[src == source].sum() == pytest.approx(share / sum(DOMAIN_SHARES.values()))
        # classes balanced inside the source
        masses = [p[(src == source) & (y == c)].sum() for c in np.unique(y[src == source])]
        assert max(masses) == pytest.approx(min(masses))
    assert not set(texts) & set(data.semeval_tweets("test").texts)
