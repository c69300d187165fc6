"""`voc backfill` on SQLite and PostgreSQL, in one process and on a local Ray (2 CPUs).

What must hold: a backfill stores the rows `voc ingest` + `voc tag` store (items, tags, labels,
embeddings, dead letters); a rerun after a crash, a tagging actor lost mid-run and two backfills
of one file at once all end with every item stored and tagged exactly once; malformed rows are
dead-lettered with their reason. The taggers here are cheap and deterministic (`FakeTagger`),
except in the CLI test, where the Ray actors load the real model.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import threading
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from classifiers.schemas import TagResult
from feedback.config import Settings
from feedback.db import session_factory
from feedback.ingest.files import ingest_file
from feedback.ingest.readers import IngestError
from feedback.models import DeadLetter, FeedbackItem, IngestionRun, ItemEmbedding, Source, Tag, TagLabel
from jobs.backfill import RAY_MISSING, BackfillError, run_backfill
from jobs.tasks import tag_pending

TESTS = Path(__file__).resolve().parent
ROWS = 2_000  # demo rows in most tests: "a few thousand items" at a cost the suite can carry
# Rows `voc ingest` dead-letters, each for another reason; written after the first demo rows.
MALFORMED = [
    "bad-1,2026-08-03T10:00:00Z,customer",  # truncated
    "bad-2,2026-08-03T10:00:00Z,customer,survey,delivery,,,,en,,7,,,cust-1",  # empty text
    "bad-3,2026-08-03T10:00:00Z,customer,survey,delivery,,,,en,The van was late,42,,,cust-2",  # nps 42
    "bad-4,last tuesday,customer,survey,delivery,,,,en,Parcel left in the rain,3,,,cust-3",  # date
    "bad-5,2026-08-03T10:00:00Z,customer,survey,delivery,,,,en,Late, again,3,,,cust-4,extra",  # comma
    "bad-6,2026-08-03T10:00:00Z,martian,survey,delivery,,,,en,Mail me at jo.bloggs@example.com,3,,,cust-5",  # audience
]


# -- taggers (module level: Ray actors import them from this file) --------------------------
class FakeTagger:
    """A deterministic tagger of no cost: every field follows from a hash of the text."""

    name = "fake-tagger"
    version = "fake.1"
    model_versions = {"sentiment": "fake-sentiment.1", "emotions": "fake-emotions.1"}
    encoder_name = "fake-encoder"

    def tag(self, texts: Any, *, audiences: Any = None, return_embeddings: bool = False,
            languages: Any = None) -> list[TagResult]:
        results = []
        for text in texts:
            h = hashlib.sha256(text.encode()).digest()
            negative = h[0] / 255
            results.append(TagResult(
                sentiment=("negative", "neutral", "positive")[h[1] % 3],
                sentiment_score=round(1 - 2 * negative, 4),
                sentiment_probs={"negative": negative, "neutral": 0.0, "positive": 1 - negative},
                emotions={"joy": h[2] / 255, "anger": h[3] / 255},
                emotion_labels=["joy"] if h[2] > 127 else ["neutral"],
                cx_emotions=["delight"] if h[2] > 200 else [],
                needs=["functional"] if h[4] > 100 else [],
                need_scores={"functional": h[4] / 255},
                touchpoint=("delivery", "store", "app")[h[5] % 3],
                touchpoint_confidence=h[6] / 255,
                flags=[],
                embedding=np.frombuffer(h, dtype=np.uint8)[:16].astype(np.float32) / 255
                if return_embeddings else None,
            ))
        return results


class DyingTagger(FakeTagger):
    """Kills its process (a lost Ray actor) on its third batch, once: `marker` remembers it."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)
        self.calls = 0

    def tag(self, texts: Any, **kwargs: Any) -> list[TagResult]:
        self.calls += 1
        if self.calls == 3 and not self.marker.exists():
            self.marker.touch()
            os._exit(1)
        return super().tag(texts, **kwargs)


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray of 2 CPUs for the session; its workers import this module's taggers."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 2**20, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[list[str]]]:
    """The demo generator's header and rows (realistic feedback, 16 weeks)."""
    from feedback.demo.generator import write_csv

    path = tmp_path_factory.mktemp("backfill_demo") / "northwind.csv"
    write_csv(path, seed=11)
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def write_sample(path: Path, demo_rows: tuple[list[str], list[list[str]]], rows: int,
                 malformed: bool = False) -> Path:
    """A CSV of the first `rows` demo rows, with the malformed rows after the first 50."""
    header, body = demo_rows
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body[:50])
        if malformed:
            handle.write("\n".join(MALFORMED) + "\n")
        writer.writerows(body[50:rows])
    return path


