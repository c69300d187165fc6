"""run encoding: the encoding a run's file was read in (given, or detected)

Revision ID: 8c41e2d7a5b3
Revises: 5d0c3e7a91f2
Create Date: 2026-12-05 03:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '8c41e2d7a5b3'
down_revision: str | Sequence[str] | None = '5d0c3e7a91f2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encoding', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ingestion_runs', schema=None) as batch_op:
        batch_op.drop_column('encoding')
