"""Searching the feedback explorer (`GET /v1/feedback?q=`): full-text search on PostgreSQL (GIN
index), substring search on SQLite; the same answers for whole words, phrases and exclusions."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from feedback.db import session_scope
from feedback.ingest.service import get_or_create_source, ingest_payloads
from feedback.repository import search_terms

TEXTS = [
    "The refund took three weeks and nobody answered my emails",
    "Delivery was fast, the courier was friendly",
    "Still waiting for my refund; the app keeps crashing at checkout",
    "Checkout crashed twice but support fixed it quickly",
    "Great prices. 50% off made my day",
    "L'application plante au paiement, remboursement toujours pas reçu",
]


@pytest.fixture
def searchable(light_client, settings):
    with session_scope(light_client.app.state.session_factory) as session:
        source = get_or_create_source(session, name="search", connector="push", audience="customer")
        stats = ingest_payloads(session, source=source, settings=settings, location="test",
                                payloads=[{"id": str(i), "text": t} for i, t in enumerate(TEXTS)])
    assert stats.new == len(TEXTS)
    return light_client


def _texts(client, q: str) -> list[str]:
    response = client.get("/v1/feedback", params={"q": q, "source": "search"})
    assert response.status_code == 200, response.text
    return [item["text"] for item in response.json()["items"]]


def test_words_phrases_and_exclusions_find_the_same_items_on_both_engines(searchable) -> None:
    assert _texts(searchable, "refund") == [TEXTS[0], TEXTS[2]]
    assert _texts(searchable, "REFUND weeks") == [TEXTS[0]]  # every word, any case
    assert _texts(searchable, "checkout -support") == [TEXTS[2]]
    assert _texts(searchable, '"support fixed"') == [TEXTS[3]]
    assert _texts(searchable, '"fixed support"') == []
    assert _texts(searchable, "remboursement") == [TEXTS[5]]
    assert _texts(searchable, "50%") == [TEXTS[4]]
    assert _texts(searchable, "nothing-matches-this") == []


def test_search_combines_with_filters_and_pages(searchable) -> None:
    first = searchable.get("/v1/feedback", params={"q": "refund", "limit": 1, "source": "search"}).json()
    assert [i["text"] for i in first["items"]] == [TEXTS[0]] and first["next_cursor"] is not None
    rest = searchable.get("/v1/feedback", params={"q": "refund", "limit": 1, "source": "search",
                                                  "cursor": first["next_cursor"]}).json()
    assert [i["text"] for i in rest["items"]] == [TEXTS[2]]
    assert searchable.get("/v1/feedback", params={"q": "refund", "audience": "employee"}).json()["items"] == []


def test_odd_queries_are_answered_not_failed(searchable) -> None:
    for q in ['"', "-", '""', "%_\\", "a:b & c | !d", "(", "' OR 1=1 --", "-refund"]:
        response = searchable.get("/v1/feedback", params={"q": q, "source": "search"})
        assert response.status_code == 200, (q, response.text)
    assert searchable.get("/v1/feedback", params={"q": "x" * 501}).status_code == 422


def test_search_terms_read_a_query_as_web_search_does() -> None:
    assert search_terms('refund -app "took three" ') == [("refund", True), ("app", False), ("took three", True)]
    assert search_terms('- "" x') == [("x", True)]


@pytest.mark.backends("postgres")
def test_postgresql_search_is_served_by_the_gin_index(searchable) -> None:
    with session_scope(searchable.app.state.session_factory) as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(session.scalars(text(
            "EXPLAIN SELECT id FROM feedback_items WHERE to_tsvector('simple', text) "
            "@@ websearch_to_tsquery('simple', 'refund')")))
    assert "ix_feedback_items_text_search" in plan
