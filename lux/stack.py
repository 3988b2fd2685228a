"""`lux up`: the whole stack under one supervisor.

Starts embedded PostgreSQL and Redis when their URLs are unset, migrates, seeds the demo fleet
on first start, ensures a demo token, then runs gunicorn (API), a Celery worker on the `compute` and
`maintenance` queues, one process on the `ingest` queue (events' recomputes), one on the `status` queue, beat
and Flower. Ctrl-C or SIGTERM stops every process it started, the servers last.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from lux import tokens
from lux.config import Settings
from lux.db import Database
from lux.demo import seed_demo
from lux.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServer
from lux.migrate import upgrade
from models import ApiClient, Site

log = logging.getLogger(__name__)

DEMO_CLIENT = "demo"
CELERY = [sys.executable, "-m", "celery", "--app", "worker.app:celery_app"]
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Credentials:
    """Secrets of the local stack, kept under var/ so a second start shows the same ones."""

    demo_token: str
    flower_password: str


def start_servers(settings: Settings) -> list[EmbeddedServer]:
    """Start the embedded servers the settings ask for (URLs unset), in start order."""
    servers: list[EmbeddedServer] = []
    if settings.embedded_database:
        servers.append(EmbeddedPostgres(settings.var_dir / "postgres", settings.embedded_pg_port,
                                        shared_buffers_mb=settings.embedded_pg_shared_buffers_mb))
    if settings.embedded_redis:
        servers.append(EmbeddedRedis(settings.var_dir / "redis", settings.embedded_redis_port))
    started: list[EmbeddedServer] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
    except BaseException:
        stop_all(started)
        raise
    return started


def prepare_database(settings: Settings, credentials: Credentials) -> str:
    """Migrate, seed the demo fleet if there are no sites, register the demo token; describe what was done."""
    database = Database(settings)
    try:
        upgrade(database.engine)
        with database.session_scope() as session:
            if session.scalar(select(ApiClient.id).where(ApiClient.name == DEMO_CLIENT)) is None:
                tokens.create_client(session, DEMO_CLIENT, list(tokens.SCOPES), credentials.demo_token)
            has_sites = bool(session.scalar(select(func.count()).select_from(Site)))
        if has_sites:
            return "existing data reused"
        started = time.perf_counter()
        today = dt.datetime.now(settings.zone).date()
        with database.raw_connection() as conn:
            result = seed_demo(conn, sites=settings.demo_sites, days=settings.demo_days,
                               timezone=settings.timezone, end_day=today)
        return (f"demo fleet seeded: {result.sites} sites, {result.readings} readings "
                f"in {time.perf_counter() - started:.1f}s")
    finally:
        database.engine.dispose()


def load_credentials(settings: Settings) -> Credentials:
    """Read the stack's secrets from var/, creating them on first start."""
    def secret(name: str, factory) -> str:
        path: Path = settings.var_dir / name
        if not path.exists():
            path.write_text(factory())
            path.chmod(0o600)
        return path.read_text().strip()

    return Credentials(
        demo_token=secret("demo-token", lambda: tokens.TOKEN_PREFIX + secrets.token_urlsafe(32)),
        flower_password=settings.flower_password or secret("flower-password", lambda: secrets.token_urlsafe(12)),
    )


