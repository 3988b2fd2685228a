"""What the benchmarks need: free ports, and the servers from DATABASE_URL / REDIS_URL or embedded ones."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from lux.config import Settings
from lux.embedded import EmbeddedPostgres, EmbeddedRedis


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_servers(env_settings: Settings, workdir: Path) -> tuple[list, str, str]:
    """Embedded servers for whichever of DATABASE_URL / REDIS_URL is unset: (servers, PostgreSQL URL, Redis URL)."""
    servers = []
    if env_settings.embedded_database:
        servers.append(EmbeddedPostgres(workdir / "postgres", free_port(),
                                        shared_buffers_mb=env_settings.embedded_pg_shared_buffers_mb))
    if env_settings.embedded_redis:
        servers.append(EmbeddedRedis(workdir / "redis", free_port()))
    for server in servers:
        server.start()
    pg_url = next((s.url("postgres") for s in servers if isinstance(s, EmbeddedPostgres)), env_settings.database_url)
    redis_url = next((s.url() for s in servers if isinstance(s, EmbeddedRedis)), env_settings.redis_url)
    return servers, pg_url, redis_url


def stop_servers(servers: list, *, keep_data: bool = False) -> None:
    """Stop the embedded servers (the last started first) and remove their data directories, unless `keep_data`:
    a full-size run leaves about 18 GB of PostgreSQL data, and a few runs fill a disk. Their logs stay."""
    for server in reversed(servers):
        server.stop()
        if not keep_data:
            shutil.rmtree(server.data_dir, ignore_errors=True)
