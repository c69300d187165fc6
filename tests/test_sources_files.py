"""File connectors against fixtures in the real export formats: each item once, nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feedback.db import session_factory
from feedback.models import DeadLetter, FeedbackItem, IngestionRun, Source
from feedback.sources.config import SourceConfig
from feedback.sources.service import pull_source, save_source

FIXTURES = Path(__file__).parent / "fixtures"


def declare(engine, **fields) -> SourceConfig:
    config = SourceConfig(**fields)
    with session_factory(engine)() as session:
        save_source(session, config, origin="api")
        session.commit()
    return config


def items(engine, source: str | None = None) -> dict[str, FeedbackItem]:
    with session_factory(engine)() as session:
        stmt = select(FeedbackItem)
        if source:
            stmt = stmt.join(Source).where(Source.name == source)
        return {i.external_id: i for i in session.scalars(stmt)}


def dead_letters(engine) -> list[DeadLetter]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def cursor(engine, name: str) -> dict | None:
    with session_factory(engine)() as session:
        return session.scalar(select(Source.cursor).where(Source.name == name))


def test_qualtrics_export_gives_one_item_per_open_answer(engine, settings) -> None:
    declare(
        engine,
        name="nps-survey",
        connector="qualtrics",
        options={
            "path": str(FIXTURES / "qualtrics_responses.csv"),
            "csat_question": "Q4",
            "extra_columns": ["Store"],
        },
    )
    result = pull_source(engine, "nps-survey", settings=settings)
    assert result.status == "succeeded", result.error
    # R1: 3 answers, R2: 1, R3 a preview (skipped), R4: 1, R5: no text, R6: NPS 12 -> dead letter.
    assert (result.stats.new, result.stats.dead) == (5, 1)
    stored = items(engine)
    r1 = [i for k, i in stored.items() if k.startswith("R_1abcDEF234ghIJk:")]
    assert sorted(i.extra["question_id"] for i in r1) == ["Q2", "Q3_5_TEXT", "Q5"]
    assert {i.nps for i in r1} == {3} and {i.csat for i in r1} == {1}
    assert {i.extra["response_id"] for i in r1} == {"R_1abcDEF234ghIJk"}
    assert all(i.channel == "survey" and i.extra["Store"] == "Denver" for i in r1)
    reason = stored["R_1abcDEF234ghIJk:Q2"]
    assert reason.extra["question"] == "What is the main reason for your score?"
    # Ended (EndDate, not RecordedDate) 09:15:44 in America/Denver (MDT, UTC-6), per the export's timeZone.
    assert reason.created_at.isoformat() == "2026-09-01T15:15:44+00:00"
    anything_else = stored["R_1abcDEF234ghIJk:Q5"]
    assert "[PHONE]" in anything_else.text and "555 0134" not in anything_else.text
    assert stored["R_4defGHI567jkLMn:Q2"].language == "de"
    assert not any(k.startswith("R_3cde") for k in stored)  # preview skipped (Status)
    assert not any(k.startswith("R_7ghi") for k in stored)  # preview skipped (DistributionChannel)
    everything = json.dumps([i.extra for i in stored.values()]) + " ".join(
        i.text for i in stored.values()
    )
    for personal in ("203.0.113.7", "jane.doe@example.com", "Jane", "39.7392", "CUST-1001"):
        assert personal not in everything
    assert reason.author and "CUST" not in reason.author  # pseudonymised respondent
    dead = dead_letters(engine)
    assert len(dead) == 1 and "nps '12' is outside 0-10" in dead[0].reason
    assert "R_6fghIJK789lmNOp" in dead[0].raw_payload and "192.0.2.46" not in dead[0].raw_payload


def test_qualtrics_legacy_export_with_numeric_status_codes(engine, settings) -> None:
    """The legacy exporter: import ids as Python dicts (`{'ImportId': 'QID6-TEXT'}`), Status as
    numbers, a UTF-8 BOM and CRLF; text-entry questions asking a ZIP code and a count."""
    declare(engine, name="legacy", connector="qualtrics",
            options={"path": str(FIXTURES / "qualtrics_legacy_responses.csv")})
    result = pull_source(engine, "legacy", settings=settings)
    assert result.status == "succeeded", result.error
    stored = items(engine)
    # Kept: 0 IP Address, 4 Imported, 16 Offline; skipped: 1 preview, 2 test, 8 spam.
    assert {k.split(":")[0] for k in stored} == {"R_LEG1aaaaaaaaaaa", "R_LEG4ddddddddddd", "R_LEG5eeeeeeeeeee"}
    # Comments only: Q3 (ZIP codes) and Q4 (counts) hold no letter in any answer.
    assert sorted(k for k in stored if k.startswith("R_LEG1")) == ["R_LEG1aaaaaaaaaaa:Q2", "R_LEG1aaaaaaaaaaa:Q5"]
    imported = stored["R_LEG1aaaaaaaaaaa:Q2"]
    assert imported.nps == 2 and imported.extra["nps_group"] == "1"
    # Given 2015-02-19 04:30 in Denver (MST, UTC-7); it was imported (RecordedDate) on 2015-03-02.
    assert imported.created_at.isoformat() == "2015-02-19T11:30:00+00:00"
    assert "jane.doe@example.com" not in json.dumps([i.extra for i in stored.values()])


def test_qualtrics_text_questions_override_the_numbers_rule(engine, settings) -> None:
    declare(engine, name="legacy-zip", connector="qualtrics",
            options={"path": str(FIXTURES / "qualtrics_legacy_responses.csv"), "text_questions": ["Q3"]})
    assert pull_source(engine, "legacy-zip", settings=settings).status == "succeeded"
    assert sorted(i.text for i in items(engine).values()) == ["80202", "80301"]


def test_an_excel_csv_in_windows_1252_is_read_and_its_encoding_recorded(engine, settings) -> None:
    declare(engine, name="excel", connector="file", options={"path": str(FIXTURES / "excel_windows1252.csv")})
    result = pull_source(engine, "excel", settings=settings)
    assert result.status == "succeeded", result.error
    assert (result.stats.new, result.stats.dead) == (3, 0)
    stored = items(engine)
    assert stored["x1"].text == "Café was closed – again; the sign said “open”."
    assert stored["x2"].text == "Paid 25 € for delivery and it’s still not here…"
    # ISO 8601 but for a leading zero: read, not dead-lettered.
    assert stored["x1"].created_at.isoformat() == "2015-02-19T04:30:00+00:00"
    assert stored["x3"].created_at.isoformat() == "2015-02-09T09:15:00+00:00"
    with session_factory(engine)() as session:
        assert session.get(IngestionRun, result.run_id).encoding == "cp1252"


def test_surveymonkey_export_maps_nps_csat_and_open_ended_answers(engine, settings) -> None:
    declare(
        engine,
        name="sm",
        connector="surveymonkey",
        options={
            "path": str(FIXTURES / "surveymonkey_responses.csv"),
            "csat_question": "how satisfied are you",
        },
    )
    result = pull_source(engine, "sm", settings=settings)
    assert result.status == "succeeded", result.error
    assert (result.stats.new, result.stats.dead) == (4, 0)
    stored = items(engine)
    by_response: dict[str, list[FeedbackItem]] = {}
    for item in stored.values():
        by_response.setdefault(item.extra["response_id"], []).append(item)
    assert sorted(len(v) for v in by_response.values()) == [1, 1, 2]
    first = by_response["114022456789"][0]
    assert (first.nps, first.csat) == (9, 5)
    assert first.created_at.isoformat() == "2026-09-14T10:25:02+00:00"
    assert first.extra["question"] == "What is the main reason for your score?"
    assert {i.csat for i in by_response["114022456790"]} == {2}
    assert first.author is not None and "sam.lee" not in first.author
    assert "198.51.100.23" not in json.dumps([i.extra for i in stored.values()])


def test_pulse_export_is_employee_feedback_by_org_unit_and_tenure(engine, settings) -> None:
    declare(
        engine,
        name="pulse-oct",
        connector="pulse",
        audience="employee",
        options={"path": str(FIXTURES / "pulse_survey.csv"), "extra_columns": ["Location"]},
    )
    result = pull_source(engine, "pulse-oct", settings=settings)
    assert result.status == "succeeded", result.error
    assert result.stats.new == 6
    stored = items(engine)
    rota = stored["P-0001:Comment: What should we improve?"]
    assert rota.audience == "employee" and rota.channel == "pulse"
    assert (rota.org_unit, rota.segment, rota.nps) == ("Warehouse North", "1-2 years", 8)
    assert rota.extra["team"] == "Picking" and rota.extra["Location"] == "Leeds"
    assert all(i.author is None for i in stored.values())


def test_google_play_export_utf16_with_review_ids(engine, settings) -> None:
    declare(
        engine,
        name="play",
        connector="google_play",
        options={"path": str(FIXTURES / "google_play_reviews_com.northwind.home_202609.csv")},
    )
    result = pull_source(engine, "play", settings=settings)
    assert result.status == "succeeded", result.error
    assert result.stats.new == 3  # the rating without text is not an item
    stored = items(engine)
    crash = stored["gp:AOqpTOF1aaaaaaaaaaaaaaaaaaaaaaaaaa"]
    assert crash.stars == 1.0 and crash.channel == "app_review"
    assert crash.created_at.isoformat() == "2026-09-01T08:14:22+00:00"
    assert (
        crash.extra["app_version_name"] == "4.12.0"
        and "fix is in" in crash.extra["developer_reply"]
    )
    assert stored["gp:AOqpTOF2bbbbbbbbbbbbbbbbbbbbbbbbbb"].text.startswith("Love it\n")
    assert stored["gp:AOqpTOF3cccccccccccccccccccccccccc"].language == "de"


def test_single_file_is_skipped_when_unchanged_and_updated_when_changed(
    tmp_path, engine, settings
) -> None:
    path = tmp_path / "survey.csv"
    path.write_text(
        "external_id,text,created_at,csat\ns1,Okay service,2026-09-01,3\ns2,Great,2026-09-02,5\n"
    )
    declare(engine, name="csv", connector="file", options={"path": str(path)})
    assert pull_source(engine, "csv", settings=settings).stats.new == 2
    again = pull_source(engine, "csv", settings=settings)
    assert again.status == "succeeded" and again.stats.seen == 0  # same bytes: not even read
    path.write_text(
        "external_id,text,created_at,csat\ns1,Okay service but no refund,2026-09-01,2\n"
        "s2,Great,2026-09-02,5\ns3,New one,2026-09-03,4\n"
    )
    changed = pull_source(engine, "csv", settings=settings)
    assert (changed.stats.new, changed.stats.updated, changed.stats.unchanged) == (1, 1, 1)


def _xlsx(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_watched_folder_reads_each_file_once_and_archives_it(tmp_path, engine, settings) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text(
        "external_id,text,created_at\na1,First,2026-09-01\na2,Second,2026-09-01\n"
    )
    (inbox / "b.tsv").write_text("external_id\ttext\tcreated_at\nb1\tTabbed\t2026-09-02\n")
    (inbox / "c.jsonl").write_text(
        '{"external_id": "c1", "text": "Line one", "created_at": "2026-09-03"}\n'
    )
    (inbox / "d.json").write_text(
        json.dumps({"items": [{"external_id": "d1", "text": "Json doc"}]})
    )
    _xlsx(
        inbox / "e.xlsx",
        [["external_id", "text", "created_at", "stars"], ["e1", "From Excel", "2026-09-04", 4]],
    )
    (inbox / "f.csv").write_text("id,comment_body\n1,no text column here\n")  # a whole-file problem
    (inbox / "g.csv.part").write_text("external_id,text\ng1,still uploading\n")
    declare(
        engine, name="inbox", connector="file", options={"path": str(inbox), "settle_seconds": 0}
    )
    result = pull_source(engine, "inbox", settings=settings)
    # Every other file is read and archived; the run still fails, naming the file it refused.
    assert result.status == "failed" and "1 file(s) refused" in result.error, result.error
    assert "f.csv: column 'text' not found" in result.error and "move the file back" in result.error
    assert set(items(engine)) == {"a1", "a2", "b1", "c1", "d1", "e1"}
    assert items(engine)["e1"].stars == 4.0
    assert sorted(p.name for p in (inbox / "archive").iterdir()) == [
        "a.csv",
        "b.tsv",
        "c.jsonl",
        "d.json",
        "e.xlsx",
    ]
    assert [p.name for p in (inbox / "failed").iterdir()] == ["f.csv"]
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["g.csv.part"]
    assert "column 'text' not found" in dead_letters(engine)[0].reason

    # The same export dropped again is recognised by its digest and archived unread.
    shutil.copy(inbox / "archive" / "a.csv", inbox / "a-again.csv")
    again = pull_source(engine, "inbox", settings=settings)
    assert again.status == "succeeded" and again.stats.seen == 0
    assert not (inbox / "a-again.csv").exists()


def _runs(engine, name: str) -> list[tuple[str, int]]:
    with session_factory(engine)() as session:
        runs = session.scalars(
            select(IngestionRun).join(Source).where(Source.name == name).order_by(IngestionRun.id)
        )
        return [(r.status, r.items_seen) for r in runs]


def test_a_refused_file_stays_failed_until_it_is_read(
    tmp_path, engine, settings, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from jobs import cli

    path = tmp_path / "survey.csv"
    path.write_text("id,comment_body\n1,Parcel came late\n2,Friendly driver\n")
    config = declare(engine, name="survey", connector="file", options={"path": str(path)})
    monkeypatch.setattr("jobs.cli_sources._settings", lambda: settings)
    runner = CliRunner()
    for _ in range(2):  # the same bytes pulled again: failed again, not "succeeded ... 0 read"
        pulled = runner.invoke(cli.app, ["sources", "pull", "survey"])
        assert pulled.exit_code == 1, pulled.output
        assert "survey: failed" in pulled.output and "column 'text' not found" in pulled.output
    assert _runs(engine, "survey") == [("failed", 0), ("failed", 0)]
    letters = dead_letters(engine)
    assert len(letters) == 1 and letters[0].location == "survey.csv"  # kept once, not per pull
    assert letters[0].resolved_at is None and not cursor(engine, "survey")["file"]["done"]
    retried = runner.invoke(cli.app, ["deadletters", "retry", "--source", "survey"])
    retried_text = " ".join(retried.output.split())
    assert "survey.csv is a whole file, not a row (survey.csv: column 'text' not found" in retried_text
    assert "pull the source again" in retried_text and "0 resolved" in retried_text
    assert dead_letters(engine)[0].reason == letters[0].reason  # the file's own reason is kept

    # The mapping is fixed; the unchanged file is read, and its dead letter resolved.
    fixed = config.model_copy(
        update={"mapping": config.mapping.model_copy(update={"columns": {"text": "comment_body"}})}
    )
    with session_factory(engine)() as session:
        save_source(session, fixed, origin="api")
        session.commit()
    read = runner.invoke(cli.app, ["sources", "pull", "survey"])
    assert read.exit_code == 0 and "survey: succeeded" in read.output and "2 new" in read.output
    assert set(items(engine, "survey")) == {"1", "2"}
    assert dead_letters(engine)[0].resolved_at is not None
    assert pull_source(engine, "survey", settings=settings).stats.seen == 0  # now it is done
    assert [status for status, _ in _runs(engine, "survey")] == [
        "failed", "failed", "succeeded", "succeeded",
    ]  # fmt: skip


def test_a_refused_file_read_across_a_crash_still_resolves_its_letter(
    tmp_path, engine, settings, monkeypatch
) -> None:
    from feedback.sources.connectors.files import FileConnector

    path = tmp_path / "big.csv"
    path.write_text("id,comment_body\n" + "".join(f"r{i},Comment {i}\n" for i in range(20)))
    config = declare(engine, name="big", connector="file", batch_size=5, options={"path": str(path)})
    assert pull_source(engine, "big", settings=settings).status == "failed"
    fixed = config.model_copy(
        update={"mapping": config.mapping.model_copy(update={"columns": {"text": "comment_body"}})}
    )
    with session_factory(engine)() as session:
        save_source(session, fixed, origin="api")
        session.commit()
    real = FileConnector.records

    def crashing(self, p):
        for n, record in enumerate(real(self, p)):
            if n == 12:
                raise RuntimeError("power cut")
            yield record

    monkeypatch.setattr(FileConnector, "records", crashing)
    assert pull_source(engine, "big", settings=settings).stats.new == 10  # two batches stored
    assert dead_letters(engine)[0].resolved_at is None
    monkeypatch.setattr(FileConnector, "records", real)
    resumed = pull_source(engine, "big", settings=settings)
    assert resumed.status == "succeeded" and (resumed.stats.seen, resumed.stats.new) == (10, 10)
    assert dead_letters(engine)[0].resolved_at is not None


def test_a_refused_file_is_read_once_corrected(tmp_path, engine, settings) -> None:
    path = tmp_path / "survey.csv"
    path.write_text("id,comment_body\n1,Parcel came late\n")
    declare(engine, name="survey", connector="file", options={"path": str(path)})
    assert pull_source(engine, "survey", settings=settings).status == "failed"
    path.write_text("id,text\n1,Parcel came late\n")  # the export is corrected
    result = pull_source(engine, "survey", settings=settings)
    assert result.status == "succeeded" and result.stats.new == 1
    assert [d.resolved_at is not None for d in dead_letters(engine)] == [True]


def test_a_file_an_older_release_marked_done_after_refusing_it_is_read_again(
    tmp_path, engine, settings
) -> None:
    from feedback.sources.connectors.filesource import file_digest

    path = tmp_path / "survey.csv"
    path.write_text("id,text\n1,Parcel came late\n")
    declare(engine, name="survey", connector="file", options={"path": str(path)})
    with session_factory(engine)() as session:
        source = session.scalar(select(Source).where(Source.name == "survey"))
        source.cursor = {"file": {"name": "survey.csv", "sha256": file_digest(path), "offset": 0,
                                  "done": True, "error": "survey.csv: the file is empty"}}  # fmt: skip
        session.commit()
    result = pull_source(engine, "survey", settings=settings)
    assert result.status == "succeeded" and result.stats.new == 1


def test_a_refused_file_put_back_in_the_folder_is_read_again(tmp_path, engine, settings) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "f.csv").write_text("id,comment_body\n1,Parcel came late\n")
    config = declare(
        engine, name="inbox", connector="file", options={"path": str(inbox), "settle_seconds": 0}
    )
    assert pull_source(engine, "inbox", settings=settings).status == "failed"
    # Put back unchanged (nothing fixed): refused again, moved aside again, one dead letter.
    shutil.move(inbox / "failed" / "f.csv", inbox / "f.csv")
    again = pull_source(engine, "inbox", settings=settings)
    assert again.status == "failed" and "f.csv: column 'text' not found" in again.error
    assert not (inbox / "f.csv").exists() and (inbox / "failed" / "f.csv").exists()
    assert len(dead_letters(engine)) == 1
    # With the mapping fixed, the same bytes put back are read, archived, their letter resolved.
    fixed = config.model_copy(
        update={"mapping": config.mapping.model_copy(update={"columns": {"text": "comment_body"}})}
    )
    with session_factory(engine)() as session:
        save_source(session, fixed, origin="api")
        session.commit()
    shutil.move(inbox / "failed" / "f.csv", inbox / "f.csv")
    read = pull_source(engine, "inbox", settings=settings)
    assert read.status == "succeeded" and read.stats.new == 1, read.error
    assert [p.name for p in (inbox / "archive").iterdir()] == ["f.csv"]
    assert dead_letters(engine)[0].resolved_at is not None
    assert cursor(engine, "inbox")["failed"] == {}


def test_a_crash_mid_file_resumes_after_the_last_committed_batch(
    tmp_path, engine, settings, monkeypatch
) -> None:
    from feedback.sources.connectors.files import FileConnector

    path = tmp_path / "big.csv"
    path.write_text(
        "external_id,text,created_at\n"
        + "".join(f"r{i},Comment {i},2026-09-01\n" for i in range(50))
    )
    declare(engine, name="big", connector="file", batch_size=7, options={"path": str(path)})
    real = FileConnector.records

    def crashing(self, p):
        for n, record in enumerate(real(self, p)):
            if n == 30:
                raise RuntimeError("power cut")
            yield record

    monkeypatch.setattr(FileConnector, "records", crashing)
    first = pull_source(engine, "big", settings=settings)
    assert first.status == "failed" and "power cut" in (first.error or "")
    assert first.stats.new == 28  # four batches of 7 were committed
    assert cursor(engine, "big")["file"]["offset"] == 28
    monkeypatch.setattr(FileConnector, "records", real)
    second = pull_source(engine, "big", settings=settings)
    assert second.status == "succeeded"
    assert (second.stats.seen, second.stats.new, second.stats.unchanged) == (22, 22, 0)
    assert len(items(engine)) == 50
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackItem)) == 50
        statuses = [
            r.status for r in session.scalars(select(IngestionRun).order_by(IngestionRun.id))
        ]
    assert statuses == ["failed", "succeeded"]


def test_missing_path_fails_this_source_only(tmp_path, engine, settings) -> None:
    from feedback.sources.service import pull_all

    good = tmp_path / "good.csv"
    good.write_text("external_id,text\ng1,Fine\n")
    declare(
        engine, name="broken", connector="file", options={"path": str(tmp_path / "nowhere.csv")}
    )
    declare(engine, name="good", connector="file", options={"path": str(good)})
    results = {r.source: r for r in pull_all(engine, settings=settings)}
    assert (
        results["broken"].status == "failed" and "no such file or folder" in results["broken"].error
    )
    assert "options.path" in results["broken"].error
    assert results["good"].status == "succeeded" and results["good"].stats.new == 1


@pytest.mark.parametrize("bad", ["not a date", "2026-13-45"])
def test_row_problems_are_dead_lettered_with_their_raw_row(tmp_path, engine, settings, bad) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(f"external_id,text,created_at\nok,Fine,2026-09-01\nbad,Broken date,{bad}\n")
    declare(engine, name="rows", connector="file", options={"path": str(path)})
    result = pull_source(engine, "rows", settings=settings)
    assert (result.stats.new, result.stats.dead) == (1, 1)
    letter = dead_letters(engine)[0]
    assert json.loads(letter.raw_payload)["external_id"] == "bad"  # with its column names
    assert "date_format" in letter.reason


@pytest.mark.slow
def test_large_ingest_detects_languages_in_a_worker_process(
    tmp_path, engine, settings, monkeypatch
) -> None:
    """The pipelined path of a large ingest stores the same items and languages, each once."""
    import time

    from feedback.ingest import service
    from feedback.ingest.files import ingest_file

    deadline = time.monotonic() + 120
    while service.language_pool(1) is None:  # spawned once per process; warm it up first
        assert time.monotonic() < deadline, "the language worker did not start"
        time.sleep(0.2)
    texts = [
        "The courier was late and nobody called me back about the refund",
        "Die Lieferung kam zu spät und niemand hat angerufen",
        "La livraison était parfaite et merci beaucoup pour tout",
    ]
    path = tmp_path / "big.csv"
    path.write_text(
        "external_id,text\n" + "".join(f"r{i},{texts[i % 3]} {i}\n" for i in range(400))
    )
    in_process = []
    real = service.detect_language
    monkeypatch.setattr(
        service, "detect_language", lambda text: in_process.append(text) or real(text)
    )
    small = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_size": 100})}
    )
    stats, _ = ingest_file(engine, path, settings=small)
    assert stats.new == 400
    assert len(in_process) == 100  # only the first batch; the other three went to the worker
    languages = {i.external_id: i.language for i in items(engine).values()}
    assert len(languages) == 400
    assert {languages[f"r{i}"] for i in range(0, 400, 3)} == {"en"}
    assert {languages[f"r{i}"] for i in range(1, 400, 3)} == {"de"}
    assert {languages[f"r{i}"] for i in range(2, 400, 3)} == {"fr"}
