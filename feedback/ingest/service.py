"""Ingest raw records into feedback items: map, validate, redact, deduplicate, store in batches.

Nothing is lost: every record becomes an item (new, updated or unchanged) or a dead letter with
its reason. The same source item never lands twice: items are keyed by (source, external id),
and a content hash stands in for the id where a source gives none.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, Table, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from feedback.config import Settings
from feedback.db import UTCDateTime, utcnow
from feedback.ingest.mapping import FieldMapping, RowError, normalize
from feedback.ingest.readers import IngestError, RawRecord
from feedback.language import detect_language
from feedback.models import (
    DeadLetter,
    FeedbackItem,
    IngestionRun,
    ItemEmbedding,
    Source,
    Tag,
    TagLabel,
)
from feedback.privacy.pseudonyms import pseudonymize
from feedback.privacy.redaction import PatternSpec, Redactor

log = logging.getLogger(__name__)
_ID_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds


@dataclass
class IngestStats:
    """What one ingestion did."""

    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    dead: int = 0
    dead_reasons: list[str] = field(default_factory=list)  # the first few, for the CLI summary

    def summary(self) -> str:
        return (f"{self.seen} read: {self.new} new, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.dead} dead-lettered")


def build_redactor(settings: Settings) -> Redactor:
    """The redactor with the configured extra patterns."""
    extra = [PatternSpec(**rule) for rule in settings.privacy.extra_patterns]
    return Redactor.default(extra=extra)


def get_or_create_source(session: Session, *, name: str, connector: str, audience: str = "customer",
                         config: dict[str, Any] | None = None) -> Source:
    """The source called `name`, created on first use."""
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        source = Source(name=name, connector=connector, audience=audience, config=config or {})
        session.add(source)
        session.flush()
    return source


class RecordPreparer:
    """Turns raw records into item rows ready to store: mapped, validated, PII-redacted, with
    their language and author pseudonyms. Needs no database (a backfill's Ray workers use it)."""

    def __init__(self, *, settings: Settings, audience: str, mapping: FieldMapping | None = None,
                 redactor: Redactor | None = None, columns: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.audience = audience  # for rows that name none
        self.mapping = mapping or FieldMapping()
        self.redactor = redactor or build_redactor(settings)
        self._columns = columns  # resolved from the first row when not given
        self._secret = settings.privacy.pseudonym_secret
        self._pseudonyms: dict[str, str | None] = {}

    @property
    def columns(self) -> dict[str, str] | None:
        """Item field -> input column, once resolved."""
        return self._columns

    def normalize_record(self, record: RawRecord, now: datetime) -> tuple[dict[str, Any] | None, str | None]:
        """The record as an item (mapped, validated, not yet redacted), or why it cannot be one.

        A missing text column raises `IngestError`: a problem of the whole input, not the row's.
        """
        if record.error is not None or record.payload is None:
            return None, record.error or "unreadable record"
        try:
            return self._normalize(record, now), None
        except RowError as exc:
            return None, f"{record.location}: {exc}"

    def _normalize(self, record: RawRecord, now: datetime) -> dict[str, Any]:
        assert record.payload is not None
        if self._columns is None:
            # Raises IngestError for a missing text column: a whole-file problem, not a row's.
            self._columns = self.mapping.resolve(record.payload.keys(), where=record.location.split(":")[0])
        return normalize(record.payload, self._columns, self.mapping,
                         default_audience=self.audience, now=now,
                         max_text_chars=self.settings.ingest.max_text_chars)

    def _redacted(self, item: dict[str, Any]) -> tuple[str, dict[str, int]]:
        found = item.pop("_redacted", None)
        return found if found is not None else self.redactor.redact_with_counts(item["text"])

    def prepare(self, item: dict[str, Any], language: str | None = None) -> dict[str, Any]:
        """The row to store for a normalised item: text and string extras redacted, language
        detected (unless given or known), author pseudonymised."""
        text, counts = self._redacted(item)
        extra = item["extra"]
        if counts:
            extra["redacted"] = counts
        for key, value in list(extra.items()):
            if isinstance(value, str):
                extra[key] = self.redactor.redact(value)
        if language is None:
            language = item["language"]
        if language is None and self.settings.ingest.detect_language:
            language = detect_language(text).code
        author = item["author"]
        if author is not None:
            pseudonym = self._pseudonyms.get(author)
            if pseudonym is None:  # authors recur (a customer's many comments): hash each once
                if len(self._pseudonyms) > 100_000:
                    self._pseudonyms.clear()
                pseudonym = self._pseudonyms[author] = pseudonymize(author, secret=self._secret)
            author = pseudonym
        return {
            **item,
            "text": text,
            "language": language,
            "author": author,
            "extra": extra,
        }


class Ingestor(RecordPreparer):
    """Stores records of one source in batches; the caller decides when to commit."""

    def __init__(self, session: Session, *, source: Source, settings: Settings,
                 mapping: FieldMapping | None = None, run: IngestionRun | None = None,
                 redactor: Redactor | None = None, columns: dict[str, str] | None = None) -> None:
        super().__init__(settings=settings, audience=source.audience, mapping=mapping,
                         redactor=redactor, columns=columns)
        self.session = session
        self.source = source
        self.run = run
        self.stats = IngestStats()
        self._analyze_at = settings.ingest.batch_size  # PostgreSQL: new items before statistics

    # -- public -------------------------------------------------------------------------------
    def ingest(self, records: Iterable[RawRecord], *,
               on_batch: Callable[[IngestStats], None] | None = None) -> IngestStats:
        """Ingest every record; `on_batch` runs after each stored batch (e.g. to commit).

        From the second batch of a large input on, the languages of a batch are detected in a
        worker process while this one reads the next batch (`ingest.language_workers`); batches
        are still stored, and `on_batch` called, strictly in order.
        """
        batch: list[tuple[RawRecord, dict[str, Any]]] = []
        dead: list[tuple[RawRecord, str]] = []
        size = self.settings.ingest.batch_size
        now = utcnow()
        pending: tuple[list[Any], list[tuple[RawRecord, str]], Any] | None = None
        for record in records:
            self.stats.seen += 1
            item, reason = self.normalize_record(record, now)
            if item is None:
                dead.append((record, reason or "unreadable record"))
            else:
                batch.append((record, item))
            if len(batch) + len(dead) >= size:
                # Only a second full batch shows a large input: then a worker is worth starting.
                languages = self._detect_ahead(batch) if pending is not None else None
                if pending is not None:
                    self._flush(*pending)
                    if on_batch:
                        on_batch(self.stats)
                pending = (batch, dead, languages)
                batch, dead = [], []
        if pending is not None:
            self._flush(*pending)
            if on_batch:
                on_batch(self.stats)
        if batch or dead:
            self._flush(batch, dead)
            if on_batch:
                on_batch(self.stats)
        return self.stats

    def dead_letter(self, record: RawRecord, reason: str) -> None:
        """Keep a record that could not be ingested, with its reason."""
        self._flush([], [(record, reason)])

    def store_prepared(self, rows: list[dict[str, Any]], dead: list[tuple[RawRecord, str]]) -> None:
        """Store rows that `prepare` made elsewhere (a backfill's workers), and dead letters, as
        `ingest` stores its own: keyed, deduplicated, changed items' old tags dropped. The
        caller counts what was read (`stats.seen`)."""
        self._flush([(None, row) for row in rows], dead, prepared=True)

    # -- internals ----------------------------------------------------------------------------
    def _refresh_statistics(self) -> None:
        """PostgreSQL: ANALYZE the items each time this ingest has doubled what it stored.

        A large ingest into a new or small table outgrows the planner's statistics long before
        autovacuum samples it; the planner then takes "source_id = x" for 0.5% of the rows and
        looks up each batch's external ids by scanning every item of the source (once psycopg
        prepares the statement, its generic plan compares each against all 900 ids): 0.6 s a
        lookup at 100,000 items, 1,300 items/s in all. Statistics a few batches old keep the
        lookup on the unique index. ANALYZE samples a fixed number of rows (a fraction of a
        second), and doubling keeps it to a handful per ingest; small pushes never reach it, nor
        does an ingest that adds under a tenth of a table the statistics already know.
        """
        if self.stats.new < self._analyze_at or self.session.get_bind().dialect.name != "postgresql":
            return
        table = FeedbackItem.__tablename__
        self._analyze_at = 2 * self.stats.new
        known = self.session.scalar(text(f"SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass"))
        if known is None or known < 0 or self.stats.new * 10 >= known:  # -1: never analysed
            self.session.execute(text(f"ANALYZE {table}"))

    def _detect_ahead(self, batch: list[tuple[RawRecord, dict[str, Any]]]) -> Any:
        """Start detecting the languages of `batch` in a worker; None when that is not worth it."""
        ingest = self.settings.ingest
        if not ingest.detect_language or ingest.language_workers < 1 or (os.cpu_count() or 1) < 2:
            return None
        pool = language_pool(self.settings.ingest.language_workers)
        if pool is None:
            return None
        texts = []
        for _, item in batch:
            if item["language"] is None:
                redacted = self.redactor.redact_with_counts(item["text"])
                item["_redacted"] = redacted
                texts.append(redacted[0])
        return pool.submit(_language_codes, texts) if texts else None

    def _not_kept_yet(self, letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The dead letters this source does not already keep unresolved at the same location with
        the same payload (the same bad row of a file ingested again), each once."""
        located = sorted({str(letter["location"]) for letter in letters if letter["location"] is not None})
        kept: set[tuple[str | None, str]] = set()
        for start in range(0, len(located), _ID_CHUNK):
            kept.update(self.session.execute(
                select(DeadLetter.location, DeadLetter.raw_payload)
                .where(DeadLetter.source_id == self.source.id, DeadLetter.resolved_at.is_(None),
                       DeadLetter.location.in_(located[start:start + _ID_CHUNK]))).tuples())
        fresh = []
        for letter in letters:
            key = (letter["location"], letter["raw_payload"])
            if letter["location"] is None or key not in kept:
                fresh.append(letter)
                kept.add(key)
        return fresh

    def _flush(self, batch: Sequence[tuple[RawRecord | None, dict[str, Any]]],
               dead: list[tuple[RawRecord, str]], languages: Any = None, *, prepared: bool = False) -> None:
        session = self.session
        now = utcnow()
        run_id = self.run.id if self.run else None
        if dead:
            # Dead letters are stored too, so they are redacted like items (PII never lands).
            redact = self.redactor.redact
            letters = [
                {"source_id": self.source.id, "run_id": run_id, "location": rec.location,
                 "raw_payload": redact(rec.raw), "reason": redact(reason), "created_at": now}
                for rec, reason in dead
            ]
            letters = self._not_kept_yet(letters)  # a rerun of a file finds its bad rows kept
            if letters and uses_copy(session):  # a file of many bad rows: one COPY, not an INSERT per row
                bulk_insert(session, cast(Table, DeadLetter.__table__), letters)
            elif letters:
                session.execute(insert(DeadLetter), letters)
            self.stats.dead += len(dead)
            self.stats.dead_reasons.extend(reason for _, reason in dead[: max(0, 5 - len(self.stats.dead_reasons))])
        if not batch:
            return
        # Duplicates inside one batch: the last occurrence wins, earlier ones count as unchanged.
        by_id: dict[str, dict[str, Any]] = {}
        for _, item in batch:
            if item["external_id"] in by_id:
                self.stats.unchanged += 1
            by_id[item["external_id"]] = item
        existing: dict[str, tuple[int, str]] = {}
        ids = list(by_id)
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start:start + _ID_CHUNK]
            rows = session.execute(
                select(FeedbackItem.external_id, FeedbackItem.id, FeedbackItem.content_hash)
                .where(FeedbackItem.source_id == self.source.id, FeedbackItem.external_id.in_(chunk))
            )
            existing.update({ext: (pk, digest) for ext, pk, digest in rows})
        new_rows: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        detected = _take_languages(languages, batch)
        for external_id, item in by_id.items():
            found = existing.get(external_id)
            if found is None:
                row = dict(item) if prepared else self.prepare(item, detected.get(id(item)))
                row.update(source_id=self.source.id, run_id=run_id, ingested_at=now, updated_at=now)
                new_rows.append(row)
            elif found[1] != item["content_hash"]:
                row = dict(item) if prepared else self.prepare(item, detected.get(id(item)))
                row.update(id=found[0], run_id=run_id, updated_at=now)
                changed.append(row)
            else:
                self.stats.unchanged += 1
        if new_rows:
            bulk_insert(session, cast(Table, FeedbackItem.__table__), new_rows)
            self.stats.new += len(new_rows)
            self._refresh_statistics()
        if changed:
            session.execute(update(FeedbackItem), changed)
            changed_ids = [row["id"] for row in changed]
            # Changed text means old tags are stale: drop them so the tagging job redoes the item.
            session.execute(delete(TagLabel).where(TagLabel.item_id.in_(changed_ids)))
            session.execute(delete(Tag).where(Tag.item_id.in_(changed_ids)))
            session.execute(delete(ItemEmbedding).where(ItemEmbedding.item_id.in_(changed_ids)))
            self.stats.updated += len(changed)
        session.flush()


# -- languages in a worker process ---------------------------------------------------------
_POOLS: dict[int, tuple[Any, Any]] = {}
_POOL_LOCK = threading.Lock()


def language_pool(workers: int) -> Any:
    """A process pool detecting languages (spawned once per process, on first need); None while
    it is still starting (the caller detects in-process meanwhile) or if it cannot start."""
    with _POOL_LOCK:
        entry = _POOLS.get(workers)
        if entry is None:
            entry = _POOLS[workers] = _start_pool(workers)
        pool, warm = entry
        if pool is None or not warm.done():
            return None
        if warm.exception() is not None:
            log.warning("language worker failed to start (%s); detecting in-process",
                        warm.exception())
            _POOLS[workers] = (None, None)
            return None
    return pool


def _start_pool(workers: int) -> tuple[Any, Any]:
    try:
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the service has threads (scheduler, server) that fork would copy
        spawn = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn)
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
        return pool, pool.submit(_language_codes, ["warm up the model"])
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("no language worker (%s); detecting languages in-process", exc)
        return None, None


def _language_codes(texts: list[str]) -> list[str]:
    """Language codes of (redacted) texts; runs in the worker."""
    return [detect_language(text).code for text in texts]


def _take_languages(languages: Any, batch: Sequence[tuple[RawRecord | None, dict[str, Any]]]
                    ) -> dict[int, str]:
    """The worker's answers for a batch, by item identity; empty if it had none or failed."""
    if languages is None:
        return {}
    try:
        codes = iter(languages.result())
    except Exception as exc:  # a dead worker: detect in-process instead
        log.warning("language worker failed (%s); detecting in-process", exc)
        return {}
    return {id(item): next(codes) for _, item in batch if "_redacted" in item}


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys: one DBAPI `executemany`, or one COPY on PostgreSQL.

    The hot path of ingestion. The ORM's bulk insert groups rows by which values are None and
    sends one INSERT per group (with optional fields, nearly one per row); Core's executemany
    spends more time building parameters than SQLite spends storing them. Here each column's
    own bind processor (the same conversion SQLAlchemy applies: aware datetimes to naive UTC,
    dicts to JSON) runs once per column over all rows, once in all for a value every row shares
    (the run's timestamps), and the driver gets plain tuples. On PostgreSQL the rows go through
    COPY instead (`_copy_rows`): a whole ingest of 100,000 rows 1.2x faster than with executemany
    there (bench/ingest.py, where preparing the rows takes most of the time).
    """
    if not rows:
        return
    defaults = _python_defaults(table, rows[0])
    if defaults:  # what SQLAlchemy's INSERT would fill in: the columns' Python-side defaults
        rows = [{**row, **defaults} for row in rows]
    connection = session.connection()
    dialect = connection.dialect
    if uses_copy(session):
        _copy_rows(connection, table, rows)
        return
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:
        session.execute(insert(table), rows)
        return
    if dialect.name == "sqlite":
        # Six indexes take random inserts: with SQLite's default 2 MB page cache a large ingest
        # re-reads index pages all the time; 64 MB (allocated only as used) cuts its cost ~30%.
        connection.exec_driver_sql("PRAGMA cache_size=-65536")
    keys = list(rows[0])
    columns: list[list[Any]] = []
    for key in keys:
        column_type = table.c[key].type
        values = [row[key] for row in rows]
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            first = values[0]
            if all(value is first for value in values):
                values = [process(first)] * len(values)
            elif isinstance(column_type, UTCDateTime) and dialect.name == "sqlite":
                values = [_sqlite_utc(value) for value in values]
            elif isinstance(column_type, JSON):
                values = ["{}" if value == {} else process(value) for value in values]
            else:
                values = [process(value) for value in values]
        columns.append(values)
    quote = dialect.identifier_preparer.quote
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(table.c[k].name) for k in keys)}) "
           f"VALUES ({', '.join([marker] * len(keys))})")
    connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def uses_copy(session: Session) -> bool:
    """Whether `bulk_insert` sends rows through COPY: PostgreSQL through psycopg 3."""
    dialect = session.get_bind().dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _python_defaults(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """The Python-side defaults (`default=0`, `default=utcnow`) of the columns `row` lacks."""
    defaults = {}
    for column in table.columns:
        default = column.default
        if column.key in row or default is None:
            continue
        if default.is_scalar:
            defaults[column.key] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            defaults[column.key] = default.arg(None)  # type: ignore[attr-defined]  # wrapped: takes a context
    return defaults


def _copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: insert rows that all have the same keys with one `COPY ... FROM STDIN`.

    The same rows as an INSERT through SQLAlchemy would store: each column's bind processor runs
    first (aware datetimes to naive UTC, dicts to JSON), psycopg writes COPY's text format
    (tabs, newlines and backslashes escaped, None as NULL). It runs on the session's own
    connection, inside its transaction. A failure (a unique key taken meanwhile) is raised as
    SQLAlchemy's exception (IntegrityError), as the INSERT's would be, and aborts the transaction
    like it.
    """
    dialect = connection.dialect
    keys = list(rows[0])
    columns: list[list[Any]] = []
    for key in keys:
        values = [row[key] for row in rows]
        process = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            first = values[0]
            if all(value is first for value in values):
                values = [process(first)] * len(values)
            else:
                values = [process(value) for value in values]
        columns.append(values)
    quote = dialect.identifier_preparer.quote
    sql = (f"COPY {quote(table.name)} ({', '.join(quote(table.c[k].name) for k in keys)}) "
           "FROM STDIN")
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    try:
        with driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error,
                                  dialect=dialect) from exc


def _sqlite_utc(value: datetime | None) -> str | None:
    """What UTCDateTime and SQLite's DATETIME store (naive UTC, microseconds), in one step."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def start_run(session: Session, source: Source, location: str | None) -> IngestionRun:
    """Record the start of a run."""
    run = IngestionRun(source_id=source.id, location=location, status="running")
    session.add(run)
    session.flush()
    return run


def finish_run(session: Session, run: IngestionRun, stats: IngestStats, *, error: str | None = None) -> None:
    """Record how a run ended."""
    run.finished_at = utcnow()
    run.status = "failed" if error else "succeeded"
    run.error = error
    run.items_seen, run.items_new, run.items_updated = stats.seen, stats.new, stats.updated
    run.items_unchanged, run.items_dead = stats.unchanged, stats.dead
    session.flush()


def ingest_payloads(session: Session, *, source: Source, payloads: Iterable[dict[str, Any]],
                    settings: Settings, mapping: FieldMapping | None = None,
                    location: str = "api") -> IngestStats:
    """Ingest already-parsed objects (API pushes, connectors) as one run."""
    records = (RawRecord(f"{location}:item {i}", p, json.dumps(p, default=str, ensure_ascii=False))
               for i, p in enumerate(payloads))
    return ingest_run(session, source=source, records=records, settings=settings, mapping=mapping,
                      location=location)


def ingest_run(session: Session, *, source: Source, records: Iterable[RawRecord], settings: Settings,
               mapping: FieldMapping | None = None, location: str) -> IngestStats:
    """Ingest `records` as one recorded run; a whole-input error is recorded, then raised."""
    run = start_run(session, source, location)
    ingestor = Ingestor(session, source=source, settings=settings, mapping=mapping, run=run)
    try:
        stats = ingestor.ingest(records)
    except IngestError as exc:
        finish_run(session, run, ingestor.stats, error=str(exc))
        raise
    finish_run(session, run, stats)
    return stats
