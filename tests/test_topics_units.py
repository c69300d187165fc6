"""Topics, the pure parts: alignment (Hungarian), labels, emerging-topic statistics."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from conftest import bench_module
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.topics.alignment import align, overlap_matrix
from feedback.topics.labels import clean, deduplicate, distinct_keywords, label_for, title
from feedback.topics.over_time import Series, benjamini_hochberg, emerging, growth_p_value


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_alignment_recovers_a_permutation_of_noisy_centroids() -> None:
    rng = np.random.default_rng(1)
    old = _unit(rng.normal(size=(12, 64)))
    perm = rng.permutation(12)
    new = _unit(old[perm] + 0.15 * rng.normal(size=(12, 64)) / 8)
    matches = align(old, new)
    assert {(m.new, m.old) for m in matches} == {(j, int(perm[j])) for j in range(12)}


def test_vanished_and_new_topics_stay_unmatched() -> None:
    rng = np.random.default_rng(2)
    old = _unit(rng.normal(size=(5, 32)))
    new = np.vstack([old[[0, 1, 2]], _unit(rng.normal(size=(2, 32)))])  # 3, 4 vanished; 2 new ones
    matches = align(old, new)
    assert {(m.new, m.old) for m in matches} == {(0, 0), (1, 1), (2, 2)}


def test_hungarian_finds_the_global_best_not_the_greedy_one() -> None:
    # Greedy takes the best pair (old 0, new 0) and leaves new 1 with old 1 (overlap 0.1, rejected);
    # the one-to-one optimum matches both topics.
    overlap = np.array([[0.9, 0.8], [0.7, 0.1]])
    same = np.ones((2, 4)) / 2.0
    matches = align(same, same, overlap=overlap, min_similarity=1.1, min_overlap=0.3)
    assert {(m.new, m.old) for m in matches} == {(1, 0), (0, 1)}


def test_document_overlap_decides_when_centroids_are_ambiguous() -> None:
    old = _unit(np.array([[1.0, 0.0], [0.9, 0.1]]))
    new = _unit(np.array([[0.95, 0.05], [0.95, 0.05]]))
    old_labels = np.array([0, 0, 0, 1, 1, 1])
    new_labels = np.array([1, 1, 1, 0, 0, 0])
    overlap = overlap_matrix(old_labels, new_labels, 2, 2)
    assert overlap[0, 1] == 1.0 and overlap[1, 0] == 1.0
    matches = align(old, new, overlap=overlap)
    assert {(m.new, m.old) for m in matches} == {(1, 0), (0, 1)}


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=15),
    st.integers(min_value=1, max_value=15),
    st.integers(0, 10_000),
)
def test_alignment_is_one_to_one(n_old: int, n_new: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    old = _unit(rng.normal(size=(n_old, 8)))
    new = _unit(rng.normal(size=(n_new, 8)))
    matches = align(old, new, min_similarity=-1.0)
    assert len({m.old for m in matches}) == len(matches) == len({m.new for m in matches})
    assert len(matches) == min(n_old, n_new)


def test_labels_are_short_readable_phrases() -> None:
    docs = [
        "My work life balance is terrible",
        "no work life balance at all",
        "work life balance is poor",
        "Bad work life balance and long hours",
        "long hours, work life balance suffers",
    ]
    label = label_for(["balance", "work life", "hours", "life balance"], docs)
    assert label == "Work Life Balance"
    assert 2 <= len(label.split()) <= 4
    assert label_for(["pay", "salary", "benefits"], ["low"]) == "Pay & Salary"
    assert title("cost of living") == "Cost of Living"
    assert distinct_keywords(["card arrival", "card", "arrival", "delivery"]) == [
        "card arrival",
        "delivery",
    ]
    assert clean("my [CARD] was charged") == "my   was charged"
    assert deduplicate(
        {0: "Card Payment", 1: "Card Payment"},
        {0: ["card payment", "declined"], 1: ["card payment", "refund"]},
    ) == {0: "Card Payment: Declined", 1: "Card Payment: Refund"}
    # every keyword shares a word with the label: its new words, not the topic id
    assert deduplicate(
        {3: "Low Pay", 7: "Low Pay"},
        {3: ["pay", "salary"], 7: ["pay", "pay low", "horrible pay"]},
    ) == {3: "Low Pay: Salary", 7: "Low Pay: Horrible"}


def _series(counts: dict[int, list[int]], totals: list[int]) -> Series:
    periods = [date(2026, 1, 5) + timedelta(weeks=i) for i in range(len(totals))]
    cells = {
        (t, p): {"n": c[i], "respondents": c[i]}
        for t, c in counts.items()
        for i, p in enumerate(periods)
    }
    return Series(periods=periods, totals=dict(zip(periods, totals, strict=True)), cells=cells)


def test_a_topic_growing_against_its_baseline_is_emerging_and_a_steady_one_is_not() -> None:
    steady = [20] * 9
    growing = [5] * 8 + [30]
    totals = [200] * 8 + [225]
    flags = emerging(_series({1: steady, 2: growing}, totals), [1, 2])
    assert flags[2]["emerging"] and flags[2]["reason"] == "growing"
    assert not flags[1]["emerging"]


def test_a_busy_week_does_not_make_every_topic_emerge() -> None:
    # Everything doubles: shares are unchanged, so nothing is flagged.
    flags = emerging(_series({1: [20] * 8 + [40], 2: [10] * 8 + [20]}, [100] * 8 + [200]), [1, 2])
    assert not any(f["emerging"] for f in flags.values())


def test_new_and_silent_topics_are_flagged_new() -> None:
    flags = emerging(_series({3: [0] * 8 + [12], 4: [1] * 9}, [100] * 9), [3, 4], new_ids={4})
    assert flags[3]["emerging"] and flags[3]["reason"] == "new"
    assert not flags[4]["emerging"]  # new, but only 1 item: below the minimum count


def test_growth_test_and_benjamini_hochberg() -> None:
    assert growth_p_value(30, 40, 100, 800) < 1e-6
    assert growth_p_value(5, 40, 100, 800) > 0.3
    assert benjamini_hochberg({1: 0.001, 2: 0.02, 3: 0.5}, 0.05) == {1, 2}
    assert benjamini_hochberg({1: 0.04, 2: 0.5}, 0.05) == set()


def test_model_card_is_rendered_from_the_measured_metrics() -> None:
    import json

    eval_topics = bench_module("eval_topics")
    metrics = json.loads(eval_topics.METRICS.read_text())
    assert eval_topics.CARD.read_text() == eval_topics.render_card(metrics)
    assert metrics["banking77"]["ours"]["outlier_share"] <= 0.10


@pytest.mark.parametrize(
    ("text", "empty"),
    [
        ("None that I can think of", True),
        ("No cons come to mind", True),
        ("Can\u2019t think of any at the moment.", True),
        ("N/A", True),
        ("No complaints!", True),
        ("Not enough pay", False),
        ("many issues", False),
        ("No growth", False),
        ("None - always supportive of your goals", False),
        ("Nothing gets done, nothing moves.", False),
    ],
)
def test_empty_answers_are_told_from_short_ones(text, empty):
    from feedback.topics.labels import is_empty_answer

    assert is_empty_answer(text) is empty


def test_a_topic_of_empty_answers_is_named_for_what_they_say():
    from feedback.topics.labels import EMPTY_ANSWER_LABEL

    empty = ["None that I can think of", "Nothing comes to mind at the moment", "N/A", "none"] * 5
    assert label_for(["moment", "come mind", "speak"], empty) == EMPTY_ANSWER_LABEL
    # a real topic with a few empty answers among its documents keeps its own label
    pay = ["Low pay for the work", "pay is low compared to others", "low pay"] * 5
    assert label_for(["pay", "low pay", "salary"], pay + empty[:6]) == "Low Pay"
    # two such topics are numbered, not told apart by their leftover keywords ("Moment")
    assert deduplicate({0: EMPTY_ANSWER_LABEL, 3: EMPTY_ANSWER_LABEL}, {0: ["moment"], 3: ["mind"]}) == {
        0: EMPTY_ANSWER_LABEL, 3: f"{EMPTY_ANSWER_LABEL} (2)"}
