"""Horizontal tagging workers on SQLite and PostgreSQL: claims, leases, restarts, /health, `voc worker`.

Where the model is not the point, workers run a cheap fake tagger that records which worker ran
the models on which item (`FakeTagger`); its `name` is stored on each tag, so the tags also say
which worker stored them. One test runs the real tagger.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from feedback import claims
from feedback.db import make_engine, session_factory, session_scope
from feedback.ingest.service import get_or_create_source, ingest_payloads
from feedback.models import FeedbackItem, Tag, TagClaim, TagWorker
from jobs.worker import Worker, WorkerOptions

REPO = Path(__file__).resolve().parent.parent


@dataclass
class FakeResult:
    sentiment: str = "negative"
    sentiment_score: float = -0.5
    sentiment_probs: dict[str, float] = field(default_factory=lambda: {"negative": 0.7, "neutral": 0.2,
                                                                       "positive": 0.1})
    emotion_labels: list[str] = field(default_factory=lambda: ["annoyance"])
    emotions: dict[str, float] = field(default_factory=lambda: {"annoyance": 0.6})
    cx_emotions: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=lambda: ["reliability"])
    need_scores: dict[str, float] = field(default_factory=lambda: {"reliability": 0.8})
    touchpoint: str | None = "delivery"
    touchpoint_confidence: float = 0.9
    flags: list[str] = field(default_factory=list)
    embedding: Any = None


class FakeTagger:
    """A TaggerLike that tags instantly (or after `delay`), recording the texts it saw in `seen`."""

    version = "1"
    model_versions = {"fake": "1"}

    def __init__(self, name: str, seen: dict[str, list[str]], *, delay: float = 0.0,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.name = name
        self.seen = seen
        self.delay = delay
        self.on_batch = on_batch
        self.batches = 0

    def tag(self, texts: Any, *, audiences: Any = None, return_embeddings: bool = False,
            languages: Any = None) -> list[Any]:
        self.batches += 1
        for text_ in texts:
            self.seen.setdefault(text_, []).append(self.name)
        if self.on_batch is not None:
            self.on_batch(self.batches)
        if self.delay:
            time.sleep(self.delay)
        return [FakeResult() for _ in texts]


def add_items(engine: Any, settings: Any, n: int, *, prefix: str = "item") -> dict[str, int]:
    """`n` pushed items with distinct texts; returns text -> item id."""
    with session_scope(engine) as session:
        source = get_or_create_source(session, name=f"workers-{prefix}", connector="push")
        for start in range(0, n, 500):
            ingest_payloads(session, source=source, settings=settings, payloads=[
                {"external_id": f"{prefix}-{i}", "text": f"Parcel {prefix} {i} arrived late and damaged"}
                for i in range(start, min(n, start + 500))])
    with session_factory(engine)() as session:
        return dict(session.execute(select(FeedbackItem.text, FeedbackItem.id)  # type: ignore[arg-type]
                                    .where(FeedbackItem.external_id.startswith(f"{prefix}-"))).tuples().all())


def tags_by_item(engine: Any) -> dict[int, str]:
    """item id -> the `model` of its tag (the fake tagger's name: the worker that stored it)."""
    with session_factory(engine)() as session:
        return dict(session.execute(select(Tag.item_id, Tag.model)).all())


def count(engine: Any, model: Any) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def run_workers(url: str, taggers: list[Any], options: WorkerOptions) -> list[Any]:
    """Run one worker per tagger concurrently, each with its own engine (as separate processes
    would have); returns their results, re-raising any worker's error."""
    results: list[Any] = [None] * len(taggers)
    errors: list[BaseException] = []
    start = threading.Barrier(len(taggers))

    def work(index: int) -> None:
        engine = make_engine(url)
        try:
            start.wait()
            results[index] = Worker(engine, taggers[index], options).run()
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread)
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(taggers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]
    return results


