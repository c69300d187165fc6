"""PostgreSQL: 64-bit ids, timestamptz, a full-text search index on item text

Revision ID: c3f1a9e4b2d7
Revises: bd10baf7df62
Create Date: 2026-12-04 06:00:00

On PostgreSQL only (SQLite's INTEGER is already 64-bit, it has no time zones, and it searches
with LIKE):
- every row id and every key that points at one becomes BIGINT (an id above 2,147,483,647 was
  "integer out of range");
- every moment becomes `timestamp with time zone`, read as the UTC it was stored in;
- `ix_feedback_items_text_search`: a GIN index over `to_tsvector('simple', text)`, which
  `GET /v1/feedback?q=` uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f1a9e4b2d7"
down_revision: str | Sequence[str] | None = "bd10baf7df62"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column) of every row id and reference to one, as of this revision.
ID_COLUMNS = [
    ("api_keys", "id"), ("dead_letters", "id"), ("dead_letters", "source_id"), ("dead_letters", "run_id"),
    ("digests", "id"), ("feedback_items", "id"), ("feedback_items", "source_id"), ("feedback_items", "run_id"),
    ("ingestion_runs", "id"), ("ingestion_runs", "source_id"), ("item_embeddings", "item_id"),
    ("job_runs", "id"), ("sources", "id"), ("tag_claims", "item_id"), ("tag_labels", "item_id"),
    ("tags", "item_id"), ("tags", "topic_id"), ("topic_model_versions", "id"), ("topics", "id"),
    ("topics", "merged_into_id"),
]
EXTERNAL_TABLES = {"apscheduler_jobs", "alembic_version"}


def _timestamp_columns(bind: sa.engine.Connection, *, with_zone: bool) -> list[tuple[str, str]]:
    wanted = "timestamp with time zone" if with_zone else "timestamp without time zone"
    rows = bind.execute(sa.text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = :type ORDER BY table_name, column_name"),
        {"type": wanted}).all()
    return [(t, c) for t, c in rows if t not in EXTERNAL_TABLES]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in ID_COLUMNS:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE BIGINT')
        sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column})
        if sequence:  # a SERIAL key's sequence stops at 2**31 - 1 unless it is BIGINT too
            op.execute(f"ALTER SEQUENCE {sequence} AS BIGINT")
    for table, column in _timestamp_columns(bind, with_zone=False):
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE TIMESTAMP WITH TIME ZONE '
                   f"USING \"{column}\" AT TIME ZONE 'UTC'")
    op.execute("CREATE INDEX ix_feedback_items_text_search ON feedback_items "
               "USING gin (to_tsvector('simple', text))")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_feedback_items_text_search")
    for table, column in _timestamp_columns(bind, with_zone=True):
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE TIMESTAMP WITHOUT TIME ZONE '
                   f"USING \"{column}\" AT TIME ZONE 'UTC'")
    for table, column in ID_COLUMNS:
        sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column})
        if sequence:
            op.execute(f"ALTER SEQUENCE {sequence} AS INTEGER")
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE INTEGER')
