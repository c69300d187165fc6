"""The whole path on the demo data: generated file → ingest → tag (real models) → /v1/trends.

Checks that the planted delivery story surfaces: delivery sentiment falls after the new courier.
"""

from __future__ import annotations

import pytest

from feedback.demo.generator import write_csv
from feedback.demo.stories import STORIES
from feedback.ingest.files import ingest_file
from jobs.tasks import tag_pending

pytestmark = pytest.mark.slow


def test_demo_file_to_trends_shows_the_delivery_drop(tmp_path, settings, engine, tagger, client) -> None:
    story = next(s for s in STORIES if s.key == "delivery_courier")
    path = tmp_path / "demo.csv"
    rows = write_csv(path, seed=7)
    stats, _ = ingest_file(engine, path, settings=settings, source_name="demo")
    assert stats.new + stats.unchanged == rows and stats.dead == 0

    result = tag_pending(engine, tagger, batch_size=256)
    assert result.remaining == 0 and result.tagged == stats.new

    body = client.get("/v1/trends", params={"by": "touchpoint", "interval": "week"}).json()
    delivery = [r for r in body["rows"] if r["touchpoint"] == "delivery"]
    before = [r for r in delivery if r["period_label"] < story.starts_week]
    after = [r for r in delivery if r["period_label"] >= story.starts_week]
    assert len(before) >= 6 and len(after) >= 6

    def mean(rows, key):
        return sum(r[key] * r["n_tagged"] for r in rows) / sum(r["n_tagged"] for r in rows)

    drop = mean(before, "mean_sentiment") - mean(after, "mean_sentiment")
    assert drop >= 0.3, f"delivery sentiment fell by only {drop:.2f}"
    assert mean(after, "share_negative") - mean(before, "share_negative") >= 0.25
    # The other touchpoints do not move like that: the drop is delivery's own.
    checkout = [r for r in body["rows"] if r["touchpoint"] == "checkout"]
    assert abs(mean([r for r in checkout if r["period_label"] < story.starts_week], "mean_sentiment")
               - mean([r for r in checkout if r["period_label"] >= story.starts_week], "mean_sentiment")) < 0.15