def assert_each_tagged_once(engine: Any, ids: dict[str, int], seen: dict[str, list[str]]) -> None:
    """Every item tagged, by exactly one worker, which is the one that stored its tag."""
    stored = tags_by_item(engine)
    assert set(stored) == set(ids.values())
    twice = {t: names for t, names in seen.items() if len(names) != 1}
    assert not twice, f"items run through the models by more than one worker: {list(twice.items())[:5]}"
    assert set(seen) == set(ids)
    assert all(stored[ids[t]] == names[0] for t, names in seen.items())
    assert count(engine, TagClaim) == 0  # every claim released after storing


# -- claims ------------------------------------------------------------------------------------------
def test_claims_are_exclusive_until_they_expire(engine, settings) -> None:
    ids = sorted(add_items(engine, settings, 10).values())
    with session_scope(engine) as session:
        a = [r.id for r in claims.claim_batch(session, worker_id="a", batch_size=4, lease_seconds=60)]
    with session_scope(engine) as session:
        b = [r.id for r in claims.claim_batch(session, worker_id="b", batch_size=4, lease_seconds=0.5)]
    assert a == ids[:4] and b == ids[4:8]  # oldest first, never one another's
    time.sleep(0.6)  # b's lease expires: c takes b's items (and the two nobody had)
    with session_scope(engine) as session:
        c = [r.id for r in claims.claim_batch(session, worker_id="c", batch_size=10, lease_seconds=60)]
    assert c == ids[4:]
    with session_scope(engine) as session:  # b wakes up: it holds nothing any more, c holds all six
        assert claims.take_claims(session, worker_id="b", item_ids=b) == set()
        assert claims.take_claims(session, worker_id="c", item_ids=c) == set(c)
        assert claims.release_claims(session, worker_id="a") == 4


def test_an_item_tagged_meanwhile_is_not_claimed(engine, settings) -> None:
    ids = add_items(engine, settings, 3)
    seen: dict[str, list[str]] = {}
    Worker(engine, FakeTagger("first", seen), WorkerOptions(until_empty=True)).run()
    with session_scope(engine) as session:
        assert claims.claim_batch(session, worker_id="late", batch_size=10, lease_seconds=60) == []
    assert len(tags_by_item(engine)) == len(ids)


# -- concurrent workers ------------------------------------------------------------------------------
def test_three_workers_tag_every_item_exactly_once(engine, settings) -> None:
    ids = add_items(engine, settings, 240)
    seen: dict[str, list[str]] = {}
    taggers = [FakeTagger(f"worker-{i}", seen, delay=0.01) for i in range(3)]
    results = run_workers(settings.database_url, taggers,
                          WorkerOptions(batch_size=8, until_empty=True, lease_seconds=30))
    assert_each_tagged_once(engine, ids, seen)
    assert sum(r.tagged for r in results) == len(ids)
    assert all(r.tagged > 0 for r in results), [r.tagged for r in results]  # all three took part
    assert count(engine, TagWorker) == 0  # each said goodbye


def test_two_workers_with_the_real_tagger(engine, settings, tagger) -> None:
    ids = add_items(engine, settings, 48)
    seen: dict[str, list[str]] = {}

    class Recording:
        """The real tagger, recording which worker ran it on which text."""

        def __init__(self, name: str) -> None:
            self.worker = name
            self.name, self.version, self.model_versions = tagger.name, tagger.version, tagger.model_versions
            self.encoder_name = getattr(tagger, "encoder_name", tagger.name)

        def tag(self, texts: Any, **kwargs: Any) -> list[Any]:
            for text_ in texts:
                seen.setdefault(text_, []).append(self.worker)
            return tagger.tag(texts, **kwargs)

    results = run_workers(settings.database_url, [Recording("a"), Recording("b")],
                          WorkerOptions(batch_size=6, until_empty=True))
    assert sum(r.tagged for r in results) == len(ids)
    assert not [t for t, names in seen.items() if len(names) != 1] and set(seen) == set(ids)
    with session_factory(engine)() as session:
        tags = session.execute(select(Tag.item_id, Tag.sentiment, Tag.model)).all()
    assert {t.item_id for t in tags} == set(ids.values())
    assert {t.model for t in tags} == {tagger.name} and {t.sentiment for t in tags} <= {"negative", "neutral",
                                                                                          "positive"}


