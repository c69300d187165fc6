"""`voc`: the command line of the service (init, ingest, tag, serve, scheduler, demo, ...)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from feedback.config import Settings, get_settings
from feedback.db import get_engine

app = typer.Typer(help="Voice of the Customer / Employee feedback analysis service.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    return get_settings()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True,
                    disable=not console.is_terminal)


def _check_sources(settings: Settings) -> None:
    """Refuse to go on with invalid [[sources]] in the config file, each named with its fix."""
    from rich.markup import escape

    from feedback.sources.service import SourceSettingsError, check_declared_sources

    try:
        check_declared_sources(settings)
    except SourceSettingsError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def init() -> None:
    """Check the declared sources, then create or migrate the database to the newest schema."""
    from feedback.migrate import upgrade

    settings = _settings()
    _check_sources(settings)
    upgrade(settings.database_url)
    _warn_stored_sources(settings)
    out.print(f"database ready: {settings.database_url}")


def _warn_stored_sources(settings: Settings) -> None:
    """Name the sources declared through the API that no longer pass the checks (their pulls
    would fail); they are changed through the API or `voc sources add --replace`, so not fatal."""
    from rich.markup import escape

    from feedback.db import session_factory
    from feedback.sources.service import invalid_stored_sources

    engine = get_engine(settings.database_url)
    with session_factory(engine)() as session:
        for error in invalid_stored_sources(session):
            console.print(f"[yellow]warning:[/yellow] {escape(error)}", soft_wrap=True)


@app.command()
def ingest(
    file: Annotated[Path | None, typer.Argument(help="CSV, TSV, JSON, JSONL or XLSX file")] = None,
    source: Annotated[str | None, typer.Option(help="source name (default: file:<name>)")] = None,
    audience: Annotated[str, typer.Option(help="customer or employee, for rows without one")] = "customer",
    map_: Annotated[list[str] | None, typer.Option("--map", help="field=column, e.g. text=comment")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="field=value for every row")] = None,
    mapping: Annotated[Path | None, typer.Option(help="mapping file (TOML or JSON)")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv|tsv|json|jsonl|xlsx")] = None,
    encoding: Annotated[str | None, typer.Option(help="file encoding (default UTF-8)")] = None,
) -> None:
    """Ingest a file (no set-up when columns are named like the item fields)."""
    from feedback.ingest.files import ingest_file
    from feedback.ingest.mapping import FieldMapping
    from feedback.ingest.readers import IngestError

    settings = _settings()
    engine = get_engine(settings.database_url)
    if file is None:
        if source:  # a configured source: pull it like the scheduler would
            from jobs.cli_sources import pull_configured

            pull_configured(source)
            return
        console.print("give a FILE, or --source NAME to pull a configured source (see `voc sources list`)")
        raise typer.Exit(2)
    try:
        base = FieldMapping.from_file(mapping) if mapping else None
        field_mapping = FieldMapping.from_options(map_ or [], set_ or [], base=base)
        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task(f"ingesting {file.name}", total=None)
            stats, run_id = ingest_file(engine, file, settings=settings, source_name=source,
                                        audience=audience, mapping=field_mapping, fmt=fmt,
                                        encoding=encoding,
                                        progress=lambda s: progress.update(task, completed=s.seen))
    except IngestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - started
    for reason in stats.dead_reasons:
        console.print(f"[yellow]dead letter:[/yellow] {reason}")
    out.print(f"{file.name}: {stats.summary()} in {elapsed:.1f}s (run {run_id})")


@app.command()
def tag(
    batch_size: Annotated[int | None, typer.Option(help="items per batch")] = None,
    limit: Annotated[int | None, typer.Option(help="tag at most this many")] = None,
) -> None:
    """Tag untagged items (sentiment, emotions, needs, touchpoint) in batches."""
    from jobs.tasks import load_service_tagger, tag_pending

    settings = _settings()
    engine = get_engine(settings.database_url)
    started = time.perf_counter()
    tagger = load_service_tagger(settings)
    with _progress() as progress:
        task = progress.add_task("tagging", total=None)
        result = tag_pending(engine, tagger, batch_size=batch_size or max(settings.models.batch_size, 256),
                             limit=limit,
                             progress=lambda done, total: progress.update(task, completed=done, total=total))
    elapsed = time.perf_counter() - started
    rate = result.tagged / elapsed if elapsed else 0.0
    out.print(f"tagged {result.tagged} items in {elapsed:.1f}s ({rate:.0f}/s); {result.remaining} untagged left")


@app.command()
def worker(
    batch_size: Annotated[int | None, typer.Option(help="items per claimed batch")] = None,
    lease_seconds: Annotated[float, typer.Option(help="a dead worker's batch is retaken after this")] = 60.0,
    until_empty: Annotated[bool, typer.Option("--until-empty", help="exit when nothing is left to tag")] = False,
    poll_seconds: Annotated[float, typer.Option(help="pause when nothing is left to tag")] = 5.0,
    name: Annotated[str | None, typer.Option(help="name shown on /health (default host:pid)")] = None,
) -> None:
    """Tag items as one of any number of workers sharing the database (claims, heartbeat on /health).

    SIGTERM finishes the batch in flight and exits; topics and rollups stay with `voc scheduler`.
    """
    import logging

    from jobs.tasks import live_version_reloader, load_service_tagger
    from jobs.worker import Worker, WorkerOptions, stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    engine = get_engine(settings.database_url)
    tagger = load_service_tagger(settings)
    options = WorkerOptions(batch_size=batch_size or max(settings.models.batch_size, 256),
                            lease_seconds=lease_seconds, poll_seconds=poll_seconds,
                            until_empty=until_empty, name=name)
    tagging = Worker(engine, tagger, options, reload=live_version_reloader(settings))
    started = time.perf_counter()
    with stop_on_signals(tagging):
        result = tagging.run()
    elapsed = time.perf_counter() - started
    rate = result.tagged / elapsed if elapsed else 0.0
    per_batch = max(result.batches, 1) / 1000  # seconds to ms per batch
    out.print(f"worker {tagging.name}: tagged {result.tagged} items in {result.batches} batches in "
              f"{elapsed:.1f}s ({rate:.0f}/s); per batch: claim {result.claim_seconds / per_batch:.1f} ms, "
              f"models {result.tag_seconds / per_batch:.1f} ms, store and release "
              f"{result.store_seconds / per_batch:.1f} ms", soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    settings = _settings()
    _check_sources(settings)
    uvicorn.run("api.main:create_app", factory=True, host=host or settings.api.host,
                port=port or settings.api.port, log_level="info")


@app.command()
def scheduler() -> None:
    """Run the job scheduler in the foreground (one active scheduler per database)."""
    from jobs.scheduler import run_scheduler

    settings = _settings()
    _check_sources(settings)
    run_scheduler(settings)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="generator seed")] = 7,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="serve the API afterwards")] = False,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Everything in one go: migrate, ingest and tag the demo data, fit topics, make the weekly
    digests (then serve)."""
    from feedback.demo.generator import write_csv
    from jobs.tasks import demo_csv_path

    settings = _settings()
    init()
    path = demo_csv_path(settings)
    rows = write_csv(path, seed=seed)
    out.print(f"demo data: {rows} rows written to {path}")
    ingest(file=path, source="demo:northwind", audience="customer", map_=None, set_=None,
           mapping=None, fmt=None, encoding=None)
    tag(batch_size=None, limit=None)
    _demo_topics_and_digests(settings)
    if serve_after:
        _print_examples(settings.api.host, port or settings.api.port)
        serve(host=None, port=port)


