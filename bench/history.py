"""A site edit that has much of the fleet recomputed from its first day (an import of new regions), through the workers.

    .venv/bin/python bench/history.py [--sites 20000] [--days 90] [--repeats 2]

Last line: `history_spread_s=… history_one_recompute_s=… spread_vs_one=…`.

Loads --sites sites × --days days inside PostgreSQL (as bench/compute.py does) and builds every result once in
process. Then, each time, every site is journalled from its first day (`mark_dirty`, as an import that changed every
site's region does) and the entry is recomputed either as its ingest event now takes it (`lux.ingest.process_events`
on an event worker of one process: split by class of sites into `lux.compute.sweep_part` recomputes that a compute
worker of two processes takes, `modes.history_spread`), or in one recompute as an event took it before (the same
entry as one `lux.compute.sweep_part`, then the fleet refresh: the baseline), alternated --repeats times after one
untimed spread. Each is timed from the send until the journal and the fleet refresh requests are empty. Uses
DATABASE_URL / REDIS_URL when set, embedded servers otherwise. Not a test: timings vary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import backlog
import burst
import compute
from sqlalchemy import text

from lux.compute import modes
from lux.db import Database
from lux.ingest.journal import journal_event, mark_dirty

DB_NAME = "lux_bench_history"
RECOMPUTED = """SELECT count(*), coalesce(sum(sites), 0) FROM compute_runs
                 WHERE task IN ('lux.compute.sweep_part', 'lux.ingest.process_events') AND sites > 0
                   AND started_at >= %s"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=2, help="timed recomputes of each kind")
    args = parser.parse_args()
    if args.sites < modes.SWEEP_SPLIT_MIN_SITES:
        parser.error(f"--sites must be at least {modes.SWEEP_SPLIT_MIN_SITES:,}: an event spreads no smaller entry")
    return args


def recompute_history(db: Database, by_event: bool, number: int) -> tuple[float, int, int]:
    """Every site journalled from its first day, then recomputed by its event (`by_event`) or by one recompute;
    (seconds from the send until everything is computed, recomputes that took sites, sites they took)."""
    from worker.tasks.ingest import process_events, spread

    with db.session_scope() as session:
        pks = list(session.execute(text("SELECT id FROM sites ORDER BY id")).scalars())
        entry = mark_dirty(session, pks, reason=f"history-{number}")
    since = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    if by_event:
        process_events.apply_async((journal_event(f"history-{number}", entry, {}),), ignore_result=True)
    else:
        spread([entry])  # one `sweep_part` of the whole entry, then the fleet refresh
    done, (runs, sites) = burst.settled(db, f"history {number}", RECOMPUTED, since)
    return done - started, runs, sites


def main() -> None:
    args = parse_args()
    results: dict[str, list[tuple[float, int, int]]] = {"spread": [], "one": []}
    with burst.bench_database("lux-bench-history-", DB_NAME) as (db, workdir):
        _, env, _ = burst.prepare(db, args.sites, args.days)
        from worker.app import celery_app

        plan = ["spread"] + [kind for _ in range(args.repeats) for kind in ("one", "spread")]
        with compute.start_worker(env, workdir) as worker, \
                compute.start_worker(env, workdir, queues="ingest", concurrency=1) as events:
            compute.wait_for_worker(celery_app, worker)
            compute.wait_for_worker(celery_app, events, queues="ingest")
            for number, kind in enumerate(plan):
                took, runs, sites = recompute_history(db, kind == "spread", number)
                compute.say(f"history {number} ({kind}{', untimed' if number == 0 else ''}): {took:.2f}s, "
                            f"{runs} recomputes of {sites:,} sites in all")
                if number:
                    results[kind].append((took, runs, sites))
    backlog.report(results, "recomputes", "history")


if __name__ == "__main__":
    main()
