"""The `lux` command line: what operators do by hand."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import click

from lux.config import MAX_SHARDS, Settings
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


@main.command()
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="As-of day (default: today in LUX_TIMEZONE).")
@click.option("--site", "site_ids", multiple=True, help="Recompute only this site_id (repeatable).")
@click.option("--from", "from_day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Rebuild from this day (default: each site's first day).")
@click.option("--to", "to_day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="End of a backfill range: fleet rollups are rebuilt up to it (default: the as-of day).")
@click.option("--full", is_flag=True, help="The sharded full recompute of the fleet, as beat runs it nightly.")
@click.option("--shards", type=click.IntRange(1, MAX_SHARDS), default=None,
              help="Shards of --full (LUX_COMPUTE_SHARDS).")
@click.option("--queue", is_flag=True, help="Send to the workers and print the task id instead of running here.")
@click.pass_obj
def compute(settings: Settings, as_of: dt.datetime | None, site_ids: tuple[str, ...], from_day: dt.datetime | None,
            to_day: dt.datetime | None, full: bool, shards: int | None, queue: bool) -> None:
    """Run a computation for a day or a range (backfill), here or on the workers; prints what it did."""
    from lux.compute import modes
    from lux.sites import site_pks_of
    from lux.timeutil import fleet_today

    database = Database(settings)
    today = fleet_today(settings.timezone)
    day = as_of.date() if as_of else today
    start, end = (value.date() if value else None for value in (from_day, to_day))
    if full and (site_ids or start or end):
        raise click.UsageError("--full recomputes every site from its first day; drop --site/--from/--to.")
    if problems := modes.explicit_run_problems(day, start, end, today):
        raise click.UsageError("; ".join(f"--{name.replace('_', '-')}: {why}" for name, why in problems.items()))
    pks = None
    if site_ids:
        with database.session_scope() as session:
            found = site_pks_of(session, site_ids)
        if unknown := sorted(set(site_ids) - set(found)):
            raise click.UsageError(f"unknown site_id(s): {', '.join(unknown)}")
        pks = sorted(found.values())
    if queue:
        click.echo(json.dumps(_queue_compute(day, pks, start, end, full, shards)))
        return
    if full:
        count = shards or settings.compute_shards
        results = [modes.run_shard(database, task="lux.compute.shard", task_id=None, as_of=day, shard=index,
                                   shards=count) for index in range(count)]
        results.append(modes.run_fleet(database, task="lux.compute.fleet", task_id=None, as_of=day))
        click.echo(json.dumps({"as_of": day.isoformat(), "runs": results}))
        return
    click.echo(json.dumps(modes.run_explicit(database, task="lux.compute.run", task_id=None, as_of=day,
                                             site_pks=pks, from_day=start, to_day=end)))


def _queue_compute(day: dt.date, pks: list[int] | None, start: dt.date | None, end: dt.date | None, full: bool,
                   shards: int | None) -> dict:
    from worker.tasks.compute import full as full_task
    from worker.tasks.compute import run

    if full:
        task, result = full_task, full_task.delay(as_of=day.isoformat(), shards=shards)
    else:
        task, result = run, run.delay(as_of=day.isoformat(), site_pks=pks, from_day=start and start.isoformat(),
                                      to_day=end and end.isoformat())
    return {"task_id": result.id, "task": task.name}


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


@main.group()
def pvgis() -> None:
    """Expected generation from PVGIS."""


@pvgis.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--site", "site_id", default=None,
              help="Site of the FILE (only with one FILE; default: the file name without extension).")
@click.pass_obj
def pvgis_import(settings: Settings, files: tuple[str, ...], site_id: str | None) -> None:
    """Store each PVGIS PVcalc JSON FILE as the expected monthly generation of its site.

    The site is the file name without extension (SITE-001.json → SITE-001), or --site. Every file
    is tried: bad files are reported with the reason, good ones stored, and the exit status is 1
    if any file failed.
    """
    from pathlib import Path

    from lux.expected import ExpectedGenerationError

    if site_id is not None and len(files) > 1:
        raise click.UsageError("--site names the site of one FILE; name several files after their sites.")
    failed = 0
    with Database(settings).session_scope() as session:
        for file in files:
            target = site_id or Path(file).stem
            try:
                click.echo(_import_pvgis_file(session, file, target))
            except ExpectedGenerationError as error:
                failed += 1
                click.echo(f"{target}: failed ({file}): {error}", err=True)
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) failed", err=True)
        sys.exit(1)


def _import_pvgis_file(session, file: str, site_id: str) -> str:
    """Store one PVGIS file for `site_id` (committed) and return the line to print."""
    from lux.expected import ExpectedGenerationError, load_pvgis_file, store_expected
    from lux.sites import get_site

    values = load_pvgis_file(file)
    site = get_site(session, site_id)
    if site is None:
        raise ExpectedGenerationError(f"no site with site_id {site_id!r}")
    store_expected(session, site.id, values, "pvgis")
    return f"{site_id}: imported {len(values)} months ({sum(values):.1f} kWh/year)"