def _demo_topics_and_digests(settings: Settings) -> None:
    """Fit the topic models and store a digest per demo week and audience, as the jobs would."""
    from feedback.demo.generator import WEEKS
    from jobs.cli_topics import fit as fit_topics
    from jobs.digests import run_digests

    fit_topics(audience=None, max_documents=None)
    alerts = 0
    for week in WEEKS[8:]:  # the first weeks serve as the 8-week baseline
        detail = run_digests(settings, week=week, audiences=("customer", "employee"), send=False)
        alerts += sum(r.get("alerts", 0) for r in detail.values() if isinstance(r, dict))
    out.print(f"digests: weeks {WEEKS[8]}..{WEEKS[-1]} stored for both audiences, {alerts} alert(s); "
              f"read them at /v1/digests")


def _print_examples(host: str, port: int) -> None:
    from jobs.cli_keys import demo_key_header

    base = f"http://{'localhost' if host in ('0.0.0.0', '127.0.0.1') else host}:{port}"
    key = demo_key_header(_settings())  # every endpoint but /health needs an API key
    out.print("\nTry:")
    if key:
        out.print(f"  export VOC_KEY={key}", soft_wrap=True)
        key = "-H \"Authorization: Bearer $VOC_KEY\" "
    for line in (
        f"curl -s '{base}/health'",
        f"curl -s {key}'{base}/v1/trends?by=touchpoint&interval=week' | python3 -m json.tool | head -40",
        f"curl -s {key}'{base}/v1/trends?by=org_unit&audience=employee'",
        f"curl -s {key}'{base}/v1/journey'",
        f"curl -s {key}'{base}/v1/feedback?touchpoint=delivery&limit=3&audience=customer'",
        f"curl -s -X POST {key}'{base}/v1/classify' -H 'content-type: application/json' "
        "-d '{\"texts\": [\"The courier left my sofa in the rain\"]}'",
        f"open {base}/docs",
    ):
        out.print(f"  {line}", soft_wrap=True)
    out.print("")


