"""Alert tests: they account for sample size, control false alarms, and find real spikes."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.insights.alerts import (
    AlertPolicy,
    already_emerged,
    negative_share_alerts,
    phrase_alerts,
    topic_volume_alerts,
)
from feedback.insights.phrases import (
    PhraseDoc,
    PhraseTheme,
    candidate_phrases,
    count_in_weeks,
    emerging_themes,
    phrases_of,
)
from feedback.insights.repository import CellWeek
from feedback.insights.significance import (
    bh_adjust,
    binomial_dispersion,
    proportion_increase_p,
    rate_increase_p,
)
from feedback.insights.weeks import last_complete_week, parse_week, shift_week, week_label

POLICY = AlertPolicy()


def _cell(negative: int, n: int) -> CellWeek:
    return CellWeek(n=n, respondents=n, tagged=n, negative=negative)


def _binomial_week(rng: random.Random, n: int, p: float) -> CellWeek:
    return _cell(sum(rng.random() < p for _ in range(n)), n)


# --- the tests themselves ------------------------------------------------------------------------


def test_share_test_accounts_for_sample_size() -> None:
    # The same jump from 20% to 40% negative: convincing on 100 items, not on 10.
    big = proportion_increase_p(40, 100, 160, 800)
    small = proportion_increase_p(4, 10, 16, 80)
    assert big < 0.001
    assert small > 0.05


def test_share_test_counts_the_baseline_size_too() -> None:
    # A baseline of one small week is itself uncertain; eight weeks are not.
    assert proportion_increase_p(30, 60, 5, 25) > proportion_increase_p(30, 60, 40, 200)


def test_overdispersed_baseline_widens_the_test() -> None:
    steady = [(20, 100)] * 8
    swinging = [
        (5, 100),
        (35, 100),
        (10, 100),
        (30, 100),
        (8, 100),
        (32, 100),
        (12, 100),
        (28, 100),
    ]
    assert binomial_dispersion(steady) == 1.0
    assert binomial_dispersion(swinging) > 3
    assert proportion_increase_p(32, 100, 160, 800, swinging) > proportion_increase_p(
        32, 100, 160, 800, steady
    )


def test_rate_test_is_exact_for_a_new_phrase() -> None:
    # Never seen in 8 weeks: under no change each item falls in this week with p = 1/9.
    assert rate_increase_p(5, [0] * 8) == pytest.approx((1 / 9) ** 5)
    assert rate_increase_p(10, [10, 9, 11, 10]) > 0.3


@given(st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_bh_adjusted_values_are_valid(pvalues: list[float]) -> None:
    qvalues = bh_adjust(pvalues)
    assert all(q >= p - 1e-12 and q <= 1.0 for p, q in zip(pvalues, qvalues, strict=True))
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    ranked = [qvalues[i] for i in order]
    assert ranked == sorted(ranked)  # BH keeps the order of the p-values


# --- negative-share alerts -----------------------------------------------------------------------


def test_a_real_spike_alerts_and_stable_cells_do_not() -> None:
    rng = random.Random(1)
    cells = {}
    for tp in ("website", "app", "checkout", "returns", "support", "store"):
        base = [_binomial_week(rng, 50, 0.25) for _ in range(8)]
        cells[("touchpoint", tp)] = (_binomial_week(rng, 50, 0.25), base)
    base = [_binomial_week(rng, 50, 0.18) for _ in range(8)]
    cells[("touchpoint", "delivery")] = (_cell(47, 70), base)
    alerts = negative_share_alerts(cells, week="2026-W39", policy=POLICY)
    assert [a.value for a in alerts] == ["delivery"]
    alert = alerts[0]
    assert alert.kind == "negative_share" and alert.severity == "high"
    assert alert.n == 70 and alert.baseline_weeks == 8
    assert "Benjamini-Hochberg" in alert.test and "delivery" in alert.message


def test_low_ratings_alert_even_where_the_model_misses_the_tone() -> None:
    def rated(negative: int, low: int, n: int) -> CellWeek:
        return CellWeek(n=n, respondents=n, tagged=n, negative=negative, rated=n, low_rated=low)

    base = [rated(13, 10, 50)] * 8  # 26% texts negative, 20% ratings low
    cells = {("touchpoint", "delivery"): (rated(22, 38, 60), base)}  # texts ~flat, ratings 63%
    [alert] = negative_share_alerts(cells, week="2026-W39", policy=POLICY)
    assert alert.observed == pytest.approx(38 / 60, abs=1e-3)
    readings = {m["measure"]: m for m in alert.measures}
    assert readings["ratings"]["passed"] and not readings["text"]["passed"]
    assert alert.message.startswith(
        "Negative feedback on delivery rose: 63% of ratings low (38 of 60)"
    )


def test_no_alert_below_the_minimum_n_or_effect() -> None:
    base = [_cell(10, 50)] * 8  # 20% negative
    few = {("touchpoint", "app"): (_cell(12, 15), base)}  # 80% but only 15 items
    assert negative_share_alerts(few, week="2026-W39", policy=POLICY) == []
    # Highly significant (2000 items a week) but only +5 points: not worth an alert.
    big_base = [_cell(400, 2000)] * 8
    tiny = {("touchpoint", "app"): (_cell(500, 2000), big_base)}
    assert negative_share_alerts(tiny, week="2026-W39", policy=POLICY) == []
    short = {("touchpoint", "app"): (_cell(40, 50), base[:2])}  # two baseline weeks only
    assert negative_share_alerts(short, week="2026-W39", policy=POLICY) == []


def test_quiet_weeks_almost_never_cry_wolf() -> None:
    """300 simulated ordinary weeks of 10 cells, with the week-to-week wobble real data has."""
    rng = random.Random(7)
    false_alarms = 0
    for _ in range(300):
        cells = {}
        for k in range(10):
            rate, n = rng.uniform(0.1, 0.4), rng.randint(20, 120)
            weeks = [
                _binomial_week(rng, n, min(0.95, rate * rng.uniform(0.85, 1.15))) for _ in range(9)
            ]
            cells[("touchpoint", f"tp{k}")] = (weeks[-1], weeks[:-1])
        false_alarms += len(negative_share_alerts(cells, week="2026-W35", policy=POLICY))
    assert false_alarms <= 3  # FDR 1% across cells, effect >= 10 points: ~0 expected


# --- topic volume --------------------------------------------------------------------------------


def test_topic_volume_alerts_on_new_and_surging_topics_only() -> None:
    alerts = topic_volume_alerts(
        {"wishlist": 17, "delivery": 52, "returns": 11},
        {"wishlist": [0] * 8, "delivery": [48, 51, 55, 47, 50, 53, 49, 52], "returns": [10] * 8},
        total=600,
        baseline_totals=[600] * 8,
        week="2026-W42",
        policy=POLICY,
        where={"wishlist": {"app": 17}},
    )
    assert [a.value for a in alerts] == ["wishlist"]
    assert alerts[0].where == {"app": 17} and "new" in alerts[0].message


def test_a_busy_week_raises_no_topic_alert_but_a_growing_share_does() -> None:
    # Twice the usual feedback, every topic twice its usual count: shares unchanged, no news.
    busy = topic_volume_alerts(
        {"delivery": 100, "returns": 20},
        {"delivery": [50] * 8, "returns": [10] * 8},
        total=1200,
        baseline_totals=[600] * 8,
        week="2026-W42",
        policy=POLICY,
    )
    assert busy == []
    # The same counts in an ordinary week: delivery's share doubled, which is news.
    grew = topic_volume_alerts(
        {"delivery": 100, "returns": 20},
        {"delivery": [50] * 8, "returns": [10] * 8},
        total=600,
        baseline_totals=[600] * 8,
        week="2026-W42",
        policy=POLICY,
    )
    assert [a.value for a in grew] == ["delivery", "returns"]
    assert grew[0].status == "new" and "of items, from" in grew[0].message


# --- emerging phrases ----------------------------------------------------------------------------


def test_phrases_drop_stop_words_placeholders_and_clause_breaks() -> None:
    found = phrases_of("My wishlist disappeared after the update. Call me on [PHONE], please!")
    assert "wishlist disappeared" in found and "wishlist disappeared update" in found
    assert "update call" not in found  # a sentence break ends a phrase
    assert not any("phone" in p for p in found)
    assert "doesn't work" in phrases_of("The scanner doesn't work")


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_phrases_are_one_to_three_content_words(text: str) -> None:
    for phrase in phrases_of(text):
        words = phrase.split()
        assert 1 <= len(words) <= 3
        assert all(len(w) > 1 for w in words)


def _background(rng: random.Random, n: int) -> list[str]:
    bank = [
        "Delivery was quick and the driver was friendly",
        "The sofa arrived on time, very happy",
        "Checkout was easy but the discount code failed",
        "Store staff were helpful with the rug",
        "Returns took a while but the refund came",
        "The app is fine, search could be better",
    ]
    return [rng.choice(bank) for _ in range(n)]


def test_a_new_phrase_emerges_as_one_theme_and_ordinary_words_do_not() -> None:
    rng = random.Random(3)
    weeks = [f"2026-W{w}" for w in range(34, 42)]
    texts = [(w, t) for w in weeks for t in _background(rng, 300)]
    wishlist = [
        "My wishlist disappeared after the update",
        "The wishlist crashes the app every time",
        "Since the update my wishlist is empty",
        "Wishlist broken, saved items are gone",
    ]
    this_week = _background(rng, 300) + [wishlist[i % 4] for i in range(17)]
    docs = [
        PhraseDoc(i, t, f"c{i}", "app" if "ishlist" in t else "other")
        for i, t in enumerate(this_week)
    ]
    candidates = candidate_phrases(docs, min_count=POLICY.phrase_min_count)
    baseline = count_in_weeks(texts, candidates, weeks)
    themes = emerging_themes(docs, baseline, candidates=candidates)
    assert len(themes) == 1
    theme = themes[0]
    assert theme.label == "wishlist" and theme.ratio is None and theme.count == 17
    assert theme.touchpoints == {"app": 17} and "update" in " ".join(theme.phrases)


def test_an_ordinary_week_has_no_emerging_phrase() -> None:
    rng = random.Random(5)
    weeks = [f"2026-W{w}" for w in range(31, 35)]  # a short baseline, like the demo's W35
    texts = [(w, t) for w in weeks for t in _background(rng, 300)]
    docs = [PhraseDoc(i, t, f"c{i}", "x") for i, t in enumerate(_background(rng, 300))]
    candidates = candidate_phrases(docs, min_count=POLICY.phrase_min_count)
    baseline = count_in_weeks(texts, candidates, weeks)
    assert emerging_themes(docs, baseline, candidates=candidates) == []


# --- weeks ---------------------------------------------------------------------------------------


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_week_labels_round_trip(day: date) -> None:
    label = week_label(day)
    monday = parse_week(label)
    assert monday.weekday() == 0 and monday <= day < monday + timedelta(days=7)
    assert shift_week(shift_week(label, -8), 8) == label


def test_week_errors_say_how_to_write_one() -> None:
    with pytest.raises(ValueError, match="2026-W47"):
        parse_week("2026-47")
    with pytest.raises(ValueError, match="no ISO week 53"):
        parse_week("2025-W53")


def test_last_complete_week_is_the_week_before() -> None:
    from datetime import UTC, datetime

    assert last_complete_week(datetime(2026, 11, 23, 7, tzinfo=UTC)) == "2026-W47"  # a Monday
    assert last_complete_week(datetime(2026, 11, 29, 23, tzinfo=UTC)) == "2026-W47"  # Sunday


def test_a_spike_alerted_last_week_is_continuing_not_new() -> None:
    base = [_cell(10, 50)] * 8
    cells = {("touchpoint", "delivery"): (_cell(45, 70), base)}
    [fresh] = negative_share_alerts(cells, week="2026-W39", policy=POLICY)
    assert fresh.status == "new"
    [ongoing] = negative_share_alerts(
        cells, week="2026-W40", policy=POLICY, already_alerted={("touchpoint", "delivery")}
    )
    assert ongoing.status == "continuing"


def test_a_rise_seen_within_the_baseline_has_emerged_before() -> None:
    kw = {"min_count": 5, "min_ratio": 3, "policy": POLICY}
    assert already_emerged([0, 0, 0, 0, 0, 0, 0, 16], **kw)  # last week
    assert already_emerged([0, 0, 0, 0, 9, 7, 6, 8], **kw)  # four weeks ago, and since
    assert not already_emerged([0, 0, 0, 0, 0, 0, 0, 2], **kw)  # too few
    assert not already_emerged([9, 11, 10, 8, 12, 10, 9, 11], **kw)  # always there
    assert not already_emerged([0, 0, 9], **kw)  # too early to tell


def test_phrase_alerts_group_by_cell_and_know_what_is_new() -> None:
    def theme(label: str, count: int, counts: list[int], cell: str = "app") -> PhraseTheme:
        return PhraseTheme(
            label=label,
            phrases=[label],
            count=count,
            authors=count,
            lead_count=count,
            baseline_weekly=sum(counts) / len(counts),
            baseline_weeks=len(counts),
            ratio=None,
            p_value=1e-9,
            q_value=1e-7,
            touchpoints={cell: count},
            baseline_counts=counts,
        )

    alerts = phrase_alerts(
        {
            "app": [theme("wishlist", 16, [0] * 8), theme("saved items gone", 7, [0] * 8)],
            "delivery": [theme("swiftship", 40, [0] * 7 + [38], "delivery")],
        },
        dimension="touchpoint",
        week="2026-W42",
        policy=POLICY,
    )
    by_cell = {a.value: a for a in alerts}
    assert by_cell["app"].phrases == ["wishlist", "saved items gone"]
    assert by_cell["app"].status == "new" and by_cell["app"].n == 23
    assert "New in app: 'wishlist' (16 items, none before)" in by_cell["app"].message
    assert by_cell["delivery"].status == "continuing"  # it had already emerged last week
    # A new wording of last week's story is not news either.
    [again] = phrase_alerts(
        {"app": [theme("update wipe wishlist", 6, [0] * 8)]},
        dimension="touchpoint",
        week="2026-W43",
        policy=POLICY,
        emerged_before={"wishlist"},
    )
    assert again.status == "continuing"
