"""`voc db copy`: move a service database to another engine (SQLite to PostgreSQL, say)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from feedback.config import get_settings
from feedback.db import make_engine
from feedback.dbcopy import CopyError, copy_database
from feedback.migrate import upgrade

app = typer.Typer(help="The service database: copy it to another engine.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("copy")
def copy(
    to: Annotated[str, typer.Option("--to", help="the target database URL, e.g. postgresql+psycopg://"
                                                 "voc:secret@db/voc (migrated first; must be empty)")],
    source: Annotated[str | None, typer.Option("--from", help="the source database URL (default: the configured one)")]
    = None,
) -> None:
    """Copy every row (ids kept) from the configured database, or --from, into --to.

    Stop the service and the workers first; point VOC_DATABASE_URL at the target afterwards.
    """
    source_url = source or get_settings().database_url
    console.print(f"migrating {make_url(to).render_as_string(hide_password=True)} ...")
    upgrade(to)
    reader, writer = make_engine(source_url), make_engine(to)
    try:
        counts = copy_database(reader, writer, progress=lambda table, n: console.print(f"  {table}: {n} rows"))
    except CopyError as exc:
        console.print(f"[red]cannot copy:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        reader.dispose()
        writer.dispose()
    console.print(f"copied {sum(counts.values())} rows in {len(counts)} tables")
