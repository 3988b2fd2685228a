"""The `lux` command line: what operators do by hand."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import click

from lux.config import Settings
from lux.db import Database
from lux.logging import configure_logging


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Lux: backend of a solar-fleet operations team."""
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings.from_env()
    configure_logging(settings.log_level)
    ctx.obj = settings


@main.command()
@click.pass_obj
def up(settings: Settings) -> None:
    """Run the whole stack (embedded servers when DATABASE_URL/REDIS_URL are unset) until Ctrl-C."""
    from lux.stack import run_stack

    sys.exit(run_stack(settings))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to migrate to.")
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from lux.migrate import upgrade

    database = Database(settings)
    upgrade(database.engine, revision)
    click.echo(f"database migrated to {revision}")


@main.group()
def token() -> None:
    """API clients and their tokens."""


@token.command("create")
@click.argument("name")
@click.option("--scopes", required=True, help="Comma-separated: ingest, read, operate, admin.")
@click.pass_obj
def token_create(settings: Settings, name: str, scopes: str) -> None:
    """Create an API client NAME and print its token (shown this once only)."""
    from lux.tokens import TokenError, create_client

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    try:
        with Database(settings).session_scope() as session:
            secret = create_client(session, name, wanted)
    except TokenError as error:
        raise click.UsageError(str(error)) from None
    click.echo(secret)


@main.group()
def demo() -> None:
    """Demo fleet."""


@demo.command("seed")
@click.option("--sites", type=click.IntRange(1, 10_000_000), default=None, help="Default: LUX_DEMO_SITES.")
@click.option("--days", type=click.IntRange(1, 20_000), default=None, help="Default: LUX_DEMO_DAYS.")
@click.option("--end-day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (default: today).")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed (same seed, same fleet).")
@click.option("--replace", is_flag=True, help="Delete existing demo sites and their readings first.")
@click.pass_obj
def demo_seed(settings: Settings, sites: int | None, days: int | None, end_day: dt.datetime | None,
              seed: int, replace: bool) -> None:
    """Write a demo fleet with injected faults (recorded in demo_faults) by bulk COPY."""
    from lux.demo import DemoExists, seed_demo

    started = time.perf_counter()
    last_day = end_day.date() if end_day else dt.datetime.now(settings.zone).date()
    try:
        with Database(settings).raw_connection() as conn:
            result = seed_demo(conn, sites=sites or settings.demo_sites, days=days or settings.demo_days,
                               timezone=settings.timezone, end_day=last_day, seed=seed, replace=replace)
    except DemoExists as error:
        raise click.UsageError(f"{error}; use --replace to rebuild them") from None
    click.echo(json.dumps({"sites": result.sites, "readings": result.readings, "faults": result.faults,
                           "seconds": round(time.perf_counter() - started, 2)}))


@main.group()
def worker() -> None:
    """Celery workers."""


@worker.command("check")
@click.option("--timeout", type=float, default=30.0, show_default=True)
def worker_check(timeout: float) -> None:
    """Send lux.maintenance.selfcheck through the broker and print what a worker answers."""
    from worker.tasks.maintenance import selfcheck

    result = selfcheck.delay()
    click.echo(json.dumps({"task_id": result.id, "result": result.get(timeout=timeout)}))
