"""HTTP connectors against a local server: App Store RSS, Zendesk, review API, generic JSON."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from local_http import LocalServer, Reply, Request
from sqlalchemy import select

from feedback.db import session_factory
from feedback.models import FeedbackItem, IngestionRun, Source
from feedback.sources.config import SourceConfig
from feedback.sources.service import pull_all, pull_source, save_source

FIXTURES = Path(__file__).parent / "fixtures"
APP = "1234567890"


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def declare(engine, **fields) -> None:
    with session_factory(engine)() as session:
        save_source(session, SourceConfig(**fields), origin="api")
        session.commit()


def stored(engine) -> dict[str, FeedbackItem]:
    with session_factory(engine)() as session:
        return {i.external_id: i for i in session.scalars(select(FeedbackItem))}


def source_cursor(engine, name: str) -> dict:
    with session_factory(engine)() as session:
        return session.scalar(select(Source.cursor).where(Source.name == name))


# -- App Store -------------------------------------------------------------------------------------
def test_app_store_feed_pages_then_only_newer_reviews(engine, settings, server, sleeps) -> None:
    pages = {
        n: json.loads((FIXTURES / f"app_store_reviews_page{n}.json").read_text()) for n in (1, 2)
    }
    for n in (1, 2):
        server.route(
            f"/us/rss/customerreviews/page={n}/id={APP}/sortby=mostrecent/json",
            lambda r, n=n: Reply(200, pages[n]),
        )
    declare(
        engine, name="ios", connector="app_store", options={"app_id": APP, "base_url": server.base}
    )
    first = pull_source(engine, "ios", settings=settings, sleep=sleeps.append)
    assert first.status == "succeeded", first.error
    assert first.stats.new == 5
    items = stored(engine)
    review = items["11223344556"]
    assert review.text == (
        "Checkout keeps failing\nEvery time I pay with my card the app spins forever. "
        "Tried three times."
    )
    assert (
        review.stars == 2.0
        and review.channel == "app_review"
        and review.extra["app_version"] == "4.12.0"
    )
    assert review.created_at.isoformat() == "2026-09-05T18:20:31+00:00"
    assert source_cursor(engine, "ios") == {"since": "2026-09-05T11:20:31-07:00", "next_page": None}

    # A new review on top: the next run stops at the first page (older reviews are stored).
    newer = json.loads(json.dumps(pages[1]["feed"]["entry"][0]))
    newer["id"]["label"], newer["updated"]["label"] = "11223344557", "2026-09-06T08:00:00-07:00"
    newer["content"]["label"] = "The new update fixed payments, thanks!"
    pages[1]["feed"]["entry"].insert(0, newer)
    server.requests.clear()
    second = pull_source(engine, "ios", settings=settings, sleep=sleeps.append)
    assert (second.stats.new, second.stats.unchanged) == (1, 1)
    assert server.paths() == [f"/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json"]
    assert len(stored(engine)) == 6


# -- Zendesk ---------------------------------------------------------------------------------------
def test_zendesk_cursor_export_obeys_retry_after_and_resumes(
    engine, settings, server, sleeps
) -> None:
    page1 = json.loads((FIXTURES / "zendesk_tickets_page1.json").read_text())
    page2 = json.loads((FIXTURES / "zendesk_tickets_page2.json").read_text())
    throttled = {"done": False}

    def export(request: Request) -> Reply:
        cursor = request.query.get("cursor")
        if cursor is None:
            assert request.query["start_time"] == "1788220800"  # 2026-09-01T00:00:00Z
            return Reply(200, page1)
        if cursor == page1["after_cursor"]:
            if not throttled["done"]:
                throttled["done"] = True
                return Reply(429, {"error": "APIRateLimitExceeded"}, {"Retry-After": "7"})
            return Reply(200, page2)
        assert cursor == page2["after_cursor"]
        return Reply(200, {"tickets": [], "after_cursor": cursor, "end_of_stream": True})

    server.route("/api/v2/incremental/tickets/cursor.json", export)
    declare(
        engine,
        name="zd",
        connector="zendesk",
        options={"base_url": server.base, "start_time": "2026-09-01T00:00:00Z"},
        credentials_env={"email": "ZD_EMAIL", "token": "ZD_TOKEN"},
    )
    env = {"ZD_EMAIL": "cx-bot@northwind.example", "ZD_TOKEN": "s3cr3t-token"}
    first = pull_source(engine, "zd", settings=settings, environ=env, sleep=sleeps.append)
    assert first.status == "succeeded", first.error
    assert first.stats.new == 3  # the deleted ticket is skipped
    assert sleeps == [7.0]  # the server's Retry-After, not a guess
    auth = server.requests[0].headers["authorization"]
    assert (
        base64.b64decode(auth.split()[1]).decode() == "cx-bot@northwind.example/token:s3cr3t-token"
    )
    items = stored(engine)
    assert items["1001"].text.startswith("Sofa arrived damaged\nThe left armrest")
    assert items["1003"].channel == "chat" and items["1001"].channel == "ticket"
    assert (
        items["1002"].extra["satisfaction_rating"] == "bad"
        and items["1002"].extra["status"] == "pending"
    )
    assert source_cursor(engine, "zd") == {"after_cursor": page2["after_cursor"]}

    server.requests.clear()
    second = pull_source(engine, "zd", settings=settings, environ=env, sleep=sleeps.append)
    assert second.status == "succeeded" and second.stats.seen == 0
    assert [r.query.get("cursor") for r in server.requests] == [page2["after_cursor"]]
    with session_factory(engine)() as session:
        secret_anywhere = json.dumps([s.config for s in session.scalars(select(Source))])
    assert "s3cr3t-token" not in secret_anywhere and "ZD_TOKEN" in secret_anywhere


def test_missing_credential_fails_the_run_with_the_variable_name(engine, settings, server) -> None:
    declare(
        engine,
        name="zd",
        connector="zendesk",
        options={"base_url": server.base},
        credentials_env={"oauth_token": "ZD_OAUTH"},
    )
    result = pull_source(engine, "zd", settings=settings, environ={})
    assert result.status == "failed" and "$ZD_OAUTH" in result.error and server.requests == []


# -- generic HTTP JSON -----------------------------------------------------------------------------
RECORDS = [
    {
        "id": i,
        "attributes": {
            "body": f"Comment number {i}",
            "rating": {"value": 1 + i % 5},
            "updated": f"2026-09-{1 + i % 20:02d}T10:00:00Z",
        },
    }
    for i in range(25)
]


def _paged(style: str):
    def handler(request: Request) -> Reply:
        assert request.headers["authorization"] == "Bearer tok-123"
        size = 10
        if style == "page":
            start = (int(request.query.get("page", 1)) - 1) * size
        elif style == "offset":
            start = int(request.query.get("offset", 0))
        else:  # cursor and link carry the start in an opaque token
            token = request.query.get("cursor") or request.query.get("after") or "0"
            start = int(base64.b64decode(token).decode()) if token != "0" else 0
        chunk = RECORDS[start : start + size]
        body = {"data": chunk}
        headers = {}
        following = start + size
        if style == "cursor":
            body["meta"] = {
                "next_cursor": base64.b64encode(str(following).encode()).decode()
                if following < len(RECORDS)
                else None
            }
        if style == "link" and following < len(RECORDS):
            token = base64.b64encode(str(following).encode()).decode()
            headers["Link"] = f'</items?after={token}>; rel="next", </items>; rel="first"'
        return Reply(200, body, headers)

    return handler


@pytest.mark.parametrize("style", ["page", "offset", "cursor", "link"])
def test_generic_json_api_every_pagination_style(engine, settings, server, sleeps, style) -> None:
    server.route("/items", _paged(style))
    pagination = {
        "page": {"type": "page", "size_param": "per_page", "page_size": 10},
        "offset": {"type": "offset", "size_param": "limit", "page_size": 10},
        "cursor": {"type": "cursor", "cursor_path": "$.meta.next_cursor"},
        "link": {"type": "link"},
    }[style]
    declare(
        engine,
        name="api",
        connector="http_json",
        credentials_env={"token": "API_TOKEN"},
        options={
            "url": server.url("/items"),
            "items_path": "$.data[*]",
            "auth": {"type": "bearer"},
            "pagination": pagination,
            "fields": {
                "external_id": "$.id",
                "text": "$.attributes.body",
                "stars": "$.attributes.rating.value",
                "created_at": "$.attributes.updated",
            },
        },
    )
    result = pull_source(
        engine, "api", settings=settings, environ={"API_TOKEN": "tok-123"}, sleep=sleeps.append
    )
    assert result.status == "succeeded", result.error
    assert result.stats.new == 25
    items = stored(engine)
    assert items["7"].text == "Comment number 7" and items["7"].stars == 3.0
    assert len(server.requests) in (3, 4)  # 3 full-or-short pages (+1 empty page for page/offset)
    assert source_cursor(engine, "api")["position"] is None


def test_incremental_watermark_asks_only_for_newer_items(engine, settings, server) -> None:
    seen_since: list[str | None] = []

    def handler(request: Request) -> Reply:
        seen_since.append(request.query.get("updated_since"))
        since = request.query.get("updated_since") or ""
        return Reply(200, [r for r in RECORDS if r["attributes"]["updated"] >= since])

    server.route("/items", handler)
    declare(
        engine,
        name="inc",
        connector="http_json",
        options={
            "url": server.url("/items"),
            "fields": {
                "external_id": "$.id",
                "text": "$.attributes.body",
                "created_at": "$.attributes.updated",
            },
            "incremental": {
                "param": "updated_since",
                "field": "$.attributes.updated",
                "initial": "2026-09-01T00:00:00Z",
            },
        },
    )
    assert pull_source(engine, "inc", settings=settings).stats.new == 25
    again = pull_source(engine, "inc", settings=settings)
    assert seen_since == ["2026-09-01T00:00:00Z", "2026-09-20T10:00:00Z"]
    assert (again.stats.new, again.stats.unchanged) == (0, 1)


def test_review_api_defaults_title_and_body_and_watermark(engine, settings, server) -> None:
    reviews = [
        {
            "id": f"rv{i}",
            "title": "Great sofa" if i % 2 else "",
            "body": f"Arrived on time, review {i}",
            "rating": 4,
            "created_at": "2026-09-03T12:00:00Z",
            "updated_at": f"2026-09-0{3 + i}T12:00:00Z",
            "author": {"name": f"buyer{i}"},
            "product": "oak-table",
        }
        for i in range(3)
    ]

    def handler(request: Request) -> Reply:
        page = int(request.query["page"])
        assert request.query["per_page"] == "2"
        return Reply(200, {"reviews": reviews[(page - 1) * 2 : page * 2], "page": page})

    server.route("/v1/reviews", handler)
    declare(
        engine,
        name="reviews",
        connector="review_api",
        options={
            "url": server.url("/v1/reviews"),
            "pagination": {"type": "page", "size_param": "per_page", "page_size": 2},
        },
    )
    result = pull_source(engine, "reviews", settings=settings)
    assert result.status == "succeeded", result.error
    items = stored(engine)
    assert items["rv1"].text == "Great sofa\nArrived on time, review 1" and items[
        "rv0"
    ].text.startswith("Arrived")
    assert items["rv1"].channel == "review" and items["rv1"].extra["product"] == "oak-table"
    assert items["rv1"].author and "buyer1" not in items["rv1"].author
    assert source_cursor(engine, "reviews")["since"] == "2026-09-05T12:00:00Z"


def test_server_errors_are_retried_with_backoff_then_succeed(
    engine, settings, server, sleeps
) -> None:
    calls = {"n": 0}

    def flaky(request: Request) -> Reply:
        calls["n"] += 1
        if calls["n"] <= 2:
            return Reply(503, {"error": "maintenance"})
        return Reply(200, [{"id": 1, "text": "Finally in"}])

    server.route("/flaky", flaky)
    declare(
        engine,
        name="flaky",
        connector="http_json",
        options={"url": server.url("/flaky")},
        retry={"attempts": 4, "base_seconds": 1.0, "cap_seconds": 8.0},
    )
    result = pull_source(engine, "flaky", settings=settings, sleep=sleeps.append)
    assert result.status == "succeeded" and result.stats.new == 1
    assert (
        len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0
    )  # full jitter, doubling


def test_permanent_errors_fail_the_run_and_other_sources_still_run(
    engine, settings, server, sleeps
) -> None:
    server.route("/denied", lambda r: Reply(401, {"error": "bad token"}))
    server.route("/ok", lambda r: Reply(200, {"items": [{"id": "k1", "text": "All good"}]}))
    declare(
        engine,
        name="denied",
        connector="http_json",
        credentials_env={"token": "DENIED_TOKEN"},
        options={"url": server.url("/denied"), "auth": {"type": "header", "header": "X-Api-Key"}},
    )
    declare(
        engine,
        name="ok",
        connector="http_json",
        options={"url": server.url("/ok"), "items_path": "$.items"},
    )
    results = {
        r.source: r
        for r in pull_all(
            engine, settings=settings, environ={"DENIED_TOKEN": "x"}, sleep=sleeps.append
        )
    }
    assert results["denied"].status == "failed"
    assert "HTTP 401" in results["denied"].error and "$DENIED_TOKEN" in results["denied"].error
    assert len([r for r in server.requests if r.path == "/denied"]) == 1  # a 401 is not retried
    assert results["ok"].status == "succeeded" and results["ok"].stats.new == 1
    with session_factory(engine)() as session:
        runs = {r.source_id: r for r in session.scalars(select(IngestionRun))}
        failed = [r for r in runs.values() if r.status == "failed"]
    assert len(failed) == 1 and failed[0].finished_at is not None and "401" in failed[0].error


def test_unreachable_api_exhausts_retries_and_records_the_failure(engine, settings, sleeps) -> None:
    with LocalServer() as gone:
        url = gone.url("/x")
    declare(
        engine,
        name="down",
        connector="http_json",
        options={"url": url},
        retry={"attempts": 2, "base_seconds": 0.0, "pull_attempts": 2},
    )
    result = pull_source(engine, "down", settings=settings, sleep=sleeps.append)
    assert result.status == "failed" and "ConnectError" in result.error
    assert result.attempts == 2 and len(sleeps) == 3  # 1 request retry per attempt + 1 pull retry