# -- a killed worker ---------------------------------------------------------------------------------
def test_a_killed_workers_items_are_retaken_only_after_its_lease(engine, settings) -> None:
    ids = add_items(engine, settings, 30)
    seen: dict[str, list[str]] = {}
    # The "killed" worker ran the models on its batch but never stored it (and never will renew).
    with session_scope(engine) as session:
        dead = claims.claim_batch(session, worker_id="killed", batch_size=10, lease_seconds=2)
    FakeTagger("killed", seen).tag([r.text for r in dead])
    survivor = Worker(engine, FakeTagger("survivor", seen), WorkerOptions(batch_size=7, until_empty=True))
    assert survivor.run().tagged == 20
    assert set(tags_by_item(engine)) == set(ids.values()) - {r.id for r in dead}  # not before the lease
    time.sleep(max(0.0, 2.1 - 0.0))
    assert Worker(engine, FakeTagger("survivor", seen), WorkerOptions(until_empty=True)).run().tagged == 10
    stored = tags_by_item(engine)
    assert set(stored) == set(ids.values()) and set(stored.values()) == {"survivor"}
    assert all(seen[r.text] == ["killed", "survivor"] for r in dead)  # models ran again only after expiry
    # The killed worker comes back to life and stores its stale batch: nothing is stored twice.
    with session_scope(engine) as session:
        assert claims.take_claims(session, worker_id="killed", item_ids=[r.id for r in dead]) == set()
    assert count(engine, Tag) == len(ids) and count(engine, TagClaim) == 0


def test_a_living_workers_heartbeat_keeps_a_slow_batch_its_own(engine, settings) -> None:
    ids = add_items(engine, settings, 6)
    seen: dict[str, list[str]] = {}
    started = threading.Event()
    slow = Worker(engine, FakeTagger("slow", seen, delay=2.0, on_batch=lambda _: started.set()),
                  WorkerOptions(batch_size=6, lease_seconds=0.8, until_empty=True))
    thread = threading.Thread(target=slow.run)
    thread.start()
    assert started.wait(30)
    time.sleep(1.2)  # past the first lease: the heartbeat renewed it
    other = Worker(engine, FakeTagger("other", seen), WorkerOptions(until_empty=True)).run()
    thread.join(timeout=60)
    assert other.tagged == 0 and slow.result.tagged == 6
    assert_each_tagged_once(engine, ids, seen)


