"""The one settings object, read from environment variables.

Every process of Lux (API, workers, beat, CLI) builds its configuration from
`Settings.from_env()`. Defaults serve the embedded stack started by `lux up`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EMBEDDED_PG_PORT = 54329
EMBEDDED_REDIS_PORT = 63799
# The embedded PostgreSQL's buffer cache: a quarter of the machine's memory (PostgreSQL's own advice for a server
# with 1 GB or more), within these bounds. The ingest of a live fleet touches each site's newest page of the readings
# key and its status row, which is far more than PostgreSQL's default of 128MB holds for 100,000 sites.
SHARED_BUFFERS_MIN_MB = 128
SHARED_BUFFERS_MAX_MB = 8192
MAX_SHARDS = 1024  # LUX_COMPUTE_SHARDS, `lux compute --shards`, a full run sent by hand


class ConfigError(ValueError):
    """An environment variable holds a value Lux cannot use."""


def parse_bool(name: str, raw: str) -> bool:
    """Parse a boolean environment value strictly (true/false, yes/no, on/off, 1/0)."""
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def parse_int(name: str, raw: str, minimum: int = 0, maximum: int = 2**31) -> int:
    """Parse an integer environment value within bounds."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def parse_timezone(name: str, raw: str) -> str:
    """Check that a time zone name is known to the system's tz database."""
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be an IANA time zone such as Europe/London, got {raw!r}") from None
    return raw


# Where a container's memory limit is read: cgroup v2, then v1. An unlimited group reads "max" (v2) or a number near
# 2**63 (v1), both above any machine's memory.
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def machine_memory_mb(limit_files: tuple[Path, ...] = CGROUP_MEMORY_LIMITS) -> int:
    """This machine's memory in MB, or the memory limit of the container it runs in when that is lower."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in limit_files:
        try:
            limit = limit_file.read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            memory = min(memory, int(limit))
    return memory // 2**20


def machine_shared_buffers_mb() -> int:
    """The embedded PostgreSQL's default `shared_buffers`, in MB: a quarter of this machine's (or its container's)
    memory, bounded."""
    return max(SHARED_BUFFERS_MIN_MB, min(SHARED_BUFFERS_MAX_MB, machine_memory_mb() // 4))


def libpq_url(url: str) -> str:
    """Return a PostgreSQL URL in the plain libpq form psycopg understands."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    if not url.startswith("postgresql://"):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, got {url!r}")
    return url


@dataclass(frozen=True)
class Settings:
    """Configuration shared by the API, the workers, beat and the CLI."""

    database_url: str = f"postgresql://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/lux"
    redis_url: str = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
    embedded_database: bool = True
    embedded_redis: bool = True
    embedded_pg_shared_buffers_mb: int = field(default_factory=machine_shared_buffers_mb)
    timezone: str = "Europe/London"
    var_dir: Path = field(default_factory=lambda: Path("var").resolve())
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 2
    flower_host: str = "127.0.0.1"
    flower_port: int = 5555
    flower_user: str = "lux"
    flower_password: str | None = None
    log_level: str = "INFO"
    demo_sites: int = 2000
    demo_days: int = 400
    max_page_size: int = 1000
    retention_rejects_days: int = 30
    retention_runs_days: int = 90
    compute_shards: int = 4
    compute_concurrency: int = field(default_factory=lambda: os.cpu_count() or 2)
    event_concurrency: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (see the README's configuration table)."""
        env = os.environ if environ is None else environ
        base = cls()
        database_url = env.get("DATABASE_URL") or None
        redis_url = env.get("REDIS_URL") or None
        var_dir = Path(env.get("LUX_VAR_DIR", "var")).resolve()

        def number(name: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
            return parse_int(name, env[name], minimum, maximum) if env.get(name) else default

        embedded_pg_port = number("LUX_EMBEDDED_PG_PORT", EMBEDDED_PG_PORT, 1, 65535)
        embedded_redis_port = number("LUX_EMBEDDED_REDIS_PORT", EMBEDDED_REDIS_PORT, 1, 65535)
        return cls(
            database_url=libpq_url(database_url)
            if database_url
            else f"postgresql://postgres@127.0.0.1:{embedded_pg_port}/lux",
            redis_url=redis_url or f"redis://127.0.0.1:{embedded_redis_port}/0",
            embedded_database=database_url is None,
            embedded_redis=redis_url is None,
            embedded_pg_shared_buffers_mb=number("LUX_EMBEDDED_PG_SHARED_BUFFERS_MB",
                                                 base.embedded_pg_shared_buffers_mb, 16, 1_048_576),
            timezone=parse_timezone("LUX_TIMEZONE", env.get("LUX_TIMEZONE", base.timezone)),
            var_dir=var_dir,
            api_host=env.get("LUX_API_HOST", base.api_host),
            api_port=number("LUX_API_PORT", base.api_port, 1, 65535),
            api_workers=number("LUX_API_WORKERS", base.api_workers, 1, 64),
            compute_concurrency=number("LUX_COMPUTE_CONCURRENCY", base.compute_concurrency, 1, 256),
            event_concurrency=number("LUX_EVENT_CONCURRENCY", base.event_concurrency, 1, 64),
            flower_host=env.get("LUX_FLOWER_HOST", base.flower_host),
            flower_port=number("LUX_FLOWER_PORT", base.flower_port, 1, 65535),
            flower_user=env.get("LUX_FLOWER_USER", base.flower_user),
            flower_password=env.get("LUX_FLOWER_PASSWORD") or None,
            log_level=env.get("LUX_LOG_LEVEL", base.log_level).upper(),
            demo_sites=number("LUX_DEMO_SITES", base.demo_sites, 1, 10_000_000),
            demo_days=number("LUX_DEMO_DAYS", base.demo_days, 1, 20_000),
            max_page_size=base.max_page_size,
            retention_rejects_days=number("LUX_RETENTION_REJECTS_DAYS", base.retention_rejects_days, 1, 36500),
            retention_runs_days=number("LUX_RETENTION_RUNS_DAYS", base.retention_runs_days, 1, 36500),
            compute_shards=number("LUX_COMPUTE_SHARDS", base.compute_shards, 1, MAX_SHARDS),
        )

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, for SQLAlchemy."""
        return "postgresql+psycopg://" + self.database_url[len("postgresql://"):]

    @property
    def zone(self) -> ZoneInfo:
        """The fleet time zone."""
        return ZoneInfo(self.timezone)

    @property
    def embedded_pg_port(self) -> int:
        """Port of the embedded PostgreSQL (taken from the default database URL)."""
        return _port_of(self.database_url, EMBEDDED_PG_PORT)

    @property
    def embedded_redis_port(self) -> int:
        """Port of the embedded Redis (taken from the default Redis URL)."""
        return _port_of(self.redis_url, EMBEDDED_REDIS_PORT)

    def with_changes(self, **changes: object) -> Settings:
        """Return a copy with some fields replaced (tests and the stack runner use this)."""
        return replace(self, **changes)


def _port_of(url: str, default: int) -> int:
    return urlsplit(url).port or default
