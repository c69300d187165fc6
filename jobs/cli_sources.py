"""`voc sources ...`, `voc deadletters retry`, `voc redact --all`: registered in `jobs.cli`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from feedback.config import Settings, get_settings
from feedback.db import get_engine, session_factory

sources_app = typer.Typer(
    help="Declared sources: list, add, pull now, see runs.", no_args_is_help=True
)
console = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    return get_settings()


# -- voc sources ----------------------------------------------------------------------------------
@sources_app.command("list")
def sources_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every source (config file and API) with its schedule and last run."""
    from feedback.sources import repository
    from feedback.sources.service import sync_declared_sources

    settings = _settings()
    with session_factory(get_engine(settings.database_url))() as session:
        errors = sync_declared_sources(session, settings)
        session.commit()
        sources = repository.list_sources(session)
        runs = repository.last_runs(session, [s.id for s in sources])
        rows = []
        for s in sources:
            run = runs.get(s.id)
            rows.append(
                {
                    "name": s.name,
                    "connector": s.connector,
                    "audience": s.audience,
                    "schedule": s.schedule,
                    "enabled": s.enabled,
                    "origin": (s.config or {}).get("origin", "api"),
                    "last_run": None
                    if run is None
                    else {
                        "id": run.id,
                        "status": run.status,
                        "started_at": run.started_at.isoformat(),
                        "new": run.items_new,
                        "updated": run.items_updated,
                        "unchanged": run.items_unchanged,
                        "dead": run.items_dead,
                        "error": run.error,
                    },
                }
            )
    for error in errors:
        console.print(f"[red]config:[/red] {error}")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for row in rows:
        run = row["last_run"]
        state = (
            "never pulled"
            if run is None
            else (
                f"run {run['id']} {run['status']}: {run['new']} new, {run['updated']} updated, "
                f"{run['unchanged']} unchanged, {run['dead']} dead"
                + (f" ({run['error']})" if run["error"] else "")
            )
        )
        flag = "" if row["enabled"] else " [disabled]"
        out.print(
            f"{row['name']:<24} {row['connector']:<13} {row['schedule'] or 'on demand':<16} "
            f"{row['origin']:<6} {state}{flag}"
        )
    out.print(f"{len(rows)} source(s)")


