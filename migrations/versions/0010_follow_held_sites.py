"""The follow cursor keeps the sites a follow found held by a run (with their earliest new day and since when), so
the next follow tries them again instead of a chain of retry tasks per follow.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = (("held_pks", sa.Integer()), ("held_days", sa.Date()), ("held_since", sa.DateTime(timezone=True)))


def upgrade() -> None:
    for name, item in HELD:
        op.add_column("status_follow_cursor",
                      sa.Column(name, postgresql.ARRAY(item), server_default="{}", nullable=False))


def downgrade() -> None:
    for name, _item in reversed(HELD):
        op.drop_column("status_follow_cursor", name)
