"""`voc corrections import|list` and `voc models list|promote|rollback`; `voc adapt` is in jobs/adapt.py."""

from __future__ import annotations

import csv
import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from feedback.config import get_settings
from feedback.db import get_engine, session_scope

corrections_app = typer.Typer(help="Corrections of tags by analysts: import a CSV, list.", no_args_is_help=True)
models_app = typer.Typer(help="Tagger versions adapted from corrections: list, promote, roll back.",
                         no_args_is_help=True)
console = Console(stderr=True)
out = Console()

COLUMNS = ("item_id", "source", "external_id", "kind", "label")


def _who(by: str | None) -> str:
    try:
        return by or f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a corrections CSV, or a typer.Exit naming what is missing."""
    if not path.exists():
        console.print(f"[red]error:[/red] {path} not found")
        raise typer.Exit(2)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    missing = [c for c in ("kind", "label") if c not in columns]
    if missing or ("item_id" not in columns and not {"source", "external_id"} <= set(columns)):
        console.print(f"[red]error:[/red] {path} needs columns kind, label and item_id (or source and "
                      f"external_id); found: {', '.join(columns) or 'none'}")
        raise typer.Exit(2)
    return rows


@corrections_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV: item_id (or source and external_id), kind, label; "
                                              "emotion, need and multi-label custom:NAME labels "
                                              "'|'-separated")],
    by: Annotated[str | None, typer.Option(help="who made these labels (default: cli:<user>)")] = None,
) -> None:
    """Store the labels a team already has as corrections: all rows or none (the first bad row is
    named with its line)."""
    from feedback.corrections.service import CorrectionError, CorrectionRequest, add_corrections

    settings = get_settings()
    rows = read_rows(file)
    requests = []
    for row in rows:
        item_id = row.get("item_id") or ""
        requests.append(CorrectionRequest(
            kind=row["kind"], label=row["label"], labels=tuple(p for p in row["label"].split("|") if p)
            if row["kind"] in ("emotion", "need") else None,
            item_id=int(item_id) if item_id.isdigit() else None,
            source=row.get("source") or None, external_id=row.get("external_id") or None))
    stored = 0
    try:
        with session_scope(get_engine(settings.database_url)) as session:
            for start in range(0, len(requests), 1000):
                stored += len(add_corrections(session, requests[start:start + 1000], by=_who(by),
                                              settings=settings))
    except CorrectionError as exc:
        where = f" (line {exc.index + 2 + start})" if exc.index is not None else ""
        console.print(f"[red]error:[/red] {escape(str(exc))}{where}; nothing was imported", soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"imported {stored} corrections from {file}")


@corrections_app.command("list")
def list_command(
    kind: Annotated[str | None, typer.Option(help="only this kind")] = None,
    item_id: Annotated[int | None, typer.Option(help="only this item")] = None,
    withdrawn: Annotated[bool, typer.Option(help="include withdrawn corrections")] = False,
    limit: Annotated[int, typer.Option(help="rows")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Corrections, oldest first, with the model's label, who and when."""
    from feedback.corrections.service import count_active, list_corrections

    with session_scope(get_engine(get_settings().database_url)) as session:
        rows = list_corrections(session, audiences=("customer", "employee"), item_id=item_id, kind=kind,
                                include_withdrawn=withdrawn, limit=limit)
        counts = count_active(session)
        records = [{"id": r.id, "item_id": r.item_id, "audience": a, "kind": r.kind, "label": r.label,
                    "model_label": r.model_label, "held_out": r.held_out, "by": r.created_by,
                    "at": r.created_at.isoformat(),
                    "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
                    "withdrawn_by": r.withdrawn_by} for r, a in rows]
    if as_json:
        for record in records:
            out.print(json.dumps(record), soft_wrap=True, highlight=False)
        return
    table = Table("id", "item", "kind", "label", "model said", "held out", "by", "at", "withdrawn")
    for r in records:
        table.add_row(str(r["id"]), str(r["item_id"]), r["kind"], r["label"] or "(none)", r["model_label"] or "",
                      "yes" if r["held_out"] else "", r["by"], r["at"][:19], (r["withdrawn_at"] or "")[:19])
    out.print(table)
    out.print(f"active: {', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'}")


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every tagger version: the shipped one, adapted ones (live, candidates, rejected), their
    scores on the held-back corrections, and every promotion."""
    from feedback.corrections.versions import describe_versions

    with session_scope(get_engine(get_settings().database_url)) as session:
        described = describe_versions(session)
    if as_json:
        out.print(json.dumps(described, default=str), soft_wrap=True, highlight=False)
        return
    table = Table("version", "status", "base", "trained on", "judged on", "score (champion -> it)", "created")
    for v in described["versions"]:
        table.add_row(("* " if v["live"] else "  ") + v["name"], v["status"], v.get("base") or "",
                      str(v.get("n_train") or ""), str(v.get("n_held_out") or ""), _score_line(v.get("scores") or {}),
                      str(v.get("created_at") or "")[:19])
    out.print(table)
    for p in described["promotions"][-10:]:
        out.print(f"{str(p['at'])[:19]} {p['action']} {p['previous'] or 'shipped'} -> {p['version'] or 'shipped'} "
                  f"by {p['by']}: {p['reason']}", highlight=False)


def _score_line(scores: dict) -> str:
    parts = []
    for kind, s in sorted(scores.get("kinds", {}).items()):
        parts.append(f"{kind} {s['champion']:.3f} -> {s['challenger']:.3f} "
                     f"(gain CI {s['ci_low']:+.3f}..{s['ci_high']:+.3f})")
    return "; ".join(parts)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="a version from `voc models list`")],
    by: Annotated[str | None, typer.Option(help="who (default: cli:<user>)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the record")] = "promoted by hand",
) -> None:
    """Make a version live (also a rejected one, by hand); items are re-tagged in the background."""
    from feedback.corrections.versions import VersionError, promote

    try:
        with session_scope(get_engine(get_settings().database_url)) as session:
            queued = promote(session, name, by=_who(by), reason=reason)
    except VersionError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(f"{name} is live; {queued} items queued for re-tagging (newest first, by `voc worker` / the tag job)")


@models_app.command("rollback")
def models_rollback(
    by: Annotated[str | None, typer.Option(help="who (default: cli:<user>)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the record")] = "rolled back by hand",
) -> None:
    """Go back to the version that was live before the current one (the shipped model at the end)."""
    from feedback.corrections.versions import VersionError, rollback

    try:
        with session_scope(get_engine(get_settings().database_url)) as session:
            name, queued = rollback(session, by=_who(by), reason=reason)
    except VersionError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(f"{name or 'the shipped model'} is live again; {queued} items queued for re-tagging")


def adapt_command(
    no_promote: Annotated[bool, typer.Option("--no-promote", help="judge and keep the challenger, never make "
                                                                  "it live")] = False,
    by: Annotated[str | None, typer.Option(help="who runs it (default: cli:<user>)")] = None,
) -> None:
    """Learn from corrections: train a challenger from the live model on the corrections outside
    the held-back slice, promote it only if it beats the live model on that slice by more than
    the noise (paired bootstrap); otherwise keep it as a rejected candidate with its numbers."""
    from jobs.adapt import run_adapt

    result = run_adapt(get_settings(), by=_who(by), auto_promote=not no_promote)
    if "skipped" in result:
        out.print(f"nothing to learn: {result['skipped']}")
        return
    out.print(f"{result['version']}: {result['status']} ({result['reason']}); trained on {result['trained_on']}, "
              f"judged on {result['held_out']} held-back corrections in {result['seconds']} s"
              + (f"; {result['retag_queued']} items queued for re-tagging" if result["retag_queued"] else ""),
              highlight=False)
