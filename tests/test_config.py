from pathlib import Path

import pytest

from lux.config import EMBEDDED_PG_PORT, ConfigError, Settings, libpq_url


def test_defaults_serve_the_embedded_stack():
    settings = Settings.from_env({})
    assert settings.embedded_database and settings.embedded_redis
    assert settings.database_url == f"postgresql://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/lux"
    assert settings.timezone == "Europe/London"
    assert settings.var_dir == Path("var").resolve()


def test_urls_from_environment_switch_off_embedded_servers():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql+psycopg://u@db:5433/lux", "REDIS_URL": "redis://cache:6380/2"}
    )
    assert not settings.embedded_database and not settings.embedded_redis
    assert settings.database_url == "postgresql://u@db:5433/lux"
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@db:5433/lux"
    assert settings.redis_url == "redis://cache:6380/2"


def test_embedded_ports_are_configurable():
    settings = Settings.from_env({"LUX_EMBEDDED_PG_PORT": "6000", "LUX_EMBEDDED_REDIS_PORT": "6001"})
    assert settings.embedded_pg_port == 6000
    assert settings.embedded_redis_port == 6001


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LUX_TIMEZONE": "Mars/Olympus"}, "LUX_TIMEZONE"),
        ({"LUX_API_PORT": "eighty"}, "LUX_API_PORT must be an integer"),
        ({"LUX_API_PORT": "70000"}, "between 1 and 65535"),
        ({"DATABASE_URL": "mysql://x"}, "postgresql://"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_postgres_scheme_aliases_are_normalised():
    assert libpq_url("postgres://a@b/c") == "postgresql://a@b/c"
