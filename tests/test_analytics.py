"""Analytics through the real app: trends (rollups agree with items), journey, comparisons with
drivers, key drivers, quotes, and the tagging job keeping the rollups current."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from analytics_data import MONDAY, Row, add_topics, customer_rows, write_rows
from fastapi.testclient import TestClient

from feedback.analytics.rollups import rebuild_rollups, refresh_rollups, rollups_current
from feedback.db import session_scope

YEAR = {"start": MONDAY.isoformat(), "end": (MONDAY + timedelta(weeks=8)).isoformat()}


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 2e-4 + 1e-3 * abs(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b


def _same_rows(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        bad = [k for k in a if not _close(a[k], b.get(k))]
        assert not bad, (bad, a, b)


@pytest.fixture
def shop(engine) -> list[int]:
    topics = add_topics(engine, ["late delivery", "great prices", "app bugs"])
    write_rows(engine, customer_rows(1200, seed=5, weeks=8, topics=topics))
    return topics


QUERIES = [
    {"by": "touchpoint", "interval": "week"},
    {"by": "touchpoint", "interval": "week", **YEAR},
    {"by": "topic", "interval": "month"},
    {"by": "channel", "interval": "day", "start": (MONDAY + timedelta(days=3)).isoformat(),
     "end": (MONDAY + timedelta(days=10)).isoformat()},
    # bounds that cut weeks and months: whole periods from their rows, edges from day rows
    {"by": "need", "interval": "month", "start": (MONDAY + timedelta(days=9)).isoformat(),
     "end": (MONDAY + timedelta(days=45)).isoformat()},
    {"by": "segment", "interval": "week", "start": (MONDAY + timedelta(days=2)).isoformat()},
    {"by": "touchpoint", "interval": "week", "mixes": "true"},
    {"by": "language", "interval": "month"},
    {"by": "source", "interval": "month"},
]


def test_rollups_answer_exactly_what_the_items_answer(light_client, engine, shop) -> None:
    before = [light_client.get("/v1/trends", params=q).json() for q in QUERIES]
    assert {b["source"] for b in before} == {"items"}  # no rollups yet: computed from the items
    with session_scope(engine) as session:
        rebuild_rollups(session)
    after = [light_client.get("/v1/trends", params=q).json() for q in QUERIES]
    assert {a["source"] for a in after} == {"rollups"}
    for b, a in zip(before, after, strict=True):
        _same_rows(b["rows"], a["rows"])
    journey_items = light_client.get("/v1/journey", params={"channel": "survey"}).json()
    assert journey_items["source"] == "items"  # a filter: the rollups cannot answer


def test_new_tags_make_the_rollups_stale_until_refreshed(light_client, engine, shop) -> None:
    with session_scope(engine) as session:
        rebuild_rollups(session)
    write_rows(engine, [Row("customer", MONDAY + timedelta(days=3), touchpoint="delivery", score=-0.9, nps=0)])
    with session_scope(engine) as session:
        assert not rollups_current(session)
    stale = light_client.get("/v1/trends", params={"by": "touchpoint"}).json()
    assert stale["source"] == "items"  # never a stale answer: the items answer until the refresh
    with session_scope(engine) as session:
        result = refresh_rollups(session)
        assert result.days >= 1 and rollups_current(session)
    fresh = light_client.get("/v1/trends", params={"by": "touchpoint"}).json()
    assert fresh["source"] == "rollups"
    _same_rows(stale["rows"], fresh["rows"])


def test_trend_metrics_filters_and_codes(light_client, engine) -> None:
    topics = add_topics(engine, ["late delivery"])
    rows = []
    for i in range(10):  # week 1 at delivery: NPS 4 promoters, 3 passives, 3 detractors -> +10
        rows.append(Row("customer", MONDAY + timedelta(hours=i), touchpoint="delivery", channel="survey",
                        score=0.5 if i < 6 else -0.5, nps=(10, 9, 9, 10, 8, 7, 7, 3, 2, 0)[i],
                        csat=(5, 4, 4, 5, 3, 3, 2, 2, 1, 1)[i], stars=float(1 + i % 5),
                        topic_id=topics[0] if i < 5 else None, needs=("speed",) if i < 3 else (),
                        emotions=("anger",) if i >= 6 else ()))
    rows.append(Row("customer", MONDAY + timedelta(hours=1), touchpoint="checkout", channel="chat", score=0.9))
    write_rows(engine, rows)
    body = light_client.get("/v1/trends", params={"by": "touchpoint"}).json()
    delivery = next(r for r in body["rows"] if r["touchpoint"] == "delivery")
    assert delivery["n"] == 10 and delivery["nps"] == 10.0 and delivery["nps_n"] == 10
    assert delivery["csat"] == 0.4 and delivery["csat_n"] == 10
    assert delivery["net_sentiment"] == pytest.approx(0.2) and delivery["share_negative_cc"] == 0.4
    # the reported share is the shipped heads' estimate from that count (docs/api.md#shares)
    from feedback.analytics.shares import configured_estimator

    expected = configured_estimator().estimate(n=10, count=4, prob_sum=4)
    assert delivery["share_negative"] == pytest.approx(expected, abs=1e-4)
    assert body["share_method"] == configured_estimator().method
    assert delivery["mean_rating"] == 3.0 and delivery["share"] == pytest.approx(10 / 11, abs=1e-4)
    for metric in ("mean_sentiment", "net_sentiment", "share_negative", "nps", "csat", "mean_rating", "share"):
        assert delivery[f"{metric}_ci_low"] <= delivery[metric] <= delivery[f"{metric}_ci_high"]
    # filters on any dimension, labels included
    only_chat = light_client.get("/v1/trends", params={"by": "touchpoint", "channel": "chat"}).json()["rows"]
    assert [r["touchpoint"] for r in only_chat] == ["checkout"]
    angry = light_client.get("/v1/trends", params={"by": "touchpoint", "emotion": "anger"}).json()["rows"]
    assert [(r["touchpoint"], r["n"]) for r in angry] == [("delivery", 4)]
    by_topic = light_client.get("/v1/trends", params={"by": "topic"}).json()["rows"]
    assert {(r["topic"], r["value_code"], r["n"]) for r in by_topic} == {
        ("late delivery", str(topics[0]), 5), ("none", "none", 6)}
    by_need = light_client.get("/v1/trends", params={"by": "need", "mixes": "true"}).json()["rows"]
    assert by_need[0]["need"] == "speed" and by_need[0]["n"] == 3 and by_need[0]["need_mix"] == {"speed": 1.0}
    source = light_client.get("/v1/trends", params={"by": "touchpoint", "source": "test-customer"}).json()
    assert sum(r["n"] for r in source["rows"]) == 11
    assert light_client.get("/v1/trends", params={"by": "nonsense"}).status_code == 422


def test_journey_in_configured_order_with_the_worst_flagged(settings, engine, scoped_client) -> None:
    from api.main import create_app
    from feedback.config import TouchpointConfig

    configured = settings.model_copy(update={"models": settings.models.model_copy(update={"touchpoints": [
        TouchpointConfig(name="website", journey_stage="discover"),
        TouchpointConfig(name="checkout", journey_stage="purchase"),
        TouchpointConfig(name="delivery", journey_stage="receive"),
        TouchpointConfig(name="support", journey_stage="service"),
        TouchpointConfig(name="manager", audience="employee"),
    ]})})
    write_rows(engine, customer_rows(800, seed=2))
    client = TestClient(create_app(configured))
    client.headers.update(scoped_client("cx").headers)
    body = client.get("/v1/journey").json()
    steps = body["steps"]
    assert [s["touchpoint"] for s in steps] == ["website", "checkout", "delivery", "support"]
    assert [s["journey_stage"] for s in steps] == ["discover", "purchase", "receive", "service"]
    assert body["worst"]["touchpoint"] == "delivery" and body["worst"]["significant"]
    assert [s["worst"] for s in steps] == [False, False, True, False]
    delivery = steps[2]
    assert "anger" in delivery["emotions"] and set(delivery["needs"]) <= {"price", "speed", "reliability", "help"}
    assert delivery["nps_ci_low"] < delivery["nps"] < delivery["nps_ci_high"]


def _week(rows: list[Row], week: int, n: int, late_share: float, topics: list[int], seed: int) -> None:
    rng = random.Random(seed)
    for i in range(n):
        late = i < n * late_share
        touchpoint = "delivery" if late or i % 2 else "website"
        score = -0.7 if late else 0.4
        rows.append(Row("customer", MONDAY + timedelta(days=7 * week + i % 7, hours=i % 24),
                        touchpoint=touchpoint, score=score + rng.uniform(-0.1, 0.1),
                        nps=rng.choice((0, 2, 5)) if late else rng.choice((7, 9, 10)),
                        topic_id=topics[0] if late else topics[1]))


def test_compare_finds_a_significant_change_and_what_drove_it(light_client, engine) -> None:
    topics = add_topics(engine, ["late delivery", "great prices"])
    rows: list[Row] = []
    _week(rows, 0, 300, 0.1, topics, seed=1)
    _week(rows, 1, 300, 0.4, topics, seed=2)  # the late-delivery topic quadruples
    write_rows(engine, rows)
    body = light_client.get("/v1/compare", params={
        "period": "week", "at": (MONDAY + timedelta(days=9)).date().isoformat(), "metric": "nps"}).json()
    overall = body["rows"][0]
    assert overall["value_code"] is None and overall["significant"] and overall["change"] < -20
    assert overall["change_ci_low"] < overall["change"] < overall["change_ci_high"] < 0
    top = overall["drivers"][0]
    assert top["value"] == "late delivery" and top["contribution"] < 0 and top["mix_effect"] < 0
    assert sum(d["contribution"] for d in overall["drivers"]) == pytest.approx(overall["change"], abs=0.01)
    delivery = next(r for r in body["rows"] if r["value_code"] == "delivery")
    assert delivery["significant"] and delivery["drivers"][0]["value_code"] == str(topics[0])
    website = next(r for r in body["rows"] if r["value_code"] == "website")
    assert not website["significant"] and website["q_value"] >= website["p_value"]
    # any two ranges, and the volume metric
    explicit = light_client.get("/v1/compare", params={
        "baseline_start": MONDAY.isoformat(), "baseline_end": (MONDAY + timedelta(days=7)).isoformat(),
        "current_start": (MONDAY + timedelta(days=7)).isoformat(),
        "current_end": (MONDAY + timedelta(days=14)).isoformat(), "metric": "volume", "by": "topic"}).json()
    late = next(r for r in explicit["rows"] if r["value_code"] == str(topics[0]))
    assert late["baseline"]["n"] == 30 and late["current"]["n"] == 120 and late["significant"]
    assert light_client.get("/v1/compare").status_code == 400


def test_key_drivers_find_the_topic_that_drags_nps_down(light_client, engine) -> None:
    topics = add_topics(engine, ["late delivery", "great prices", "app bugs"])
    write_rows(engine, customer_rows(1500, seed=9, topics=topics))
    body = light_client.get("/v1/drivers", params={"outcome": "nps"}).json()
    assert body["n"] > 900 and body["regression"]["r_squared"] > 0
    late = next(d for d in body["drivers"] if d["dimension"] == "topic" and d["value_code"] == str(topics[0]))
    assert late["value"] == "late delivery" and late["impact"] < 0 and late["significant"]
    assert late["difference_ci_high"] < 0 and late["mean_with"] < late["mean_without"]
    delivery = next(d for d in body["drivers"] if d["dimension"] == "touchpoint" and d["value_code"] == "delivery")
    assert delivery["impact"] < 0 and delivery["significant"]
    references = body["regression"]["references"]
    assert set(references) == {"topic", "touchpoint"}
    assert all(d["coefficient"] == 0.0 for d in body["drivers"] if d["reference"])
    assert abs(body["drivers"][0]["impact"]) >= abs(body["drivers"][-1]["impact"])
    rating = light_client.get("/v1/drivers", params={"outcome": "rating", "dimensions": ["need"]}).json()
    assert {d["dimension"] for d in rating["drivers"]} <= {"need"}


def test_quotes_are_representative_and_redacted(light_client, engine) -> None:
    openings = ("The courier left the parcel in the rain again", "Delivery was two days late",
                "Nobody told me the van was delayed", "My order arrived damaged")
    rows = [Row("customer", MONDAY + timedelta(hours=i), touchpoint="delivery", score=-0.6,
                text=f"{openings[i % 4]}, write to me at jo{i}@example.com or call +44 20 7946 09{i:02d}")
            for i in range(12)]
    rows.append(Row("customer", MONDAY, touchpoint="delivery", score=0.8, text="Lovely quick delivery, thanks a lot!"))
    write_rows(engine, rows)
    body = light_client.get("/v1/quotes", params={"touchpoint": "delivery", "sentiment": "negative",
                                                  "limit": 3}).json()
    assert len(body["quotes"]) == 3 and body["pool"] == 12
    for quote in body["quotes"]:
        assert "@example.com" not in quote["text"] and "[EMAIL]" in quote["text"]
        assert "7946" not in quote["text"] and quote["sentiment"] == "negative" and quote["id"]
    assert len({q["text"] for q in body["quotes"]}) == 3  # no two quotes alike, even once redacted


@pytest.mark.slow
def test_the_tagging_job_keeps_rollups_current(settings, engine, tagger, light_client) -> None:
    from jobs.tasks import tag_pending

    def untagged(n: int, start, seed: int) -> list[Row]:
        rng = random.Random(seed)
        texts = ("The courier was late and rude", "Checkout was quick and easy", "Support never replied",
                 "Great prices on the sofa")
        return [Row("customer", start + timedelta(hours=i), touchpoint=None, score=None,
                    text=rng.choice(texts), nps=rng.randrange(11)) for i in range(n)]

    write_rows(engine, untagged(24, MONDAY, 1))  # a backfill: refreshed once, at the end
    tag_pending(engine, tagger, batch_size=8)
    with session_scope(engine) as session:
        assert rollups_current(session)
        from sqlalchemy import select

        from feedback.models import Tag

        stored = session.execute(select(Tag.p_negative, Tag.sentiment_probs)).all()
        assert len(stored) == 24  # the calibrated p(negative) that estimated shares sum
        assert all(p is not None and abs(p - probs["negative"]) < 1e-4 for p, probs in stored)
    first = light_client.get("/v1/trends", params={"by": "touchpoint", "interval": "day"}).json()
    assert first["source"] == "rollups" and sum(r["n"] for r in first["rows"]) == 24
    write_rows(engine, untagged(6, MONDAY + timedelta(days=20), 2))  # recent feedback: after each batch
    tag_pending(engine, tagger, batch_size=4)
    second = light_client.get("/v1/trends", params={"by": "touchpoint", "interval": "day"}).json()
    assert second["source"] == "rollups" and sum(r["n"] for r in second["rows"]) == 30
    with session_scope(engine) as session:
        rebuild_rollups(session)
    _same_rows(second["rows"], light_client.get("/v1/trends", params={"by": "touchpoint",
                                                                     "interval": "day"}).json()["rows"])


def test_a_topic_merge_invalidates_the_rollups(light_client, engine, shop) -> None:
    from sqlalchemy import update

    from feedback.models import Tag, Topic

    with session_scope(engine) as session:
        rebuild_rollups(session)
    before = {r["value_code"]: r["n"] for r in light_client.get("/v1/trends", params={
        "by": "topic", "interval": "month", "start": MONDAY.isoformat()}).json()["rows"] if r["period"] == "2026-06-01"}
    with session_scope(engine) as session:  # what a merge does: items move, the topic changes
        session.execute(update(Tag).where(Tag.topic_id == shop[1]).values(topic_id=shop[0]))
        topic = session.get(Topic, shop[1])
        topic.status, topic.merged_into_id = "merged", shop[0]
    with session_scope(engine) as session:
        assert not rollups_current(session)
    served = light_client.get("/v1/trends", params={"by": "topic", "interval": "month",
                                                    "start": MONDAY.isoformat()}).json()
    assert served["source"] == "items"
    merged = {r["value_code"]: r["n"] for r in served["rows"] if r["period"] == "2026-06-01"}
    assert str(shop[1]) not in merged and merged[str(shop[0])] == before[str(shop[0])] + before[str(shop[1])]
    with session_scope(engine) as session:
        refresh_rollups(session)
        assert rollups_current(session)
    params = {"by": "topic", "interval": "month", "start": MONDAY.isoformat()}
    fresh = light_client.get("/v1/trends", params=params).json()
    assert fresh["source"] == "rollups"
    _same_rows(served["rows"], fresh["rows"])
