"""Declaring sources, dead-letter retries, `voc sources`, `voc redact --all`, pure helpers."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from feedback.db import session_factory
from feedback.models import DeadLetter, FeedbackItem, Source
from feedback.sources.backoff import Backoff, TransientError, retry
from feedback.sources.config import CredentialsError, SourceConfig, parse_schedule
from feedback.sources.http import parse_retry_after
from feedback.sources.jsonpath import JsonPathError, compile_path
from feedback.sources.service import pull_source, retry_dead_letters, save_source


# -- declarations ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "seconds"),
    [
        ("every 15m", "interval", 900),
        ("30s", "interval", 30),
        ("every 2 hours", "interval", 7200),
        ("every 1d", "interval", 86400),
        ("*/15 * * * *", "cron", None),
        ("0 3 * * mon", "cron", None),
    ],
)
def test_schedules(text, kind, seconds) -> None:
    schedule = parse_schedule(text)
    assert schedule.kind == kind and schedule.seconds == seconds


@pytest.mark.parametrize("text", ["sometimes", "61 * * * *", "every 0s", "* * *"])
def test_bad_schedules_say_how_to_write_one(text) -> None:
    with pytest.raises(ValueError, match="every 15m|crontab|at least"):
        parse_schedule(text)


def test_declarations_are_checked_with_the_fix_in_the_message() -> None:
    with pytest.raises(ValidationError, match="unknown connector 'sftp'; connectors: app_store"):
        SourceConfig(name="x", connector="sftp")
    with pytest.raises(
        ValidationError, match="unknown option 'pagen'; http_json options: url, params, headers"
    ):
        SourceConfig(
            name="x", connector="http_json", options={"url": "https://example.org", "pagen": 1}
        )
    with pytest.raises(
        ValidationError,
        match=r"unknown option 'auth.typ' \(did you mean 'auth.type'\?\); options of auth: type, ",
    ):
        SourceConfig(
            name="x",
            connector="http_json",
            options={"url": "https://example.org", "auth": {"typ": "header"}},
            credentials_env={"token": "T"},
        )
    with pytest.raises(ValidationError, match="options.password looks like a credential"):
        SourceConfig(
            name="x", connector="http_json", options={"url": "https://example.org", "password": "p"}
        )
    with pytest.raises(ValidationError, match="zendesk.*credentials_env"):
        SourceConfig(name="zd", connector="zendesk", options={"subdomain": "nw"})
    with pytest.raises(ValidationError, match="unknown item field"):
        SourceConfig(
            name="x", connector="file", options={"path": "/tmp"}, mapping={"columns": {"txt": "a"}}
        )


@pytest.mark.parametrize(
    ("connector", "options", "credentials", "message"),
    [
        ("qualtrics", {"path": "/x", "timezone": "Europe/Londn"}, {},
         "options.timezone 'Europe/Londn' is not a time zone name; write an IANA name"),
        ("file", {"path": "/x", "encoding": "win-1252"}, {},
         "options.encoding 'win-1252' is not an encoding Python knows; write e.g. 'utf-8', 'cp1252'"),
        ("http_json", {"url": "https://e.org", "items_path": "$.data[?(@.ok)]"}, {},
         "options.items_path: JSONPath '$.data[?(@.ok)]': cannot read '[?(@.ok)]'; supported are"),
        ("http_json", {"url": "https://e.org", "fields": {"text": "$..body"}}, {},
         "options.fields.text: JSONPath '$..body'"),
        ("http_json", {"url": "https://e.org", "pagination": {"cursor_path": "meta..next"}}, {},
         "options.pagination.cursor_path: JSONPath 'meta..next'"),
        ("http_json", {"url": "https://e.org", "auth": {"type": "bearer"}}, {},
         "auth sends the credential(s) ['token'], which credentials_env does not name; add e.g. "
         'credentials_env = {token = "BAD_TOKEN"}'),
        ("review_api", {"url": "https://e.org", "auth": {"type": "basic"}}, {"username": "U"},
         "auth sends the credential(s) ['password']"),
        ("zendesk", {"subdomain": "nw", "start_time": "last week"}, {"oauth_token": "Z"},
         "options.start_time 'last week' is neither an ISO date"),
        ("webhook", {"items_path": "$.a b"}, {"secret": "S"}, "options.items_path: JSONPath '$.a b'"),
    ],
)  # fmt: skip
def test_settings_that_would_fail_the_first_pull_are_refused_when_declared(
    connector, options, credentials, message
) -> None:
    with pytest.raises(ValidationError) as caught:
        SourceConfig(name="bad", connector=connector, options=options, credentials_env=credentials)
    assert message in str(caught.value)
    assert "Value error, Value error" not in str(caught.value)


def test_credentials_are_read_from_the_environment_at_run_time() -> None:
    config = SourceConfig(
        name="zd",
        connector="zendesk",
        options={"subdomain": "nw"},
        credentials_env={"email": "ZD_EMAIL", "token": "ZD_TOKEN"},
    )
    assert config.credentials({"ZD_EMAIL": "a@b.c", "ZD_TOKEN": "t"}) == {
        "email": "a@b.c",
        "token": "t",
    }
    with pytest.raises(CredentialsError, match=r"token \(\$ZD_TOKEN\)"):
        config.credentials({"ZD_EMAIL": "a@b.c"})
    stored = config.stored_config(origin="api")
    assert stored["credentials_env"] == {"email": "ZD_EMAIL", "token": "ZD_TOKEN"}  # names only


def test_config_file_sources_sync_and_disappear_as_disabled(settings, engine, tmp_path) -> None:
    from feedback.sources.service import sync_declared_sources

    path = tmp_path / "a.csv"
    path.write_text("text\nhello there\n")
    declared = settings.model_copy(
        update={
            "sources": [
                {
                    "name": "a",
                    "connector": "file",
                    "schedule": "every 1h",
                    "options": {"path": str(path)},
                },
                {"name": "bad", "connector": "file", "options": {}},
            ]
        }
    )
    with session_factory(engine)() as session:
        errors = sync_declared_sources(session, declared)
        session.commit()
        assert errors == [
            "source 'bad' (file) in the config file is invalid: options.path: Field required"
        ]
        assert session.scalar(select(Source).where(Source.name == "a")).enabled
        sync_declared_sources(session, settings.model_copy(update={"sources": []}))
        session.commit()
        assert not session.scalar(
            select(Source).where(Source.name == "a")
        ).enabled  # kept, disabled


BAD_SOURCES = """
[[sources]]
name = "nps"
connector = "qualtrics"
options = { path = "/data/nps", timezone = "Europe/Londn" }

