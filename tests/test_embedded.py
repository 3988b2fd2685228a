"""Embedded PostgreSQL and Redis: real servers that start, keep their data, and stop cleanly."""

import json
import subprocess
import sys

import psutil
import psycopg
import pytest
import redis

from lux.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.conftest import free_port


@pytest.fixture
def pg(tmp_path):
    server = EmbeddedPostgres(tmp_path / "postgres", free_port())
    yield server
    server.stop()


def test_postgres_restarts_on_its_data(pg):
    pg.start()
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    pid = pg.process.pid
    pg.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.url(), connect_timeout=1)
    pg.start()
    with psycopg.connect(pg.url()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)


def test_postgres_runs_with_the_buffer_cache_it_is_given(tmp_path):
    server = EmbeddedPostgres(tmp_path / "postgres", free_port(), shared_buffers_mb=48)
    server.start()
    try:
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SHOW shared_buffers").fetchone() == ("48MB",)
    finally:
        server.stop()


def test_postgres_replaces_a_leftover_server_on_the_same_data(pg, tmp_path):
    pg.start()
    orphan = pg.process.pid
    pg.process = None  # forget it, as if the supervisor had been killed
    second = EmbeddedPostgres(pg.data_dir, pg.port)
    second.start()
    try:
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
        with psycopg.connect(second.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        second.stop()


def test_redis_keeps_data_across_restart(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", free_port())
    server.start()
    try:
        redis.Redis.from_url(server.url()).set("k", "v")
        server.stop()
        server.start()
        assert redis.Redis.from_url(server.url()).get("k") == b"v"
    finally:
        server.stop()


def test_redis_replaces_a_leftover_server_on_the_same_data(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", free_port())
    server.start()
    orphan = server.process.pid
    second = EmbeddedRedis(server.data_dir, server.port)
    second.start()
    try:
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
        assert redis.Redis.from_url(second.url()).ping()
    finally:
        second.stop()


STARTER = """
import json, sys, time
from pathlib import Path
from lux.embedded import EmbeddedPostgres, EmbeddedRedis
root, pg_port, redis_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
servers = [EmbeddedPostgres(root / "postgres", pg_port), EmbeddedRedis(root / "redis", redis_port)]
for server in servers:
    server.start()
print(json.dumps([server.process.pid for server in servers]), flush=True)
time.sleep(600)
"""


def test_servers_stop_when_the_process_that_started_them_is_killed(tmp_path, project_root):
    """A supervisor killed outright (SIGKILL: no chance to stop anything) leaves no server running: the kernel sends
    each server its stop signal. Without it, the servers of a killed test run or benchmark ran on unseen."""
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path), str(free_port()), str(free_port())],
                               cwd=project_root, stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(starter.stdout.readline())
        servers = [psutil.Process(pid) for pid in pids]
        assert all(server.is_running() for server in servers)
    finally:
        starter.kill()
        starter.wait()
    _gone, alive = psutil.wait_procs(servers, timeout=30)
    for server in alive:  # do not leave them behind when the assertion below fails
        server.kill()
    assert alive == []
