"""Corrections (issue 17): stored beside the model's tags, served by analytics at once, audited,
withdrawn; bad input changes nothing; scopes; `voc corrections import|list`. Both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from analytics_data import MONDAY, Row, add_topics, team_rows, write_rows
from sqlalchemy import func, select
from typer.testing import CliRunner

from feedback.analytics.rollups import rebuild_rollups, rollups_current
from feedback.db import session_scope
from feedback.models import Correction, CorrectionLabel, Tag, TagLabel

WEEK = {"by": "touchpoint", "interval": "week"}


@pytest.fixture
def shop(engine) -> list[int]:
    """Ten delivery items (6 positive, 4 negative; needs, emotions) and one at checkout, one week."""
    rows = [Row("customer", MONDAY + timedelta(hours=i), touchpoint="delivery", score=0.6 if i < 6 else -0.6,
                needs=("functional",) if i < 3 else (), emotions=("anger",) if i >= 6 else ("joy",))
            for i in range(10)]
    rows.append(Row("customer", MONDAY + timedelta(hours=2), touchpoint=None, score=0.9))
    ids = write_rows(engine, rows)
    with session_scope(engine) as session:  # the untouched item's model touchpoint: inferred checkout
        session.get(Tag, ids[-1]).touchpoint = "checkout"
        rebuild_rollups(session)
    return ids


def _delivery(client) -> dict:
    body = client.get("/v1/trends", params=WEEK).json()
    return body, next(r for r in body["rows"] if r["touchpoint"] == "delivery")


def test_a_correction_changes_the_trend_at_once_and_withdrawing_restores_it(light_client, engine, shop) -> None:
    body, before = _delivery(light_client)
    assert body["source"] == "rollups" and body["corrected_labels"] == 0
    assert before["net_sentiment"] == pytest.approx(0.2)
    response = light_client.post(f"/v1/feedback/{shop[0]}/corrections", json={"kind": "sentiment", "label": "negative"})
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["model_label"] == "positive" and made["created_by"] == "test admin" and made["label"] == "negative"
    body, after = _delivery(light_client)
    # 5 positive, 5 negative now; the rollups were refreshed with the correction, not bypassed
    assert body["source"] == "rollups" and body["corrected_labels"] == 1
    assert after["net_sentiment"] == pytest.approx(0.0) and after["n"] == 10
    with session_scope(engine) as session:
        assert rollups_current(session)
        assert session.get(Tag, shop[0]).sentiment == "positive"  # the model's tag is untouched
    # the items path agrees with the rollups
    items_body = light_client.get("/v1/trends", params={**WEEK, "channel": "survey"}).json()
    assert items_body["source"] == "items" and items_body["corrected_labels"] == 1
    assert next(r for r in items_body["rows"] if r["touchpoint"] == "delivery")["net_sentiment"] == pytest.approx(0.0)

    withdrawn = light_client.delete(f"/v1/corrections/{made['id']}")
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_by"] == "test admin"
    body, restored = _delivery(light_client)
    assert body["corrected_labels"] == 0 and restored["net_sentiment"] == pytest.approx(0.2)
    assert light_client.delete(f"/v1/corrections/{made['id']}").status_code == 409  # already withdrawn
    listed = light_client.get("/v1/corrections", params={"include_withdrawn": "true"}).json()["corrections"]
    assert [c["id"] for c in listed] == [made["id"]] and listed[0]["withdrawn_at"] is not None
    assert light_client.get("/v1/corrections").json()["corrections"] == []


def test_touchpoint_topic_need_and_emotion_corrections_reach_every_view(light_client, engine, shop) -> None:
    topics = add_topics(engine, ["late parcels"])
    with session_scope(engine) as session:  # a new topic invalidates the rollups: build them again
        rebuild_rollups(session)
    item = shop[-1]  # inferred checkout, no need, no emotion
    batch = [{"item_id": item, "kind": "touchpoint", "label": "delivery"},
             {"item_id": item, "kind": "topic", "label": str(topics[0])},
             {"item_id": item, "kind": "need", "labels": ["social", "emotional"]},
             {"item_id": item, "kind": "emotion", "labels": ["disappointment"]}]
    response = light_client.post("/v1/corrections", json={"corrections": batch})
    assert response.status_code == 201, response.text
    assert response.json()["corrections"][2]["label"] == "emotional|social"
    body, delivery = _delivery(light_client)
    assert delivery["n"] == 11 and body["corrected_labels"] == 4
    assert not any(r["touchpoint"] == "checkout" for r in body["rows"])
    by_topic = light_client.get("/v1/trends", params={"by": "topic", "interval": "week"}).json()["rows"]
    assert next(r for r in by_topic if r["value_code"] == str(topics[0]))["n"] == 1
    def counts(by: str) -> dict[str, int]:
        rows = light_client.get("/v1/trends", params={"by": by, "interval": "week"}).json()["rows"]
        return {r["value_code"]: r["n"] for r in rows}

    needs = counts("need")
    assert needs == {"functional": 3, "social": 1, "emotional": 1}
    emotions = counts("emotion")
    assert emotions == {"joy": 6, "anger": 4, "disappointment": 1}
    cx = counts("cx_emotion")
    assert cx == {"disappointment": 1}  # a corrected emotion carries its CX group
    filtered = light_client.get("/v1/trends", params={**WEEK, "need": "social"}).json()
    assert filtered["rows"][0]["n"] == 1 and filtered["corrected_labels"] == 4
    mixes = light_client.get("/v1/trends", params={**WEEK, "mixes": "true"}).json()
    assert mixes["source"] == "rollups"
    for other in ("/v1/journey", "/v1/quotes", "/v1/drivers"):
        answer = light_client.get(other)
        assert answer.status_code == 200 and answer.json()["corrected_labels"] == 4, (other, answer.text)
    export = light_client.get("/v1/aggregates", params={"dimension": "touchpoint"})
    assert export.headers["X-Corrected-Labels"] == "4" and export.json()["corrected_labels"] == 4
    with session_scope(engine) as session:  # the model's labels stay as they were
        assert session.scalar(select(func.count()).select_from(TagLabel).where(TagLabel.item_id == item)) == 0
        assert session.get(Tag, item).touchpoint == "checkout" and session.get(Tag, item).topic_id is None
        assert session.scalar(select(func.count()).select_from(CorrectionLabel)) == 4  # 2 needs, emotion, its CX


def test_bad_input_gets_a_clear_4xx_and_changes_nothing(light_client, engine, shop) -> None:
    ok = {"item_id": shop[0], "kind": "sentiment", "label": "negative"}
    cases = [
        ({"item_id": 999999, "kind": "sentiment", "label": "negative"}, 404, "no feedback item"),
        ({"item_id": shop[0], "kind": "sentiment", "label": "furious"}, 422, "not a sentiment"),
        ({"item_id": shop[0], "kind": "sentiment", "label": "delivery"}, 422, "sentiments: negative"),
        ({"item_id": shop[0], "kind": "need", "labels": ["price"]}, 422, "need labels: functional"),
        ({"item_id": shop[0], "kind": "mood", "label": "negative"}, 422, "kind"),
        ({"item_id": shop[0], "kind": "topic", "label": "12345"}, 422, "not an active customer topic"),
        ({"item_id": shop[-1], "kind": "touchpoint", "label": "manager"}, 422, "not a touchpoint of customer"),
        ({"item_id": shop[0], "kind": "touchpoint", "label": "checkout"}, 422, "source gave its touchpoint"),
        ({"item_id": shop[0], "kind": "sentiment", "label": "negative", "labels": ["x"]}, 422, "not both"),
        ({"source": "test-customer", "external_id": "nope", "kind": "sentiment", "label": "negative"}, 404,
         "no feedback item 'nope'"),
    ]
    for bad, status, words in cases:
        response = light_client.post("/v1/corrections", json={"corrections": [ok, bad]})
        assert response.status_code == status and words in response.text, (bad, response.status_code, response.text)
    twice = light_client.post("/v1/corrections", json={"corrections": [ok, ok]})
    assert twice.status_code == 409 and "two sentiment corrections" in twice.text
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Correction)) == 0
    assert light_client.post("/v1/corrections", json={"corrections": [ok]}).status_code == 201
    duplicate = light_client.post(f"/v1/feedback/{shop[0]}/corrections", json={"kind": "sentiment",
                                                                               "label": "negative"})
    assert duplicate.status_code == 409 and "already has this sentiment correction" in duplicate.text
    # a different label replaces the active one, which is withdrawn (kept as the audit)
    by_key = light_client.post("/v1/corrections", json={"corrections": [
        {"source": "test-customer", "external_id": f"x{shop[0]}", "kind": "sentiment", "label": "neutral"}]})
    assert by_key.status_code == 201, by_key.text
    history = light_client.get("/v1/corrections", params={"item_id": shop[0], "include_withdrawn": "true"}).json()
    assert [(c["label"], c["withdrawn_by"]) for c in history["corrections"]] == [("negative", "test admin"),
                                                                                ("neutral", None)]


def test_scopes_cx_for_customer_items_hr_for_employee_items(scoped_client, engine, shop) -> None:
    employee = write_rows(engine, team_rows("ops", 6, weeks=1))[0]
    cx, hr, bi = scoped_client("cx"), scoped_client("hr"), scoped_client("bi")
    body = {"kind": "sentiment", "label": "negative"}
    assert cx.post(f"/v1/feedback/{employee}/corrections", json=body).status_code == 404  # looks absent
    assert bi.post(f"/v1/feedback/{shop[0]}/corrections", json=body).status_code == 403
    assert scoped_client().post(f"/v1/feedback/{shop[0]}/corrections", json=body).status_code == 401
    made = hr.post(f"/v1/feedback/{employee}/corrections", json=body)
    assert made.status_code == 201 and made.json()["created_by"] == "hr"
    assert cx.post(f"/v1/feedback/{shop[0]}/corrections", json=body).status_code == 201
    assert [c["audience"] for c in cx.get("/v1/corrections").json()["corrections"]] == ["customer"]
    assert cx.delete(f"/v1/corrections/{made.json()['id']}").status_code == 404
    assert hr.delete(f"/v1/corrections/{made.json()['id']}").status_code == 200


def test_employee_trends_use_corrections_too(light_client, engine) -> None:
    ids = write_rows(engine, team_rows("ops", 12, weeks=1))
    params = {"audience": "employee", "by": "org_unit", "interval": "week"}
    before = light_client.get("/v1/trends", params=params).json()
    negative_before = before["rows"][0]["share_negative_cc"]
    for item in ids[:3]:
        assert light_client.post(f"/v1/feedback/{item}/corrections",
                                 json={"kind": "sentiment", "label": "negative"}).status_code == 201
    after = light_client.get("/v1/trends", params=params).json()
    assert after["corrected_labels"] == 3 and after["rows"][0]["share_negative_cc"] > negative_before


def test_cli_import_and_list(settings, engine, shop, tmp_path, monkeypatch) -> None:
    from jobs.cli import app

    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    from feedback.config import get_settings

    get_settings.cache_clear()
    good = tmp_path / "labels.csv"
    good.write_text(f"item_id,source,external_id,kind,label\n{shop[0]},,,sentiment,negative\n"
                    f",test-customer,x{shop[1]},need,social|functional\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"item_id,kind,label\n{shop[2]},sentiment,negative\n{shop[3]},sentiment,awful\n")
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["corrections", "import", str(bad), "--by", "ana"])
        assert result.exit_code == 1 and "awful" in result.output and "line 3" in result.output
        result = runner.invoke(app, ["corrections", "import", str(good), "--by", "ana"])
        assert result.exit_code == 0, result.output
        listed = runner.invoke(app, ["corrections", "list", "--json"])
    finally:
        get_settings.cache_clear()
    rows = [line for line in listed.output.splitlines() if line.startswith("{")]
    assert len(rows) == 2 and '"by": "ana"' in rows[0] and '"label": "functional|social"' in rows[1]


def test_answers_say_which_model_version_their_tags_rest_on(light_client, engine, shop) -> None:
    """One version everywhere: read from the index, share 1, not live (the test tags are "0", not
    the shipped version). Mid re-tag after a promotion: each version's share, the live one marked;
    trends, journey, quotes, drivers, the BI export (body and header) and the digest all say so."""
    from datetime import UTC, datetime

    from feedback.analytics.served import tag_versions
    from feedback.insights.digest import build_payload
    from feedback.insights.weeks import week_label
    from feedback.models import ModelVersion

    body = light_client.get("/v1/trends", params=WEEK).json()
    assert body["model_versions"] == [{"version": "0", "share": 1.0, "live": False}]
    with session_scope(engine) as session:
        session.add(ModelVersion(name="adapted-1", base="shipped", status="live", path="/nowhere",
                                 detail={"tag_version": "adapted-1"}, promoted_at=datetime.now(UTC)))
        for item_id in shop[:3]:  # three of eleven re-tagged by the live version so far
            session.get(Tag, item_id).model_version = "adapted-1"
    with session_scope(engine) as session:
        assert tag_versions(session) == ["0", "adapted-1"]
    mixed = [{"version": "0", "share": round(8 / 11, 4), "items": 8, "live": False},
             {"version": "adapted-1", "share": round(3 / 11, 4), "items": 3, "live": True}]
    for path, params in (("/v1/trends", {**WEEK, "channel": "survey"}), ("/v1/journey", {}),
                         ("/v1/quotes", {}), ("/v1/drivers", {})):
        answer = light_client.get(path, params=params)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["model_versions"] == mixed, path
    # a slice of only re-tagged items rests on the live version alone
    only = light_client.get("/v1/trends", params={**WEEK, "touchpoint": "delivery",
                                                  "end": (MONDAY + timedelta(hours=2, minutes=30)).isoformat()})
    assert [v["version"] for v in only.json()["model_versions"]] == ["adapted-1"]
    export = light_client.get("/v1/aggregates", params={"format": "csv"})
    assert export.status_code == 200 and export.headers["X-Model-Versions"] == "0,adapted-1"
    assert light_client.get("/v1/aggregates").json()["model_versions"] == mixed
    with session_scope(engine) as session:
        from feedback.config import Settings

        payload = build_payload(session, audience="customer", week=week_label(MONDAY.date()),
                                settings=Settings(database_url=str(engine.url), _env_file=None))
    assert payload["provenance"]["model_versions"] == mixed
    assert "re-tagging to the live version in progress" in payload["method"]["tags"]


def test_employee_answers_name_model_versions_without_counts(light_client, engine) -> None:
    """Counts or shares of versions in an employee slice could tell a small group's size: versions only."""
    ids = write_rows(engine, team_rows("warehouse", 6))
    with session_scope(engine) as session:
        session.get(Tag, ids[0]).model_version = "adapted-1"
    body = light_client.get("/v1/trends", params={"audience": "employee", "by": "org_unit"}).json()
    assert body["model_versions"] == [{"version": "0", "live": False}, {"version": "adapted-1", "live": False}]
