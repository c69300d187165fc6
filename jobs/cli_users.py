"""`voc users create|list|password|disable`: people who sign in to the web app with a password.

Passwords are stored only as Argon2id hashes. A user's scopes mean what an API key's do (cx, hr,
admin; bi opens no pages). The password is read from a prompt (never echoed) or, for scripts,
from the environment variable named by --password-env.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console

from feedback.accounts import AccountError, create_user, disable_user, list_users, set_password
from feedback.apikeys import SCOPES, ApiKeyError
from feedback.config import get_settings
from feedback.db import get_engine, session_scope

app = typer.Typer(help="Web app users (password sign-in): create, list, change a password, disable.",
                  no_args_is_help=True)
console = Console(stderr=True)
out = Console()


def _engine():  # noqa: ANN202 - an Engine
    return get_engine(get_settings().database_url)


def _password(env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            console.print(f"[red]error:[/red] environment variable {env} is empty or not set")
            raise typer.Exit(2)
        return value
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="the name to sign in with")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"repeat for several: {', '.join(SCOPES)}")],
    password_env: Annotated[str | None, typer.Option(help="read the password from this environment "
                                                          "variable instead of a prompt")] = None,
) -> None:
    """Create a user who signs in at /signin with a password (at least 12 characters)."""
    password = _password(password_env)
    try:
        with session_scope(_engine()) as session:
            user = create_user(session, username=username, password=password, scopes=scope)
            name, scopes = user.username, list(user.scopes)
    except (AccountError, ApiKeyError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    out.print(f"user {name} created ({', '.join(scopes)}); sign in at /signin")


@app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Users: name, scopes, created, last sign-in, disabled (never the hash)."""
    with session_scope(_engine()) as session:
        rows = [{"username": u.username, "scopes": list(u.scopes or []), "created_at": u.created_at.isoformat(),
                 "last_sign_in_at": u.last_sign_in_at.isoformat() if u.last_sign_in_at else None,
                 "disabled_at": u.disabled_at.isoformat() if u.disabled_at else None} for u in list_users(session)]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for row in rows:
        state = f"disabled {row['disabled_at'][:10]}" if row["disabled_at"] else "active"
        out.print(f"{row['username']}  {','.join(row['scopes'])}  {state}")
    out.print(f"{len(rows)} user(s)")


@app.command("password")
def password_command(
    username: Annotated[str, typer.Argument()],
    password_env: Annotated[str | None, typer.Option(help="read the new password from this variable")] = None,
) -> None:
    """Set a new password; the user's open sessions end."""
    try:
        with session_scope(_engine()) as session:
            set_password(session, username=username, password=_password(password_env))
    except AccountError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    out.print(f"password of {username} changed; their sessions ended")


@app.command("disable")
def disable(username: Annotated[str, typer.Argument()]) -> None:
    """Stop a user from signing in; their open sessions end at once."""
    try:
        with session_scope(_engine()) as session:
            disable_user(session, username)
    except AccountError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    out.print(f"user {username} disabled")
