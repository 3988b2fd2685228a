"""A backlog of rounds naming the same sites (the workers away while a fleet kept reporting), swept.

    .venv/bin/python bench/backlog.py [--sites 20000] [--days 30] [--rounds 6] [--repeats 2]

Last line: `backlog_spread_s=… backlog_one_recompute_s=… spread_vs_one=…`.

Loads --sites sites × --days days inside PostgreSQL (as bench/compute.py does, ending the day before yesterday) and
builds every result once in process. Then, each time, --rounds rounds of one reading of every site (yesterday, ten
minutes apart) are ingested by `ingest_json` in batches of 5,000 with no event sent, as while the workers were away:
a backlog whose entries each site is named by --rounds times. It is swept by `lux.ingest.sweep` (run here, as beat's
worker runs it) either spread over `LUX_COMPUTE_SHARDS` parts that a compute worker of two processes takes (the
deployment's), or with one part: one recompute of the whole backlog (the baseline), alternated --repeats times. A
sweep is timed from its start until the journal and the fleet refresh requests are empty. Uses DATABASE_URL /
REDIS_URL when set, embedded servers otherwise. Not a test: timings vary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import burst
import compute

from lux import ingest
from lux.db import Database

DB_NAME = "lux_bench_backlog"
RECOMPUTED = """SELECT count(*), coalesce(sum(sites), 0) FROM compute_runs
                 WHERE task IN ('lux.ingest.sweep', 'lux.compute.sweep_part') AND sites > 0 AND started_at >= %s"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=6, help="readings of every site in one backlog")
    parser.add_argument("--repeats", type=int, default=2, help="timed sweeps of each kind")
    return parser.parse_args()


def ingest_rounds(db: Database, fleet: list, first: dt.datetime, rounds: int, number: int) -> int:
    """`rounds` readings of every site, ten minutes apart from `first`, batch by batch, no event sent; entries
    written."""
    entries = 0
    for r in range(rounds):
        at = first + dt.timedelta(minutes=10 * r)
        for i in range(0, len(fleet), compute.BATCH):
            step = number * rounds + r + 1  # the register grows a little each round
            rows = [compute.reading_json(site_id, at.isoformat(), register + capacity * 0.001 * step, 5 + pk % 27,
                                         f"M{pk}") for pk, site_id, capacity, register in fleet[i:i + compute.BATCH]]
            ingest.ingest_json(db, ("[" + ",".join(rows) + "]").encode(), replace=False,
                               request_id=f"away-{number}-{r}-{i // compute.BATCH}")
            entries += 1
    return entries


def sweep_backlog(db: Database, parts: int) -> tuple[float, int, int]:
    """`lux.ingest.sweep` of the whole backlog in `parts` parts; (seconds until everything is computed, recomputes
    that took sites, sites they took)."""
    from worker.tasks.ingest import sweep

    since = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    sweep.apply(kwargs={"older_than_s": 0, "parts": parts}).get()
    done, (runs, sites) = burst.settled(db, "backlog", RECOMPUTED, since)
    return done - started, runs, sites


def main() -> None:
    args = parse_args()
    results: dict[str, list[tuple[float, int, int]]] = {"spread": [], "one": []}
    with burst.bench_database("lux-bench-backlog-", DB_NAME) as (db, workdir):
        fleet, env, start = burst.prepare(db, args.sites, args.days)
        from worker.app import celery_app

        plan = ["spread"] + [kind for _ in range(args.repeats) for kind in ("one", "spread")]
        with compute.start_worker(env, workdir) as worker:
            compute.wait_for_worker(celery_app, worker)
            for number, kind in enumerate(plan):
                first = start + dt.timedelta(minutes=10 * args.rounds * number)
                entries = ingest_rounds(db, fleet, first, args.rounds, number)
                took, runs, sites = sweep_backlog(db, db.settings.compute_shards if kind == "spread" else 1)
                compute.say(f"backlog {number} ({entries} entries, {kind}{', untimed' if number == 0 else ''}): "
                            f"{took:.2f}s, {runs} recomputes of {sites:,} sites in all")
                if number:
                    results[kind].append((took, runs, sites))
    report(results, "sweeps", "backlog")


def report(results: dict[str, list[tuple[float, int, int]]], what: str, name: str) -> None:
    """The timed runs of each kind ("spread", "one": seconds, recomputes, sites) and the sites they recomputed, then
    the last line: `{name}_spread_s=… {name}_one_recompute_s=… spread_vs_one=…` (medians)."""
    spread, one = (statistics.median(took for took, _, _ in results[kind]) for kind in ("spread", "one"))
    print()
    for kind in ("spread", "one"):
        print(f"{kind}: {what} (s) " + " ".join(f"{took:.2f}" for took, _, _ in results[kind])
              + "; sites recomputed " + " ".join(f"{sites:,}" for _, _, sites in results[kind]))
    print(f"{name}_spread_s={spread:.2f} {name}_one_recompute_s={one:.2f} spread_vs_one={spread / one:.2f}")


if __name__ == "__main__":
    main()
