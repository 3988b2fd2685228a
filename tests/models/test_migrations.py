"""Migrations and models agree, and the migration chain goes down and up again."""

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from lux.config import Settings
from lux.embedded import ensure_database
from lux.migrate import alembic_config, is_at_head, upgrade
from models import Base
from tests.conftest import with_database


def test_migrated_schema_matches_the_models(database):
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert is_at_head(database.engine)


@pytest.mark.parametrize("statement", [
    "INSERT INTO site_status (as_of, status) VALUES (CURRENT_DATE, 'healthy')",
    "INSERT INTO site_tails (zero_read_days) VALUES (3)",
    "INSERT INTO compute_locks DEFAULT VALUES",
    "INSERT INTO status_follow_cursor (journal_id) VALUES (0)",
])
def test_a_row_without_its_copied_or_fixed_key_is_refused_not_given_a_new_one(database, statement):
    with pytest.raises(IntegrityError, match="null value"), database.session_scope() as session:
        session.execute(text(statement))


def test_downgrade_to_base_and_upgrade_again(settings):
    name = settings.database_url.rsplit("/", 1)[1] + "_chain"
    admin = with_database(settings.database_url, "postgres")
    ensure_database(admin, name)
    engine = create_engine(Settings(database_url=with_database(settings.database_url, name)).sqlalchemy_url)
    try:
        upgrade(engine)
        assert {"sites", "readings", "api_clients"} <= set(inspect(engine).get_table_names())
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(engine)
        assert is_at_head(engine)
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
