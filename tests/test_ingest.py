"""File ingestion: no set-up for well-named columns, idempotent, nothing lost on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feedback.db import session_factory
from feedback.ingest.files import ingest_file
from feedback.ingest.mapping import FieldMapping
from feedback.ingest.readers import IngestError
from feedback.models import DeadLetter, FeedbackItem, IngestionRun

FIXTURES = Path(__file__).parent / "fixtures"

HEADER = "external_id,text,created_at,audience,channel,touchpoint,nps,csat,stars,author,org_unit\n"


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _count(engine, model) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _dead_letters(engine) -> list[DeadLetter]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def test_csv_with_item_field_names_ingests_without_mapping(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "survey.csv", HEADER
                  + "s1,Delivery was late again,2026-09-01T10:00:00Z,customer,survey,delivery,3,,,alice,\n"
                  + "s2,Lovely store staff,2026-09-02,customer,review,store,,,5,bob,\n"
                  + "e1,My manager listens to us,2026-09-03 09:30:00,employee,pulse,,8,,,emp-1,warehouse\n")
    stats, run_id = ingest_file(engine, path, settings=settings)
    assert (stats.seen, stats.new, stats.dead) == (3, 3, 0)
    with session_factory(engine)() as session:
        items = {i.external_id: i for i in session.scalars(select(FeedbackItem))}
        run = session.get(IngestionRun, run_id)
    assert items["s1"].nps == 3 and items["s1"].touchpoint == "delivery"
    assert items["s2"].stars == 5.0 and items["s2"].created_at.isoformat() == "2026-09-02T00:00:00+00:00"
    assert items["e1"].audience == "employee" and items["e1"].org_unit == "warehouse"
    assert items["s1"].author is not None and "alice" not in items["s1"].author  # pseudonymised
    assert items["s1"].language == "en"
    assert run is not None and run.status == "succeeded" and run.items_new == 3


def test_ingesting_the_same_file_twice_adds_nothing(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "reviews.csv", HEADER + "".join(
        f"r{i},Review number {i} about the sofa,2026-09-0{1 + i % 9},customer,review,,,,4,,\n"
        for i in range(50)))
    first, _ = ingest_file(engine, path, settings=settings)
    second, _ = ingest_file(engine, path, settings=settings)
    assert first.new == 50
    assert (second.new, second.updated, second.unchanged) == (0, 0, 50)
    assert _count(engine, FeedbackItem) == 50


def test_rows_without_ids_are_deduplicated_by_content(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "noids.csv", "comment,date\nGreat app,2026-09-01\nSlow checkout,2026-09-02\n"
                  "Great app,2026-09-01\n")
    stats, _ = ingest_file(engine, path, settings=settings)
    again, _ = ingest_file(engine, path, settings=settings)
    assert stats.new == 2 and stats.unchanged == 1  # the in-file duplicate
    assert again.new == 0
    assert _count(engine, FeedbackItem) == 2


def test_changed_item_is_updated_not_duplicated(tmp_path, engine, settings) -> None:
    path = tmp_path / "a.csv"
    _write(path, HEADER + "x1,Okay service,2026-09-01,customer,chat,support,,3,,,\n")
    ingest_file(engine, path, settings=settings, source_name="chat")
    _write(path, HEADER + "x1,Okay service but the refund never came,2026-09-01,customer,chat,support,,2,,,\n")
    stats, _ = ingest_file(engine, path, settings=settings, source_name="chat")
    assert stats.updated == 1
    with session_factory(engine)() as session:
        item = session.scalar(select(FeedbackItem))
    assert item is not None and item.csat == 2 and "refund" in item.text
    assert _count(engine, FeedbackItem) == 1


def test_other_column_names_map_by_option_or_file(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "hr.csv", "resp,comment_text,when,team\n1,Too much overtime,2026-10-01,warehouse\n")
    with pytest.raises(IngestError) as missing:
        ingest_file(engine, path, settings=settings)
    message = str(missing.value)
    assert "hr.csv" in message and "column 'text' not found" in message and "comment_text" in message
    assert "--map text=" in message  # the fix

    mapping = FieldMapping.from_options(["text=comment_text", "created_at=when", "external_id=resp"],
                                        ["audience=employee"])
    stats, _ = ingest_file(engine, path, settings=settings, mapping=mapping, source_name="hr")
    assert stats.new == 1
    mapping_file = _write(tmp_path / "map.toml", '[columns]\ntext = "comment_text"\ncreated_at = "when"\n'
                          'external_id = "resp"\n[defaults]\naudience = "employee"\n')
    again, _ = ingest_file(engine, path, settings=settings, source_name="hr",
                           mapping=FieldMapping.from_file(mapping_file))
    assert again.unchanged == 1
    with session_factory(engine)() as session:
        item = session.scalar(select(FeedbackItem))
    assert item is not None and item.audience == "employee" and item.org_unit == "warehouse"


def test_json_and_jsonl(tmp_path, engine, settings) -> None:
    rows = [{"external_id": f"j{i}", "text": f"Checkout worked fine {i}", "created_at": "2026-09-01T00:00:00Z",
             "csat": 4, "touchpoint": "checkout"} for i in range(3)]
    json_path = _write(tmp_path / "items.json", json.dumps({"items": rows}))
    jsonl_path = _write(tmp_path / "items.jsonl", "\n".join(json.dumps(r) for r in rows)
                        + '\n{"external_id": "broken", "text": "cut off\n')
    assert ingest_file(engine, json_path, settings=settings)[0].new == 3
    stats, _ = ingest_file(engine, jsonl_path, settings=settings)
    assert stats.new == 3 and stats.dead == 1
    assert "items.jsonl:line 4" in _dead_letters(engine)[0].reason


def test_missing_text_column_fails_clearly_and_is_recorded(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "survey.csv", "id,comment_body,date\n1,hello,2026-01-01\n")
    with pytest.raises(IngestError, match=r"survey\.csv: column 'text' not found \(columns: id, comment_body, date\)"):
        ingest_file(engine, path, settings=settings)
    dead = _dead_letters(engine)
    assert len(dead) == 1 and "column 'text' not found" in dead[0].reason and "comment_body" in dead[0].raw_payload
    with session_factory(engine)() as session:
        run = session.scalar(select(IngestionRun))
    assert run is not None and run.status == "failed" and "text" in (run.error or "")


def test_empty_file_fails_clearly(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "empty.csv", "")
    with pytest.raises(IngestError, match=r"empty\.csv: the file is empty"):
        ingest_file(engine, path, settings=settings)
    assert "empty" in _dead_letters(engine)[0].reason


def test_invalid_utf8_row_goes_to_dead_letters_others_ingest(tmp_path, engine, settings) -> None:
    # A UTF-8 file (it holds valid multi-byte characters) with one row of stray Latin-1 bytes.
    content = (HEADER + "u1,Fine product très bien,2026-09-01,customer,review,,,,4,,\n").encode() + \
        "u2,Caf\xe9 was closed,2026-09-01,customer,review,,,,2,,\n".encode("latin-1") + \
        b"u3,Works well,2026-09-02,customer,review,,,,5,,\n"
    stats, _ = ingest_file(engine, _write(tmp_path / "mixed.csv", content), settings=settings)
    assert (stats.new, stats.dead) == (2, 1)
    dead = _dead_letters(engine)[0]
    assert "mixed.csv:line 3" in dead.reason and "invalid UTF-8" in dead.reason and "--encoding" in dead.reason
    assert "Caf" in dead.raw_payload
    # With the right encoding the row ingests.
    again, _ = ingest_file(engine, tmp_path / "mixed.csv", settings=settings, encoding="latin-1",
                           source_name="latin")
    assert again.new == 3


def test_a_file_in_another_encoding_is_detected_and_read(tmp_path, engine, settings) -> None:
    content = (HEADER + "u1,Fine product,2026-09-01,customer,review,,,,4,,\n"
               + "u2,Caf\xe9 was closed \u2013 again,2026-09-01,customer,review,,,,2,,\n").encode("cp1252")
    stats, run_id = ingest_file(engine, _write(tmp_path / "excel.csv", content), settings=settings)
    assert (stats.new, stats.dead) == (2, 0)
    with session_factory(engine)() as session:
        assert session.get(IngestionRun, run_id).encoding == "cp1252"
        assert session.scalar(select(FeedbackItem.text).where(FeedbackItem.external_id == "u2")) == \
            "Caf\xe9 was closed \u2013 again"


def test_a_latin1_tsv_with_unpadded_iso_times_is_read(engine, settings) -> None:
    """A TSV saved as Latin-1, one time written 2015-02-20T4:05:00 (no leading zero)."""
    stats, run_id = ingest_file(engine, FIXTURES / "latin1_export.tsv", settings=settings)
    assert (stats.new, stats.dead) == (3, 0)
    with session_factory(engine)() as session:
        assert session.get(IngestionRun, run_id).encoding == "cp1252"  # Latin-1's printable superset
        stored = {i.external_id: i for i in session.scalars(select(FeedbackItem))}
    assert stored["t1"].text.startswith("Le livreur était très aimable")
    assert stored["t2"].text == "Überall Kartons, aber die Möbel sind schön"
    assert stored["t2"].created_at.replace(tzinfo=None).isoformat() == "2015-02-20T04:05:00"


def test_nul_characters_in_a_file_are_dropped_not_fatal(tmp_path, engine, settings) -> None:
    """A damaged export with NUL bytes: PostgreSQL text cannot hold one, and a batch holding one
    was refused whole; the rows are read without them, on every engine."""
    path = _write(tmp_path / "nul.csv", b"id,text\nn1,late\x00 parcel\nn2,fine parcel\x00\x00\n")
    stats, _ = ingest_file(engine, path, settings=settings)
    assert (stats.new, stats.dead) == (2, 0)
    with session_factory(engine)() as session:
        assert sorted(session.scalars(select(FeedbackItem.text))) == ["fine parcel", "late parcel"]


def test_truncated_and_invalid_rows_are_dead_lettered_with_reasons(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "bad.csv", HEADER
                  + "b1,Good,2026-09-01,customer,survey,,9,,,,\n"
                  + "b2,Cut off row,2026-09-01\n"
                  + "b3,NPS too high,2026-09-01,customer,survey,,11,,,,\n"
                  + "b4,,2026-09-01,customer,survey,,5,,,,\n"
                  + "b5,Bad date,yesterday-ish,customer,survey,,5,,,,\n"
                  + "b6,Wrong audience,2026-09-01,partner,survey,,5,,,,\n")
    stats, _ = ingest_file(engine, path, settings=settings)
    assert (stats.seen, stats.new, stats.dead) == (6, 1, 5)
    reasons = [d.reason for d in _dead_letters(engine)]
    assert any("bad.csv:line 3" in r and "truncated" in r for r in reasons)
    assert any("line 4" in r and "nps '11' is outside 0-10" in r for r in reasons)
    assert any("line 5" in r and "text is empty" in r for r in reasons)
    assert any("line 6" in r and "date_format" in r for r in reasons)
    assert any("line 7" in r and "audience 'partner'" in r for r in reasons)
    assert _count(engine, FeedbackItem) + _count(engine, DeadLetter) == stats.seen  # nothing lost
    # Run again (a rerun after a crash, or the same file dropped twice): still bad rows, reported
    # as such, but each kept once; a row fixed in place is a new dead letter only if still bad.
    again, _ = ingest_file(engine, path, settings=settings)
    assert (again.seen, again.dead) == (6, 5) and _count(engine, DeadLetter) == 5
    path.write_text(path.read_text().replace("NPS too high,2026-09-01,customer,survey,,11",
                                             "NPS too high,2026-09-01,customer,survey,,12"))
    ingest_file(engine, path, settings=settings)
    assert _count(engine, DeadLetter) == 6  # the changed row's new payload, kept beside the old one


def test_pii_is_redacted_before_storage(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "pii.csv", HEADER
                  + "p1,Email me at jane.doe@example.com or call +1 415 555 0134 about order 5531,"
                  "2026-09-01,customer,ticket,support,,2,,,\n")
    ingest_file(engine, path, settings=settings)
    with session_factory(engine)() as session:
        item = session.scalar(select(FeedbackItem))
    assert item is not None
    assert "jane.doe@example.com" not in item.text and "[EMAIL]" in item.text
    assert "555 0134" not in item.text and "[PHONE]" in item.text
    assert "order 5531" in item.text
    assert item.extra.get("redacted", {}).get("EMAIL") == 1


def test_dead_letters_are_redacted_too(tmp_path, engine, settings) -> None:
    path = _write(tmp_path / "pii_bad.csv", HEADER
                  + "d1,Reach me at jane.doe@example.com,not-a-date,customer,ticket,support,,2,,,\n")
    stats, _ = ingest_file(engine, path, settings=settings)
    assert stats.dead == 1
    letter = _dead_letters(engine)[0]
    assert "jane.doe@example.com" not in letter.raw_payload and "[EMAIL]" in letter.raw_payload
    assert "not-a-date" in letter.reason


def test_long_text_is_cut_and_flagged(tmp_path, engine, settings) -> None:
    long_text = "word " * 30_000
    path = _write(tmp_path / "long.jsonl", json.dumps({"text": long_text, "created_at": "2026-09-01"}))
    stats, _ = ingest_file(engine, path, settings=settings)
    assert stats.new == 1
    with session_factory(engine)() as session:
        item = session.scalar(select(FeedbackItem))
    assert item is not None and len(item.text) == settings.ingest.max_text_chars
    assert item.extra["truncated_from_chars"] == len(long_text.strip())
