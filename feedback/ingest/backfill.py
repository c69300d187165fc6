"""The stages of a backfill (`voc backfill`): large files ingested and tagged in one pass.

    read_chunks -> prepare_chunk -> tag_chunk -> BackfillStore.store
    (a file)       (no database)    (a tagger)   (the driver: one transaction per large batch)

`jobs.backfill` runs the first three on Ray Data (many processes, one loaded model per actor)
or in one process; either way each stage is the code `voc ingest` and `voc tag` run: the
reader, `RecordPreparer` (mapping, validation, PII redaction, language, pseudonyms), the
ingest service's storage (`Ingestor.store_prepared`) and `feedback.tagging.store_tags`, so a
backfill stores the same rows as `voc ingest` followed by `voc tag`.

Exactly once, whatever crashes or runs beside it:
- Items are keyed by (source, external id), as `voc ingest` keys them; tags by item. A batch's
  items, tags and embeddings are committed in one transaction, so an item is never stored
  without its tags by a backfill.
- A rerun skips items already stored with tags and unchanged (same key, same content hash)
  before any work is spent on them (`stored_keys`, checked in `prepare_chunk`), and does not
  store a row's dead letter twice.
- Two backfills of the same source write one at a time (a row lock on the source on
  PostgreSQL, SQLite's write lock); the second finds the first's items stored (unchanged) and
  tagged (`store_tags` skips them). A unique key broken by another writer (`voc ingest`, a push)
  rolls the batch back and stores it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from feedback.analytics.rollups import refresh_rollups
from feedback.config import Settings
from feedback.db import retry_locked, session_factory, session_scope, utcnow
from feedback.ingest.files import _head
from feedback.ingest.mapping import FieldMapping
from feedback.ingest.readers import IngestError, RawRecord, read_records
from feedback.ingest.service import (
    Ingestor,
    IngestStats,
    RecordPreparer,
    build_redactor,
    finish_run,
    get_or_create_source,
    start_run,
)
from feedback.models import FeedbackItem, IngestionRun, Source, Tag
from feedback.tagging import TaggerLike, store_tags, tag_items
from feedback.topics.service import assign_pending_topics, load_current_topic_models

log = logging.getLogger(__name__)
T = TypeVar("T")
_ID_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds
ROLLUP_DAYS_PER_BATCH = 7  # as the tagging job: rollups follow each batch of recent feedback
STORE_ATTEMPTS = 5  # a batch rolled back by another writer's unique key is stored again


@dataclass(frozen=True)
class BackfillFile:
    """One file of a backfill as the driver planned it: its source, run and resolved columns."""

    index: int
    path: str
    source_id: int
    audience: str  # the source's, for rows that name none
    run_id: int
    columns: dict[str, str] | None  # resolved from the first readable row (None: no such row)
    fmt: str | None = None
    encoding: str | None = None  # as given; None: detected again by each reader, as by `voc ingest`


@dataclass(frozen=True)
class ModelIdentity:
    """What `store_tags` records of the tagger (name and versions), without its models: the
    tags are made in Ray actors, stored by the driver."""

    name: str
    version: str
    model_versions: dict[str, str]
    encoder_name: str

    @classmethod
    def of(cls, tagger: TaggerLike) -> ModelIdentity:
        return cls(name=tagger.name, version=tagger.version, model_versions=dict(tagger.model_versions),
                   encoder_name=getattr(tagger, "encoder_name", tagger.name))


@dataclass
class Chunk:
    """Consecutive records of one file on their way through the stages."""

    file: int  # BackfillFile.index
    part: int
    records: list[RawRecord] = field(default_factory=list)  # read; emptied once prepared
    seen: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # prepared items to store and tag
    dead: list[tuple[RawRecord, str]] = field(default_factory=list)
    skipped: int = 0  # stored and tagged before, unchanged: no work
    results: list[Any] = field(default_factory=list)  # one TagResult per row
    models: ModelIdentity | None = None


@dataclass(frozen=True)
class PrepareContext:
    """What the prepare stage needs, shipped once to every worker (it holds no database URL)."""

    settings: Settings
    mapping: FieldMapping
    files: tuple[BackfillFile, ...]
    now: datetime  # the run's "now", for rows without a date (as one `voc ingest` run has one)
    done: np.ndarray  # sorted `item_key`s of items stored with tags before the run

    def is_done(self, keys: Sequence[bytes]) -> np.ndarray:
        """Which keys are in `done`."""
        if not len(self.done) or not keys:
            return np.zeros(len(keys), dtype=bool)
        wanted = np.array(keys, dtype="S16")
        at = np.minimum(np.searchsorted(self.done, wanted), len(self.done) - 1)
        return np.asarray(self.done[at] == wanted)


def item_key(source_id: int, external_id: str, content_hash: str) -> bytes:
    """A 16-byte key of an item's identity and content (collisions: never, in practice)."""
    return hashlib.blake2b(f"{source_id}\x1f{external_id}\x1f{content_hash}".encode(),
                           digest_size=16).digest()