@pytest.fixture
def sample(tmp_path: Path, demo_rows) -> Path:
    return write_sample(tmp_path / "feedback.csv", demo_rows, ROWS, malformed=True)


def with_ingest(settings: Settings, **values: Any) -> Settings:
    """`settings` with some ingest.* values changed (smaller write batches interleave more)."""
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update=values)})


# -- what is stored ---------------------------------------------------------------------------
ITEM_FIELDS = ("content_hash", "audience", "channel", "touchpoint", "journey_stage", "segment", "org_unit",
               "language", "text", "nps", "csat", "stars", "author", "created_at", "extra")
TAG_FIELDS = ("model", "model_version", "model_versions", "sentiment", "sentiment_score", "sentiment_probs",
              "p_negative", "emotions", "emotion_scores", "cx_emotions", "needs", "need_scores", "touchpoint",
              "touchpoint_confidence", "flags")


def stored(engine: Any, source: str) -> dict[str, dict[str, Any]]:
    """Every item of `source` by external id: its fields, tag, labels and embedding."""
    with session_factory(engine)() as session:
        source_id = session.scalar(select(Source.id).where(Source.name == source))
        items = session.scalars(select(FeedbackItem).where(FeedbackItem.source_id == source_id)).all()
        by_id = {item.id: item for item in items}
        tags = {t.item_id: t for t in session.scalars(select(Tag).where(Tag.item_id.in_(by_id)))}
        labels: dict[int, set[tuple[str, str, float]]] = {}
        for label in session.scalars(select(TagLabel).where(TagLabel.item_id.in_(by_id))):
            labels.setdefault(label.item_id, set()).add((label.kind, label.label, round(label.score, 6)))
        vectors = {e.item_id: (e.model, e.dim, e.vector)
                   for e in session.scalars(select(ItemEmbedding).where(ItemEmbedding.item_id.in_(by_id)))}
    out = {}
    for item_id, item in by_id.items():
        tag = tags.get(item_id)
        out[item.external_id] = {
            "item": {f: getattr(item, f) for f in ITEM_FIELDS},
            "tag": {f: getattr(tag, f) for f in TAG_FIELDS} if tag else None,
            "labels": labels.get(item_id, set()),
            "embedding": vectors.get(item_id),
        }
    return out


def dead_letters(engine: Any, source: str) -> list[tuple[str | None, str, str]]:
    with session_factory(engine)() as session:
        return sorted(session.execute(
            select(DeadLetter.location, DeadLetter.reason, DeadLetter.raw_payload)
            .join(Source, Source.id == DeadLetter.source_id).where(Source.name == source)).tuples())


