"""`voc keys create|list|revoke`: API keys (hashed at rest; the full key is shown once)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from feedback.apikeys import SCOPES, ApiKeyError, create_key, list_keys, revoke_key
from feedback.config import Settings, get_settings
from feedback.db import get_engine, session_scope

app = typer.Typer(help="API keys: create, list, revoke. Scopes: cx (customer feedback), hr (employee "
                       "feedback), bi (the aggregates export only), admin (everything).",
                  no_args_is_help=True)
console = Console(stderr=True)
out = Console()


def _engine():  # noqa: ANN202 - an Engine
    return get_engine(get_settings().database_url)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="who or what uses the key, e.g. 'powerbi-nightly'")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"repeat for several: {', '.join(SCOPES)}")],
    as_json: Annotated[bool, typer.Option("--json", help="print the key as JSON")] = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    try:
        with session_scope(_engine()) as session:
            key = create_key(session, name=name, scopes=scope)
    except ApiKeyError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps({"id": key.id, "name": key.name, "prefix": key.prefix,
                                   "scopes": list(key.scopes), "key": key.secret_key}))
        return
    out.print(key.secret_key, soft_wrap=True, highlight=False)
    console.print(f"key {key.prefix} ({', '.join(key.scopes)}) for {key.name}: store it now, it is not "
                  "shown again. Send it as 'Authorization: Bearer <key>'.")


@app.command("list")
def list_command(
    all_keys: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List keys: prefix, name, scopes, created, last used, revoked (never the secret)."""
    with session_scope(_engine()) as session:
        rows: list[dict[str, Any]] = [{"id": k.id, "prefix": k.prefix, "name": k.name, "scopes": list(k.scopes or []),
                 "created_at": k.created_at.isoformat(),
                 "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                 "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}
                for k in list_keys(session, include_revoked=all_keys)]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "prefix", "name", "scopes", "created", "last used", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), r["prefix"], r["name"], ",".join(r["scopes"]), r["created_at"][:16],
                      (r["last_used_at"] or "-")[:16], (r["revoked_at"] or "-")[:16])
    out.print(table)


@app.command("revoke")
def revoke(ref: Annotated[str, typer.Argument(help="the key's prefix (or id, or the full key)")]) -> None:
    """Revoke a key; it stops working on the next request."""
    try:
        with session_scope(_engine()) as session:
            key = revoke_key(session, ref)
            prefix, name = key.prefix, key.name
    except ApiKeyError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    out.print(f"revoked key {prefix} ({name})")


def demo_key_header(settings: Settings) -> str:
    """A new cx+hr key for the demo's example curl lines, or '' when keys are off."""
    if not settings.api.auth_enabled:
        return ""
    with session_scope(get_engine(settings.database_url)) as session:
        key = create_key(session, name="voc demo examples", scopes=["cx", "hr"])
    return key.secret_key
