"""index tags.model_version

Revision ID: e5a7c2d9f1b3
Revises: d91472c6f3f3
Create Date: 2026-12-08 09:00:00

Which tagger versions an analytics answer rests on (`model_versions`) is read by seeking this
index once per distinct version; re-tagging after a promotion also finds stale tags through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'e5a7c2d9f1b3'
down_revision: str | Sequence[str] | None = 'd91472c6f3f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tags_model_version'), ['model_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tags_model_version'))
