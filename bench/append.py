"""Incremental recompute of one appended day, for a fleet reading every half hour against one reading once a day.

    .venv/bin/python bench/append.py [--sites 10000] [--days 30] [--per-day 48] [--repeats 3]

Last lines: `append_48_per_day_s=… append_1_per_day_s=… dense_vs_daily=…`, then
`in_day_read_again_s=… in_day_seeded_s=… read_again_vs_seeded=…`.

Uses DATABASE_URL when set (a dedicated database `lux_bench_append` on that server, made anew), otherwise an
embedded PostgreSQL under a temporary directory. Loads two fleets of --sites sites × --days days inside PostgreSQL:
one with --per-day readings a day (every half hour by default), one with a single evening reading a day,
and builds every result once. Then, --repeats times and alternating the fleets: one more day of readings for
every site of a fleet, recomputed from that day as an ingest event or the sweep does (`recompute_sites`),
timed per statement, then rolled back. The baseline is the once-a-day fleet: a recompute that reads only what
the new day needs costs about the same for both, however many readings a day a site sends.

Then, as many times, a reading arriving late in a day: one more reading of every site of the --per-day fleet on its
last loaded day, recomputed from that day with what its journal entry says (`readings_after`: the day is seeded, its
stored row extended) and without it (the day read again), alternated and rolled back.
Not a test: timings vary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute import StatementTimer
from servers import start_servers, stop_servers

from lux.compute import modes
from lux.compute.engine import recompute_sites
from lux.compute.params import Params
from lux.config import Settings
from lux.db import Database
from lux.embedded import ensure_database
from lux.migrate import upgrade

DB_NAME = "lux_bench_append"
FIRST_DAY = dt.date(2026, 6, 1)
DENSE, DAILY = "dense", "daily"  # site id prefixes of the two fleets

# `:per_day` readings a day from local midnight, every 24 h / per_day, for `:days` days from `:first`; the
# register grows 0.3 kWh a reading.
READINGS = text("""
    INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level, network)
    SELECT s.id, (CAST(:first AS date) + d)::timestamp AT TIME ZONE :tz + h * (interval '1 day' / :per_day)
                 + CASE WHEN :per_day = 1 THEN interval '20 hours' ELSE interval '0' END,
           (d * :per_day + h) * 0.3, 5 + s.id % 27, 'EE'
      FROM sites s, generate_series(0, :days - 1) d, generate_series(0, :per_day - 1) h
     WHERE s.site_id LIKE :prefix || '-%'
""")


def load(db: Database, args: argparse.Namespace) -> None:
    """Both fleets, their readings and every result as of the last loaded day."""
    with db.session_scope() as session:
        for prefix in (DENSE, DAILY):
            session.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) "
                                 "SELECT :prefix || '-' || g, 'bench', 4 FROM generate_series(1, :n) g"),
                            {"prefix": prefix, "n": args.sites})
        for prefix, per_day in ((DENSE, args.per_day), (DAILY, 1)):
            session.execute(READINGS, {"first": FIRST_DAY, "days": args.days, "per_day": per_day, "prefix": prefix,
                                       "tz": db.settings.timezone})
    vacuum(db)
    last_day = FIRST_DAY + dt.timedelta(days=args.days - 1)
    modes.run_shard(db, task="bench.append", task_id=None, as_of=last_day, shard=0, shards=1)
    vacuum(db)


def vacuum(db: Database) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))


@contextmanager
def rolled_back(db: Database) -> Iterator[Session]:
    """A session whose transaction is rolled back at the end, whatever happens: each measurement leaves the
    database as it found it."""
    session = db.sessionmaker()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def fleet_pks(session: Session, prefix: str) -> list[int]:
    """The site pks of one fleet."""
    return session.execute(text("SELECT id FROM sites WHERE site_id LIKE :prefix || '-%'"),
                           {"prefix": prefix}).scalars().all()


def append_day(db: Database, args: argparse.Namespace, prefix: str, per_day: int) -> tuple[float, StatementTimer]:
    """One more day for every site of a fleet, recomputed and rolled back: (seconds of the recompute, its timer)."""
    day = FIRST_DAY + dt.timedelta(days=args.days)
    with rolled_back(db) as session:
        session.execute(READINGS, {"first": day, "days": 1, "per_day": per_day, "prefix": prefix,
                                   "tz": db.settings.timezone})
        pks = fleet_pks(session, prefix)
        timer = StatementTimer(db)
        started = time.perf_counter()
        with timer:
            recompute_sites(session, Params.of(db.settings), day, sites=dict.fromkeys(pks, day))
        return time.perf_counter() - started, timer


# One more reading of every site of a fleet at 23:45 on `:day`, after its last of that day.
LATE_IN_THE_DAY = text("""
    INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level, network)
    SELECT s.id, CAST(:day AS timestamp) AT TIME ZONE :tz + interval '23 hours 45 minutes', :register, 12, 'EE'
      FROM sites s WHERE s.site_id LIKE :prefix || '-%'