# -- the stages ------------------------------------------------------------------------------
def read_chunks(file: BackfillFile, size: int) -> Iterator[Chunk]:
    """The file's records (the reader `voc ingest` uses), `size` at a time."""
    records = read_records(Path(file.path), fmt=file.fmt, encoding=file.encoding)
    part = 0
    chunk = Chunk(file.index, part)
    for record in records:
        chunk.records.append(record)
        if len(chunk.records) >= size:
            yield chunk
            part += 1
            chunk = Chunk(file.index, part)
    if chunk.records:
        yield chunk


def prepare_chunk(context: PrepareContext, chunk: Chunk) -> Chunk:
    """Map, validate, redact, detect languages and pseudonymise a chunk's records (needs no
    database); bad rows become dead letters, items stored and tagged before are skipped."""
    file = context.files[chunk.file]
    preparer = RecordPreparer(settings=context.settings, audience=file.audience, mapping=context.mapping,
                              columns=file.columns)
    items: list[dict[str, Any]] = []
    for record in chunk.records:
        item, reason = preparer.normalize_record(record, context.now)
        if item is None:
            chunk.dead.append((record, reason or "unreadable record"))
        else:
            items.append(item)
    done = context.is_done([item_key(file.source_id, i["external_id"], i["content_hash"]) for i in items])
    chunk.rows = [preparer.prepare(item) for item, skip in zip(items, done, strict=True) if not skip]
    chunk.skipped = int(done.sum())
    chunk.seen = len(chunk.records)
    chunk.records = []
    return chunk


class _TagInput(NamedTuple):
    text: str
    audience: str
    language: str | None


def tag_chunk(tagger: TaggerLike, chunk: Chunk) -> Chunk:
    """The tagger's results for a chunk's rows (`feedback.tagging.tag_items`, as `voc tag`)."""
    chunk.results = tag_items(tagger, [_TagInput(r["text"], r["audience"], r["language"]) for r in chunk.rows])
    chunk.models = ModelIdentity.of(tagger)
    return chunk


# -- the driver ------------------------------------------------------------------------------
@dataclass
class BackfillResult:
    """What a backfill did, per file and in all."""

    files: list[BackfillFile]
    stats: dict[int, IngestStats]  # by BackfillFile.index
    failed: dict[str, str] = field(default_factory=dict)  # path -> why the whole file was refused
    tagged: int = 0
    skipped: int = 0  # stored with tags before and unchanged (a rerun's); counted in `unchanged`
    untagged: int = 0  # items of these sources still without tags at the end
    batches: int = 0  # write transactions

    @property
    def total(self) -> IngestStats:
        """The files' stats added up."""
        total = IngestStats()
        for stats in self.stats.values():
            _add(total, stats)
        return total


def plan_files(engine: Engine, paths: Sequence[Path], *, settings: Settings, source_name: str | None = None,
               audience: str = "customer", mapping: FieldMapping | None = None, fmt: str | None = None,
               encoding: str | None = None) -> tuple[list[BackfillFile], dict[str, str]]:
    """Start a recorded run per file (source `source_name`, default `file:<name>` as `voc ingest`)
    and resolve its columns from its first row. A problem with a whole file (empty, not
    readable, no text column) is recorded as `voc ingest` records it (a failed run and a dead
    letter) and returned with its message, instead of a plan."""
    files: list[BackfillFile] = []
    failed: dict[str, str] = {}
    mapping = mapping or FieldMapping()
    for path in paths:
        name = source_name or f"file:{path.name}"
        source, run = _with_retries(partial(_start, engine, path, name, audience), what=f"backfill: {name}")
        preparer = RecordPreparer(settings=settings, audience=source.audience, mapping=mapping)
        used: list[str] = []
        try:
            for record in read_records(path, fmt=fmt, encoding=encoding, on_decoded=used.append):
                if record.payload is not None:
                    preparer.normalize_record(record, utcnow())  # resolves the columns, or raises
                    break
        except IngestError as exc:
            failed[str(path)] = str(exc)
            _record_failure(engine, settings, source, run, path, str(exc))
            continue
        if used:
            _set_encoding(engine, run.id, used[0])
        files.append(BackfillFile(index=len(files), path=str(path), source_id=source.id, audience=source.audience,
                                  run_id=run.id, columns=preparer.columns, fmt=fmt, encoding=encoding))
    return files, failed


