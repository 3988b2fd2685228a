"""Test fixtures over real services.

PostgreSQL and Redis come from TEST_DATABASE_URL / TEST_REDIS_URL when set, otherwise from
embedded servers started for the session. A test database is created and migrated with
Alembic, so the migrations are tested too. Celery tasks run in a real worker thread consuming
from the real broker; nothing runs eagerly.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from celery.contrib.testing import tasks as _celery_ping  # noqa: F401 - registers celery.ping
from celery.contrib.testing.worker import start_worker
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from lux import tokens
from lux.config import Settings, libpq_url
from lux.db import Database
from lux.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database
from lux.migrate import upgrade
from models import Base

TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, database: str) -> str:
    """`url` with its path replaced by `database`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, Redis URL): given by the environment, or embedded for this session."""
    started = []
    pg_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not pg_url:
        pg = EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "postgres", free_port())
        pg.start()
        started.append(pg)
        pg_url = pg.url("postgres")
    if not redis_url:
        server = EmbeddedRedis(tmp_path_factory.mktemp("embedded") / "redis", free_port())
        server.start()
        started.append(server)
        redis_url = server.url(db=15)
    yield libpq_url(pg_url), redis_url
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def settings(server_urls, tmp_path_factory) -> Iterator[Settings]:
    """Settings for a fresh, migrated test database and a flushed Redis database."""
    pg_url, redis_url = server_urls
    name = f"lux_test_{uuid.uuid4().hex[:8]}"
    admin_url = with_database(pg_url, "postgres")
    ensure_database(admin_url, name)
    redis.Redis.from_url(redis_url).flushdb()
    test_settings = Settings(
        database_url=with_database(pg_url, name), redis_url=redis_url,
        embedded_database=False, embedded_redis=False, var_dir=tmp_path_factory.mktemp("var"), log_level="INFO",
    )
    database = Database(test_settings)
    upgrade(database.engine)
    database.engine.dispose()
    yield test_settings
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database(settings) -> Iterator[Database]:
    db = Database(settings)
    yield db
    db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request) -> Iterator[None]:
    """Tests commit (the API and the worker use their own connections); empty the tables after each, once no task
    the test left can still run in the session's worker (if started)."""
    uses_database = "settings" in request.fixturenames
    database = request.getfixturevalue("database") if uses_database else None
    yield
    if RUNNING_WORKER:
        drain_worker(RUNNING_WORKER[0])
    if database is not None:
        truncate_all(database)


RUNNING_WORKER: list = []  # the session's Celery app, once its worker runs


def drain_worker(celery_app, timeout_s: float = 15.0) -> None:
    """Keep every task a test left from running in the next test: wait (at most `timeout_s`) for the tasks the
    worker has taken to end, then drop what is queued and revoke what waits for its countdown (a follow's retry,
    the fleet refresh an event sends 3 s later). A task sends its follow-ups before it ends, so none is missed."""
    from celery.worker import state

    deadline = time.monotonic() + timeout_s
    while state.active_requests or state.reserved_requests:
        if time.monotonic() > deadline:
            warnings.warn(f"the Celery worker was still busy {timeout_s} s after the test", stacklevel=2)
            break
        time.sleep(0.02)
    purge_queued_tasks(celery_app)
    for request in list(state.scheduled_requests):
        state.revoked.add(request.id)


def purge_queued_tasks(celery_app) -> None:
    """Drop every queued task, and the pending marks a dropped follow or fleet refresh leaves (else none is sent
    until the mark expires)."""
    from worker.tasks.compute import FLEET_REFRESH_KEY
    from worker.tasks.status import PENDING_KEY

    celery_app.control.purge()
    celery_app.backend.client.delete(PENDING_KEY, FLEET_REFRESH_KEY)


def truncate_all(database: Database, attempts: int = 5) -> None:
    """Empty every table; a worker task still computing for the last test may deadlock with it once, so retry."""
    for attempt in range(attempts):
        try:
            with database.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise


@pytest.fixture(scope="session")
def app(settings, celery_app):
    """The API; the Celery app it sends tasks through is configured for the test services first."""
    from api import create_app

    flask_app = create_app(settings)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app, database):
    return app.test_client()


@pytest.fixture
def auth(database):
    """`auth("read", "admin")` → headers carrying a fresh token with those scopes."""
    counter = iter(range(10**6))

    def make(*scopes: str) -> dict[str, str]:
        with database.session_scope() as session:
            secret = tokens.create_client(session, f"test-{next(counter)}-{'-'.join(scopes)}", list(scopes))
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture(scope="session")
def celery_app(settings):
    """The project's Celery app, reconfigured for the test services."""
    from worker.app import celery_app as app
    from worker.app import configure

    configure(app, settings)
    app.loader.import_default_modules()  # the `include` task modules, as a worker would
    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app) -> Iterator[object]:
    """A real worker (in a thread) consuming every Lux queue from the real broker.

    Messages that earlier API tests queued while no worker ran are purged first, so they cannot
    race the tests that watch the worker.
    """
    purge_queued_tasks(celery_app)
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=True,
                      shutdown_timeout=30) as worker:
        RUNNING_WORKER.append(celery_app)
        yield worker
        RUNNING_WORKER.clear()


@pytest.fixture
def worker_paused(celery_app) -> Iterator[None]:
    """While the test runs, the session's worker (if started by an earlier test) takes no task, so what the test
    journals stays for it to read instead of being claimed; what it queued is dropped before the worker goes on."""
    from worker.app import QUEUES

    if not RUNNING_WORKER:
        yield
        return
    for queue in QUEUES:
        celery_app.control.cancel_consumer(queue, reply=True, limit=1)
    drain_worker(celery_app)
    try:
        yield
    finally:
        purge_queued_tasks(celery_app)
        for queue in QUEUES:
            celery_app.control.add_consumer(queue, reply=True, limit=1)


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
