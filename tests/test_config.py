import os
from pathlib import Path

import pytest

from lux.config import (
    EMBEDDED_PG_PORT,
    SHARED_BUFFERS_MAX_MB,
    SHARED_BUFFERS_MIN_MB,
    ConfigError,
    Settings,
    libpq_url,
    machine_memory_mb,
    machine_shared_buffers_mb,
)


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


def test_the_embedded_buffer_cache_is_at_most_a_quarter_of_the_machine_unless_set():
    memory_mb = machine_memory_mb()
    assert memory_mb <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    default = Settings.from_env({}).embedded_pg_shared_buffers_mb
    assert default == machine_shared_buffers_mb()
    assert SHARED_BUFFERS_MIN_MB <= default <= SHARED_BUFFERS_MAX_MB
    assert default <= max(memory_mb // 4, SHARED_BUFFERS_MIN_MB)
    assert Settings.from_env({"LUX_EMBEDDED_PG_SHARED_BUFFERS_MB": "512"}).embedded_pg_shared_buffers_mb == 512


def test_a_container_memory_limit_below_the_machine_s_memory_bounds_it(tmp_path):
    physical_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    v2, v1, missing = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes", tmp_path / "absent"
    v2.write_text("max\n")
    v1.write_text(f"{2 * 2**30}\n")
    assert machine_memory_mb((missing, v2, v1)) == min(physical_mb, 2048)
    v2.write_text(f"{512 * 2**20}\n")
    assert machine_memory_mb((v2, v1)) == min(physical_mb, 512)
    v1.write_text("9223372036854771712\n")  # a cgroup v1 group without a limit
    assert machine_memory_mb((missing, v1)) == physical_mb


def test_lux_up_runs_a_compute_process_a_core_and_one_event_process_unless_set():
    from lux.stack import Credentials, process_commands

    def concurrency(settings: Settings, name: str) -> str:
        command = process_commands(settings, Credentials(demo_token="t", flower_password="p"))[name]
        return command[command.index("--concurrency") + 1]

    default = Settings.from_env({})
    assert (default.compute_concurrency, default.event_concurrency) == (os.cpu_count() or 2, 1)
    assert (concurrency(default, "worker"), concurrency(default, "event-worker")) == (str(os.cpu_count() or 2), "1")
    chosen = Settings.from_env({"LUX_COMPUTE_CONCURRENCY": "6", "LUX_EVENT_CONCURRENCY": "2"})
    assert (concurrency(chosen, "worker"), concurrency(chosen, "event-worker")) == ("6", "2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LUX_TIMEZONE": "Mars/Olympus"}, "LUX_TIMEZONE"),
        ({"LUX_API_PORT": "eighty"}, "LUX_API_PORT must be an integer"),
        ({"LUX_API_PORT": "70000"}, "between 1 and 65535"),
        ({"DATABASE_URL": "mysql://x"}, "postgresql://"),
        ({"LUX_EMBEDDED_PG_SHARED_BUFFERS_MB": "8"}, "LUX_EMBEDDED_PG_SHARED_BUFFERS_MB must be between 16"),
        ({"LUX_EVENT_CONCURRENCY": "0"}, "LUX_EVENT_CONCURRENCY must be between 1"),
        ({"LUX_COMPUTE_CONCURRENCY": "many"}, "LUX_COMPUTE_CONCURRENCY must be an integer"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_postgres_scheme_aliases_are_normalised():
    assert libpq_url("postgres://a@b/c") == "postgresql://a@b/c"
