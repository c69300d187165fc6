"""`voc backfill`: ingest and tag large files in one pass, on a Ray cluster or in this process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()


def backfill(
    pattern: Annotated[str, typer.Argument(metavar="FILE_OR_GLOB",
                                           help="a file, a folder, or a quoted glob such as 'exports/*.csv'")],
    engine: Annotated[str, typer.Option(
        help="ray (Ray Data: a cluster, or a Ray started on this machine) or local (this process)")] = "local",
    address: Annotated[str | None, typer.Option(
        help="Ray cluster of which this machine is a node: auto or HEAD:6379 "
             "(default: $RAY_ADDRESS, else a Ray started for the run)")] = None,
    source: Annotated[str | None, typer.Option(help="source name (default: file:<name> per file)")] = None,
    audience: Annotated[str, typer.Option(help="customer or employee, for rows without one")] = "customer",
    map_: Annotated[list[str] | None, typer.Option("--map", help="field=column, e.g. text=comment")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="field=value for every row")] = None,
    mapping: Annotated[Path | None, typer.Option(help="mapping file (TOML or JSON)")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv|tsv|json|jsonl|xlsx")] = None,
    encoding: Annotated[str | None, typer.Option(help="file encoding (default: detected, as voc ingest)")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="items read, prepared and tagged together (default: models.batch_size, at least 256)")] = None,
    actors: Annotated[int | None, typer.Option(
        help="Ray: tagging actors, one loaded model each (default: one per GPU, else one per CPU)")] = None,
) -> None:
    """Ingest and tag large files in one pass: the rows `voc ingest` + `voc tag` store, resumable
    (a rerun skips what is stored with tags), on Ray Data with --engine ray."""
    from rich.markup import escape

    from feedback.config import get_settings
    from feedback.db import get_engine
    from feedback.ingest.mapping import FieldMapping
    from feedback.ingest.readers import IngestError
    from jobs.backfill import BackfillError, expand_files, run_backfill, summary
    from jobs.cli import _progress

    settings = get_settings()
    database = get_engine(settings.database_url)
    started = time.perf_counter()
    try:
        files = expand_files(pattern)
        base = FieldMapping.from_file(mapping) if mapping else None
        field_mapping = FieldMapping.from_options(map_ or [], set_ or [], base=base)
        with _progress() as progress:
            task = progress.add_task(f"backfilling {len(files)} file(s) on {engine}", total=None)
            result = run_backfill(database, files, settings=settings, runner=engine, address=address,
                                  source_name=source, audience=audience, mapping=field_mapping, fmt=fmt,
                                  encoding=encoding, batch_size=batch_size, actors=actors,
                                  on_batch=lambda store: progress.update(
                                      task, completed=sum(s.seen for s in store.stats.values())))
    except (BackfillError, IngestError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - started
    for why in result.failed.values():
        console.print(f"[red]error:[/red] {escape(why)}", soft_wrap=True)
    for reason in result.total.dead_reasons:
        console.print(f"[yellow]dead letter:[/yellow] {escape(reason)}", soft_wrap=True)
    runs = ", ".join(str(file.run_id) for file in result.files)
    out.print(f"{len(result.files)} file(s) on {engine}: {summary(result, elapsed)} (runs {runs or '-'})",
              soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)
