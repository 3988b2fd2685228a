"""Each journal entry keeps the earliest reading its request wrote: a recompute of a site whose new readings all follow
its last computed reading extends that day's stored counts instead of reading the whole day again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ingest_journal", sa.Column("earliest_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("ingest_journal", "earliest_at")