def expected_ids(path: Path) -> set[str]:
    """The external ids of the rows of `path` that make items (the demo rows)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["external_id"] for row in csv.DictReader(handle) if row["external_id"].startswith("nw-")}


def assert_exactly_once(engine: Any, source: str, ids: set[str], dead: int = 0) -> None:
    """Every id stored once, with one tag and one embedding; `dead` dead letters, none twice."""
    with session_factory(engine)() as session:
        source_id = session.scalar(select(Source.id).where(Source.name == source))
        counts = Counter(session.scalars(select(FeedbackItem.external_id)
                                         .where(FeedbackItem.source_id == source_id)))
        assert set(counts) == ids and set(counts.values()) == {1}
        item_ids = select(FeedbackItem.id).where(FeedbackItem.source_id == source_id).scalar_subquery()
        assert session.scalar(select(func.count()).select_from(Tag).where(Tag.item_id.in_(item_ids))) == len(ids)
        assert session.scalar(select(func.count()).select_from(ItemEmbedding)
                              .where(ItemEmbedding.item_id.in_(item_ids))) == len(ids)
        letters = Counter(session.execute(select(DeadLetter.location, DeadLetter.raw_payload)
                                          .where(DeadLetter.source_id == source_id)).tuples())
        assert sum(letters.values()) == dead and set(letters.values()) <= {1}


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_backfill_stores_what_ingest_and_tag_store(settings, engine, sample, ray_cluster) -> None:
    ingest_file(engine, sample, settings=settings, source_name="ingest")
    tag_pending(engine, FakeTagger(), batch_size=256)
    for runner in ("local", "ray"):
        result = run_backfill(engine, [sample], settings=settings, runner=runner, source_name=runner, actors=1,
                              tagger_factory=FakeTagger)
        assert (result.total.new, result.total.dead, result.tagged) == (ROWS, len(MALFORMED), ROWS)
    baseline = stored(engine, "ingest")
    assert len(baseline) == ROWS and all(entry["tag"] for entry in baseline.values())
    for runner in ("local", "ray"):
        assert stored(engine, runner) == baseline, runner
        assert [d[1:] for d in dead_letters(engine, runner)] == [d[1:] for d in dead_letters(engine, "ingest")]


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["local", "ray"])
def test_a_rerun_after_a_crash_stores_nothing_twice(settings, engine, sample, ray_cluster, runner) -> None:
    settings = with_ingest(settings, batch_size=300)

    class Crash(RuntimeError):
        pass

    def crash_after_two(store: Any) -> None:
        if store.batches == 2:
            raise Crash("the machine went down")

    with pytest.raises(Crash):
        run_backfill(engine, [sample], settings=settings, runner=runner, batch_size=100, actors=1,
                     tagger_factory=FakeTagger, on_batch=crash_after_two)
    with session_factory(engine)() as session:
        first = session.scalar(select(func.count()).select_from(FeedbackItem))
        assert 0 < first < ROWS  # some batches stored, not all
        assert session.scalar(select(func.count()).select_from(Tag)) == first  # items with their tags
        assert session.scalar(select(IngestionRun.status)) == "failed"

    again = run_backfill(engine, [sample], settings=settings, runner=runner, batch_size=100, actors=1,
                         tagger_factory=FakeTagger)
    assert again.skipped == first and again.total.new == ROWS - first and again.tagged == ROWS - first
    assert_exactly_once(engine, f"file:{sample.name}", expected_ids(sample), dead=len(MALFORMED))
    third = run_backfill(engine, [sample], settings=settings, tagger_factory=FakeTagger)  # either engine: a no-op
    assert (third.total.new, third.tagged, third.skipped) == (0, 0, ROWS)
    assert_exactly_once(engine, f"file:{sample.name}", expected_ids(sample), dead=len(MALFORMED))


@pytest.mark.slow
def test_a_tagging_actor_lost_mid_backfill_still_tags_every_item_once(settings, engine, sample, tmp_path,
                                                                     ray_cluster) -> None:
    marker = tmp_path / "actor-died"
    # Two actors on two CPUs: they share what the prepare stage leaves; one of them dies.
    result = run_backfill(engine, [sample], settings=with_ingest(settings, batch_size=500), runner="ray",
                          batch_size=200, actors=2, tagger_factory=partial(DyingTagger, str(marker)))
    assert marker.exists()  # an actor did die, on its third batch
    assert result.total.new == ROWS and result.tagged == ROWS and result.untagged == 0
    assert_exactly_once(engine, f"file:{sample.name}", expected_ids(sample), dead=len(MALFORMED))


@pytest.mark.slow
def test_two_backfills_of_one_file_at_once_store_each_item_once(settings, engine, sample, ray_cluster) -> None:
    settings = with_ingest(settings, batch_size=200)  # many small transactions, interleaved
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def backfill(runner: str) -> None:
        start.wait()
        try:
            results[runner] = run_backfill(engine, [sample], settings=settings, runner=runner, batch_size=100,
                                           actors=1, tagger_factory=FakeTagger)
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            results[runner] = exc

    threads = [threading.Thread(target=backfill, args=(runner,)) for runner in ("local", "ray")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    assert sum(r.total.new for r in results.values()) == ROWS
    assert sum(r.tagged for r in results.values()) == ROWS
    assert all(r.total.seen == ROWS + len(MALFORMED) and r.untagged == 0 for r in results.values())
    assert_exactly_once(engine, f"file:{sample.name}", expected_ids(sample), dead=len(MALFORMED))


@pytest.mark.slow
def test_malformed_rows_are_dead_lettered_with_their_reasons(settings, engine, tmp_path, demo_rows,
                                                            ray_cluster) -> None:
    small = write_sample(tmp_path / "small.csv", demo_rows, 120, malformed=True)
    ingest_file(engine, small, settings=settings, source_name="ingest")
    result = run_backfill(engine, [small], settings=settings, runner="ray", source_name="ray", actors=1,
                          tagger_factory=FakeTagger)
    letters = dead_letters(engine, "ray")
    assert [d[1:] for d in letters] == [d[1:] for d in dead_letters(engine, "ingest")]
    assert result.total.dead == len(MALFORMED) == len(letters)
    reasons = " | ".join(reason for _, reason, _ in letters)
    for why in ("looks truncated", "the text is empty", "nps", "not a date", "unquoted delimiter", "audience"):
        assert why in reasons
    assert "jo.bloggs@example.com" not in " ".join(raw for _, _, raw in letters)  # dead letters are redacted too
    assert result.total.new == 120 and result.tagged == 120


def test_a_file_without_a_text_column_is_refused_as_voc_ingest_refuses_it(settings, engine, tmp_path) -> None:
    bad = tmp_path / "scores.csv"
    bad.write_text("id,score\n1,5\n2,3\n", encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text("external_id,text\n1,The parcel came a day early\n", encoding="utf-8")
    result = run_backfill(engine, [bad, good], settings=settings, tagger_factory=FakeTagger)
    with pytest.raises(IngestError) as ingest_error:
        ingest_file(engine, bad, settings=settings, source_name="ingest")
    assert result.failed == {str(bad): str(ingest_error.value)}
    assert "text" in result.failed[str(bad)] and "score" in result.failed[str(bad)]
    assert result.total.new == 1 and result.tagged == 1  # the other file went on
    with session_factory(engine)() as session:
        runs = dict(session.execute(select(IngestionRun.location, IngestionRun.status)).tuples().all())
        assert runs == {str(bad): "failed", str(good): "succeeded"}
    assert len(dead_letters(engine, "file:scores.csv")) == 1


def test_engine_ray_without_ray_says_how_to_install_it(settings, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from feedback.config import get_settings
    from jobs.cli import app

    path = tmp_path / "a.csv"
    path.write_text("text\nfine\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    with pytest.raises(BackfillError, match=r"pip install '\.\[ray\]'"):
        run_backfill(None, [path], settings=settings, runner="ray")  # type: ignore[arg-type]
    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        outcome = CliRunner().invoke(app, ["backfill", str(path), "--engine", "ray"])
    finally:
        get_settings.cache_clear()
    assert outcome.exit_code == 1
    assert "pip install '.[ray]'" in " ".join(outcome.output.split()) and RAY_MISSING.startswith("--engine ray")


@pytest.mark.slow
def test_cli_backfill_with_the_real_model_stores_what_ingest_and_tag_store(settings, engine, tmp_path, demo_rows,
                                                                          tagger, ray_cluster, monkeypatch) -> None:
    from typer.testing import CliRunner

    from feedback.config import get_settings
    from jobs.cli import app

    path = write_sample(tmp_path / "real.csv", demo_rows, 300)
    ingest_file(engine, path, settings=settings, source_name="ingest")
    tag_pending(engine, tagger, batch_size=256)
    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        for engine_name in ("ray", "local"):  # ray: each actor loads the model; local: this process's
            outcome = runner.invoke(app, ["backfill", str(tmp_path / "real.*"), "--engine", engine_name,
                                          "--source", engine_name, "--batch-size", "256", "--actors", "1"])
            assert outcome.exit_code == 0, outcome.output
            assert "300 new" in outcome.output and "300 tagged" in outcome.output
    finally:
        get_settings.cache_clear()
    baseline = stored(engine, "ingest")
    for engine_name in ("ray", "local"):
        backfilled = stored(engine, engine_name)
        assert backfilled.keys() == baseline.keys()
        for external_id, entry in baseline.items():
            other = backfilled[external_id]
            assert other["item"] == entry["item"]
            for field in ("model", "model_version", "model_versions", "sentiment", "emotions", "cx_emotions",
                          "needs", "touchpoint", "flags"):
                assert other["tag"][field] == entry["tag"][field], (engine_name, external_id, field)
            assert other["tag"]["sentiment_score"] == pytest.approx(entry["tag"]["sentiment_score"], abs=1e-3)
            assert {(k, n) for k, n, _ in other["labels"]} == {(k, n) for k, n, _ in entry["labels"]}
            assert other["embedding"][:2] == entry["embedding"][:2]
            assert np.allclose(np.frombuffer(other["embedding"][2], "<f2"),
                               np.frombuffer(entry["embedding"][2], "<f2"), atol=2e-2)
