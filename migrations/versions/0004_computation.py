"""Computation: cached results (site days, status, anomalies, performance, rollups, snapshots) and run records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:28:00.553246
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('anomalies',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('start_day', sa.Date(), nullable=False),
    sa.Column('end_day', sa.Date(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('site_pk', 'type', 'start_day', name=op.f('pk_anomalies'))
    )
    op.create_index('ix_anomalies_type_start_day', 'anomalies', ['type', 'start_day'], unique=False)
    op.create_table('compute_locks',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('site_pk', name=op.f('pk_compute_locks'))
    )
    op.create_table('compute_runs',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('task_id', sa.Text(), nullable=True),
    sa.Column('mode', sa.Text(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('shard', sa.Text(), nullable=True),
    sa.Column('sites', sa.Integer(), nullable=True),
    sa.Column('from_day', sa.Date(), nullable=True),
    sa.Column('to_day', sa.Date(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rows_written', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.Text(), server_default='running', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_runs')),
    sa.UniqueConstraint('task_id', name=op.f('uq_compute_runs_task_id'))
    )
    op.create_index(op.f('ix_compute_runs_started_at'), 'compute_runs', ['started_at'], unique=False)
    op.create_table('daily_rollups',
    sa.Column('area', sa.Text(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sites', sa.Integer(), nullable=False),
    sa.Column('reporting_sites', sa.Integer(), nullable=False),
    sa.Column('valued_sites', sa.Integer(), nullable=False),
    sa.Column('estimated_sites', sa.Integer(), nullable=False),
    sa.Column('readings', sa.Integer(), nullable=False),
    sa.Column('generation_kwh', sa.Double(), nullable=False),
    sa.Column('rated_generation_kwh', sa.Double(), nullable=False),
    sa.Column('expected_kwh', sa.Double(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('area', 'day', name=op.f('pk_daily_rollups'))
    )
    op.create_table('fleet_refresh_requests',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('from_day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_refresh_requests'))
    )
    op.create_table('fleet_snapshots',
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'as_of', name=op.f('pk_fleet_snapshots'))
    )
    op.create_table('monthly_performance',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('actual_kwh', sa.Double(), nullable=False),
    sa.Column('covered_days', sa.SmallInteger(), nullable=False),
    sa.Column('expected_kwh', sa.Double(), nullable=True),
    sa.Column('ratio_pct', sa.Double(), nullable=True),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('site_pk', 'month', name=op.f('pk_monthly_performance'))
    )
    op.create_index('ix_monthly_performance_month', 'monthly_performance', ['month'], unique=False)
    op.create_table('site_days',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('closing_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closing_kwh', sa.Double(), nullable=True),
    sa.Column('closing_signal', sa.SmallInteger(), nullable=True),
    sa.Column('network', sa.Text(), nullable=True),
    sa.Column('readings', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('signal_sum', sa.Integer(), server_default='0', nullable=False),
    sa.Column('signal_n', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('generation_kwh', sa.Double(), nullable=True),
    sa.Column('estimated', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('rollback', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('segment_end', sa.Date(), nullable=False),
    sa.Column('flat_since', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('site_pk', 'day', name=op.f('pk_site_days'))
    )
    op.create_table('site_status',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('days', sa.Integer(), nullable=True),
    sa.Column('last_day', sa.Date(), nullable=True),
    sa.Column('last_reading_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_register_kwh', sa.Double(), nullable=True),
    sa.Column('signal_level', sa.Double(), nullable=True),
    sa.Column('network', sa.Text(), nullable=True),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('site_pk', name=op.f('pk_site_status'))
    )
    op.create_index(op.f('ix_site_status_status'), 'site_status', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_site_status_status'), table_name='site_status')
    op.drop_table('site_status')
    op.drop_table('site_days')
    op.drop_index('ix_monthly_performance_month', table_name='monthly_performance')
    op.drop_table('monthly_performance')
    op.drop_table('fleet_snapshots')
    op.drop_table('fleet_refresh_requests')
    op.drop_table('daily_rollups')
    op.drop_index(op.f('ix_compute_runs_started_at'), table_name='compute_runs')
    op.drop_table('compute_runs')
    op.drop_table('compute_locks')
    op.drop_index('ix_anomalies_type_start_day', table_name='anomalies')
    op.drop_table('anomalies')
