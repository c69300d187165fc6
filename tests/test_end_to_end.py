"""The whole path on the demo data: generated file → ingest → tag (real models) → /v1/trends.

Checks that the planted delivery story surfaces: delivery sentiment falls after the new courier.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from feedback.apikeys import create_key
from feedback.db import session_scope
from feedback.demo.stories import get_story

pytestmark = pytest.mark.slow


def _weighted(rows: list[dict], key: str) -> float:
    return sum(r[key] * r["n_tagged"] for r in rows) / sum(r["n_tagged"] for r in rows)


def test_demo_file_to_trends_shows_the_delivery_drop(tagged_demo, tagger) -> None:
    story = get_story("delivery_courier")
    stats = tagged_demo["ingest"]
    assert stats.new == tagged_demo["rows"] and stats.dead == 0
    assert tagged_demo["tagged"].tagged == stats.new and tagged_demo["tagged"].remaining == 0

    settings = tagged_demo["settings"]
    with session_scope(tagged_demo["engine"]) as session:
        key = create_key(session, name="cx lead", scopes=["cx"]).secret_key
    with TestClient(create_app(settings, tagger=tagger)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        body = client.get("/v1/trends", params={"by": "touchpoint", "interval": "week"}).json()
    rows = [r for r in body["rows"] if r["n_tagged"]]
    delivery = [r for r in rows if r["touchpoint"] == "delivery"]
    before = [r for r in delivery if r["period_label"] < story.starts_week]
    after = [r for r in delivery if r["period_label"] >= story.starts_week]
    assert len(before) >= 6 and len(after) >= 6

    drop = _weighted(before, "mean_sentiment") - _weighted(after, "mean_sentiment")
    rise = _weighted(after, "share_negative") - _weighted(before, "share_negative")
    # The planted story moves the share of negative delivery texts from ~18% to ~65%.
    assert drop >= 0.2, f"delivery sentiment fell by only {drop:.2f}"
    assert rise >= 0.15, f"delivery share negative rose by only {rise:.2f}"
    # The other touchpoints do not move like that: the drop is delivery's own.
    checkout = [r for r in rows if r["touchpoint"] == "checkout"]
    checkout_move = abs(_weighted([r for r in checkout if r["period_label"] < story.starts_week], "mean_sentiment")
                        - _weighted([r for r in checkout if r["period_label"] >= story.starts_week],
                                    "mean_sentiment"))
    assert checkout_move < drop / 2