def process_commands(settings: Settings, credentials: Credentials) -> dict[str, list[str]]:
    """The long-running processes of the stack and their command lines."""
    var = str(settings.var_dir)
    return {
        "api": [sys.executable, "-m", "gunicorn", "api:create_app()",
                "--bind", f"{settings.api_host}:{settings.api_port}", "--workers", str(settings.api_workers),
                "--graceful-timeout", "10", "--timeout", "120", "--no-control-socket"],
        # Fleet computations: a process a core (LUX_COMPUTE_CONCURRENCY).
        "worker": [*CELERY, "worker", "--queues", "compute,maintenance", "--hostname", "lux@%h",
                   "--loglevel", settings.log_level, "--concurrency", str(settings.compute_concurrency)],
        # Ingest events' recomputes: one process (LUX_EVENT_CONCURRENCY). Under a load they cannot keep up with they
        # take whatever cores they get; with one, the ingest keeps the rest (a backlog's sweep is spread over the
        # compute queue).
        "event-worker": [*CELERY, "worker", "--queues", "ingest", "--hostname", "ingest@%h",
                         "--loglevel", settings.log_level, "--concurrency", str(settings.event_concurrency)],
        # New readings' statuses must not wait behind recomputes: a worker of their own.
        "status-worker": [*CELERY, "worker", "--queues", "status", "--hostname", "status@%h",
                          "--loglevel", settings.log_level, "--concurrency", "1"],
        "beat": [*CELERY, "beat", "--schedule", f"{var}/celerybeat-schedule", "--loglevel", settings.log_level],
        "flower": [*CELERY, "flower", f"--address={settings.flower_host}", f"--port={settings.flower_port}",
                   f"--basic_auth={settings.flower_user}:{credentials.flower_password}"],
    }


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment of every child: the resolved server URLs, so all processes agree."""
    return {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "LUX_VAR_DIR": str(settings.var_dir), "LUX_TIMEZONE": settings.timezone}


def wait_ready(settings: Settings, processes: dict[str, subprocess.Popen], stopping) -> bool:
    """Poll the API's /readyz and Flower's /healthcheck until both answer 200.

    False if a process died, we are stopping, or the wait timed out.
    """
    pending = [
        f"http://{settings.api_host}:{settings.api_port}/readyz",
        f"http://{settings.flower_host}:{settings.flower_port}/healthcheck",
    ]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while pending and time.monotonic() < deadline and not stopping() and not _dead(processes):
        try:
            with urllib.request.urlopen(pending[0], timeout=2) as response:
                if response.status == 200:
                    pending.pop(0)
                    continue
        except OSError:
            pass
        time.sleep(0.3)
    return not pending


def stop_processes(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every live child, then SIGKILL what is left after a grace period."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes.values():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_all(servers: list[EmbeddedServer]) -> None:
    """Stop servers in reverse start order."""
    for server in reversed(servers):
        server.stop()


def _dead(processes: dict[str, subprocess.Popen]) -> str | None:
    return next((name for name, p in processes.items() if p.poll() is not None), None)


def banner(settings: Settings, credentials: Credentials, note: str) -> str:
    """What `lux up` prints once the stack answers."""
    api = f"http://{settings.api_host}:{settings.api_port}"
    return "\n".join([
        "", "Lux is up.", f"  {note}",
        f"  API        {api}/api/v1/   (docs: {api}/api/v1/docs, ready: {api}/readyz)",
        f"  Flower     http://{settings.flower_host}:{settings.flower_port}/   "
        f"login: {settings.flower_user} / {credentials.flower_password}",
        f"  Demo token {credentials.demo_token}",
        f"  Try        curl -H 'Authorization: Bearer {credentials.demo_token}' {api}/api/v1/sites?limit=5",
        "  Stop       Ctrl-C", "",
    ])


def queue_full_computation(settings: Settings) -> str:
    """Send the full recompute beat runs nightly, so results are fresh from the first minute; its task id."""
    from worker.app import celery_app, configure

    configure(celery_app, settings)
    return celery_app.send_task("lux.compute.full").id


def run_stack(settings: Settings) -> int:
    """Bring the stack up and supervise it until a signal or a child's exit; return the exit code."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    stop_requested: list[int] = []

    def request_stop(signum, _frame) -> None:
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    servers = start_servers(settings)
    processes: dict[str, subprocess.Popen] = {}
    try:
        credentials = load_credentials(settings)
        note = prepare_database(settings, credentials)
        if stop_requested:
            return 130
        env = child_environment(settings)
        for name, command in process_commands(settings, credentials).items():
            processes[name] = subprocess.Popen(command, env=env)
        if wait_ready(settings, processes, lambda: bool(stop_requested)):
            note += f"; full computation queued (task {queue_full_computation(settings)})"
            print(banner(settings, credentials, note), flush=True)
        elif not stop_requested and not _dead(processes):
            log.warning("api=not_ready after=%ss; still supervising", READY_TIMEOUT_S)
        while not stop_requested and not _dead(processes):
            time.sleep(0.2)
        dead = _dead(processes)
        if dead and not stop_requested:
            log.error("process=%s state=exited code=%s; stopping the stack", dead, processes[dead].returncode)
            return 1
        return 0
    finally:
        stop_processes(processes)
        stop_all(servers)
        print("Lux stopped.", flush=True)