def _start(engine: Engine, path: Path, name: str, audience: str) -> tuple[Source, IngestionRun]:
    with session_scope(engine) as session:
        source = get_or_create_source(session, name=name, connector="file", audience=audience,
                                      config={"path": str(path)})
        return source, start_run(session, source, str(path))


def _set_encoding(engine: Engine, run_id: int, encoding: str) -> None:
    def work() -> None:
        with session_scope(engine) as session:
            run = session.get(IngestionRun, run_id)
            if run is not None:
                run.encoding = encoding

    retry_locked(work, what="backfill: recording a run's encoding")


def _record_failure(engine: Engine, settings: Settings, source: Source, run: IngestionRun, path: Path,
                    error: str) -> None:
    """As `ingest_file` records a whole-file problem: a dead letter of the file's start, a failed run."""
    def work() -> None:
        with session_scope(engine) as session:
            ingestor = Ingestor(session, source=source, settings=settings, run=run)
            ingestor.dead_letter(RawRecord(path.name, None, _head(path)), error)
            attached = session.get(IngestionRun, run.id)
            assert attached is not None
            finish_run(session, attached, ingestor.stats, error=error)

    retry_locked(work, what="backfill: recording a failed file")


def stored_keys(session: Session, source_ids: Iterable[int]) -> np.ndarray:
    """Sorted `item_key`s of the items of these sources that have tags: what a rerun skips."""
    rows = session.execute(
        select(FeedbackItem.source_id, FeedbackItem.external_id, FeedbackItem.content_hash)
        .join(Tag, Tag.item_id == FeedbackItem.id)
        .where(FeedbackItem.source_id.in_(list(source_ids)))
        .execution_options(yield_per=20_000)
    )
    keys = np.array([item_key(*row) for row in rows], dtype="S16")
    keys.sort()
    return keys


class _TagRow(NamedTuple):
    """What `store_tags` reads of an item (as `pending_items` gives it)."""

    id: int
    content_hash: str
    touchpoint: str | None


