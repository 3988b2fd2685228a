"""Ingest: rejected rows kept with their reason, and sites awaiting recomputation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dirty_sites',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('from_day', sa.Date(), nullable=False),
    sa.Column('marked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('site_pk', name=op.f('pk_dirty_sites'))
    )
    op.create_index(op.f('ix_dirty_sites_marked_at'), 'dirty_sites', ['marked_at'], unique=False)
    op.create_table('ingest_rejects',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('request_id', sa.Text(), nullable=False),
    sa.Column('row_index', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('field', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_rejects'))
    )
    op.create_index(op.f('ix_ingest_rejects_received_at'), 'ingest_rejects', ['received_at'], unique=False)
    op.create_index(op.f('ix_ingest_rejects_request_id'), 'ingest_rejects', ['request_id'], unique=False)
    op.create_index('ix_ingest_rejects_site_id_received_at', 'ingest_rejects', ['site_id', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ingest_rejects_site_id_received_at', table_name='ingest_rejects')
    op.drop_index(op.f('ix_ingest_rejects_request_id'), table_name='ingest_rejects')
    op.drop_index(op.f('ix_ingest_rejects_received_at'), table_name='ingest_rejects')
    op.drop_table('ingest_rejects')
    op.drop_index(op.f('ix_dirty_sites_marked_at'), table_name='dirty_sites')
    op.drop_table('dirty_sites')
