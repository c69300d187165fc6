"""index tags.topic_version

Revision ID: f2b8d4e6a1c9
Revises: e5a7c2d9f1b3
Create Date: 2026-12-08 10:00:00

The scheduled topic refit fits on the newest items only; the tag job then re-assigns items an
earlier topic version assigned (and those with none), found through this index.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'f2b8d4e6a1c9'
down_revision: str | Sequence[str] | None = 'e5a7c2d9f1b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tags_topic_version'), ['topic_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tags_topic_version'))
