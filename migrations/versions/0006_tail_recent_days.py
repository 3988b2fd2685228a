"""Site tails keep their last zero_read_days + 1 reading days, so a run that only appends days keeps the
tail from the days it wrote.

Tails written before this revision have no recent days: they are rebuilt from site_days the next time
their site is recomputed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('site_tails', sa.Column('recent_days', postgresql.ARRAY(sa.Date()), nullable=True))
    op.add_column('site_tails', sa.Column('recent_kwh', postgresql.ARRAY(sa.Double()), nullable=True))


def downgrade() -> None:
    op.drop_column('site_tails', 'recent_kwh')
    op.drop_column('site_tails', 'recent_days')
