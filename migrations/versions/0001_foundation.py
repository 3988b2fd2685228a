"""Foundation: sites, readings, expected generation, API clients and demo faults.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_clients',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_prefix', sa.String(length=12), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
    sa.UniqueConstraint('name', name=op.f('uq_api_clients_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_clients_token_hash'))
    )
    op.create_table('sites',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('postcode', sa.String(length=10), nullable=True),
    sa.Column('region', sa.Text(), nullable=True),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('capacity_kwp', sa.Double(), nullable=False),
    sa.Column('install_date', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("site_id ~ '^[A-Za-z0-9_.-]{1,64}$'", name=op.f('ck_sites_site_id_format')),
    sa.CheckConstraint('capacity_kwp > 0', name=op.f('ck_sites_capacity_positive')),
    sa.CheckConstraint('latitude BETWEEN -90 AND 90', name=op.f('ck_sites_latitude_range')),
    sa.CheckConstraint('longitude BETWEEN -180 AND 180', name=op.f('ck_sites_longitude_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('site_id', name=op.f('uq_sites_site_id'))
    )
    op.create_index(op.f('ix_sites_region'), 'sites', ['region'], unique=False)
    op.create_table('demo_faults',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('start_day', sa.Date(), nullable=False),
    sa.Column('end_day', sa.Date(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.ForeignKeyConstraint(['site_pk'], ['sites.id'], name=op.f('fk_demo_faults_site_pk_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_demo_faults'))
    )
    op.create_index(op.f('ix_demo_faults_site_pk'), 'demo_faults', ['site_pk'], unique=False)
    op.create_table('expected_generation',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('month', sa.SmallInteger(), nullable=False),
    sa.Column('expected_kwh', sa.Double(), nullable=False),
    sa.Column('source', sa.Text(), server_default='manual', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('expected_kwh >= 0', name=op.f('ck_expected_generation_expected_non_negative')),
    sa.CheckConstraint('month BETWEEN 1 AND 12', name=op.f('ck_expected_generation_month_range')),
    sa.ForeignKeyConstraint(['site_pk'], ['sites.id'], name=op.f('fk_expected_generation_site_pk_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_pk', 'month', name=op.f('pk_expected_generation'))
    )
    op.create_table('readings',
    sa.Column('site_pk', sa.Integer(), nullable=False),
    sa.Column('reading_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('register_kwh', sa.Double(), nullable=False),
    sa.Column('signal_level', sa.SmallInteger(), nullable=True),
    sa.Column('network', sa.Text(), nullable=True),
    sa.Column('meter_serial', sa.Text(), nullable=True),
    sa.CheckConstraint('register_kwh >= 0', name=op.f('ck_readings_register_non_negative')),
    sa.CheckConstraint('signal_level BETWEEN 0 AND 31', name=op.f('ck_readings_signal_range')),
    sa.PrimaryKeyConstraint('site_pk', 'reading_at', name=op.f('pk_readings'))
    )


def downgrade() -> None:
    op.drop_table('readings')
    op.drop_table('expected_generation')
    op.drop_index(op.f('ix_demo_faults_site_pk'), table_name='demo_faults')
    op.drop_table('demo_faults')
    op.drop_index(op.f('ix_sites_region'), table_name='sites')
    op.drop_table('sites')
    op.drop_table('api_clients')
