"""Bulk ingest: on PostgreSQL rows go in through COPY, and must read back exactly as the SQLite
path (executemany) stores them: awkward text, NULLs, time zones, JSON, dead letters, many batches."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from feedback.config import IngestSettings, Settings
from feedback.db import make_engine, session_factory
from feedback.ingest.files import ingest_file
from feedback.ingest.service import bulk_insert, uses_copy
from feedback.models import DeadLetter, FeedbackItem, Source

# Everything COPY's text format must escape or carry through: its separators (tab, newline),
# its escape character and NULL marker (backslash, \N), quotes, CSV-looking commas, non-ASCII.
AWKWARD_TEXTS = [
    "tab\there and\ttwo more\t\t",
    "line one\nline two\r\nline three\rend",
    "a backslash \\ and a double one \\\\ and \\N and \\t literally",
    "\\N",
    "quotes: 'single', \"double\", `back`, and a comma, too",
    "unicode: ünïcödé, 日本語のフィードバック, emoji 🚚📦, RTL مرحبا, combining é",
    "COPY-ish: \\. alone on a line\n\\.\nafter",
    "trailing spaces inside are kept:   x   y",
    "{\"looks\": [\"like\", \"json\"]}",
    "percent %s %(name)s and braces {} and $1 placeholders",
]


def _records() -> list[dict[str, Any]]:
    """JSONL records with every awkward text, mixed NULLs and created_at in several time zones."""
    zones = ["2026-09-01T10:00:00Z", "2026-09-01T10:00:00+05:30", "2026-03-29T01:30:05.250-06:00",
             "2026-10-25 02:30:00", None, "2026-12-31T23:59:59.999999+14:00"]
    records = []
    for i, feedback in enumerate(AWKWARD_TEXTS):
        # every record names every field (JSON null for NULL): columns are resolved on the first
        record: dict[str, Any] = {"external_id": f"a{i}", "text": feedback, "created_at": zones[i % len(zones)],
                                  "nps": None, "channel": None, "touchpoint": None, "author": None,
                                  "stars": None, "org_unit": None}
        if i % 2:
            record.update(nps=i % 11, channel="survey", touchpoint="delivery", author=f"person\t{i}")
        if i % 3 == 0:
            record.update(stars=(i % 5) + 1, org_unit="Ware\\house\n" if i else None)
        record["note"] = f"unmapped\tcolumn {i} \\ \"quoted\" ✓"  # lands in extra (JSON)
        records.append(record)
    return records


def _stored_items(engine) -> dict[str, dict[str, Any]]:
    """Every stored item's columns by external id, less what differs by design between two
    databases (ids, the run, when it was ingested, and so a created_at the row did not give)."""
    skip = {"id", "source_id", "run_id", "ingested_at", "updated_at"}
    stored = {}
    with session_factory(engine)() as session:
        for item in session.scalars(select(FeedbackItem)):
            columns = {c.key: getattr(item, c.key) for c in inspect(FeedbackItem).columns if c.key not in skip}
            if item.extra.get("created_at_missing"):
                columns["created_at"] = None
            stored[item.external_id] = columns
    return stored


def _sqlite_twin(tmp_path: Path, migrated_template: Path) -> Settings:
    db = tmp_path / "twin.db"
    shutil.copy(migrated_template, db)
    return Settings(database_url=f"sqlite:///{db}", var_dir=tmp_path / "twin-var", _env_file=None)


def test_postgresql_takes_the_copy_path_and_sqlite_keeps_executemany(engine, db_backend) -> None:
    with session_factory(engine)() as session:
        assert uses_copy(session) is (db_backend == "postgres")


def test_ingested_rows_equal_what_the_sqlite_path_stores(tmp_path, engine, settings, migrated_template) -> None:
    path = tmp_path / "awkward.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records()), encoding="utf-8")
    stats, _ = ingest_file(engine, path, settings=settings, source_name="awkward")
    assert (stats.new, stats.dead) == (len(AWKWARD_TEXTS), 0)

    twin = _sqlite_twin(tmp_path, migrated_template)
    twin_engine = make_engine(twin.database_url)
    try:
        ingest_file(twin_engine, path, settings=twin, source_name="awkward")
        expected = _stored_items(twin_engine)
    finally:
        twin_engine.dispose()
    stored = _stored_items(engine)
    assert stored == expected
    # and what was stored is the input itself, trimmed (none of these texts holds PII to redact)
    assert [stored[f"a{i}"]["text"] for i in range(len(AWKWARD_TEXTS))] == [t.strip() for t in AWKWARD_TEXTS]
    assert stored["a2"]["created_at"] == datetime(2026, 3, 29, 7, 30, 5, 250000, tzinfo=UTC)
    assert stored["a1"]["created_at"] == datetime(2026, 9, 1, 4, 30, tzinfo=UTC)
    assert stored["a3"]["org_unit"] == "Ware\\house" and stored["a0"]["org_unit"] is None
    assert stored["a0"]["nps"] is None and stored["a1"]["nps"] == 1
    assert stored["a4"]["extra"].get("created_at_missing") is True
    assert stored["a5"]["extra"]["note"] == 'unmapped\tcolumn 5 \\ "quoted" ✓'


def test_bulk_insert_round_trips_nulls_time_zones_and_json(engine) -> None:
    created = [datetime(2026, 9, 1, 8, 30, 15, 250, tzinfo=timezone(timedelta(hours=2))),
               datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
               datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    extras = [{}, {"a": [1, None, 2.5], "q": "\"\\\t\n", "ü": {"nested": "日本"}}, {"empty": ""}]
    with session_factory(engine)() as session:
        source = Source(name="s", connector="push", audience="customer", config={})
        session.add(source)
        session.flush()
        rows = [{"source_id": source.id, "external_id": f"x{i}", "content_hash": "h", "audience": "customer",
                 "channel": None, "touchpoint": None, "journey_stage": None, "segment": None,
                 "org_unit": None, "language": None, "text": AWKWARD_TEXTS[i], "nps": None if i else 0,
                 "csat": None, "stars": 4.5 if i == 2 else None, "author": None, "created_at": created[i],
                 "ingested_at": created[0], "updated_at": created[0], "extra": extras[i]}
                for i in range(3)]
        bulk_insert(session, FeedbackItem.__table__, rows)
        # SQLAlchemy's own INSERT of the same rows, to compare with
        session.execute(insert(FeedbackItem.__table__), [{**row, "external_id": "y" + row["external_id"]}
                                                          for row in rows])
        session.commit()
        stored = {i.external_id: i for i in session.scalars(select(FeedbackItem))}
    for i in range(3):
        ours, theirs = stored[f"x{i}"], stored[f"yx{i}"]
        for column in inspect(FeedbackItem).columns:
            if column.key not in ("id", "external_id"):
                assert getattr(ours, column.key) == getattr(theirs, column.key), column.key
        assert ours.created_at == created[i] and ours.created_at.tzinfo is UTC
        assert ours.extra == extras[i] and ours.text == AWKWARD_TEXTS[i]
    assert stored["x0"].nps == 0 and stored["x1"].nps is None and stored["x2"].stars == 4.5


def test_bulk_insert_fills_python_defaults_and_raises_sqlalchemy_errors(engine) -> None:
    with session_factory(engine)() as session:
        source = Source(name="s", connector="push", audience="customer", config={})
        session.add(source)
        session.flush()
        # dead letters leave `retries` to its Python-side default, as the INSERT through the ORM does
        bulk_insert(session, DeadLetter.__table__, [
            {"source_id": source.id, "run_id": None, "location": "f.csv:row 2", "raw_payload": "a\tb\\c\nd",
             "reason": "why", "created_at": datetime(2026, 9, 1, tzinfo=UTC)}])
        session.commit()
        letter = session.scalars(select(DeadLetter)).one()
        assert (letter.retries, letter.raw_payload, letter.resolved_at) == (0, "a\tb\\c\nd", None)

        row = {"source_id": source.id, "external_id": "dup", "content_hash": "h", "audience": "customer",
               "text": "t", "created_at": datetime(2026, 9, 1, tzinfo=UTC),
               "ingested_at": datetime(2026, 9, 1, tzinfo=UTC), "updated_at": datetime(2026, 9, 1, tzinfo=UTC),
               "extra": {}}
        bulk_insert(session, FeedbackItem.__table__, [row])
        session.commit()
        # a unique key taken meanwhile (a concurrent push): the same exception as an INSERT's
        with pytest.raises(IntegrityError):
            bulk_insert(session, FeedbackItem.__table__, [{**row, "external_id": "new"}, row])
        session.rollback()
        assert session.scalars(select(FeedbackItem.external_id)).all() == ["dup"]


def test_many_batches_dead_letters_and_a_second_ingest(tmp_path, engine, settings, migrated_template,
                                                      db_backend) -> None:
    """2,600 rows in batches of 1,000 (more ids than one lookup chunk), bad rows among them: the
    dead letters and the items match the SQLite path's, and ingesting the file again adds nothing."""
    lines = ["external_id,text,created_at,nps,comment_b"]
    for i in range(2600):
        if i % 500 == 7:
            lines.append(f"d{i},Rating out of range,2026-09-01,42,x")  # dead: nps 42
        elif i % 500 == 9:
            lines.append(f'd{i},"",2026-09-01,,"tab\tand \\ backslash"')  # dead: empty text
        else:
            lines.append(f'r{i},"Row {i}\tsays: ""fine""\\ok\nsecond line",2026-09-{1 + i % 28:02d}T12:00:00+02:00,'
                         f'{"" if i % 3 else i % 11},"b\\{i}"')
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bulk = settings.model_copy(update={"ingest": IngestSettings(batch_size=1000, language_workers=0)})
    stats, _ = ingest_file(engine, path, settings=bulk, source_name="many")
    assert (stats.new, stats.dead) == (2600 - 12, 12)
    if db_backend == "postgres":  # the ingest analysed the items as they grew (Ingestor._refresh_statistics)
        with engine.connect() as connection:
            known = connection.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'feedback_items'"))
        assert known >= 1900  # analysed after the first batch (998 items) and the second

    twin = _sqlite_twin(tmp_path, migrated_template).model_copy(update={"ingest": bulk.ingest})
    twin_engine = make_engine(twin.database_url)
    try:
        ingest_file(twin_engine, path, settings=twin, source_name="many")
        expected_items = _stored_items(twin_engine)
        with session_factory(twin_engine)() as session:
            expected_letters = [(d.location, d.raw_payload, d.reason, d.retries)
                                for d in session.scalars(select(DeadLetter).order_by(DeadLetter.id))]
    finally:
        twin_engine.dispose()
    assert _stored_items(engine) == expected_items
    with session_factory(engine)() as session:
        letters = [(d.location, d.raw_payload, d.reason, d.retries)
                   for d in session.scalars(select(DeadLetter).order_by(DeadLetter.id))]
    assert letters == expected_letters and len(letters) == 12

    again, _ = ingest_file(engine, path, settings=bulk, source_name="many")
    assert (again.new, again.unchanged, again.updated) == (0, 2600 - 12, 0)
