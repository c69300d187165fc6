"""The planted demo stories show up in the right week's digest, tagged by the real models.

The demo CSV is generated, ingested and tagged once for the module (about a minute on CPU);
each story's digest is then made as `voc digest --week ... --audience ...` would make it.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from feedback.config import Settings
from feedback.db import make_engine, session_scope
from feedback.demo.stories import get_story
from feedback.ingest.files import ingest_file
from feedback.insights.service import make_digest
from feedback.insights.weeks import week_bounds
from feedback.models import FeedbackItem
from jobs.tasks import tag_pending

pytestmark = pytest.mark.slow

WEEKS = ("2026-W35", "2026-W39", "2026-W40", "2026-W41", "2026-W42")
SCRIPT_REVIEW = "SwiftShip dumped the box <script>alert('pwned')</script> on the lawn, awful"


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, tagged_demo_template: dict[str, Any], tagger
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("demo_digest")
    shutil.copy(tagged_demo_template["db"], root / "voc.db")
    settings = Settings(
        database_url=f"sqlite:///{root / 'voc.db'}", var_dir=root / "var", _env_file=None
    )
    engine = make_engine(settings.database_url)
    path = root / "hostile.csv"
    with tagged_demo_template["csv"].open(encoding="utf-8") as source:
        header = source.readline()
    with path.open("w", newline="", encoding="utf-8") as handle:  # one hostile review
        handle.write(header)
        csv.writer(handle).writerow(
            [
                "nw-script",
                "2026-09-23T10:00:00Z",
                "customer",
                "review",
                "delivery",
                "receive",
                "new",
                "",
                "en",
                SCRIPT_REVIEW,
                "",
                "",
                "1",
                "cust-9999",
            ]
        )
    ingest_file(engine, path, settings=settings, source_name="demo:northwind", audience="customer")
    tag_pending(engine, tagger, batch_size=512)
    with session_scope(engine) as session:
        digests = {
            (a, w): make_digest(session, settings=settings, audience=a, week=w)
            for w in WEEKS
            for a in ("customer", "employee")
        }
    yield {"settings": settings, "engine": engine, "digests": digests}
    engine.dispose()


def _payload(demo: dict[str, Any], audience: str, week: str) -> dict[str, Any]:
    return demo["digests"][(audience, week)].payload


def test_delivery_drop_alerts_in_2026_w39(demo) -> None:
    story = get_story("delivery_courier")
    payload = _payload(demo, "customer", story.starts_week)
    delivery = [
        a for a in payload["alerts"] if a["kind"] == "negative_share" and a["value"] == "delivery"
    ]
    assert delivery, json.dumps(payload["alerts"], indent=1)
    alert = delivery[0]
    assert alert["q_value"] < 0.01 and alert["observed"] - alert["baseline"] >= 0.2
    assert "swiftship" in alert["phrases"]  # why, in the customers' word for it
    assert alert["quotes"] and all(q["touchpoint"] == "delivery" for q in alert["quotes"])
    assert (
        payload["movers"][0]["touchpoint"] == "delivery"
        and payload["movers"][0]["direction"] == "down"
    )
    assert payload["worst_touchpoint"]["touchpoint"] == "delivery"
    # The week before the courier change raises nothing about delivery.
    assert not any(
        a["value"] == "delivery" for a in _payload(demo, "customer", "2026-W35")["alerts"]
    )


def test_wishlist_emerges_in_2026_w42(demo) -> None:
    story = get_story("app_wishlist_bug")
    payload = _payload(demo, "customer", story.starts_week)
    emerging = [p for p in payload["emerging"]["phrases"] if "wishlist" in " ".join(p["phrases"])]
    assert emerging, json.dumps(payload["emerging"], indent=1)
    assert emerging[0]["new"] and max(emerging[0]["where"], key=emerging[0]["where"].get) == "app"
    app_alerts = [
        a for a in payload["alerts"] if a["value"] == "app" and "wishlist" in a["phrases"]
    ]
    assert app_alerts, json.dumps(payload["alerts"], indent=1)
    assert any("wishlist" in q["text"].lower() for q in app_alerts[0]["quotes"])
    # Nothing about the wishlist before it broke.
    for week in ("2026-W39", "2026-W40", "2026-W41"):
        earlier = _payload(demo, "customer", week)
        assert not any("wishlist" in " ".join(p["phrases"]) for p in earlier["emerging"]["phrases"])


def test_warehouse_morale_drop_is_flagged_in_the_hr_digest(demo) -> None:
    story = get_story("warehouse_morale")
    flagged = {}
    for week in (story.starts_week, "2026-W41"):
        payload = _payload(demo, "employee", week)
        flagged[week] = [
            a
            for a in payload["alerts"] + payload["ongoing"]
            if a["dimension"] == "org_unit" and a["value"] == "warehouse"
        ]
    assert flagged[story.starts_week] or flagged["2026-W41"], flagged
    teams = {t["org_unit"]: t for t in _payload(demo, "employee", story.starts_week)["teams"]}
    assert teams["warehouse"]["delta_baseline"] <= -0.2
    assert not any(
        a["value"] == "warehouse" for a in _payload(demo, "employee", "2026-W39")["alerts"]
    )


def test_the_quiet_week_raises_no_alert(demo) -> None:
    for audience in ("customer", "employee"):
        payload = _payload(demo, audience, get_story("quiet_week").value)
        assert payload["alerts"] == [] and payload["ongoing"] == [], json.dumps(payload["alerts"])


def test_hostile_text_renders_as_text(demo) -> None:
    for digest in demo["digests"].values():
        assert "<script>" not in digest.html and "<script>" not in digest.markdown
    digest = demo["digests"][("customer", "2026-W39")]
    if "pwned" in digest.html:  # the review was picked as a quote: it must show, escaped
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in digest.html


def test_hr_digests_quote_only_big_enough_teams_and_name_nobody(demo) -> None:
    minimum = demo["settings"].privacy.min_group_size_comments
    with session_scope(demo["engine"]) as session:
        for week in WEEKS:
            digest = demo["digests"][("employee", week)]
            payload = digest.payload
            quotes = [q for a in payload["alerts"] + payload["ongoing"] for q in a["quotes"]]
            quotes += [q for m in payload["movers"] for q in m.get("quotes", [])]
            quotes += [q for p in payload["emerging"]["phrases"] for q in p["quotes"]]
            start, end = week_bounds(week)
            week_items = session.execute(
                select(FeedbackItem.text, FeedbackItem.org_unit, FeedbackItem.author).where(
                    FeedbackItem.audience == "employee",
                    FeedbackItem.created_at >= start,
                    FeedbackItem.created_at < end,
                )
            ).all()
            authors: dict[str, set[str]] = {}
            for row in week_items:
                authors.setdefault(row.org_unit, set()).add(row.author)
            for quote in quotes:
                teams = {row.org_unit for row in week_items if _same(row.text, quote["text"])}
                assert teams and all(len(authors[t]) >= minimum for t in teams), (week, quote)
                assert "marketing" not in teams  # about 6 people a week
            everything = json.dumps(payload) + digest.markdown + digest.html
            assert "emp-" not in everything and "item_id" not in everything


def _same(stored: str, quoted: str) -> bool:
    quoted = quoted.rstrip("…")
    return " ".join(stored.split()).startswith(quoted)