# -- the database goes away ------------------------------------------------------------------------------
def _terminate_connections(url: str) -> int:
    """Terminate every other connection to the database of `url` (what a database restart does)."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=None)
    try:
        with admin.connect() as connection:
            return len(connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()


def _pg_ctl(pg_server: Any, *args: str) -> None:
    """Run pg_ctl on the test server, its output to server.log (a server started with a captured
    pipe keeps it open: `PgServer._run` would wait for ever)."""
    command = [str(pg_server.bindir / "pg_ctl"), "-D", str(pg_server.root / "data"), *args]
    if pg_server.run_as:
        command = ["runuser", "-u", pg_server.run_as, "--", *command]
    with open(pg_server.root / "server.log", "a") as log:
        subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                       check=True, timeout=120)


def _start_again(pg_server: Any) -> None:
    """Start the stopped test server with the options it last ran with (postmaster.opts)."""
    words = shlex.split((pg_server.root / "data" / "postmaster.opts").read_text())[1:]
    at = words.index("-D")
    options = words[:at] + words[at + 2:]
    _pg_ctl(pg_server, "-l", str(pg_server.root / "server.log"), "-o", shlex.join(options), "-w", "start")


@pytest.mark.backends("postgres")
def test_a_worker_reconnects_after_the_database_restarts(engine, settings, pg_server, caplog) -> None:
    ids = add_items(engine, settings, 60)
    seen: dict[str, list[str]] = {}
    outages: list[str] = []
    restarts: list[threading.Thread] = []

    def cut_connections(session: Any) -> None:  # inside a batch's store transaction
        if len(outages) == 0:
            assert _terminate_connections(settings.database_url) >= 1
            outages.append("terminated mid-transaction")

    def server_down(batch: int) -> None:  # while the models run: down for ~2 s, across the store
        if batch == 4 and pg_server.root is not None:
            _pg_ctl(pg_server, "-m", "fast", "-w", "stop")
            outages.append("server stopped")
            restarts.append(threading.Thread(target=lambda: (time.sleep(2), _start_again(pg_server))))
            restarts[-1].start()

    worker_engine = make_engine(settings.database_url)
    try:
        with caplog.at_level("WARNING", logger="jobs.worker"):
            result = Worker(worker_engine, FakeTagger("survivor", seen, on_batch=server_down),
                            WorkerOptions(batch_size=8, until_empty=True, lease_seconds=30),
                            after_store=cut_connections).run()
    finally:
        worker_engine.dispose()
        for thread in restarts:
            thread.join(timeout=120)
    assert outages[0] == "terminated mid-transaction" and len(outages) == (1 if pg_server.root is None else 2)
    assert result.tagged == len(ids)
    assert result.reconnects >= len(outages), (outages, result)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert_each_tagged_once(engine, ids, seen)


@pytest.mark.backends("sqlite")
def test_a_worker_waits_out_a_locked_sqlite_database(engine, settings) -> None:
    import sqlite3

    ids = add_items(engine, settings, 20)
    seen: dict[str, list[str]] = {}
    blocker = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None,
                              check_same_thread=False)
    locked = threading.Event()

    def lock_the_database(batch: int) -> None:  # another writer takes the lock for ~1.5 s
        if batch == 1:
            blocker.execute("BEGIN IMMEDIATE")
            locked.set()
            threading.Timer(1.5, lambda: blocker.execute("COMMIT")).start()

    impatient = make_engine(settings.database_url, busy_timeout_s=0.05)  # "database is locked" at once
    try:
        result = Worker(impatient, FakeTagger("patient", seen, on_batch=lock_the_database),
                        WorkerOptions(batch_size=8, until_empty=True)).run()
    finally:
        impatient.dispose()
        time.sleep(0.1)
        blocker.close()
    assert locked.is_set() and result.tagged == len(ids)
    assert_each_tagged_once(engine, ids, seen)


# -- /health ---------------------------------------------------------------------------------------------
def test_health_shows_live_workers_and_the_queue(light_client, engine, settings, monkeypatch) -> None:
    from api.routers import health

    add_items(engine, settings, 12)
    seen: dict[str, list[str]] = {}
    inside, go_on = threading.Event(), threading.Event()

    def hold(batch: int) -> None:
        inside.set()
        assert go_on.wait(60)

    busy = Worker(engine, FakeTagger("busy", seen, on_batch=hold),
                  WorkerOptions(batch_size=5, until_empty=True, name="tagger-1"))
    thread = threading.Thread(target=busy.run)
    thread.start()
    try:
        assert inside.wait(30)
        body = light_client.get("/health").json()
    finally:
        go_on.set()
        thread.join(timeout=60)
    [shown] = body["workers"]
    assert shown["name"] == "tagger-1" and shown["pid"] == os.getpid() and shown["host"]
    assert shown["state"] == "tagging" and shown["seconds_since_heartbeat"] < 30
    assert body["queue"] == {"untagged": 12, "claimed": 5}
    # Item counts are shared by the probes of a few seconds (COUNT_SECONDS); workers and claims are live.
    cached = light_client.get("/health").json()
    assert cached["workers"] == [] and cached["queue"] == {"untagged": 12, "claimed": 0}
    monkeypatch.setattr(health, "COUNT_SECONDS", 0.0)
    after = light_client.get("/health").json()
    assert after["workers"] == [] and after["queue"] == {"untagged": 0, "claimed": 0}


# -- the command line --------------------------------------------------------------------------------------
def test_voc_worker_until_empty(settings, engine, monkeypatch) -> None:
    from typer.testing import CliRunner

    from feedback.config import get_settings
    from jobs.cli import app

    ids = add_items(engine, settings, 25)
    seen: dict[str, list[str]] = {}
    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    monkeypatch.setattr("jobs.tasks.load_service_tagger", lambda _settings: FakeTagger("cli", seen))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", "--until-empty", "--batch-size", "10", "--name", "w1",
                                          "--poll-seconds", "0.1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "worker w1: tagged 25 items in 3 batches" in result.output
    assert_each_tagged_once(engine, ids, seen)
    assert count(engine, TagWorker) == 0


WORKER_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path[:0] = [{repo!r}, {tests!r}]
    import jobs.tasks
    from test_workers import FakeTagger

    marker = Path({marker!r})

    def started(batch):
        marker.write_text(str(batch))

    jobs.tasks.load_service_tagger = lambda settings: FakeTagger("signalled", {{}}, delay=1.5,
                                                                 on_batch=started)
    from jobs.cli import app
    app(["worker", "--batch-size", "4", "--poll-seconds", "0.2", "--name", "signalled"])
""")


