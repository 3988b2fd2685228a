"""Each journal entry names the sites whose statuses the status follow still has to continue: an ingest follows its
own batch's statuses in its transaction and leaves the follow only the sites whose status row a run held.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLLOW = (("follow_pks", sa.Integer()), ("follow_days", sa.Date()))


def upgrade() -> None:
    for name, item in FOLLOW:
        op.add_column("ingest_journal", sa.Column(name, postgresql.ARRAY(item), nullable=True))


def downgrade() -> None:
    for name, _item in reversed(FOLLOW):
        op.drop_column("ingest_journal", name)
