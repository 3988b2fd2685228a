"""Sites generation: a counter bumped whenever site keys could change, so caches know to refresh.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE sites_generation")
    op.execute("""
        CREATE FUNCTION bump_sites_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval('sites_generation');
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER sites_generation AFTER UPDATE OF site_id OR DELETE ON sites
        FOR EACH STATEMENT EXECUTE FUNCTION bump_sites_generation()""")
    op.execute("""
        CREATE TRIGGER sites_generation_truncate AFTER TRUNCATE ON sites
        FOR EACH STATEMENT EXECUTE FUNCTION bump_sites_generation()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER sites_generation_truncate ON sites")
    op.execute("DROP TRIGGER sites_generation ON sites")
    op.execute("DROP FUNCTION bump_sites_generation()")
    op.execute("DROP SEQUENCE sites_generation")
