"""A fleet's readings arriving at once (the morning reads), through ingest events and the real workers.

    .venv/bin/python bench/burst.py [--sites 100000] [--days 30] [--repeats 2]

Last line: `burst_two_event_processes_s=… burst_one_event_process_s=… one_vs_two=…`.

Loads --sites sites × --days days inside PostgreSQL (as bench/compute.py does, ending the day before yesterday) and
builds every result once in process. Then bursts of one reading of every site (yesterday, ten minutes apart), each
ingested in batches of 5,000 by `ingest_json` with the ingest event sent after each commit, as the API does, while a
compute worker (two processes), a status worker and an event worker consume their queues as `lux up` runs them. The
event worker has two processes (as before the events got one: the baseline) or one (the deployment's: what a burst
leaves once it has ended is spread over the compute workers, `modes.burst_spread`), alternated --repeats times after
one untimed burst. A burst is timed from its first batch until the journal and the fleet refresh requests are empty
(every recompute and the fleet refresh committed), and from its last batch's commit. Uses DATABASE_URL / REDIS_URL
when set, embedded servers otherwise. Not a test: timings vary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compute
from servers import stop_servers

from lux import ingest
from lux.compute import modes
from lux.db import Database
from lux.migrate import upgrade
from lux.timeutil import fleet_today

DB_NAME = "lux_bench_burst"
SETTLED = """SELECT NOT EXISTS (SELECT 1 FROM ingest_journal) AND NOT EXISTS (SELECT 1 FROM fleet_refresh_requests)"""
SPREAD_SHARES = "SELECT count(*) FROM compute_runs WHERE task = 'lux.compute.sweep_part' AND started_at >= %s"
SETTLE_TIMEOUT_S = 300.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2, help="timed bursts of each event worker")
    return parser.parse_args()


def build_everything(db: Database, as_of: dt.date) -> float:
    """Every result of every site, in process: two shards side by side, then the fleet's rollups and snapshots."""
    started = time.perf_counter()
    threads = [threading.Thread(target=modes.run_shard, args=(db,),
                                kwargs={"task": "bench", "task_id": None, "as_of": as_of, "shard": k, "shards": 2})
               for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    modes.run_fleet(db, task="bench", task_id=None, as_of=as_of)
    return time.perf_counter() - started


@contextmanager
def bench_database(prefix: str, db_name: str) -> Iterator[tuple[Database, Path]]:
    """The servers (embedded unless DATABASE_URL / REDIS_URL are set) and the bench's database `db_name` on them, in a
    new working directory named `prefix…`; the servers stop at the end, their logs stay."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    servers, settings = compute.setup(workdir, db_name)
    db = Database(settings)
    try:
        yield db, workdir
    finally:
        db.engine.dispose()
        stop_servers(servers)
        compute.say(f"logs kept in {workdir}")


def prepare(db: Database, sites: int, days: int) -> tuple[list, dict[str, str], dt.datetime]:
    """The bench's database migrated, `sites` × `days` loaded (ending the day before yesterday) and every result built
    in process; (the fleet's latest registers, the workers' environment, yesterday 06:00 local)."""
    from worker.app import celery_app, configure

    settings = db.settings
    upgrade(db.engine)
    configure(celery_app, settings)
    tz = settings.timezone
    yesterday = fleet_today(tz) - dt.timedelta(days=1)
    compute.say(f"loading {sites} sites × {days} days …")
    compute.load_fleet(settings.database_url, sites, days, yesterday - dt.timedelta(days=1), tz)
    compute.say(f"every result built in {build_everything(db, fleet_today(tz)):.1f}s")
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "LUX_LOG_LEVEL": "WARNING"}
    return compute.latest_registers(db), env, dt.datetime.combine(yesterday, dt.time(6, 0), ZoneInfo(tz))


def burst(db: Database, fleet: list, at: dt.datetime, number: int) -> tuple[float, float, int]:
    """One reading of every site at `at`, ingested batch by batch with each batch's event sent; (seconds from the
    first batch until everything is computed, seconds from the last batch's commit, spread shares that ran)."""
    from worker.tasks.ingest import process_events

    since = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    for i in range(0, len(fleet), compute.BATCH):
        rows = [compute.reading_json(site_id, at.isoformat(), register + capacity * 0.01 * (number + 1), 5 + pk % 27,
                                     f"M{pk}") for pk, site_id, capacity, register in fleet[i:i + compute.BATCH]]
        request_id = f"burst-{number}-{i // compute.BATCH}"
        outcome = ingest.ingest_json(db, ("[" + ",".join(rows) + "]").encode(), replace=False, request_id=request_id)
        process_events.apply_async((ingest.event_for(outcome, request_id),), ignore_result=True)
    last_commit = time.perf_counter()
    done, (shares,) = settled(db, f"burst {number}", SPREAD_SHARES, since)
    return done - started, done - last_commit, shares


def settled(db: Database, what: str, counts: str, since: dt.datetime) -> tuple[float, tuple]:
    """Wait until the journal and the fleet refresh requests are empty (every recompute and the fleet refresh
    committed), at most SETTLE_TIMEOUT_S; (`time.perf_counter()` then, the row of `counts` with `since` bound)."""
    with compute.admin_connect(db.settings.database_url) as conn:
        deadline = time.perf_counter() + SETTLE_TIMEOUT_S
        while not conn.execute(SETTLED).fetchone()[0]:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{what} not computed after {SETTLE_TIMEOUT_S:g} s")
            time.sleep(0.05)
        return time.perf_counter(), conn.execute(counts, (since,)).fetchone()


def main() -> None:
    args = parse_args()
    results: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
    with bench_database("lux-bench-burst-", DB_NAME) as (db, workdir):
        fleet, env, start = prepare(db, args.sites, args.days)
        from worker.app import celery_app

        plan = [1] + [processes for _ in range(args.repeats) for processes in (2, 1)]
        with compute.start_worker(env, workdir), compute.start_worker(env, workdir, "status", 1):
            for number, processes in enumerate(plan):
                with compute.start_worker(env, workdir, "ingest", processes) as events:
                    compute.wait_for_worker(celery_app, events, "ingest")
                    time.sleep(2)  # every process of the worker forked and consuming
                    at = start + dt.timedelta(minutes=10 * number)
                    took, tail, shares = burst(db, fleet, at, number)
                compute.say(f"burst {number} ({processes} event process{'es' if processes > 1 else ''}"
                            f"{', untimed' if number == 0 else ''}): {took:.2f}s, {tail:.2f}s after the last batch, "
                            f"{shares} spread shares")
                if number:
                    results[processes].append((took, tail, shares))
    two, one = (statistics.median(took for took, _, _ in results[n]) for n in (2, 1))
    print()
    for processes in (2, 1):
        print(f"{processes} event process{'es' if processes > 1 else ''}: bursts (s) "
              + " ".join(f"{took:.2f}" for took, _, _ in results[processes])
              + "; after the last batch (s) " + " ".join(f"{tail:.2f}" for _, tail, _ in results[processes]))
    print(f"burst_two_event_processes_s={two:.2f} burst_one_event_process_s={one:.2f} one_vs_two={one / two:.2f}")


if __name__ == "__main__":
    main()
