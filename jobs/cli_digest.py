"""`voc digest`: make (and store, and optionally send) one week's digest from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def digest(
    week: Annotated[
        str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: the last complete week)")
    ] = None,
    audience: Annotated[str, typer.Option(help="customer, employee or all")] = "customer",
    send: Annotated[
        bool, typer.Option("--send/--no-send", help="send to the configured webhook and email")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="what to print: md, html, json or none")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option(help="write the printed format to this file instead")
    ] = None,
) -> None:
    """Make the weekly digest of an audience, store it (served at /v1/digests) and print it."""
    from feedback.config import get_settings
    from feedback.db import get_engine, session_factory
    from feedback.insights import repository as repo
    from jobs.digests import AUDIENCES, run_digests

    if audience not in (*AUDIENCES, "all"):
        console.print(
            f"[red]error:[/red] --audience must be customer, employee or all, not {audience!r}"
        )
        raise typer.Exit(2)
    if fmt not in ("md", "html", "json", "none"):
        console.print(f"[red]error:[/red] --format must be md, html, json or none, not {fmt!r}")
        raise typer.Exit(2)
    settings = get_settings()
    audiences = AUDIENCES if audience == "all" else (audience,)
    try:
        detail = run_digests(settings, week=week, audiences=audiences, send=send)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    texts = []
    with session_factory(get_engine(settings.database_url))() as session:
        for name in audiences:
            result = detail[name]
            if "skipped" in result:
                console.print(f"{name} digest {detail['week']}: skipped ({result['skipped']})")
                continue
            console.print(
                f"{name} digest {detail['week']}: {result['alerts']} alert(s), "
                f"{result['movers']} mover(s); stored, served at "
                f"/v1/digests/{detail['week']}?audience={name}"
            )
            for delivery in result.get("delivery", []):
                state = "[green]sent[/green]" if delivery["ok"] else "[red]failed[/red]"
                console.print(f"  {delivery['channel']}: {state} ({delivery['detail']})")
            stored = repo.get_digest(session, audience=name, week=detail["week"])
            if stored is not None and fmt != "none":
                texts.append(
                    {
                        "md": stored.markdown,
                        "html": stored.html,
                        "json": json.dumps(stored.payload, indent=2, ensure_ascii=False),
                    }[fmt]
                )
    if output is not None:
        output.write_text("\n".join(texts), encoding="utf-8")
        console.print(f"written to {output}")
    elif texts:
        typer.echo("\n".join(texts))
    if send and any(not d["ok"] for name in audiences for d in detail[name].get("delivery", [])):
        raise typer.Exit(1)
