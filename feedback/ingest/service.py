"""Ingest raw records into feedback items: map, validate, redact, deduplicate, store in batches.

Nothing is lost: every record becomes an item (new, updated or unchanged) or a dead letter with
its reason. The same source item never lands twice: items are keyed by (source, external id),
and a content hash stands in for the id where a source gives none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from feedback.config import Settings
from feedback.db import utcnow
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


class Ingestor:
    """Stores records of one source in batches; the caller decides when to commit."""

    def __init__(self, session: Session, *, source: Source, settings: Settings,
                 mapping: FieldMapping | None = None, run: IngestionRun | None = None,
                 redactor: Redactor | None = None) -> None:
        self.session = session
        self.source = source
        self.settings = settings
        self.mapping = mapping or FieldMapping()
        self.run = run
        self.redactor = redactor or build_redactor(settings)
        self.stats = IngestStats()
        self._columns: dict[str, str] | None = None
        self._secret = settings.privacy.pseudonym_secret

    # -- public -------------------------------------------------------------------------------
    def ingest(self, records: Iterable[RawRecord], *,
               on_batch: Callable[[IngestStats], None] | None = None) -> IngestStats:
        """Ingest every record; `on_batch` runs after each stored batch (e.g. to commit)."""
        batch: list[tuple[RawRecord, dict[str, Any]]] = []
        dead: list[tuple[RawRecord, str]] = []
        size = self.settings.ingest.batch_size
        now = utcnow()
        for record in records:
            self.stats.seen += 1
            if record.error is not None or record.payload is None:
                dead.append((record, record.error or "unreadable record"))
            else:
                try:
                    item = self._normalize(record, now)
                except RowError as exc:
                    dead.append((record, f"{record.location}: {exc}"))
                else:
                    batch.append((record, item))
            if len(batch) + len(dead) >= size:
                self._flush(batch, dead)
                batch, dead = [], []
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

    # -- internals ----------------------------------------------------------------------------
    def _normalize(self, record: RawRecord, now: datetime) -> dict[str, Any]:
        assert record.payload is not None
        if self._columns is None:
            # Raises IngestError for a missing text column: a whole-file problem, not a row's.
            self._columns = self.mapping.resolve(record.payload.keys(), where=record.location.split(":")[0])
        return normalize(record.payload, self._columns, self.mapping,
                         default_audience=self.source.audience, now=now,
                         max_text_chars=self.settings.ingest.max_text_chars)

    def _prepare(self, item: dict[str, Any]) -> dict[str, Any]:
        text, counts = self.redactor.redact_with_counts(item["text"])
        extra = item["extra"]
        if counts:
            extra["redacted"] = counts
        for key, value in list(extra.items()):
            if isinstance(value, str):
                extra[key] = self.redactor.redact(value)
        language = item["language"]
        if language is None and self.settings.ingest.detect_language:
            guess = detect_language(text)
            language = guess.code
        return {
            **item,
            "text": text,
            "language": language,
            "author": pseudonymize(item["author"], secret=self._secret),
            "extra": extra,
        }

    def _flush(self, batch: list[tuple[RawRecord, dict[str, Any]]],
               dead: list[tuple[RawRecord, str]]) -> None:
        session = self.session
        now = utcnow()
        run_id = self.run.id if self.run else None
        if dead:
            session.execute(insert(DeadLetter), [
                {"source_id": self.source.id, "run_id": run_id, "location": rec.location,
                 "raw_payload": rec.raw, "reason": reason, "created_at": now}
                for rec, reason in dead
            ])
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
        for external_id, item in by_id.items():
            found = existing.get(external_id)
            if found is None:
                row = self._prepare(item)
                row.update(source_id=self.source.id, run_id=run_id, ingested_at=now, updated_at=now)
                new_rows.append(row)
            elif found[1] != item["content_hash"]:
                row = self._prepare(item)
                row.update(id=found[0], run_id=run_id, updated_at=now)
                changed.append(row)
            else:
                self.stats.unchanged += 1
        if new_rows:
            session.execute(insert(FeedbackItem), new_rows)
            self.stats.new += len(new_rows)
        if changed:
            session.execute(update(FeedbackItem), changed)
            changed_ids = [row["id"] for row in changed]
            # Changed text means old tags are stale: drop them so the tagging job redoes the item.
            session.execute(delete(TagLabel).where(TagLabel.item_id.in_(changed_ids)))
            session.execute(delete(Tag).where(Tag.item_id.in_(changed_ids)))
            session.execute(delete(ItemEmbedding).where(ItemEmbedding.item_id.in_(changed_ids)))
            self.stats.updated += len(changed)
        session.flush()


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
    run = start_run(session, source, location)
    ingestor = Ingestor(session, source=source, settings=settings, mapping=mapping, run=run)
    try:
        stats = ingestor.ingest(records)
    except IngestError as exc:
        finish_run(session, run, ingestor.stats, error=str(exc))
        raise
    finish_run(session, run, stats)
    return stats