@pytest.mark.slow  # a fresh interpreter imports the CLI: 3-8 s on 2 busy cores
def test_sigterm_finishes_the_batch_in_flight_and_exits(settings, engine, tmp_path) -> None:
    add_items(engine, settings, 12)
    marker = tmp_path / "tagging"
    script = WORKER_SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests"), marker=str(marker))
    env = {**os.environ, "VOC_DATABASE_URL": settings.database_url, "VOC_CONFIG": "/nonexistent/voc.toml"}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():  # the first batch is in the models
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the worker never started tagging"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "worker signalled: tagged 4 items in 1 batches" in output, output
    assert count(engine, Tag) == 4  # the batch in flight was stored, no other started
    assert count(engine, TagClaim) == 0 and count(engine, TagWorker) == 0


def test_a_long_running_worker_takes_up_a_promoted_version(engine, settings, monkeypatch) -> None:
    """`voc worker`'s reload check: after a promotion the next batches are tagged by the new
    version; a failing check keeps the loaded tagger; nothing changes while the live version stays."""
    from datetime import UTC, datetime

    from feedback.models import ModelVersion
    from jobs import tasks

    loads: list[str] = []
    seen: dict[str, list[str]] = {}

    class NewVersion(FakeTagger):
        version = "adapted-1"

    monkeypatch.setattr(tasks, "load_service_tagger", lambda s: loads.append("load") or NewVersion("new", seen))
    reload = tasks.live_version_reloader(settings)
    assert reload() is None and loads == []  # the shipped model is live and loaded

    ids = add_items(engine, settings, 40)

    def promote_after_first_batch(batches: int) -> None:
        if batches == 1:
            with session_scope(engine) as session:
                session.add(ModelVersion(name="adapted-1", base="shipped", status="live", path="/v/adapted-1",
                                         promoted_at=datetime.now(UTC)))

    checks = {"n": 0}

    def flaky_then_real() -> Any:
        checks["n"] += 1
        if checks["n"] == 2:  # the check before the second batch, after the promotion
            raise RuntimeError("database away")
        return reload()

    worker = Worker(engine, FakeTagger("old", seen, on_batch=promote_after_first_batch),
                    WorkerOptions(batch_size=10, until_empty=True, reload_seconds=0), reload=flaky_then_real)
    result = worker.run()
    assert result.tagged == len(ids) and result.reloads == 1 and loads == ["load"]
    versions = {}
    with session_factory(engine)() as session:
        for model, version in session.execute(select(Tag.model, Tag.model_version)):
            versions.setdefault((model, version), 0)
            versions[(model, version)] += 1
    # batch 1 by the old tagger; batch 2 too (the first check failed and kept it); then the new one
    assert versions == {("old", "1"): 20, ("new", "adapted-1"): 20}, versions
    assert reload() is None and loads == ["load"]  # still the same live version: no reload
