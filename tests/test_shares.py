"""Estimated shares through the real app: the heads' estimator (pacc here) gives share_negative,
the count stays in share_negative_cc, the rollups agree with the items, and the digest and its
alerts use the estimate. The estimator comes the way it does in production: from the
`quantification` block of the heads.json in the configured heads folder."""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from pathlib import Path

import pytest
from analytics_data import MONDAY, Row, add_topics, write_rows
from sqlalchemy import create_engine, select, text

from classifiers.quantify import COUNT_NEGATIVE, ShareEstimator, load_share_estimator, share_estimator
from feedback.analytics.rollups import rebuild_rollups
from feedback.db import session_scope
from feedback.insights.alerts import AlertPolicy, negative_share_alerts
from feedback.insights.repository import CellWeek
from feedback.insights.significance import Moments

TPR, FPR = 0.8, 0.1
Z = 1.959964
WEEK = {"start": MONDAY.isoformat(), "end": (MONDAY + timedelta(weeks=1)).isoformat()}

# (touchpoint, label, p_negative, items): delivery's neutral texts carry a lot of p(negative) that
# counting ignores; website's few negatives are about all there is. support's tags predate
# p_negative (None): they count their label as 0/1.
WEEK_ONE = (("delivery", "negative", 0.9, 10), ("delivery", "neutral", 0.35, 30),
            ("website", "negative", 0.7, 4), ("website", "positive", 0.05, 36),
            ("support", "negative", None, 1), ("support", "neutral", None, 1))
WEEK_TWO = (("delivery", "negative", 0.9, 10), ("delivery", "neutral", 0.6, 30),
            ("website", "negative", 0.7, 4), ("website", "positive", 0.05, 36))


def _rows(spec, week: int) -> list[Row]:
    rows, i = [], 0
    for touchpoint, label, p, count in spec:
        for _ in range(count):
            score = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}[label]
            rows.append(Row("customer", MONDAY + timedelta(weeks=week, hours=1 + i % 150),
                            touchpoint=touchpoint, score=score, sentiment=label, p_negative=p))
            i += 1
    return rows


def _by_hand(spec, touchpoint: str | None = None) -> dict[str, float]:
    """pacc and classify-and-count of the spec's items (of one touchpoint), from the formulas."""
    ps, labels = [], []
    for tp, label, p, count in spec:
        if touchpoint is None or tp == touchpoint:
            ps += [(p if p is not None else float(label == "negative"))] * count
            labels += [label] * count
    n = len(ps)
    mean = sum(ps) / n
    var = (sum(p * p for p in ps) - n * mean * mean) / (n - 1)
    half = Z * math.sqrt(var / n) / (TPR - FPR)
    estimate = min(1.0, max(0.0, (mean - FPR) / (TPR - FPR)))
    return {"estimate": estimate, "low": max(0.0, estimate - half), "high": min(1.0, estimate + half),
            "unclipped": (mean - FPR) / (TPR - FPR), "counted": labels.count("negative") / n}


@pytest.fixture
def pacc(settings, tmp_path: Path) -> ShareEstimator:
    """Heads whose heads.json says: estimate share negative by pacc with tpr 0.8, fpr 0.1."""
    heads = tmp_path / "heads"
    heads.mkdir()
    block = {"negative": {"label": "negative", "method": "pacc", "tpr": TPR, "fpr": FPR}}
    (heads / "heads.json").write_text(json.dumps({"name": "test", "quantification": block}))
    settings.models.heads_dir = str(heads)
    return load_share_estimator(heads)


@pytest.fixture
def shop(engine) -> None:
    write_rows(engine, _rows(WEEK_ONE, 0) + _rows(WEEK_TWO, 1))