class BackfillStore:
    """The driver's side: stores chunks in large transactions (items, dead letters, tags,
    embeddings, topics, recent rollups), each retried whole when another writer got in the way."""

    def __init__(self, engine: Engine, *, settings: Settings, files: Sequence[BackfillFile],
                 mapping: FieldMapping | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.mapping = mapping or FieldMapping()
        self.files = {file.index: file for file in files}
        self.redactor = build_redactor(settings)
        self.stats = {file.index: IngestStats() for file in files}
        self.tagged = 0
        self.skipped = 0
        self.batches = 0
        with session_factory(engine)() as session:
            self._sources = {s.id: s for s in session.scalars(
                select(Source).where(Source.id.in_({f.source_id for f in files})))}
            self._runs = {r.id: r for r in session.scalars(
                select(IngestionRun).where(IngestionRun.id.in_([f.run_id for f in files])))}
            load_current_topic_models(session)  # not inside the first write transaction

    def store(self, chunks: Sequence[Chunk]) -> int:
        """Store the chunks in one transaction; returns how many items got tags."""
        if not chunks:
            return 0
        stats, tagged = _with_retries(lambda: self._store(chunks), what="backfill: storing a batch")
        for index, file_stats in stats.items():
            _add(self.stats[index], file_stats)
        self.tagged += tagged
        self.skipped += sum(chunk.skipped for chunk in chunks)
        self.batches += 1
        return tagged

    def _store(self, chunks: Sequence[Chunk]) -> tuple[dict[int, IngestStats], int]:
        by_file: dict[int, list[Chunk]] = {}
        for chunk in chunks:
            by_file.setdefault(chunk.file, []).append(chunk)
        stats: dict[int, IngestStats] = {}
        tagged = 0
        with session_scope(self.engine) as session:
            # PostgreSQL: backfills of one source write one at a time (SQLite has one writer anyway),
            # so they never race on the same keys; FOR NO KEY UPDATE leaves inserts of its items free.
            session.execute(select(Source.id).where(Source.id.in_({self.files[i].source_id for i in by_file}))
                            .order_by(Source.id).with_for_update(key_share=True))
            for index, file_chunks in by_file.items():
                file = self.files[index]
                ingestor = Ingestor(session, source=self._sources[file.source_id], settings=self.settings,
                                    mapping=self.mapping, run=self._runs[file.run_id], redactor=self.redactor,
                                    columns=file.columns)
                # a rerun's bad rows are kept once: the ingestor skips dead letters it already holds
                ingestor.store_prepared([row for chunk in file_chunks for row in chunk.rows],
                                        [letter for chunk in file_chunks for letter in chunk.dead])
                ingestor.stats.seen += sum(chunk.seen for chunk in file_chunks)
                ingestor.stats.unchanged += sum(chunk.skipped for chunk in file_chunks)
                stats[index] = ingestor.stats
                tagged += self._store_tags(session, file, file_chunks)
            assign_pending_topics(session)  # as the tagging job: new items get a topic
            refresh_rollups(session, max_days=ROLLUP_DAYS_PER_BATCH)
        return stats, tagged

    def _store_tags(self, session: Session, file: BackfillFile, chunks: Sequence[Chunk]) -> int:
        latest: dict[str, tuple[dict[str, Any], Any]] = {}  # the last occurrence wins, as in ingest
        models: ModelIdentity | None = None
        for chunk in chunks:
            models = models or chunk.models
            for row, result in zip(chunk.rows, chunk.results, strict=True):
                latest[row["external_id"]] = (row, result)
        if not latest or models is None:
            return 0
        ids = list(latest)
        stored: dict[str, tuple[int, str | None]] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            stored.update((ext, (pk, touchpoint)) for ext, pk, touchpoint in session.execute(
                select(FeedbackItem.external_id, FeedbackItem.id, FeedbackItem.touchpoint)
                .where(FeedbackItem.source_id == file.source_id,
                       FeedbackItem.external_id.in_(ids[start:start + _ID_CHUNK]))))
        rows, results = [], []
        for external_id, (row, result) in latest.items():
            if external_id in stored:
                pk, touchpoint = stored[external_id]
                rows.append(_TagRow(pk, row["content_hash"], touchpoint))
                results.append(result)
        # store_tags reads only the names and versions of the tagger, which the identity carries
        return store_tags(session, cast(TaggerLike, models), rows, results)

    def finish(self, *, error: str | None = None) -> BackfillResult:
        """Record how each file's run ended, bring topics and rollups up to date, count what is
        left untagged."""
        def work() -> int:
            with session_scope(self.engine) as session:
                for index, file in self.files.items():
                    run = session.get(IngestionRun, file.run_id)
                    if run is not None:
                        finish_run(session, run, self.stats[index], error=error)
                if error is None:
                    assign_pending_topics(session)
                    refresh_rollups(session)  # what the batches left (a backfill of old feedback: its days, once)
                return session.scalar(
                    select(func.count()).select_from(FeedbackItem).outerjoin(Tag, Tag.item_id == FeedbackItem.id)
                    .where(FeedbackItem.source_id.in_({f.source_id for f in self.files.values()}),
                           Tag.item_id.is_(None))) or 0

        untagged = retry_locked(work, what="backfill: finishing")
        return BackfillResult(files=list(self.files.values()), stats=self.stats, tagged=self.tagged,
                              skipped=self.skipped, untagged=untagged, batches=self.batches)


def _with_retries(work: Callable[[], T], *, what: str) -> T:
    """Run a unit of work (one transaction) again when another writer broke a unique key first
    or PostgreSQL chose it as a deadlock victim; a locked SQLite database is waited out."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            return retry_locked(work, what=what)
        except (IntegrityError, OperationalError) as exc:
            retriable = isinstance(exc, IntegrityError) or getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")
            if not retriable or attempt == STORE_ATTEMPTS:
                raise
            log.warning("%s: another writer got there first (%s); storing again (attempt %d of %d)",
                        what, type(exc.orig).__name__, attempt + 1, STORE_ATTEMPTS)
    raise AssertionError("unreachable")


def _add(total: IngestStats, more: IngestStats) -> None:
    total.seen += more.seen
    total.new += more.new
    total.updated += more.updated
    total.unchanged += more.unchanged
    total.dead += more.dead
    total.dead_reasons.extend(more.dead_reasons[: max(0, 5 - len(total.dead_reasons))])

