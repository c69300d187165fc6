"""Concurrency on real SQLite through the real app: pushes that race, idempotent re-sends of a
request still in progress, the in-flight limit's 503, and the tagging job on a locked database.

A request is held "in progress" by another connection holding SQLite's write lock (as the tagging
job does while it stores a batch); the tests wait for states (a key held, a count reached), never
for times, so they check behaviour, not speed (speed is in bench/load.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import make_api_key
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from api.main import create_app
from feedback.config import Settings
from feedback.db import make_engine, session_factory, session_scope
from feedback.ingest.service import get_or_create_source, ingest_payloads
from feedback.models import FeedbackItem, IdempotencyKey, Tag


def _app_client(settings: Settings, **api: Any) -> TestClient:
    settings = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    app = create_app(settings)

    def _no_model() -> Any:
        raise AssertionError("this test must not load a model")

    app.state.tagger_provider = _no_model
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin', name='test admin')}"
    return client


@pytest.fixture
def app_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Clients of the real app with some api.* settings changed; closed after the test."""
    opened: list[TestClient] = []

    def make(**api: Any) -> TestClient:
        client = _app_client(settings, **api)
        client.__enter__()  # one event loop for every request: they run concurrently
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@contextmanager
def write_locked(settings: Settings) -> Iterator[Callable[[], None]]:
    """Hold SQLite's write lock from another connection (as a job storing a batch does); yields
    `release()`, which commits (also done at the end of the block). On PostgreSQL: a transaction
    that holds an EXCLUSIVE lock on the items table (reads go on, writes to it wait)."""
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        engine = make_engine(settings.database_url, poolclass=NullPool)
        pg = engine.connect()
        transaction = pg.begin()
        pg.exec_driver_sql("LOCK TABLE feedback_items IN EXCLUSIVE MODE")
        pg_released = threading.Event()

        def pg_release() -> None:
            if not pg_released.is_set():
                pg_released.set()
                transaction.commit()

        try:
            yield pg_release
        finally:
            pg_release()
            pg.close()
            engine.dispose()
        return
    connection = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None,
                                 check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            connection.execute("COMMIT")

    try:
        yield release
    finally:
        release()
        connection.close()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state another thread reaches; fails (not flakes) only if it never comes."""
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.01)


def _items(engine: Any, source: str | None = None) -> list[str]:
    with session_factory(engine)() as session:
        stmt = select(FeedbackItem.external_id)
        if source is not None:
            from feedback.models import Source

            stmt = stmt.join(Source, Source.id == FeedbackItem.source_id).where(Source.name == source)
        return list(session.scalars(stmt))


def _batch(source: str, prefix: str, n: int = 5) -> dict[str, Any]:
    return {"source": source, "items": [{"external_id": f"{prefix}-{i}", "text": f"Parcel {prefix} {i} came late"}
                                        for i in range(n)]}


# -- pushes -----------------------------------------------------------------------------------------
def test_concurrent_pushes_of_distinct_items_are_all_stored_never_409(app_client, engine) -> None:
    client = app_client()
    clients, rounds = 8, 4
    for round_ in range(rounds):  # each round pushes to a new source: its creation is raced too
        source = f"race-{round_}"
        start = threading.Barrier(clients)

        def push(n: int, source: str = source, start: threading.Barrier = start) -> Any:
            start.wait()
            return client.post("/v1/feedback", json=_batch(source, f"{source}-c{n}"))

        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(push, range(clients)))
        assert [a.status_code for a in answers] == [200] * clients, [a.text for a in answers]
        assert sum(a.json()["new"] for a in answers) == clients * 5
        stored = _items(engine, source)
        assert sorted(stored) == sorted({*stored}) and len(stored) == clients * 5


def test_a_push_waits_for_a_job_holding_the_write_lock(app_client, settings, engine) -> None:
    client = app_client()
    with write_locked(settings) as release, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/v1/feedback", json=_batch("waits", "w"))
        wait_until(lambda: client.app.state.in_flight.count == 1, "the push in progress")
        release()
        assert pending.result().status_code == 200
    assert len(_items(engine, "waits")) == 5


@pytest.mark.backends("sqlite")  # SQLite's single writer lock; PostgreSQL locks rows
def test_a_push_that_cannot_get_the_write_lock_gets_503_with_retry_after(app_client, settings) -> None:
    client = app_client(write_wait_seconds=0.05)
    with write_locked(settings):
        answer = client.post("/v1/feedback", json=_batch("busy", "b"))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert "busy" in answer.json()["detail"]
    assert client.post("/v1/feedback", json=_batch("busy", "b")).status_code == 200  # the retry


# -- idempotency under retries ----------------------------------------------------------------------
def test_a_resend_during_the_first_request_waits_for_its_answer(app_client, settings, engine) -> None:
    client = app_client()
    batch, key = _batch("resend", "r"), {"Idempotency-Key": "resend-1"}
    gate = client.app.state.push_queue
    with write_locked(settings) as release, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/v1/feedback", json=batch, headers=key)
        wait_until(lambda: gate.in_progress("resend-1"), "the first request holding its key")
        # The client gave up on the first and sends it again; the first is still storing.
        again = pool.submit(client.post, "/v1/feedback", json=batch, headers=key)
        wait_until(lambda: client.app.state.in_flight.count == 2, "the re-send in progress")
        release()
        first_answer, again_answer = first.result(), again.result()
    assert first_answer.status_code == 200 and first_answer.json()["new"] == 5
    assert again_answer.status_code == 200 and again_answer.json() == first_answer.json()
    assert again_answer.headers["Idempotent-Replayed"] == "true"
    assert len(_items(engine, "resend")) == 5
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


@pytest.mark.backends("sqlite")  # SQLite's single writer lock; PostgreSQL locks rows
def test_a_resend_that_cannot_wait_gets_409_in_progress_with_retry_after(app_client, settings, engine) -> None:
    client = app_client(idempotency_wait_seconds=0)
    batch, key = _batch("inprogress", "i"), {"Idempotency-Key": "inprogress-1"}
    gate = client.app.state.push_queue
    with write_locked(settings) as release, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/feedback", json=batch, headers=key)
        wait_until(lambda: gate.in_progress("inprogress-1"), "the first request holding its key")
        again = client.post("/v1/feedback", json=batch, headers=key)
        release()
        assert first.result().status_code == 200
    assert again.status_code == 409 and again.headers["Retry-After"] == "1"
    assert "in progress" in again.json()["detail"]
    later = client.post("/v1/feedback", json=batch, headers=key)  # as Retry-After says
    assert later.status_code == 200 and later.headers["Idempotent-Replayed"] == "true"
    assert len(_items(engine, "inprogress")) == 5


# -- the in-flight limit ----------------------------------------------------------------------------
def test_a_saturated_service_answers_503_with_retry_after_at_once(app_client, settings) -> None:
    client = app_client(max_in_flight=1, retry_after_seconds=3)
    with write_locked(settings) as release, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/feedback", json=_batch("limit", "l"))
        wait_until(lambda: client.app.state.in_flight.count == 1, "one request in progress")
        turned_away = client.get("/v1/trends")
        health = client.get("/health")  # health checks are never turned away
        release()
        assert first.result().status_code == 200
    assert turned_away.status_code == 503 and turned_away.headers["Retry-After"] == "3"
    assert "api.max_in_flight" in turned_away.json()["detail"]
    assert health.status_code == 200
    assert client.get("/v1/trends").status_code == 200  # no longer saturated
    assert client.app.state.in_flight.rejected == 1


def test_limits_are_sized_to_the_machine_unless_set() -> None:
    api = Settings(_env_file=None).api
    assert api.threads() >= 1 and api.connections() > api.threads()
    assert api.in_flight_limit() == 8 * (os.cpu_count() or 1)
    set_ = api.model_copy(update={"worker_threads": 3, "max_in_flight": 7, "pool_size": 5})
    assert (set_.threads(), set_.in_flight_limit(), set_.connections()) == (3, 7, 5)


# -- the tagging job on a locked database -----------------------------------------------------------
@pytest.mark.backends("sqlite")  # SQLite's single writer lock; PostgreSQL locks rows
def test_the_tagging_job_waits_out_a_locked_database(settings, tagger, caplog) -> None:
    from jobs.tasks import tag_pending

    engine = make_engine(settings.database_url, busy_timeout_s=0.05)  # give up on the lock at once
    with session_scope(engine) as session:
        source = get_or_create_source(session, name="locked", connector="push")
        ingest_payloads(session, source=source, settings=settings, payloads=[
            {"external_id": str(i), "text": f"The courier was late again, order {i}"} for i in range(6)])
    with write_locked(settings) as release:
        class ReleaseOnRetry(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "database is locked" in record.getMessage():
                    release()  # the other writer finishes while the job waits

        handler = ReleaseOnRetry()
        logging.getLogger("feedback.db").addHandler(handler)
        try:
            with caplog.at_level(logging.WARNING, logger="feedback.db"):
                result = tag_pending(engine, tagger, batch_size=4)
        finally:
            logging.getLogger("feedback.db").removeHandler(handler)
    assert result.tagged == 6 and result.remaining == 0
    assert any("database is locked" in r.getMessage() for r in caplog.records)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Tag)) == 6
    engine.dispose()


# -- reused answers ---------------------------------------------------------------------------------
def test_a_reused_answer_is_rebuilt_once_the_data_behind_it_changes(app_client) -> None:
    client = app_client(cache_seconds=3600)
    cache = client.app.state.response_cache
    client.post("/v1/feedback", json=_batch("cached", "a"))

    def volume() -> int:
        answer = client.get("/v1/trends?by=channel&interval=month")
        assert answer.status_code == 200
        return sum(row["n"] for row in answer.json()["rows"])

    first = volume()
    assert volume() == first and cache.hits == 1  # nothing changed: the stored answer
    client.post("/v1/feedback", json=_batch("cached", "b"))
    assert volume() == first + 5  # new items: built again, not the stale answer
    csv = client.get("/v1/aggregates?format=csv&interval=month")
    assert client.get("/v1/aggregates?format=csv&interval=month").content == csv.content
    assert cache.hits == 2


def test_an_item_edited_while_the_models_ran_is_left_for_the_next_batch(settings, engine, tagger) -> None:
    from feedback.tagging import count_untagged, pending_items, store_tags, tag_items

    def push(texts: list[str]) -> None:
        with session_scope(engine) as session:
            source = get_or_create_source(session, name="edited", connector="push")
            ingest_payloads(session, source=source, settings=settings, payloads=[
                {"external_id": str(i), "text": text} for i, text in enumerate(texts)])

    push(["The courier was late", "Lovely staff in the store"])
    with session_factory(engine)() as session:
        rows = pending_items(session)
    results = tag_items(tagger, rows)  # meanwhile item 0 is sent again with other text
    push(["The courier never came at all", "Lovely staff in the store"])
    with session_scope(engine) as session:
        assert store_tags(session, tagger, rows, results) == 1
    with session_factory(engine)() as session:
        assert count_untagged(session) == 1  # its new text waits for the next batch
        assert [r.text for r in pending_items(session)] == ["The courier never came at all"]


def test_pushes_take_turns_on_sqlite_and_store_side_by_side_on_postgresql(app_client, db_backend) -> None:
    """SQLite has one writer, so pushes queue for one turn; PostgreSQL locks rows, so
    `api.concurrent_pushes` pushes store at once, and unrelated pushes all succeed."""
    client = app_client(concurrent_pushes=3)
    assert client.app.state.push_queue.writers == (1 if db_backend == "sqlite" else 3)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda n: client.post("/v1/feedback", json=_batch("side", f"s{n}")), range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.json()["new"] == 5 for a in answers)