def test_heads_json_names_the_estimator_and_older_heads_count(tmp_path: Path) -> None:
    shipped = json.loads((Path(__file__).parent.parent / "classifiers/weights/heads.json").read_text())
    assert load_share_estimator() == share_estimator(shipped)  # cc until heads carry a block
    assert load_share_estimator(tmp_path) == COUNT_NEGATIVE  # no heads.json
    (tmp_path / "heads.json").write_text(json.dumps({"name": "old"}))
    assert load_share_estimator(tmp_path) == COUNT_NEGATIVE
    block = {"negative": {"label": "negative", "method": "acc", "tpr": 0.7, "fpr": 0.2}}
    (tmp_path / "heads.json").write_text(json.dumps({"name": "new", "quantification": block}))
    os.utime(tmp_path / "heads.json", ns=(1, 10**18))  # new heads, a new stamp: read again
    assert load_share_estimator(str(tmp_path)) == ShareEstimator("negative", "acc", 0.7, 0.2)


def test_trends_report_the_estimate_and_keep_the_count(pacc, light_client, engine, shop) -> None:
    assert pacc == ShareEstimator("negative", "pacc", TPR, FPR)
    body = light_client.get("/v1/trends", params={"by": "touchpoint", "interval": "week", **WEEK}).json()
    assert body["share_method"] == "pacc" and body["share_rates"] == {"tpr": TPR, "fpr": FPR}
    rows = {r["touchpoint"]: r for r in body["rows"]}
    for touchpoint in ("delivery", "website", "support"):
        hand, row = _by_hand(WEEK_ONE, touchpoint), rows[touchpoint]
        assert row["share_negative"] == pytest.approx(hand["estimate"], abs=1e-4), touchpoint
        assert row["share_negative_cc"] == pytest.approx(hand["counted"], abs=1e-4), touchpoint
        if touchpoint != "support":  # two items: the interval is (nearly) everything
            assert row["share_negative_ci_low"] == pytest.approx(hand["low"], abs=1e-4)
            assert row["share_negative_ci_high"] == pytest.approx(hand["high"], abs=1e-4)
    # counting under-reports delivery (0.25) and over-reports website (0.10)
    assert rows["delivery"]["share_negative"] > 0.5 > rows["delivery"]["share_negative_cc"]
    assert rows["website"]["share_negative"] < 0.05 < rows["website"]["share_negative_cc"]


def test_rollups_and_items_give_the_same_estimates(pacc, light_client, engine, shop) -> None:
    queries = [{"by": "touchpoint", "interval": "week"}, {"by": "touchpoint", "interval": "day", **WEEK}]
    before = [light_client.get("/v1/trends", params=q).json() for q in queries]
    export_before = light_client.get("/v1/aggregates", params={"dimension": "touchpoint"}).json()
    with session_scope(engine) as session:
        rebuild_rollups(session)
    after = [light_client.get("/v1/trends", params=q).json() for q in queries]
    export_after = light_client.get("/v1/aggregates", params={"dimension": "touchpoint"}).json()
    assert {b["source"] for b in before} == {"items"} and {a["source"] for a in after} == {"rollups"}
    assert export_before["source"] == "items" and export_after["source"] == "rollups"
    keys = ("share_negative", "share_negative_ci_low", "share_negative_ci_high", "share_negative_cc")
    def flat(rows: list[dict]) -> list[float]:
        return [r[k] for r in rows for k in keys]

    for b, a in zip(before, after, strict=True):
        assert flat(b["rows"]) == pytest.approx(flat(a["rows"]), abs=1e-4)
    assert export_after["share_method"] == "pacc"
    assert export_after["columns"][-4:] == ["share_negative_cc", "share_negative_cc_ci_low",
                                            "share_negative_cc_ci_high", "updated_at"]
    assert flat(export_before["rows"]) == pytest.approx(flat(export_after["rows"]), abs=1e-4)
    second = {r["value_code"]: r for r in export_after["rows"] if r["period_start"] != MONDAY.date().isoformat()}
    assert second["delivery"]["share_negative"] == pytest.approx(_by_hand(WEEK_TWO, "delivery")["estimate"], abs=1e-4)
    csv = light_client.get("/v1/aggregates", params={"dimension": "touchpoint", "format": "csv"})
    assert csv.headers["X-Share-Method"] == "pacc"


