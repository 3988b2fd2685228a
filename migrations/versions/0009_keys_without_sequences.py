"""Keys copied from another table (a site's id) or fixed (the follow cursor's single row) lose the sequences
their tables were created with: nothing draws from them, and a row without its key must fail, not get a new one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, key column, sequence type) of the keys created as serial columns
SERIAL_KEYS = (("compute_locks", "site_pk", "integer"), ("site_status", "site_pk", "integer"),
               ("site_tails", "site_pk", "integer"), ("status_follow_cursor", "id", "smallint"))


def upgrade() -> None:
    for table, column, _type in SERIAL_KEYS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")
        op.execute(f"DROP SEQUENCE IF EXISTS {table}_{column}_seq")


def downgrade() -> None:
    for table, column, type_ in SERIAL_KEYS:
        op.execute(f"CREATE SEQUENCE {table}_{column}_seq AS {type_} OWNED BY {table}.{column}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT nextval('{table}_{column}_seq')")
