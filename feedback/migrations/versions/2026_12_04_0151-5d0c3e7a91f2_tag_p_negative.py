"""tag p_negative and rollup probability sums

Adds `tags.p_negative` (the calibrated p(negative)), filled from the `sentiment_probs` JSON of
existing tags, and the `p_negative_sum` / `p_negative_sumsq` rollup columns that estimated
shares read. The rollups are marked for a rebuild (their topics stamp is cleared, so reads fall
back to the items and the next refresh recomputes every row with the new sums).

Revision ID: 5d0c3e7a91f2
Revises: 2b11f47ab5ef
Create Date: 2026-12-04 01:51:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '5d0c3e7a91f2'
down_revision: str | Sequence[str] | None = '2b11f47ab5ef'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

tags = sa.table('tags', sa.column('item_id', sa.Integer), sa.column('sentiment_probs', sa.JSON),
                sa.column('p_negative', sa.Float))


def backfill_p_negative(bind: Any, batch: int = BATCH) -> int:
    """Copy sentiment_probs['negative'] into p_negative, in item-id batches (portable: the JSON
    is read in Python, so SQLite and PostgreSQL take the same path); returns rows filled."""
    filled, after = 0, None
    while True:
        stmt = (sa.select(tags.c.item_id, tags.c.sentiment_probs).where(tags.c.p_negative.is_(None))
                .order_by(tags.c.item_id).limit(batch))
        if after is not None:
            stmt = stmt.where(tags.c.item_id > after)
        rows = bind.execute(stmt).all()
        if not rows:
            return filled
        after = rows[-1][0]
        updates = []
        for item_id, probs in rows:
            value = (probs or {}).get('negative') if isinstance(probs, dict) else None
            if isinstance(value, int | float):
                updates.append({'id': item_id, 'p': float(value)})
        if updates:
            bind.execute(tags.update().where(tags.c.item_id == sa.bindparam('id'))
                         .values(p_negative=sa.bindparam('p')), updates)
            filled += len(updates)


def upgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('p_negative', sa.Float(), nullable=True))
    # Existing rollup rows get zeros; they are rebuilt (below) before any read uses them.
    with op.batch_alter_table('analytics_rollups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('p_negative_sum', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('p_negative_sumsq', sa.Float(), nullable=False, server_default='0'))
    with op.batch_alter_table('analytics_rollups', schema=None) as batch_op:
        batch_op.alter_column('p_negative_sum', server_default=None)
        batch_op.alter_column('p_negative_sumsq', server_default=None)
    backfill_p_negative(op.get_bind())
    # A cleared stamp makes rollups_current() false and the next refresh_rollups() rebuild.
    op.execute(sa.text('UPDATE analytics_rollup_state SET topics_stamp = NULL'))


def downgrade() -> None:
    with op.batch_alter_table('analytics_rollups', schema=None) as batch_op:
        batch_op.drop_column('p_negative_sumsq')
        batch_op.drop_column('p_negative_sum')
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_column('p_negative')
