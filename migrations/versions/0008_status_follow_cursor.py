"""Statuses of new readings: the follow's cursor (the newest ingest journal entry whose sites' statuses were
followed), and in each status what a follow continues from (the flat run and the recent reading days, kept for
its zero_read_days).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('status_follow_cursor',
    sa.Column('id', sa.SmallInteger(), nullable=False),
    sa.Column('journal_id', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_status_follow_cursor_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_follow_cursor'))
    )
    op.execute("INSERT INTO status_follow_cursor (id, journal_id) VALUES (1, 0)")
    op.add_column('site_status', sa.Column('flat_since', sa.Date(), nullable=True))
    op.add_column('site_status', sa.Column('recent_days', postgresql.ARRAY(sa.Date()), nullable=True))
    op.add_column('site_status', sa.Column('recent_kwh', postgresql.ARRAY(sa.Double()), nullable=True))
    op.add_column('site_status', sa.Column('zero_read_days', sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('site_status', 'zero_read_days')
    op.drop_column('site_status', 'recent_kwh')
    op.drop_column('site_status', 'recent_days')
    op.drop_column('site_status', 'flat_since')
    op.drop_table('status_follow_cursor')