def _json_or_text(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(
    items: list[str] | None, what: str, value: Callable[[str, str], Any] = _json_or_text
) -> dict[str, Any]:
    """`key=value` pairs; dotted keys nest (`pagination.type=cursor`); `value(key, text)` reads
    each value."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{what} {item!r} must look like key=value")
        target = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(target.setdefault(part, {}), dict):
                raise typer.BadParameter(f"{what} {item!r}: {part} is already set to a value")
            target = target[part]
        target[parts[-1]] = value(key.strip(), text.strip())
    return result


def _text(key: str, text: str) -> str:
    return text


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="source name")],
    connector: Annotated[
        str,
        typer.Option(
            help="file, qualtrics, surveymonkey, pulse, google_play, app_store, "
            "review_api, zendesk, http_json, push, webhook"
        ),
    ],
    schedule: Annotated[str | None, typer.Option(help="'every 15m' or a crontab line")] = None,
    audience: Annotated[str, typer.Option()] = "customer",
    channel: Annotated[str | None, typer.Option()] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="key=value, read as the option's type (text stays text; numbers, true/false, "
            "JSON lists and objects; a list also as a,b); dotted keys nest: auth.type=header",
        ),
    ] = None,
    credential: Annotated[
        list[str] | None, typer.Option(help="name=ENV_VAR, e.g. token=ZENDESK_TOKEN")
    ] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="field=column")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="field=value for every item")
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="declare it without scheduling it")
    ] = False,
    replace: Annotated[bool, typer.Option(help="replace a source of that name")] = False,
) -> None:
    """Declare a source in the database (the config file's [[sources]] are declared by the file)."""
    from pydantic import ValidationError
    from rich.markup import escape

    from feedback.sources import repository
    from feedback.sources.config import (
        MappingConfig,
        SourceConfig,
        declaration_errors,
        option_value,
    )
    from feedback.sources.service import save_source

    settings = _settings()
    try:
        config = SourceConfig(
            name=name,
            connector=connector,
            schedule=schedule,
            audience=audience,  # type: ignore[arg-type]  # validated by pydantic
            channel=channel,
            enabled=not disabled,
            options=_pairs(
                option, "--option", lambda key, text: option_value(connector, key, text)
            ),
            credentials_env=_pairs(credential, "--credential", _text),
            mapping=MappingConfig(
                columns=_pairs(map_, "--map", _text), defaults=_pairs(set_, "--set")
            ),
        )
    except ValidationError as exc:
        console.print(f"[red]error:[/red] {escape(declaration_errors(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    with session_factory(get_engine(settings.database_url))() as session:
        existing = repository.get_source(session, name)
        if existing is not None and not replace:
            console.print(
                f"[red]error:[/red] a source named {name!r} exists; pass --replace to change it"
            )
            raise typer.Exit(1)
        if existing is not None and (existing.config or {}).get("origin") == "config":
            console.print(
                f"[red]error:[/red] {name!r} is declared in the config file; change it there"
            )
            raise typer.Exit(1)
        save_source(session, config, origin="api")
        session.commit()
    out.print(f"source {name} ({connector}) saved; schedule: {schedule or 'on demand'}")


@sources_app.command("pull")
def sources_pull(
    name: Annotated[str | None, typer.Argument(help="source name")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every enabled pulled source")] = False,
) -> None:
    """Pull now; each source's run is recorded like a scheduled one."""
    from feedback.sources.service import pull_all

    if not name and not all_:
        console.print("give a source NAME or --all")
        raise typer.Exit(2)
    settings = _settings()
    results = pull_all(
        get_engine(settings.database_url), settings=settings, names=None if all_ else [name or ""]
    )
    if name and not results:
        console.print(f"[red]error:[/red] no source named {name!r}; see `voc sources list`")
        raise typer.Exit(1)
    failed = False
    for result in results:
        s = result.stats
        line = (
            f"{result.source}: {result.status} in {result.seconds:.1f}s (run {result.run_id}): "
            f"{s.seen} read, "
            f"{s.new} new, {s.updated} updated, {s.unchanged} unchanged, {s.dead} dead-lettered"
        )
        out.print(line + (f"; error: {result.error}" if result.error else ""))
        for reason in s.dead_reasons:
            console.print(f"[yellow]dead letter:[/yellow] {reason}")
        failed = failed or result.status != "succeeded"
    if failed:
        raise typer.Exit(1)


@sources_app.command("runs")
def sources_runs(
    name: Annotated[str, typer.Argument()], limit: Annotated[int, typer.Option()] = 10
) -> None:
    """A source's newest runs."""
    from feedback.sources import repository

    settings = _settings()
    with session_factory(get_engine(settings.database_url))() as session:
        source = repository.get_source(session, name)
        if source is None:
            console.print(f"[red]error:[/red] no source named {name!r}")
            raise typer.Exit(1)
        for run in repository.list_runs(session, source.id, limit=limit):
            ended = run.finished_at.isoformat(timespec="seconds") if run.finished_at else "-"
            out.print(
                f"#{run.id} {run.status:<11} {run.started_at.isoformat(timespec='seconds')} .. "
                f"{ended}  "
                f"new {run.items_new}, updated {run.items_updated}, unchanged "
                f"{run.items_unchanged}, "
                f"dead {run.items_dead}" + (f"  error: {run.error}" if run.error else "")
            )


def pull_configured(source: str) -> None:
    """`voc ingest --source NAME` without a file: pull that configured source."""
    sources_pull(name=source, all_=False)


# -- voc deadletters retry -------------------------------------------------------------------------
def deadletters_retry(
    letter_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="one dead letter")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every unresolved dead letter")] = False,
    source: Annotated[str | None, typer.Option(help="only this source's")] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="field=column, instead of the source's")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="field=value, instead of the source's")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="mapping file, instead of the source's")
    ] = None,
) -> None:
    """Re-parse dead letters with the source's current mapping; stored ones are marked resolved."""
    from feedback.ingest.mapping import FieldMapping
    from feedback.ingest.readers import IngestError
    from feedback.sources.service import SourceNotFound, retry_dead_letters

    if letter_id is None and not all_ and source is None:
        console.print("give a dead letter ID, --all, or --source NAME")
        raise typer.Exit(2)
    settings = _settings()
    override = None
    try:
        if map_ or set_ or mapping:
            base = FieldMapping.from_file(mapping) if mapping else None
            override = FieldMapping.from_options(map_ or [], set_ or [], base=base)
        outcome = retry_dead_letters(
            get_engine(settings.database_url),
            settings=settings,
            ids=[letter_id] if letter_id is not None else None,
            source_name=source,
            mapping=override,
        )
    except (IngestError, SourceNotFound) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for letter, reason in outcome.failed.items():
        console.print(f"[yellow]#{letter} still dead:[/yellow] {reason}")
    out.print(
        f"{len(outcome.resolved)} resolved ({outcome.stats.new} new, {outcome.stats.updated} "
        "updated, "
        f"{outcome.stats.unchanged} unchanged items), {len(outcome.failed)} still dead"
    )


# -- voc redact --all ------------------------------------------------------------------------------
def redact(
    all_: Annotated[
        bool, typer.Option("--all", help="every stored item (required: it rewrites text)")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="items per transaction")] = 2000,
) -> None:
    """Apply the redaction rules (built-in and privacy.extra_patterns) again to stored items."""
    from jobs.maintenance import redact_stored

    if not all_:
        console.print(
            "`voc redact --all` rewrites stored text with the current rules; pass --all to do so"
        )
        raise typer.Exit(2)
    settings = _settings()
    started = time.perf_counter()
    result = redact_stored(
        get_engine(settings.database_url), settings=settings, batch_size=batch_size
    )
    elapsed = time.perf_counter() - started
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.hits.items())) or "nothing found"
    out.print(
        f"{result.scanned} items scanned, {result.changed} changed in {elapsed:.1f}s ({counts})"
    )


def register(app: typer.Typer, deadletters: typer.Typer) -> None:
    """Add these commands to the `voc` app."""
    app.add_typer(sources_app, name="sources")
    deadletters.command("retry")(deadletters_retry)
    app.command("redact")(redact)
