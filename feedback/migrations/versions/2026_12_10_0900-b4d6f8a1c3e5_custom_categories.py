"""custom categories: tags.custom, longer correction kinds

Revision ID: b4d6f8a1c3e5
Revises: a7c3e9f1d2b4
Create Date: 2026-12-10 09:00:00

Custom category heads (`models.custom_heads`) store their labels and probabilities per item in
`tags.custom`; analysts correct them as `custom:NAME`, a kind longer than the 20 characters the
built-in kinds needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b4d6f8a1c3e5'
down_revision: str | Sequence[str] | None = 'a7c3e9f1d2b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('custom', sa.JSON(), nullable=True))
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=20), type_=sa.String(length=100),
                              existing_nullable=False)


def downgrade() -> None:
    # custom:NAME corrections have no place in the older schema (and their kinds do not fit it)
    op.execute(sa.text("DELETE FROM corrections WHERE kind LIKE 'custom:%'"))
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=100), type_=sa.String(length=20),
                              existing_nullable=False)
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_column('custom')