def test_compare_and_journey_use_the_estimate(pacc, light_client, engine, shop) -> None:
    params = {"by": "touchpoint", "metric": "share_negative", "baseline_start": MONDAY.isoformat(),
              "baseline_end": (MONDAY + timedelta(weeks=1)).isoformat(),
              "current_start": (MONDAY + timedelta(weeks=1)).isoformat(),
              "current_end": (MONDAY + timedelta(weeks=2)).isoformat()}
    body = light_client.get("/v1/compare", params=params).json()
    assert body["share_method"] == "pacc"
    row = next(r for r in body["rows"] if r["value_code"] == "delivery")
    base, cur = _by_hand(WEEK_ONE, "delivery"), _by_hand(WEEK_TWO, "delivery")
    assert row["baseline"]["value"] == pytest.approx(base["estimate"], abs=1e-4)
    assert row["current"]["value"] == pytest.approx(cur["estimate"], abs=1e-4)
    assert row["test"] == "welch_t"
    assert row["change"] == pytest.approx(cur["unclipped"] - base["unclipped"], abs=1e-4)
    assert row["significant"]  # 0.35 -> 0.6 p(negative) on 30 of 40 items, no label changed
    journey = light_client.get("/v1/journey", params={"metric": "share_negative", **WEEK}).json()
    assert journey["share_method"] == "pacc"
    step = next(s for s in journey["steps"] if s["touchpoint"] == "delivery")
    assert step["share_negative"] == pytest.approx(base["estimate"], abs=1e-4)
    assert step["share_negative_cc"] == pytest.approx(base["counted"], abs=1e-4)


def test_the_digest_reports_and_keeps_the_count(pacc, settings, engine, shop) -> None:
    from feedback.insights.digest import build_payload
    from feedback.insights.weeks import week_label

    with session_scope(engine) as session:
        payload = build_payload(session, audience="customer", week=week_label(MONDAY.date()), settings=settings)
    assert payload["share_method"] == "pacc" and "pacc" in payload["method"]["share_negative"]
    metric = next(m for m in payload["headline"]["metrics"] if m["key"] == "share_negative")
    hand = _by_hand(WEEK_ONE)
    assert metric["this"] == pytest.approx(hand["estimate"], abs=1e-4)
    assert metric["ci95"] == pytest.approx([hand["low"], hand["high"]], abs=1e-4)
    assert metric["counted"]["this"] == pytest.approx(hand["counted"], abs=1e-4)
    assert metric["method"] == "pacc" and metric["label"] == "Share negative (estimated)"
    delivery = next(s for s in payload["journey"] if s["touchpoint"] == "delivery")
    assert delivery["share_negative"] == pytest.approx(_by_hand(WEEK_ONE, "delivery")["estimate"], abs=1e-4)
    assert delivery["share_negative_cc"] == pytest.approx(0.25)


def test_topic_sentiment_is_estimated(pacc, light_client, engine) -> None:
    [late, prices] = add_topics(engine, ["late delivery", "great prices"])
    rows = _rows(WEEK_ONE, 0)
    for row in rows:
        row.topic_id = late if row.touchpoint == "delivery" else prices
    write_rows(engine, rows)
    body = light_client.get("/v1/topics", params={"audience": "customer", "interval": "week"}).json()
    topic = next(t for t in body["topics"] if t["id"] == late)
    hand = _by_hand(WEEK_ONE, "delivery")
    assert topic["sentiment"]["share_method"] == "pacc"
    assert topic["sentiment"]["share_negative"] == pytest.approx(hand["estimate"], abs=1e-4)
    assert topic["sentiment"]["share_negative_cc"] == pytest.approx(hand["counted"], abs=1e-4)
    [week] = [p for p in topic["trend"]["periods"] if p["n"]]
    assert week["share_negative"] == pytest.approx(hand["estimate"], abs=1e-4)
    assert week["share_negative_cc"] == pytest.approx(hand["counted"], abs=1e-4)