""")


def reading_in_the_day(db: Database, args: argparse.Namespace, seeded: bool) -> float:
    """One more reading of every site of the --per-day fleet, late in its last loaded day, recomputed seeded or not
    and rolled back: seconds of the recompute."""
    day = FIRST_DAY + dt.timedelta(days=args.days - 1)
    at = dt.datetime.combine(day, dt.time(23, 45), ZoneInfo(db.settings.timezone))
    with rolled_back(db) as session:
        session.execute(LATE_IN_THE_DAY, {"day": day, "tz": db.settings.timezone, "prefix": DENSE,
                                          "register": args.days * args.per_day * 0.3})
        pks = fleet_pks(session, DENSE)
        started = time.perf_counter()
        recompute_sites(session, Params.of(db.settings), day, sites=dict.fromkeys(pks, day),
                        readings_after=dict.fromkeys(pks, at) if seeded else None)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env_settings = Settings.from_env()
    servers, pg_url, _ = start_servers(env_settings.with_changes(embedded_redis=False),
                                       Path(tempfile.mkdtemp(prefix="lux-bench-append-")))
    try:
        admin = pg_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        ensure_database(admin, DB_NAME)
        db = Database(env_settings.with_changes(database_url=pg_url.rsplit("/", 1)[0] + f"/{DB_NAME}"))
        upgrade(db.engine)
        started = time.perf_counter()
        load(db, args)
        print(f"loaded and built {2 * args.sites} sites × {args.days} days "
              f"({args.per_day} and 1 readings a day) in {time.perf_counter() - started:.1f}s")
        runs: dict[str, list[float]] = {DENSE: [], DAILY: []}
        for repeat in range(args.repeats):
            for prefix, per_day in ((DENSE, args.per_day), (DAILY, 1)):
                seconds, timer = append_day(db, args, prefix, per_day)
                runs[prefix].append(seconds)
                if repeat == args.repeats - 1:
                    timer.report(f"{prefix} fleet ({per_day} a day), last run", top=5)
        for prefix in runs:
            print(f"{prefix} runs (s): " + " ".join(f"{s:.2f}" for s in runs[prefix]))
        dense, daily = statistics.median(runs[DENSE]), statistics.median(runs[DAILY])
        in_day: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for seeded in in_day:
                in_day[seeded].append(reading_in_the_day(db, args, seeded))
        for seeded, label in ((False, "read again"), (True, "seeded")):
            print(f"a reading late in the day, {label}, runs (s): " + " ".join(f"{s:.2f}" for s in in_day[seeded]))
        again, seeded_s = statistics.median(in_day[False]), statistics.median(in_day[True])
        print(f"append_{args.per_day}_per_day_s={dense:.2f} append_1_per_day_s={daily:.2f} "
              f"dense_vs_daily={dense / daily:.2f}")
        print(f"in_day_read_again_s={again:.2f} in_day_seeded_s={seeded_s:.2f} "
              f"read_again_vs_seeded={again / seeded_s:.2f}")
        db.engine.dispose()
    finally:
        stop_servers(servers)


if __name__ == "__main__":
    main()
