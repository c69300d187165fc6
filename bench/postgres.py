"""PostgreSQL for the benchmarks: a server given by URL, or a throwaway one started like the tests'.

`server(url)` returns a `PgServer` (tests/pg.py): with a URL, that server (a superuser URL: the
benchmarks create and drop their own databases on it); without one, a new cluster on this
machine with PostgreSQL's durable defaults (fsync, synchronous commits, full-page writes: unlike
the tests) and deploy/compose.yaml's shared_buffers, stopped and removed by `stop()`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pg import PgServer  # noqa: E402  (tests/pg.py)


def server(url: str | None) -> PgServer:
    """The server at `url`, or a throwaway durable one."""
    return PgServer(url) if url else PgServer.start(durable=True)


def database_size(url: str) -> int:
    """Bytes the database at `url` takes on disk (pg_database_size)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    finally:
        engine.dispose()


def version(url: str) -> Any:
    """The server's version string (for the printed figures)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SHOW server_version"))
    finally:
        engine.dispose()


def vacuum_analyze(url: str) -> None:
    """VACUUM (ANALYZE) the whole database, as autovacuum would after a bulk load: planner
    statistics, and a visibility map so that index-only scans need not visit the heap."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()