def _cell(n: int, negative: int, p_mean: float, spread: float = 0.05) -> CellWeek:
    """n tagged items, `negative` labelled negative, p(negative) around p_mean."""
    half = n // 2
    ps = [p_mean - spread] * half + [p_mean + spread] * (n - half)
    return CellWeek(n=n, respondents=n, tagged=n, negative=negative,
                    p_negative=Moments(n, sum(ps), sum(p * p for p in ps)))


def test_alerts_follow_the_estimate_not_the_count() -> None:
    """Same labels every week, but this week's texts carry far more p(negative): counting sees
    nothing, the estimate sees the rise (and a rise in counts alone is no alert under pacc)."""
    policy = AlertPolicy(min_n=20)
    base = [_cell(100, 20, 0.2) for _ in range(6)]
    cells = {("touchpoint", "delivery"): (_cell(100, 20, 0.45), base)}
    pacc = ShareEstimator("negative", "pacc", TPR, FPR)
    assert negative_share_alerts(cells, week="2026-W23", policy=policy, estimator=COUNT_NEGATIVE) == []
    [alert] = negative_share_alerts(cells, week="2026-W23", policy=policy, estimator=pacc)
    reading = alert.measures[0]
    assert reading["share_method"] == "pacc" and reading["share_counted"] == reading["baseline_counted"] == 0.2
    assert alert.observed == pytest.approx((0.45 - FPR) / (TPR - FPR), abs=1e-4)
    assert alert.baseline == pytest.approx((0.2 - FPR) / (TPR - FPR), abs=1e-4)
    assert "labelled negative" in alert.message and "Welch" in alert.test
    counted_only = {("touchpoint", "delivery"): (_cell(100, 45, 0.2), base)}
    assert negative_share_alerts(counted_only, week="2026-W23", policy=policy, estimator=pacc) == []
    assert negative_share_alerts(counted_only, week="2026-W23", policy=policy, estimator=COUNT_NEGATIVE)


def test_migration_backfills_p_negative_and_marks_rollups_for_a_rebuild(tmp_path: Path) -> None:
    from feedback.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "2b11f47ab5ef")  # the schema before p_negative
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sources (id, name, connector, audience, config, enabled, created_at, "
                          "updated_at) VALUES (1, 's', 'test', 'customer', '{}', 1, '2026-06-01', '2026-06-01')"))
        probs = ['{"negative": 0.8125, "neutral": 0.1, "positive": 0.0875}', '{}',
                 '{"negative": 0.05, "neutral": 0.9, "positive": 0.05}']
        for i, raw in enumerate(probs, start=1):
            conn.execute(text(
                "INSERT INTO feedback_items (id, source_id, external_id, content_hash, audience, text, created_at, "
                "ingested_at, updated_at, extra) VALUES (:i, 1, :e, 'h', 'customer', 't', '2026-06-01', "
                "'2026-06-01', '2026-06-01', '{}')"), {"i": i, "e": f"x{i}"})
            conn.execute(text(
                "INSERT INTO tags (item_id, model, model_version, model_versions, sentiment, sentiment_score, "
                "sentiment_probs, emotions, emotion_scores, cx_emotions, needs, need_scores, flags, tagged_at) "
                "VALUES (:i, 'm', '1', '{}', 'neutral', 0, :p, '[]', '{}', '[]', '[]', '{}', '[]', '2026-06-01')"),
                {"i": i, "p": raw})
        conn.execute(text("INSERT INTO analytics_rollup_state (audience, tags_watermark, topics_stamp, "
                          "refreshed_at) VALUES ('customer', '2026-06-01', '1|x|3', '2026-06-01')"))
    upgrade(url)
    with engine.connect() as conn:
        filled = dict(conn.execute(text("SELECT item_id, p_negative FROM tags ORDER BY item_id")).all())
        stamp = conn.execute(select(text("topics_stamp")).select_from(text("analytics_rollup_state"))).scalar()
    assert filled == {1: 0.8125, 2: None, 3: 0.05}
    assert stamp is None  # rollups_current() is false until the next refresh rebuilds them