@app.command()
def classify(
    input: Annotated[Path, typer.Option("--input", help="JSONL: one {id, text} per line")],
    output: Annotated[Path, typer.Option("--output", help="JSONL written with the tags")],
) -> None:
    """Tag a JSONL file without storing anything."""
    from classifiers.classify_file import classify_jsonl
    from jobs.tasks import load_service_tagger

    settings = _settings()
    tagger = load_service_tagger(settings)
    count = classify_jsonl(input, output, tagger=tagger)
    out.print(f"classified {count} lines into {output}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(task: Annotated[str, typer.Argument(help="sentiment|emotions|needs|touchpoint|all|custom")],
          args: Annotated[list[str] | None, typer.Argument(help="extra arguments for the trainer")] = None) -> None:
    """Retrain a shipped head from ../shared/data (reproduces the committed weights), or train a
    custom category head from a labelled CSV: `voc train custom --csv FILE --name NAME`."""
    from classifiers.training.train import main as train_main

    sys.exit(train_main([task, *(args or [])]))


@app.command()
def evaluate(args: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Print every model metric on the named evaluation splits."""
    from classifiers.training.evaluate import main as evaluate_main

    sys.exit(evaluate_main(args or []))


jobs_app = typer.Typer(help="Named jobs: list them, run one now.")
app.add_typer(jobs_app, name="jobs")
from jobs.cli_keys import app as keys_app  # noqa: E402  (voc keys create|list|revoke)

app.add_typer(keys_app, name="keys")
from jobs.cli_db import app as db_app  # noqa: E402  (voc db copy)

app.add_typer(db_app, name="db")
from jobs.cli_users import app as users_app  # noqa: E402  (voc users create|list|password|disable)

app.add_typer(users_app, name="users")
from jobs.cli_topics import topics_app  # noqa: E402  (voc topics fit|list|show|rename|merge|pin)

app.add_typer(topics_app, name="topics")
from jobs.cli_custom import app as custom_app  # noqa: E402  (voc custom list|fill)

app.add_typer(custom_app, name="custom")
from jobs.cli_corrections import corrections_app, models_app  # noqa: E402  (issue 17; lazy imports)

app.add_typer(corrections_app, name="corrections")
app.add_typer(models_app, name="models")
from jobs.cli_corrections import adapt_command  # noqa: E402

app.command("adapt")(adapt_command)


@jobs_app.command("list")
def jobs_list() -> None:
    """List the scheduled jobs and their triggers."""
    from jobs.scheduler import job_specs

    for spec in job_specs(_settings()):
        out.print(f"{spec.name:<24} {spec.trigger}  {spec.description}")


@jobs_app.command("run")
def jobs_run(name: Annotated[str, typer.Argument(help="job name from `voc jobs list`")]) -> None:
    """Run one job now, recorded like a scheduled run."""
    from jobs.scheduler import run_job

    try:
        detail = run_job(_settings(), name)
    except KeyError as exc:
        console.print(f"[red]error:[/red] {exc.args[0]}")
        raise typer.Exit(2) from None
    out.print(f"{name}: {json.dumps(detail, default=str)}")


deadletters = typer.Typer(help="Rows that could not be ingested.")
app.add_typer(deadletters, name="deadletters")


@deadletters.command("list")
def deadletters_list(limit: Annotated[int, typer.Option()] = 50,
                     as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show unresolved dead letters, newest first."""
    from sqlalchemy import select

    from feedback.db import session_factory
    from feedback.models import DeadLetter

    settings = _settings()
    with session_factory(get_engine(settings.database_url))() as session:
        rows = session.scalars(select(DeadLetter).where(DeadLetter.resolved_at.is_(None))
                               .order_by(DeadLetter.id.desc()).limit(limit)).all()
        if as_json:
            out.print_json(json.dumps([_dead_letter_json(d) for d in rows]))
            return
        for d in rows:
            out.print(f"#{d.id} {d.location}: {d.reason}")
        out.print(f"{len(rows)} dead letter(s) shown")


def _dead_letter_json(d: Any) -> dict[str, Any]:
    return {"id": d.id, "source_id": d.source_id, "location": d.location, "reason": d.reason,
            "raw_payload": d.raw_payload, "created_at": d.created_at.isoformat(), "retries": d.retries}


from jobs.cli_digest import digest as digest_command  # noqa: E402  (its imports are lazy)

app.command("digest")(digest_command)
from jobs.cli_backfill import backfill as backfill_command  # noqa: E402  (its imports are lazy)

app.command("backfill")(backfill_command)


from jobs.cli_sources import register as _register_sources  # noqa: E402  (its imports are lazy)

_register_sources(app, deadletters)


if __name__ == "__main__":
    app()
