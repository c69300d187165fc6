"""Digests on hand-built tagged feedback: findings, quiet weeks, privacy, escaping, API, CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from digest_seed import Seeder
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from feedback.config import Settings
from feedback.db import make_engine, session_scope
from feedback.insights.service import make_digest
from feedback.insights.weeks import shift_week
from feedback.models import Digest, Topic

WEEKS = [f"2026-W{w}" for w in range(31, 41)]  # 2026-W31 .. 2026-W40
TOUCHPOINTS = ("website", "app", "checkout", "delivery", "returns", "support", "store")
SCRIPT = "The SwiftShip driver threw it <script>alert('x')</script> over the fence"
SWIFT = (
    "SwiftShip missed my delivery slot again",
    "The SwiftShip courier left the box in the rain",
    "No tracking updates since SwiftShip took the parcel",
    "SwiftShip driver was rude and late",
    SCRIPT,
)
WISHLIST = (
    "My wishlist disappeared after the update",
    "The wishlist crashes the app every time I open it",
    "Since the update my wishlist is empty",
)
SPIKE = (
    "The new {team} rota is exhausting and nobody asked us",
    "Forced overtime again in {team}, management doesn't listen",
    "Three weekends in a row, I am worn out",
    "Morale in {team} has never been this low",
)
TEAMS = {"warehouse": 22, "stores": 20, "customer_service": 16, "legal": 8, "marketing": 4}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, migrated_template: Path
) -> Iterator[dict[str, Any]]:
    """Ten weeks of tagged customer and employee feedback with three planted changes in 2026-W40."""
    root = tmp_path_factory.mktemp("digest")
    shutil.copy(migrated_template, root / "voc.db")
    settings = Settings(
        database_url=f"sqlite:///{root / 'voc.db'}", var_dir=root / "var", _env_file=None
    )
    engine = make_engine(settings.database_url)
    seed = Seeder(engine)
    with session_scope(engine) as session:  # as a topic model would have left them
        steady = Topic(audience="customer", label="stock availability", keywords=["stock"])
        fresh = Topic(audience="customer", label="size guide wrong", keywords=["size", "guide"])
        praise = Topic(audience="customer", label="friendly staff", keywords=["friendly"])
        session.add_all([steady, fresh, praise])
        session.flush()
        topic_ids = {"steady": steady.id, "fresh": fresh.id, "praise": praise.id}
    for week in WEEKS:
        last = week == WEEKS[-1]
        seed.add(week=week, touchpoint="store", n=9, negative=0.2, topic_id=topic_ids["steady"])
        if last:  # a new problem (the texts read mild, the ratings do not) and new praise
            seed.add(
                week=week,
                touchpoint="website",
                n=11,
                negative=0.0,
                nps=True,
                nps_value=2,
                topic_id=topic_ids["fresh"],
            )
            seed.add(
                week=week, touchpoint="store", n=10, negative=0.0, topic_id=topic_ids["praise"]
            )
        for tp in TOUCHPOINTS:
            if tp == "delivery" and last:
                seed.add(week=week, touchpoint=tp, n=40, negative=0.2)
                seed.add(week=week, touchpoint=tp, n=30, negative=1.0, texts=SWIFT)
            else:
                seed.add(week=week, touchpoint=tp, n=40, negative=0.2)
        seed.add(week=week, touchpoint=None, inferred_touchpoint="store", n=5, negative=0.2)
        if last:
            seed.add(week=week, touchpoint="app", n=18, negative=1.0, texts=WISHLIST)
        for team, size in TEAMS.items():
            spike = last and team in ("warehouse", "legal")
            people = [f"{team}-person-{i}" for i in range(size)]
            seed.add(
                week=week,
                touchpoint="manager" if team != "stores" else "tools",
                n=size,
                negative=0.75 if spike else 0.2,
                audience="employee",
                org_unit=team,
                authors=people,
                nps=True,
                texts=[t.format(team=team) for t in SPIKE] if spike else None,
            )
    with session_scope(engine) as session:
        digests = {
            (a, w): make_digest(session, settings=settings, audience=a, week=w)
            for a in ("customer", "employee")
            for w in (WEEKS[-1], "2026-W35")
        }
    yield {"settings": settings, "engine": engine, "digests": digests}
    engine.dispose()


def _alerts(digest: Digest, kind: str | None = None) -> list[dict[str, Any]]:
    return [a for a in digest.payload["alerts"] if kind is None or a["kind"] == kind]


# --- customer digest -----------------------------------------------------------------------------


def test_customer_digest_finds_the_delivery_spike_with_its_why(world) -> None:
    digest = world["digests"][("customer", "2026-W40")]
    payload = digest.payload
    share = {a["value"]: a for a in _alerts(digest, "negative_share")}
    assert sorted(share) == ["app", "delivery"]  # app: the wishlist complaints on top of the usual
    delivery = share["delivery"]
    assert delivery["baseline_weeks"] == 8 and delivery["q_value"] < 0.01
    assert "swiftship" in delivery["phrases"]  # the new word said where it went wrong
    assert len(delivery["quotes"]) >= 2
    assert all(
        q["touchpoint"] == "delivery" and q["sentiment"] == "negative" for q in delivery["quotes"]
    )
    assert any("SwiftShip" in q["text"] for q in delivery["quotes"])
    assert (
        payload["movers"][0]["touchpoint"] == "delivery"
        and payload["movers"][0]["direction"] == "down"
    )
    assert payload["worst_touchpoint"]["touchpoint"] == "delivery"
    headline = {m["key"]: m for m in payload["headline"]["metrics"]}
    assert headline["share_negative"]["delta_baseline"] > 0
    assert payload["headline"]["volume"]["last"] == 7 * 40 + 5 + 9  # + the steady topic


def test_customer_digest_shows_the_new_wishlist_phrase(world) -> None:
    payload = world["digests"][("customer", "2026-W40")].payload
    labels = [p["label"] for p in payload["emerging"]["phrases"]]
    assert "wishlist" in labels
    wishlist = payload["emerging"]["phrases"][labels.index("wishlist")]
    assert wishlist["new"] and wishlist["where"] == {"app": 18}
    assert wishlist["quotes"] and all("wishlist" in q["text"].lower() for q in wishlist["quotes"])
    # Said mostly where negative sentiment spiked, it explains that alert rather than adding one.
    app = next(a for a in payload["alerts"] if a["value"] == "app")
    assert app["kind"] == "negative_share" and app["phrases"] == ["wishlist"]
    assert not any(a["kind"] == "emerging_phrase" for a in payload["alerts"])


def test_topic_model_topics_emerge_when_items_carry_them(world) -> None:
    payload = world["digests"][("customer", "2026-W40")].payload
    assert payload["emerging"]["topic_model"]
    topics = {t["label"]: t for t in payload["emerging"]["topics"]}
    assert sorted(topics) == ["friendly staff", "size guide wrong"]  # the steady one is no news
    fresh = topics["size guide wrong"]
    assert fresh["new"] and fresh["count"] == 11 and fresh["where"] == {"website": 11}
    assert len(fresh["quotes"]) >= 1
    # The problem is an alert; growing praise is listed, not alerted.
    [alert] = [a for a in payload["alerts"] if a["kind"] == "topic_volume"]
    assert alert["value"] == "size guide wrong" and alert["status"] == "new"
    assert "is new: 11 items this week" in alert["message"]
    quiet = world["digests"][("customer", "2026-W35")].payload
    assert quiet["emerging"]["topic_model"] and quiet["emerging"]["topics"] == []


def test_journey_trend_and_shifts(world) -> None:
    payload = world["digests"][("customer", "2026-W40")].payload
    # journey order: the built-in taxonomy's, each stage's touchpoints together (the store buys too)
    journey = ["website", "app", "checkout", "store", "delivery", "returns", "support"]
    assert [j["touchpoint"] for j in payload["journey"]] == journey
    delivery = payload["journey"][journey.index("delivery")]
    assert (
        delivery["top_emotion"] == "frustration"
        and delivery["ci95"][0] < delivery["mean_sentiment"]
    )
    assert payload["trend"]["weeks"][-1] == "2026-W40" and len(payload["trend"]["weeks"]) == 12
    assert payload["trend"]["series"]["delivery"][:2] == [None, None]  # no data before 2026-W31
    assert "unknown" not in payload["trend"]["series"]
    frustration = [s for s in payload["shifts"]["cx_emotions"] if s["label"] == "frustration"]
    assert frustration and frustration[0]["direction"] == "up"


def test_quiet_week_raises_no_alert(world) -> None:
    for audience in ("customer", "employee"):
        digest = world["digests"][(audience, "2026-W35")]
        assert digest.payload["alerts"] == []
        assert "No alerts this week" in digest.markdown and "No alerts this week" in digest.html
        assert digest.payload["baseline_weeks"] == ["2026-W31", "2026-W32", "2026-W33", "2026-W34"]


def test_html_and_markdown_render_feedback_as_text(world) -> None:
    digest = world["digests"][("customer", "2026-W40")]
    assert SCRIPT in json.dumps(digest.payload)  # the payload keeps the words as they were
    assert "<script>" not in digest.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in digest.html
    assert "<script>" not in digest.markdown and r"\<script\>" in digest.markdown
    assert digest.html.count("<svg") == 2  # the trend per touchpoint and the journey curve
    assert "<title>Mean sentiment per touchpoint, last 12 weeks</title>" in digest.html


# --- employee (HR) digest ------------------------------------------------------------------------


def test_hr_digest_flags_the_team_and_keeps_people_unidentifiable(world) -> None:
    digest = world["digests"][("employee", "2026-W40")]
    payload = digest.payload
    teams = {t["org_unit"]: t for t in payload["teams"]}
    assert teams["marketing"]["suppressed"]  # 4 people
    assert sum(t["suppressed"] for t in teams.values()) >= 2  # and one more to protect it
    assert "mean_sentiment" not in teams["marketing"]
    flagged = [
        a["value"] for a in _alerts(digest, "negative_share") if a["dimension"] == "org_unit"
    ]
    assert "warehouse" in flagged
    warehouse = next(a for a in payload["alerts"] if a["value"] == "warehouse")
    assert warehouse["quotes"]  # 22 people: quotable
    everything = json.dumps(payload) + digest.markdown + digest.html
    assert "person-" not in everything  # no author pseudonym
    assert "item_id" not in everything  # nor a way to look the item (and its author) up


def test_hr_digest_never_quotes_a_group_under_the_comment_threshold(world) -> None:
    payload = world["digests"][("employee", "2026-W40")].payload
    # legal (8 people this week, < 10) said the same things as the warehouse, in the same theme
    manager = next(a for a in payload["alerts"] if a["dimension"] == "touchpoint")
    assert manager["value"] == "manager" and manager["quotes"]
    quotes = [q for a in payload["alerts"] for q in a["quotes"]]
    quotes += [q for m in payload["movers"] for q in m.get("quotes", [])]
    quotes += [q for p in payload["emerging"]["phrases"] for q in p["quotes"]]
    assert quotes and not any("legal" in q["text"] for q in quotes)
    assert payload["privacy"]["min_group_size_comments"] == 10


# --- storage, API, CLI, job ----------------------------------------------------------------------


def test_remaking_a_digest_replaces_it(world) -> None:
    engine, settings = world["engine"], world["settings"]
    with session_scope(engine) as session:
        make_digest(session, settings=settings, audience="customer", week="2026-W35")
    with session_scope(engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(Digest)
            .where(Digest.audience == "customer", Digest.week == "2026-W35")
        )
    assert count == 1


@pytest.fixture(scope="module")
def api(world) -> Iterator[TestClient]:
    """The real app on the digest world; requests carry an admin key (auth stays on)."""
    from conftest import make_api_key

    from api.main import create_app

    app = create_app(world["settings"])
    app.state.tagger_provider = lambda: (_ for _ in ()).throw(AssertionError("no model needed"))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(world['settings'], 'admin')}"
        yield client


def test_digests_need_the_audiences_scope(world, api) -> None:
    from conftest import make_api_key

    cx = {"Authorization": f"Bearer {make_api_key(world['settings'], 'cx')}"}
    hr = {"Authorization": f"Bearer {make_api_key(world['settings'], 'hr')}"}
    hr_digest = "/v1/digests/2026-W40?audience=employee"
    assert api.get("/v1/digests/2026-W40", headers=cx).status_code == 200
    assert api.get(hr_digest, headers=cx).status_code == 403
    assert api.get("/v1/digests?audience=employee", headers=cx).status_code == 403
    assert api.get(hr_digest, headers=hr).status_code == 200
    assert api.get("/v1/digests/latest", headers=hr).status_code == 403  # customer by default
    assert api.get(hr_digest, headers={"Authorization": ""}).status_code == 401


def test_api_lists_and_serves_digests(api) -> None:
    listing = api.get("/v1/digests", params={"audience": "customer"}).json()["digests"]
    assert [d["week"] for d in listing] == ["2026-W40", "2026-W35"]
    assert listing[0]["alerts"] >= 2 and listing[1]["alerts"] == 0
    latest = api.get("/v1/digests/latest", params={"audience": "employee"})
    assert latest.status_code == 200 and latest.json()["week"] == "2026-W40"
    assert latest.json()["payload"]["audience"] == "employee"
    md = api.get("/v1/digests/2026-W40", params={"audience": "customer", "format": "md"})
    assert md.headers["content-type"].startswith("text/markdown") and md.text.startswith(
        "# Weekly CX digest"
    )
    html = api.get("/v1/digests/2026-W40", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "<script>" not in html.text


def test_api_says_how_to_make_a_missing_digest(api) -> None:
    response = api.get("/v1/digests/2026-W20", params={"audience": "customer"})
    assert response.status_code == 404
    assert "voc digest --week 2026-W20 --audience customer" in response.json()["detail"]
    assert api.get("/v1/digests/2026-20").status_code == 422


def test_cli_makes_prints_and_stores_a_digest(world, monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from feedback.config import get_settings
    from jobs.cli import app

    monkeypatch.setenv("VOC_DATABASE_URL", world["settings"].database_url)
    get_settings.cache_clear()
    try:
        out = tmp_path / "d.html"
        result = CliRunner().invoke(
            app,
            [
                "digest",
                "--week",
                "2026-W39",
                "--audience",
                "all",
                "--format",
                "html",
                "--output",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert out.read_text().count("<!DOCTYPE html>") == 2
        bad = CliRunner().invoke(app, ["digest", "--week", "2026-39"])
        assert bad.exit_code == 2 and "2026-W47" in bad.output
    finally:
        get_settings.cache_clear()
    with session_scope(world["engine"]) as session:
        stored = session.scalars(select(Digest.audience).where(Digest.week == "2026-W39")).all()
    assert sorted(stored) == ["customer", "employee"]


def test_weekly_job_is_scheduled_and_makes_both_digests(world) -> None:
    from jobs.digests import run_digests
    from jobs.scheduler import job_specs

    specs = {s.name: s for s in job_specs(world["settings"])}
    assert "digest" in specs and "cron" in str(specs["digest"].trigger)
    detail = run_digests(world["settings"], week="2026-W38", send=False)
    assert detail["customer"]["week"] == "2026-W38" and detail["employee"]["week"] == "2026-W38"
    empty = run_digests(world["settings"], week=shift_week("2026-W31", -20), send=False)
    assert "skipped" in empty["customer"]


def test_quotes_skip_texts_that_held_contact_details() -> None:
    from feedback.insights.quotes import QuotePicker
    from feedback.insights.repository import WeekItem

    def item(i: int, text: str) -> WeekItem:
        return WeekItem(
            id=i,
            text=text,
            touchpoint="delivery",
            org_unit="unknown",
            author=f"c{i}",
            sentiment="negative",
            negative_prob=0.9,
            positive_prob=0.05,
            cx_emotions=(),
            topic_id=None,
        )

    items = [
        item(1, "Late again. This is Jane Doe, my email is [EMAIL]."),
        item(2, "The courier left my sofa in the rain and nobody called back."),
        item(3, "Call me on 415-555-0105, the parcel never came."),
    ]
    picker = QuotePicker(items, redact=lambda t: t.replace("415-555-0105", "[PHONE]"))
    quotes = picker.pick(where=lambda i: True, direction="negative")
    assert [q["item_id"] for q in quotes] == [2]


def test_the_digest_and_the_topic_list_call_the_same_topics_emerging(world) -> None:
    from feedback.topics.service import list_topics

    digest = world["digests"][("customer", "2026-W40")]  # the world's latest week
    in_digest = {t["label"] for t in digest.payload["emerging"]["topics"]}
    with session_scope(world["engine"]) as session:
        listing = list_topics(session, settings=world["settings"], audience="customer")
    flagged = {t["label"] for t in listing["topics"] if t["trend"]["emerging"]}
    assert flagged == in_digest == {"friendly staff", "size guide wrong"}
    fresh = next(t for t in listing["topics"] if t["label"] == "size guide wrong")
    assert fresh["trend"]["reason"] == "new" and fresh["trend"]["q_value"] <= 0.01
