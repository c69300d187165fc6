"""Copy every row of one service database into another: moving from SQLite to PostgreSQL.

Both databases must be at the same migration (the target is migrated first, `voc init`), and the
target must be empty. Tables are copied parents first, in batches, keeping ids; on PostgreSQL each
id sequence is then moved past the largest copied id, so new rows do not collide.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, Integer, func, insert, inspect, select, text

from feedback import models  # noqa: F401  (registers every table on Base.metadata)
from feedback.db import Base

BATCH_ROWS = 5_000


class CopyError(RuntimeError):
    """The databases cannot be copied one into the other (different migrations, target not empty)."""


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


def copy_database(source: Engine, target: Engine, *,
                  progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy all rows of the service's tables from `source` into `target`; returns rows per table."""
    source_rev, target_rev = _revision(source), _revision(target)
    if source_rev is None or source_rev != target_rev:
        raise CopyError(f"source is at migration {source_rev}, target at {target_rev}: run `voc init` on both")
    tables = list(Base.metadata.sorted_tables)
    with target.connect() as connection:
        present = set(inspect(connection).get_table_names())
        for table in tables:
            if table.name in present and connection.scalar(select(func.count()).select_from(table)):
                raise CopyError(f"target table {table.name} is not empty")
    counts: dict[str, int] = {}
    with source.connect() as reader, target.begin() as writer:
        for table in tables:
            copied = 0
            result = reader.execution_options(yield_per=BATCH_ROWS).execute(select(table))
            for partition in result.mappings().partitions(BATCH_ROWS):
                writer.execute(insert(table), [dict(row) for row in partition])
                copied += len(partition)
            counts[table.name] = copied
            if progress:
                progress(table.name, copied)
        if target.dialect.name == "postgresql":
            for table in tables:
                columns = list(table.primary_key.columns)
                if len(columns) == 1 and isinstance(columns[0].type, Integer):
                    column = columns[0]
                    # NULL (a no-op) where the key has no sequence, e.g. a key that is a foreign key.
                    writer.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                            f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"))
    return counts
