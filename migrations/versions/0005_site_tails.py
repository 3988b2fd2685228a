"""Site tails: each site's latest computed reading day, so status and anchors need no site_days probes;
site_status rows updated in place.

Left empty here: a site without a tail row is computed from site_days as before, and gets its row
the next time it is recomputed (the nightly full run reaches every site).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('site_tails',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=True),
    sa.Column('closing_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closing_kwh', sa.Double(), nullable=True),
    sa.Column('closing_signal', sa.SmallInteger(), nullable=True),
    sa.Column('network', sa.Text(), nullable=True),
    sa.Column('flat_since', sa.Date(), nullable=True),
    sa.Column('ref_kwh', sa.Double(), nullable=True),
    sa.Column('zero_read_days', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('site_pk', name=op.f('pk_site_tails'))
    )
    # Every site's status row is rewritten at each change of day, and its tail whenever it reports: without
    # the index on status and with room left in each page, those updates are HOT (no index entries written)
    # and the tables stay compact.
    op.drop_index(op.f('ix_site_status_status'), table_name='site_status')
    op.execute("ALTER TABLE site_status SET (fillfactor = 50)")
    op.execute("ALTER TABLE site_tails SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE site_status RESET (fillfactor)")
    op.create_index(op.f('ix_site_status_status'), 'site_status', ['status'], unique=False)
    op.drop_table('site_tails')
