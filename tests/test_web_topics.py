"""The topics page with the demo's real topics (about a hundred, fitted once for the module):
25 a page, largest or rising first, a word filter, previous/next links that keep them, the
admin's edits back on the page they were made on, and quotes read only for the page shown."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import DATA_DIR, make_api_key
from fastapi.testclient import TestClient
from test_web import csrf_of, sign_in

from api.main import create_app
from feedback.config import Settings
from feedback.db import make_engine, session_scope
from feedback.topics import service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, tagged_demo_template: dict[str, Any]) -> dict[str, Any]:
    """The tagged demo with its customer topics fitted (the topic model's own refit)."""
    root = tmp_path_factory.mktemp("web_topics")
    shutil.copy(tagged_demo_template["db"], root / "voc.db")
    engine = make_engine(f"sqlite:///{root / 'voc.db'}")
    with session_scope(engine) as session:
        service.refit(session, var_dir=root / "var", audience="customer")
    engine.dispose()
    return {"db": root / "voc.db", "var": root / "var"}


@pytest.fixture
def site(tmp_path: Path, fitted: dict[str, Any]) -> Iterator[dict[str, Any]]:
    shutil.copy(fitted["db"], tmp_path / "voc.db")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'voc.db'}", var_dir=fitted["var"], data_dir=DATA_DIR,
                        _env_file=None)
    yield {"app": create_app(settings), "settings": settings}


def _rows(page: str) -> list[int]:
    return [int(t) for t in re.findall(r'<tr data-topic="(\d+)">', page)]


def _link(page: str, rel: str) -> dict[str, list[str]] | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return parse_qs(urlsplit(html.unescape(found.group(1))).query) if found else None


def _listing(site: dict[str, Any]) -> list[dict[str, Any]]:
    api = TestClient(site["app"])
    api.headers["Authorization"] = f"Bearer {make_api_key(site['settings'], 'cx')}"
    return [t for t in api.get("/v1/topics", params={"audience": "customer", "periods": 12}).json()["topics"]
            if t["status"] == "active"]


def test_topics_come_25_a_page_with_links_that_keep_the_order(site) -> None:
    topics = _listing(site)
    assert len(topics) > 50  # several pages of them
    cx = sign_in(site["app"], site["settings"], "cx")
    seen: list[int] = []
    page, number = cx.get("/topics").text, 1
    assert _link(page, "prev") is None
    while True:
        rows = _rows(page)
        assert len(rows) == (25 if number * 25 <= len(topics) else len(topics) - (number - 1) * 25)
        assert f"{(number - 1) * 25 + 1} to {(number - 1) * 25 + len(rows)} of {len(topics)}" in page
        seen += rows
        after = _link(page, "next")
        if after is None:
            break
        assert after == {"audience": ["customer"], "sort": ["volume"], "page": [str(number + 1)]}
        number += 1
        page = cx.get("/topics", params={k: v[0] for k, v in after.items()}).text
        assert _link(page, "prev")["page"] == [str(number - 1)]
    size = {t["id"]: t["size"] for t in topics}
    assert seen == [t["id"] for t in sorted(topics, key=lambda t: (-t["size"], t["id"]))]  # each once, largest first
    assert [size[i] for i in seen] == sorted((size[i] for i in seen), reverse=True)
    last = cx.get("/topics", params={"page": 999}).text  # past the end: the last page
    assert _rows(last) == seen[(number - 1) * 25:] and f"Page {number} of {number}" in last
    assert cx.get("/topics", params={"page": 0}).status_code == 422


def test_rising_first_and_a_word_filter_keep_to_the_links(site) -> None:
    topics = {t["id"]: t for t in _listing(site)}
    cx = sign_in(site["app"], site["settings"], "cx")
    page = cx.get("/topics", params={"sort": "trend"}).text
    rows = _rows(page)

    def growth(topic_id: int) -> float:
        trend = topics[topic_id]["trend"]
        return (trend.get("share") or 0.0) - (trend.get("baseline_share") or 0.0)

    emerging = [i for i in rows if topics[i]["trend"]["emerging"]]
    assert rows[:len(emerging)] == emerging  # the emerging ones first ...
    rest = rows[len(emerging):]
    assert [growth(i) for i in rest] == sorted((growth(i) for i in rest), reverse=True)  # ... then rising most
    assert growth(rest[0]) > growth(rest[-1])
    word = "swiftship"
    holding = [i for i, t in topics.items()
               if word in t["label"].lower() or any(word in k.lower() for k in t["keywords"])]
    assert 0 < len(holding) < 25
    page = cx.get("/topics", params={"sort": "trend", "q": word}).text
    assert sorted(_rows(page)) == sorted(holding) and _link(page, "next") is None
    assert f"holding “{word}”" in page and f'value="{word}"' in page
    everything = cx.get("/topics", params={"q": "no topic holds this"}).text
    assert not _rows(everything) and "Show every topic" in everything


def test_an_edit_returns_to_its_page_and_only_the_page_reads_quotes(site) -> None:
    admin = sign_in(site["app"], site["settings"], "admin")
    page = admin.get("/topics", params={"sort": "trend", "page": 2}).text
    topic_id = _rows(page)[0]
    assert 'name="sort" value="trend"' in page and 'name="page" value="2"' in page
    answer = admin.post(f"/topics/{topic_id}/rename", data={"csrf_token": csrf_of(page), "label": "Courier woes",
                                                             "sort": "trend", "page": "2"})
    assert answer.status_code == 303
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    assert back["sort"] == ["trend"] and back["page"] == ["2"] and back["message"] == [f"Renamed topic {topic_id}."]
    again = admin.get(answer.headers["location"]).text
    assert f"Renamed topic {topic_id}." in again and "Courier woes" in again
    pin = admin.post(f"/topics/{topic_id}/pin", data={"csrf_token": csrf_of(again), "pinned": "true",
                                                       "sort": "nonsense", "page": "2"})
    assert parse_qs(urlsplit(pin.headers["location"]).query).get("sort") is None  # only a known order comes back
    # Quotes: read for the topics asked for, as the full listing reads them; none for the others.
    engine = make_engine(site["settings"].database_url)
    with session_scope(engine) as session:
        every = service.list_topics(session, settings=site["settings"], audience="customer", with_totals=False)
        asked = {t["id"] for t in every["topics"][:3]}
        some = service.list_topics(session, settings=site["settings"], audience="customer", with_totals=False,
                                   quotes_for=lambda listed: [t["id"] for t in listed[:3]])
    engine.dispose()
    full = {t["id"]: t["quotes"] for t in every["topics"]}
    assert any(full[i] for i in asked)
    for topic in some["topics"]:
        assert topic["quotes"] == (full[topic["id"]] if topic["id"] in asked else [])