[[sources]]
name = "reviews"
connector = "http_json"
options = { url = "https://reviews.example.com/v1", auth = { type = "bearer" } }

[[sources]]
name = "fine"
connector = "file"
options = { path = "/data/fine.csv" }
"""


def _voc(tmp_path, config: str, *args: str):
    import subprocess
    import sys
    from pathlib import Path

    toml = tmp_path / "voc.toml"
    toml.write_text(config)
    env = {
        "PATH": "/usr/bin:/bin",
        "VOC_CONFIG": str(toml),
        "VOC_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=Path(__file__).parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_voc_init_refuses_invalid_sources_in_the_config_file(tmp_path) -> None:
    refused = _voc(tmp_path, BAD_SOURCES, "init")
    output = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 1, output
    assert "2 source(s) in the config file are invalid" in output, output
    assert (
        "source 'nps' (qualtrics) in the config file is invalid: options.timezone 'Europe/Londn' "
        "is not a time zone name; write an IANA name such as 'Europe/Berlin'"
    ) in output, output
    assert "source 'reviews' (http_json) in the config file is invalid: auth sends" in output
    assert 'credentials_env = {token = "REVIEWS_TOKEN"}' in output
    assert "source fine" not in output and "[[sources]]" in output
    assert not (tmp_path / "fresh.db").exists()  # nothing done

    fixed = BAD_SOURCES.replace("Europe/Londn", "Europe/London").replace(
        "auth = { type = \"bearer\" } }", "auth = { type = \"bearer\" } }\n"
        "credentials_env = { token = \"REVIEWS_TOKEN\" }"
    )
    ready = _voc(tmp_path, fixed, "init")
    assert ready.returncode == 0 and "database ready" in ready.stdout, ready.stdout + ready.stderr


def test_voc_init_names_stored_sources_that_no_longer_pass_the_checks(
    settings, engine, monkeypatch
) -> None:
    from jobs import cli

    with session_factory(engine)() as session:  # stored before the time zone was checked
        session.add(Source(name="nps", connector="qualtrics", audience="customer",
                           config={"options": {"path": "/x", "timezone": "Europe/Londn"},
                                   "origin": "api"}))  # fmt: skip
        session.add(Source(name="file:old export.csv", connector="file", audience="customer",
                           config={"path": "/x/old export.csv"}))  # fmt: skip  # voc ingest's
        session.commit()
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    result = CliRunner().invoke(cli.app, ["init"])
    output = " ".join(result.output.split())
    assert result.exit_code == 0 and "database ready" in output, output
    assert (
        "warning: source 'nps' (qualtrics): options.timezone 'Europe/Londn' is not a time zone "
        "name; write an IANA name such as 'Europe/Berlin', 'America/Denver' or 'UTC'; declare it "
        "again with `voc sources add nps --replace ...` or PATCH /v1/sources/nps"
    ) in output
    assert output.count("warning:") == 1


def test_serve_and_scheduler_refuse_to_start_with_invalid_sources(settings, monkeypatch) -> None:
    import tomllib

    import uvicorn

    from jobs import cli, scheduler

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append("serve"))
    monkeypatch.setattr(scheduler, "run_scheduler", lambda s: started.append("scheduler"))
    declared = settings.model_copy(update={"sources": tomllib.loads(BAD_SOURCES)["sources"]})
    monkeypatch.setattr(cli, "_settings", lambda: declared)
    runner = CliRunner()
    for command in ("serve", "scheduler"):
        result = runner.invoke(cli.app, [command])
        assert result.exit_code == 1 and "source 'nps' (qualtrics) in the config" in result.output
    assert started == []
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    for command in ("serve", "scheduler"):
        assert runner.invoke(cli.app, [command]).exit_code == 0
    assert started == ["serve", "scheduler"]


# -- dead letters ----------------------------------------------------------------------------------
def test_dead_letters_retry_with_the_fixed_mapping(settings, engine, tmp_path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text(
        "resp,comment,date\n1,Too much overtime,23.09.2026\n2,Great team lead,24.09.2026\n"
        "3,,25.09.2026\n"
    )
    config = SourceConfig(
        name="hr", connector="file", audience="employee", options={"path": str(path)}
    )
    with session_factory(engine)() as session:
        save_source(session, config, origin="api")
        session.commit()
    first = pull_source(engine, "hr", settings=settings)
    assert (first.stats.new, first.stats.dead) == (0, 3)  # dates are not ISO
    fixed = config.model_copy(
        update={
            "mapping": config.mapping.model_copy(
                update={"date_format": "%d.%m.%Y", "columns": {"external_id": "resp"}}
            )
        }
    )
    with session_factory(engine)() as session:
        save_source(session, fixed, origin="api")
        session.commit()
    outcome = retry_dead_letters(engine, settings=settings, source_name="hr")
    assert len(outcome.resolved) == 2 and outcome.stats.new == 2
    assert len(outcome.failed) == 1 and "text is empty" in next(iter(outcome.failed.values()))
    with session_factory(engine)() as session:
        letters = session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
        items = session.scalars(select(FeedbackItem).order_by(FeedbackItem.external_id)).all()
    assert [bool(d.resolved_at) for d in letters] == [True, True, False]
    assert all(d.retries == 1 for d in letters) and len(letters) == 3  # no new dead letters
    assert [i.external_id for i in items] == ["1", "2"] and items[0].created_at.day == 23
    again = retry_dead_letters(engine, settings=settings)
    assert again.resolved == [] and len(again.failed) == 1  # resolved ones are not retried


def test_cli_deadletters_retry_uses_map_options_for_voc_ingest_files(
    settings, engine, tmp_path, monkeypatch
) -> None:
    from jobs import cli

    path = tmp_path / "shop.csv"
    path.write_text("id,comment,date\na,Lovely staff,2026-09-01\nb,Queue too long,01/09/2026\n")
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    monkeypatch.setattr("jobs.cli_sources._settings", lambda: settings)
    runner = CliRunner()
    ingested = runner.invoke(cli.app, ["ingest", str(path)])
    assert ingested.exit_code == 0 and "1 dead-lettered" in ingested.output
    listed = runner.invoke(cli.app, ["deadletters", "list", "--json"])
    letter = json.loads(listed.output)[0]
    retried = runner.invoke(
        cli.app, ["deadletters", "retry", str(letter["id"]), "--set", "created_at=2026-09-01"]
    )
    assert retried.exit_code == 0 and "1 resolved" in retried.output, retried.output
    with session_factory(engine)() as session:
        assert (
            session.scalar(select(FeedbackItem).where(FeedbackItem.external_id == "b")) is not None
        )


def test_retry_rebuilds_a_row_with_quoted_commas_and_line_breaks(
    settings, engine, tmp_path, monkeypatch
) -> None:
    from jobs import cli

    path = tmp_path / "quoted.csv"
    text = 'Slow, rude "courier", then\nno reply'
    path.write_text(
        'id,comment,date\n'
        'q,"Slow, rude ""courier"", then\nno reply",01/09/2026\n'  # bad date: dead-lettered
    )
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    monkeypatch.setattr("jobs.cli_sources._settings", lambda: settings)
    runner = CliRunner()
    assert "1 dead-lettered" in runner.invoke(cli.app, ["ingest", str(path)]).output
    letter = json.loads(runner.invoke(cli.app, ["deadletters", "list", "--json"]).output)[0]
    retried = runner.invoke(
        cli.app, ["deadletters", "retry", str(letter["id"]), "--set", "created_at=2026-09-01"]
    )
    assert retried.exit_code == 0 and "1 resolved" in retried.output, retried.output
    with session_factory(engine)() as session:
        item = session.scalar(select(FeedbackItem).where(FeedbackItem.external_id == "q"))
    assert item is not None and item.text == text


def test_cli_sources_add_list_pull_and_ingest_source(
    settings, engine, tmp_path, monkeypatch
) -> None:
    from jobs import cli

    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "j1", "comment": "Fast refund"}\n{"id": "j2", "comment": "Slow app"}\n')
    monkeypatch.setattr("jobs.cli_sources._settings", lambda: settings)
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    runner = CliRunner()
    added = runner.invoke(
        cli.app,
        [
            "sources",
            "add",
            "jl",
            "--connector",
            "file",
            "-o",
            f"path={path}",
            "--schedule",
            "every 10m",
            "--set",
            "touchpoint=refunds",
        ],
    )
    assert added.exit_code == 0, added.output
    refused = runner.invoke(
        cli.app, ["sources", "add", "jl", "--connector", "file", "-o", f"path={path}"]
    )
    assert refused.exit_code == 1 and "--replace" in refused.output
    bad = runner.invoke(
        cli.app,
        ["sources", "add", "x", "--connector", "zendesk", "-o", "subdomain=nw", "-o", "token=abc"],
    )
    assert bad.exit_code == 2 and "credentials_env" in bad.output
    pulled = runner.invoke(cli.app, ["ingest", "--source", "jl"])
    assert pulled.exit_code == 0 and "2 new" in pulled.output, pulled.output
    listed = runner.invoke(cli.app, ["sources", "list"])
    assert "jl" in listed.output and "every 10m" in listed.output and "succeeded" in listed.output
    assert runner.invoke(cli.app, ["sources", "pull", "nope"]).exit_code == 1
    with session_factory(engine)() as session:
        assert {i.touchpoint for i in session.scalars(select(FeedbackItem))} == {"refunds"}


def test_cli_options_are_read_as_the_option_type(settings, engine, monkeypatch) -> None:
    from jobs import cli

    monkeypatch.setattr("jobs.cli_sources._settings", lambda: settings)
    runner = CliRunner()
    added = runner.invoke(
        cli.app,
        ["sources", "add", "ios", "--connector", "app_store", "-o", "app_id=474495017",
         "-o", "max_pages=3", "-o", "country=gb"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    api = runner.invoke(
        cli.app,
        ["sources", "add", "api", "--connector", "http_json", "-o", "url=https://example.org/v1",
         "-o", "headers.X-Tenant=42", "-o", "params.limit=50", "-o", "auth.type=header",
         "-o", "auth.header=X-Api-Key", "-o", "pagination.page_size=100", "--credential",
         "token=API_TOKEN", "--map", "external_id=1"],
    )  # fmt: skip
    assert api.exit_code == 0, api.output
    survey = runner.invoke(
        cli.app,
        ["sources", "add", "nps", "--connector", "qualtrics", "-o", "path=/data/2024",
         "-o", "text_questions=Q2,Q5", "-o", "include_previews=true", "-o", "csat_question=4"],
    )  # fmt: skip
    assert survey.exit_code == 0, survey.output
    with session_factory(engine)() as session:
        stored = {s.name: s.config for s in session.scalars(select(Source))}
    assert stored["ios"]["options"] == {"app_id": "474495017", "max_pages": 3, "country": "gb"}
    assert stored["api"]["options"]["headers"] == {"X-Tenant": "42"}  # a header is text
    assert stored["api"]["options"]["params"] == {"limit": 50}  # a parameter is any JSON
    assert stored["api"]["options"]["auth"] == {"type": "header", "header": "X-Api-Key"}
    assert stored["api"]["options"]["pagination"] == {"page_size": 100}
    assert stored["api"]["mapping"]["columns"] == {"external_id": "1"}  # a column name is text
    assert stored["nps"]["options"] == {
        "path": "/data/2024",
        "text_questions": ["Q2", "Q5"],
        "include_previews": True,
        "csat_question": "4",
    }


def test_cli_an_unknown_option_lists_the_valid_ones(settings, engine, monkeypatch) -> None:
    from jobs import cli

    monkeypatch.setattr("jobs.cli_sources._settings", lambda: settings)
    refused = CliRunner().invoke(
        cli.app, ["sources", "add", "ios", "--connector", "app_store", "-o", "appid=474495017"]
    )
    assert refused.exit_code == 2
    output = " ".join(refused.output.split())
    assert "unknown option 'appid' (did you mean 'app_id'?)" in output, output
    assert "app_store options: app_id, country, base_url, max_pages" in output, output
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 0


def _doc_sections(text: str) -> list[tuple[str, str]]:
    """(heading, its text with its subsections) for each heading of a Markdown document."""
    lines = text.splitlines()
    heads = [
        (i, len(line) - len(line.lstrip("#")), line)
        for i, line in enumerate(lines)
        if line.startswith("#")
    ]
    sections = []
    for n, (start, level, heading) in enumerate(heads):
        end = next((i for i, lv, _ in heads[n + 1 :] if lv <= level), len(lines))
        sections.append((heading, "\n".join(lines[start:end])))
    return sections


def _option_names(model) -> set[str]:
    from pydantic import BaseModel

    from feedback.sources.config import _members

    names = set(model.model_fields)
    for info in model.model_fields.values():
        for member in _members(info.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                names |= _option_names(member)
    return names


def test_every_connector_option_is_documented() -> None:
    """Each option a connector accepts (nested ones too) is named in docs/sources.md, in a section
    about that connector or about the connector whose options it extends."""
    import re
    from pathlib import Path

    from feedback.sources.connectors import CONNECTORS

    sections = _doc_sections((Path(__file__).parent.parent / "docs" / "sources.md").read_text())
    missing = {}
    for kind, connector in CONNECTORS.items():
        kinds = {kind} | {
            other
            for other, c in CONNECTORS.items()
            if c.Options is not connector.Options and c.Options in connector.Options.__mro__
        }
        text = "\n".join(
            body for heading, body in sections if any(f"`{k}`" in heading for k in kinds)
        )
        assert text, f"docs/sources.md has no section about {kind}"
        undocumented = sorted(
            name
            for name in _option_names(connector.Options)
            if not re.search(rf"`{name}[` =]|^{name} =|[{{,] {name} =", text, re.MULTILINE)
        )
        if undocumented:
            missing[kind] = undocumented
    assert missing == {}


def test_redact_all_applies_new_patterns_to_stored_items(settings, engine, monkeypatch) -> None:
    from feedback.ingest.service import get_or_create_source
    from jobs import cli

    with session_factory(engine)() as session:
        source = get_or_create_source(session, name="old", connector="push")
        for n, text in enumerate(
            ["Ask EMP-12345 about the rota", "Mail me: a.b@example.com", "Nothing here"]
        ):
            session.add(
                FeedbackItem(
                    source_id=source.id,
                    external_id=str(n),
                    content_hash="x",
                    audience="employee",
                    text=text,
                    created_at=source.created_at,
                    extra={"note": text},
                )
            )
        session.commit()
    with_rule = settings.model_copy(
        update={
            "privacy": settings.privacy.model_copy(
                update={"extra_patterns": [{"name": "employee_id", "pattern": r"EMP-\d{5}"}]}
            )
        }
    )
    monkeypatch.setattr("jobs.cli_sources._settings", lambda: with_rule)
    result = CliRunner().invoke(cli.app, ["redact", "--all", "--batch-size", "2"])
    assert result.exit_code == 0 and "3 items scanned, 2 changed" in result.output, result.output
    with session_factory(engine)() as session:
        texts = {i.external_id: i for i in session.scalars(select(FeedbackItem))}
    assert (
        texts["0"].text == "Ask [EMPLOYEE_ID] about the rota"
        and texts["0"].extra["note"] == texts["0"].text
    )
    assert texts["1"].text == "Mail me: [EMAIL]" and texts["1"].extra["redacted"] == {"EMAIL": 1}
    again = CliRunner().invoke(cli.app, ["redact", "--all"])
    assert "0 changed" in again.output  # idempotent


# -- pure helpers ----------------------------------------------------------------------------------
@given(
    attempt=st.integers(1, 40),
    base=st.floats(0, 10),
    cap=st.floats(0, 100),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_within_the_capped_exponential_ceiling(attempt, base, cap, seed) -> None:
    backoff = Backoff(base_seconds=base, cap_seconds=cap)
    delay = backoff.delay(attempt, rng=random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1)) + 1e-9


@given(st.floats(0, 1e6, allow_nan=False))
def test_retry_after_is_obeyed_but_capped(seconds) -> None:
    assert Backoff(max_retry_after_seconds=300).delay(1, retry_after=seconds) == min(seconds, 300)


def test_retry_gives_up_after_the_attempts_and_reraises() -> None:
    calls, waits = [], []

    def failing() -> None:
        calls.append(1)
        raise TransientError("503", retry_after=2)

    with pytest.raises(TransientError):
        retry(failing, backoff=Backoff(attempts=3), sleep=waits.append)
    assert len(calls) == 3 and waits == [2, 2]


def test_retry_after_header_forms() -> None:
    from datetime import UTC, datetime

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 01 Sep 2026 12:00:30 GMT", now=now) == 30.0


def test_jsonpath_subset() -> None:
    doc = {"data": {"items": [{"id": 1, "a b": {"x": [10, 20]}}, {"id": 2, "a b": {"x": [30]}}]}}
    assert compile_path("$.data.items[*].id").find(doc) == [1, 2]
    assert compile_path("data.items[0]['a b'].x[-1]").first(doc) == 20
    assert compile_path("$.data.items[5].id").first(doc) is None
    assert compile_path("$").first(doc) is doc
    assert compile_path('$.data.items.*["id"]').find(doc) == [1, 2]
    with pytest.raises(JsonPathError, match="supported are"):
        compile_path("$..id")


def test_bulk_insert_stores_exactly_what_sqlalchemy_would(engine) -> None:
    """The ingest hot path writes datetimes and JSON itself; they must read back unchanged."""
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import insert

    from feedback.db import UTCDateTime
    from feedback.ingest.service import _sqlite_utc, bulk_insert

    process = UTCDateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
    for value in (
        datetime(2026, 9, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 9, 1, 23, 59, 59, 999999),
        datetime(2026, 3, 29, 1, 30, 5, 7, tzinfo=timezone(timedelta(hours=-6))),
        None,
    ):
        if engine.dialect.name == "sqlite":  # SQLite's own shortcut; PostgreSQL gets datetimes (COPY)
            assert _sqlite_utc(value) == process(value)
    created = datetime(2026, 9, 1, 8, 30, 15, 250, tzinfo=timezone(timedelta(hours=2)))
    with session_factory(engine)() as session:
        source = Source(name="s", connector="push", audience="customer", config={})
        session.add(source)
        session.flush()
        row = {
            "source_id": source.id,
            "external_id": "x",
            "content_hash": "h",
            "audience": "customer",
            "text": "t",
            "created_at": created,
            "ingested_at": created,
            "updated_at": created,
            "extra": {"a": [1]},
        }
        bulk_insert(
            session, FeedbackItem.__table__, [row, {**row, "external_id": "y", "extra": {}}]
        )
        session.execute(
            insert(FeedbackItem.__table__), [{**row, "external_id": "z"}]
        )  # SQLAlchemy's own way
        session.commit()
        stored = {i.external_id: i for i in session.scalars(select(FeedbackItem))}
    assert stored["x"].created_at == stored["z"].created_at == created
    assert stored["x"].extra == {"a": [1]} and stored["y"].extra == {}


def _file_source(engine, tmp_path, name: str = "shop") -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text("id,comment\n1,Lovely staff\n2,Queue too long\n")
    config = SourceConfig(name=name, connector="file", options={"path": str(path)})
    with session_factory(engine)() as session:
        save_source(session, config, origin="api")
        session.commit()


def test_a_second_pull_of_the_same_source_is_refused_while_one_runs(
    settings, engine, tmp_path
) -> None:
    from feedback import leases
    from feedback.models import IngestionRun

    _file_source(engine, tmp_path)
    # another live process (here: another host) is pulling the source
    assert leases.acquire_or_renew(engine, name="pull:shop", holder="elsewhere:1:x", seconds=60)
    busy = pull_source(engine, "shop", settings=settings)
    assert busy.status == "busy" and "being pulled now by elsewhere:1:x" in (busy.error or "")
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(IngestionRun)) == 0
    leases.release(engine, name="pull:shop", holder="elsewhere:1:x")
    done = pull_source(engine, "shop", settings=settings)
    assert done.status == "succeeded" and done.stats.new == 2
    assert leases.holder_of(engine, "pull:shop") is None  # released at the end of the pull


def test_a_killed_pulls_lease_on_this_host_does_not_block_the_next(
    settings, engine, tmp_path
) -> None:
    import socket
    import subprocess
    import sys

    from feedback import leases

    _file_source(engine, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    holder = f"{socket.gethostname()}:{dead}:gone"
    assert leases.acquire_or_renew(engine, name="pull:shop", holder=holder, seconds=300)
    result = pull_source(engine, "shop", settings=settings)
    assert result.status == "succeeded" and result.stats.new == 2


def test_health_shows_the_scheduler_lease_not_a_pull_lease(settings, engine, light_client) -> None:
    from feedback import leases

    leases.acquire_or_renew(engine, name="pull:shop", holder="elsewhere:1:x", seconds=60)
    body = light_client.get("/health").json()
    assert body["scheduler"]["running"] is False
