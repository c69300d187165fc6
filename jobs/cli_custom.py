"""`voc custom list|fill`: the custom category heads the service tags with (docs/custom.md).

Train one with `voc train custom --csv FILE --name NAME`, add it to `models.custom_heads`, then
`voc custom fill` labels the items tagged before it was added (from their stored embeddings).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from feedback.config import get_settings
from feedback.db import get_engine, session_scope

app = typer.Typer(help="Custom categories: list the configured heads, label items tagged before one was added.",
                  no_args_is_help=True)
console = Console(stderr=True)
out = Console()


@app.command("list")
def list_heads(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """The configured custom heads (models.custom_heads): labels, version, the live version's copy."""
    from feedback.corrections.service import resolve_custom_heads

    settings = get_settings()
    with session_scope(get_engine(settings.database_url)) as session:
        heads, missing = resolve_custom_heads(settings, session)
    if as_json:
        for name, meta in heads.items():
            out.print(json.dumps({"name": name, "version": meta.get("version"), "labels": meta["labels"],
                                  "multi_label": meta.get("multi_label", False)}))
    else:
        table = Table("name", "version", "labels", "multi-label")
        for name, meta in heads.items():
            table.add_row(name, str(meta.get("version")), ", ".join(meta["labels"]),
                          "yes" if meta.get("multi_label") else "no")
        out.print(table)
    for name in missing:
        console.print(f"[yellow]warning:[/yellow] {name!r} is configured but not trained (or its name cannot be "
                      f"a kind): voc train custom --csv FILE --name {name}")
    if not settings.models.custom_heads:
        console.print("no custom heads configured (models.custom_heads; docs/custom.md)")


@app.command("fill")
def fill(batch_size: Annotated[int, typer.Option(min=1, help="tags per batch")] = 1000) -> None:
    """Label every tagged item with the configured custom heads where its tag lacks their labels
    (a head added or retrained since it was tagged), from the stored embeddings."""
    from feedback.tagging import fill_custom
    from jobs.tasks import load_service_tagger

    settings = get_settings()
    if not settings.models.custom_heads:
        console.print("[red]error:[/red] no custom heads configured (models.custom_heads; docs/custom.md)")
        raise typer.Exit(2)
    tagger = load_service_tagger(settings)
    done = fill_custom(get_engine(settings.database_url), tagger, batch_size=batch_size)
    names = ", ".join(f"{c.name} ({c.version})" for c in tagger.custom_heads)
    out.print(f"labelled {done} items with {names}")
