"""Ingest: rejected rows kept with their reason, and the journal of writes awaiting recomputation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ingest_journal',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('request_id', sa.Text(), nullable=False),
    sa.Column('site_pks', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('from_days', postgresql.ARRAY(sa.Date()), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_journal'))
    )
    op.create_index(op.f('ix_ingest_journal_created_at'), 'ingest_journal', ['created_at'], unique=False)
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
    op.drop_index(op.f('ix_ingest_journal_created_at'), table_name='ingest_journal')
    op.drop_table('ingest_journal')
