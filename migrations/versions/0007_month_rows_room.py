"""Monthly performance pages leave room for the nightly update of each site's current month.

Every night rewrites one row per reporting site (its month to date). Neither key column changes,
so with room on the page the update is HOT: no entry is added to the primary key or the month
index. Existing pages are left as they are; new and moved rows follow the setting.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE monthly_performance SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE monthly_performance RESET (fillfactor)")
