"""Computation benchmark: full rebuild, nightly refresh, status, set-based vs per-site loop, freshness.

    .venv/bin/python bench/compute.py [--sites 100000] [--days 365] [--loop-sites 10000] [--shards 4]
                                      [--freshness-batches 100] [--probe-interval 2] [--round-minutes 10]
                                      [--alone-seconds 30] [--skip-freshness] [--reuse] [--profile-shard]
                                      [--keep-data] [--skip-reference]

Uses DATABASE_URL / REDIS_URL when set (a dedicated database `lux_bench_compute` on that server;
the Celery queues of REDIS_URL's database are emptied first), otherwise embedded servers under
a temporary directory (their data removed after the run unless --keep-data; the logs stay). Bulk
loads sites × days readings inside PostgreSQL (one evening reading per site and day, a few faulty
meters), then measures, with a real Celery worker:

- this machine against the one the issue's targets were designed on: the issue's reference statements (see
  REFERENCES) on the loaded readings, one core each, and what two cores do against one (`core_scaling`, the median
  of three); the report then gives full_s and nightly_s over the reference each target was set beside, with the
  target's own ratio;
- full_s: `lux.compute.full` (a chord of shards, then the fleet task) from send to fleet task done;
- nightly_s: the sweep of one new day of readings for every site (ingested beforehand): its shares of the
  journal entries recomputed two at a time, as a worker runs its chord, then the fleet refresh; it starts
  after a checkpoint, as a real night does (see start_of_night);
- nightly_again_s: the same for the day after, once the result tables are vacuumed and after a checkpoint too
  (steady state);
- status_s: `refresh_statuses` for every site, one transaction;
- setbased_vs_loop: the set-based status of --loop-sites sites against a per-site loop (one
  indexed query per site, status computed in Python, as the original product did): the two alternated
  SETBASED_RUNS times, each way's fastest run compared;
- freshness: from `POST /readings` returning to the probe site's new status being readable, while
  a paced background load of new readings for the other sites runs through the same API (rounds of a reading of
  every site, --round-minutes apart from yesterday's start, as a live fleet's: see free_instants), with what the
  status worker's follows did meanwhile (how many,
  how many sites each, how long: a site's cost under the load) and the fleet refreshes the recomputes owed. A probe
  starts every --probe-interval seconds whether the ones before have shown or not (so each lands at an arbitrary
  point of the follows' cycle), posts one reading of its own site and polls its status every PROBE_POLL_S. The
  probes see their own sites only; how far the background sites' statuses are behind is sampled beside them (the
  fleet's lag: see FleetLag). Then, as the baseline of the same run, the same load for --alone-seconds with the
  recompute workers (compute and events) consuming nothing (`cancel_consumer`, once their running tasks end): what
  the ingest reaches alone on this machine, against what it reaches beside the recomputes.

`--reuse` keeps an already loaded database of the same size (results, journal and readings added
by a previous run are cleared, so every run starts from the same state). Not a test: timings vary.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import redis
from sqlalchemy import event, text
from sqlalchemy.sql.elements import TextClause

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servers import free_port, start_servers, stop_servers  # noqa: E402

from lux import tokens  # noqa: E402
from lux.compute import anomalies, daily, engine, modes, performance, rollups, runs, snapshots, status  # noqa: E402
from lux.compute.params import Params  # noqa: E402
from lux.config import Settings  # noqa: E402
from lux.db import Database  # noqa: E402
from lux.embedded import ensure_database  # noqa: E402
from lux.ingest import ingest_json  # noqa: E402
from lux.ingest import journal as ingest_journal  # noqa: E402
from lux.migrate import upgrade  # noqa: E402
from lux.postcodes import REGIONS  # noqa: E402
from lux.timeutil import fleet_today  # noqa: E402

DB_NAME = "lux_bench_compute"
BATCH = 5000
WORKER_CONCURRENCY = 2  # the bench worker's processes, as many as this machine's cores
PROFILE_SHARDS = 20
LOAD_CHUNK = 5000  # sites per INSERT … SELECT
SETBASED_RUNS = 3
PROBE_POLL_S = 0.1  # a probe's status polls: the resolution of its delay
PROBE_TIMEOUT_S = 60.0  # a probe not shown by then is missed
NETWORKS = ("EE", "Vodafone", "O2", "Three")
TARGETS = {"full_s": 90.0, "nightly_s": 5.0, "status_s": 1.0, "setbased_vs_loop": 10.0, "freshness_p95_s": 2.0}
RESULT_TABLES = ("site_days", "site_tails", "site_status", "anomalies", "monthly_performance", "daily_rollups",
                 "fleet_snapshots", "fleet_refresh_requests", "compute_runs", "compute_locks", "ingest_journal",
                 "ingest_rejects", "api_clients", "status_follow_cursor")



def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- loading

META = """
    CREATE TABLE IF NOT EXISTS bench_compute_meta (
        sites int NOT NULL, days int NOT NULL, first_day date NOT NULL, last_day date NOT NULL,
        loaded_at timestamptz NOT NULL DEFAULT now())
"""

SITES = """
    INSERT INTO sites (site_id, name, region, capacity_kwp, install_date, active)
    SELECT 'C' || lpad(g::text, 6, '0'), 'Bench site ' || g,
           CASE WHEN g %% 500 = 0 THEN NULL WHEN g %% 499 = 0 THEN 'TBC' ELSE (%(regions)s::text[])[1 + g %% 12] END,
           2 + (g * 37 %% 401) / 100.0, %(first_day)s::date - (g %% 700), g %% 1000 <> 0
      FROM generate_series(1, %(sites)s) g
"""

# Daily yield y = 2.6 + 1.6·sin(2π(doy − 80)/365) kWh/kWp (1.0 … 4.2); the register is its integral
# (closed form) plus a deterministic level noise below 0.8 kWh/kWp, so it always increases. Faults:
# id % 97 flat for 6 days mid-history then catching up (stuck register, spike); id % 211 stuck for
# the last 6 days (zero_read); id % 89 a 4-day gap; id % 53 silent for the last 6 days (no_coms);
# id % 401 a rollback of 150 kWh; id % 50 low signal.
READINGS = """
    INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level, network, meter_serial)
    SELECT s.id,
           ((%(first_day)s::date + g.d) + time '20:30' + (s.id %% 60) * interval '1 minute') AT TIME ZONE %(tz)s,
           round((1000 + s.id %% 5000
                  + s.capacity_kwp * (2.6 * g.e - 1.6 * 365 / (2 * pi())
                        * (cos(2 * pi() * (%(doy0)s + g.e - 80) / 365) - cos(2 * pi() * (%(doy0)s - 80) / 365)))
                  + s.capacity_kwp * 0.8 * ((s.id * 7919 + g.e * 104729) %% 1000) / 1000.0
                  - CASE WHEN s.id %% 401 = 0 AND g.d >= %(days)s / 2 THEN 150 ELSE 0 END)::numeric, 3)::float8,
           CASE WHEN (s.id + g.d) %% 101 = 0 THEN NULL
                WHEN s.id %% 50 = 0 THEN 5 + (s.id + g.d) %% 5
                ELSE 5 + (s.id * 31 + g.d * 17) %% 27 END,
           (%(networks)s::text[])[1 + (s.id + g.d / 90) %% 4],
           'M' || s.id
      FROM sites s
     CROSS JOIN LATERAL (
           SELECT d, CASE WHEN s.id %% 97 = 0 AND d BETWEEN s.id %% 200 * %(days)s / 400
                                                        AND s.id %% 200 * %(days)s / 400 + 5
                               THEN s.id %% 200 * %(days)s / 400
                          WHEN s.id %% 211 = 0 THEN least(d, %(days)s - 6)
                          ELSE d END AS e
             FROM generate_series(0, %(days)s - 1) d) g
     WHERE s.id BETWEEN %(lo)s AND %(hi)s
       AND NOT (s.id %% 89 = 0 AND g.d BETWEEN 1 + s.id %% 300 * %(days)s / 400 AND 4 + s.id %% 300 * %(days)s / 400)
       AND NOT (s.id %% 53 = 0 AND g.d >= %(days)s - 6)
"""

EXPECTED = """
    INSERT INTO expected_generation (site_pk, month, expected_kwh, source)
    SELECT s.id, m,
           round((s.capacity_kwp * (2.6 + 1.6 * sin(2 * pi() * (30.4 * m - 15 - 80) / 365))
                  * extract(day FROM make_date(2025, m, 1) + interval '1 month' - interval '1 day')
                  * CASE WHEN s.id % 37 = 0 THEN 1.6 ELSE 1.0 END)::numeric, 1)::float8,
           'bench'
      FROM sites s CROSS JOIN generate_series(1, 12) m
"""


def admin_connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def start_of_night(url: str) -> None:
    """A checkpoint, as every real night follows one (checkpoints come minutes apart, nights a day): the first change
    of a page after a checkpoint writes its full image to the WAL. Without it, a night measured seconds after the one
    before would find most of its pages' images already written (a 25,000-site share of a night wrote 251–257 MB of
    WAL after a checkpoint, 23 MB right after another share)."""
    with admin_connect(url) as conn:
        conn.execute("CHECKPOINT")


def stored_meta(url: str) -> tuple[int, int, dt.date, dt.date] | None:
    with admin_connect(url) as conn:
        conn.execute(META)
        return conn.execute("SELECT sites, days, first_day, last_day FROM bench_compute_meta").fetchone()


def load_fleet(url: str, sites: int, days: int, last_day: dt.date, tz: str) -> dict[str, float]:
    """Empty every table, then generate sites, readings and expected generation inside PostgreSQL."""
    first_day = last_day - dt.timedelta(days=days - 1)
    timings: dict[str, float] = {}
    with admin_connect(url) as conn:
        conn.execute(META)  # where the load is recorded (emptied with the other tables next)
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute(SITES, {"regions": list(REGIONS), "first_day": first_day, "sites": sites})
        started = time.perf_counter()
        conn.execute(EXPECTED)
    timings["sites+expected"] = time.perf_counter() - started
    started = time.perf_counter()
    chunks = [(lo, min(lo + LOAD_CHUNK - 1, sites)) for lo in range(1, sites + 1, LOAD_CHUNK)]
    bound = {"first_day": first_day, "tz": tz, "doy0": first_day.timetuple().tm_yday, "days": days,
             "networks": list(NETWORKS)}
    threads = [threading.Thread(target=_load_chunks, args=(url, chunks[i::2], bound)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    timings["readings"] = time.perf_counter() - started
    started = time.perf_counter()
    with admin_connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("VACUUM (ANALYZE) readings")
        conn.execute("VACUUM (ANALYZE) sites")
        conn.execute("VACUUM (ANALYZE) expected_generation")
        conn.execute("INSERT INTO bench_compute_meta (sites, days, first_day, last_day) VALUES (%s, %s, %s, %s)",
                     (sites, days, first_day, last_day))
    timings["vacuum_analyze"] = time.perf_counter() - started
    return timings


def _load_chunks(url: str, chunks: list[tuple[int, int]], bound: dict) -> None:
    with admin_connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET jit = off")
        for lo, hi in chunks:
            conn.execute(READINGS, {**bound, "lo": lo, "hi": hi})


def reset_for_reuse(url: str, last_day: dt.date, tz: str) -> None:
    """Drop what a previous run added: readings after the loaded days, results, journal, clients."""
    with admin_connect(url) as conn:
        deleted = conn.execute("DELETE FROM readings WHERE reading_at >= (%s::date + 1)::timestamp AT TIME ZONE %s",
                               (last_day, tz)).rowcount
        conn.execute(f"TRUNCATE {', '.join(RESULT_TABLES)} RESTART IDENTITY")
        if deleted:
            conn.execute("VACUUM (ANALYZE) readings")
    say(f"reuse: removed {deleted} readings added by an earlier run, emptied the result tables")


# Server settings the figures depend on, printed with them: a server without autovacuum (some test servers) lets the
# tables the freshness load rewrites bloat for the whole run, which no deployment of Lux does.
SERVER_SETTINGS = ("autovacuum", "shared_buffers", "max_wal_size", "wal_buffers", "work_mem", "max_worker_processes")


def prepare_database(url: str, args: argparse.Namespace, tz: str) -> tuple[dt.date, dt.date]:
    """The loaded (first_day, last_day), loading the fleet unless a matching one is reused."""
    with admin_connect(url) as conn:
        say("server: " + " ".join(f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}" for name in SERVER_SETTINGS))
    meta = stored_meta(url)
    if args.reuse and meta and meta[:2] == (args.sites, args.days):
        reset_for_reuse(url, meta[3], tz)
        return meta[2], meta[3]
    # The two nights' days follow the loaded ones; yesterday and today stay free for the freshness load.
    last_day = fleet_today(tz) - dt.timedelta(days=4)
    say(f"loading {args.sites} sites × {args.days} days ({args.sites * args.days:,} readings) …")
    timings = load_fleet(url, args.sites, args.days, last_day, tz)
    say("load: " + " ".join(f"{k}={v:.1f}s" for k, v in timings.items()))
    return last_day - dt.timedelta(days=args.days - 1), last_day


# ---------------------------------------------------------------------------------------------- the machine

# The figures the issue's targets were designed with, "measured here" on the machine it was written on, each a
# statement over the loaded readings on one core: the same statements on this machine tell how fast it is against
# that one (the issue does not give its statements' text, so these are this bench's reading of its words). The rollup
# writes into a new table keyed like `site_days` (logged, as a result table is), in a transaction rolled back.
REFERENCE_SESSION = ("SET max_parallel_workers_per_gather = 0", "SET jit = off", "SET work_mem = '256MB'")
REFERENCES = {
    # "a window (LAG) over all 36.5M readings to find each site's last deltas"
    "window": (23.0, ["""
        SELECT count(*), sum(delta)
          FROM (SELECT register_kwh - lag(register_kwh) OVER w AS delta, lead(reading_at) OVER w AS next_at
                  FROM readings WINDOW w AS (PARTITION BY site_pk ORDER BY reading_at)) last
         WHERE next_at IS NULL"""]),
    # "a set-based query that reads only each site's last few readings through the primary key"
    "last_readings": (0.65, ["""
        SELECT count(*), sum(r.register_kwh)
          FROM sites s CROSS JOIN LATERAL (SELECT register_kwh FROM readings r WHERE r.site_pk = s.id
                                            ORDER BY reading_at DESC LIMIT 4) r"""]),
    # "a full daily-generation rollup of 36.5M rows by INSERT … SELECT with LAG … on one core"
    "rollup": (56.0, ["""
        CREATE TABLE bench_reference_days (site_pk int NOT NULL, day date NOT NULL, generation_kwh float8,
                                           PRIMARY KEY (site_pk, day))""", """
        INSERT INTO bench_reference_days
        SELECT site_pk, (reading_at AT TIME ZONE %(tz)s)::date,
               register_kwh - lag(register_kwh) OVER (PARTITION BY site_pk ORDER BY reading_at)
          FROM readings"""]),
}
# The issue's targets against its reference figures: the full rebuild against its rollup, the night against its
# reading of every site's last readings.
TARGET_REFERENCES = {"full_s": "rollup", "nightly_s": "last_readings"}
# One statement's worth of CPU-bound work (no table read), alone and then on two connections at once.
CPU_WORK = "SELECT count(*) FROM generate_series(1, 30000000)"
CORE_SCALING_RUNS = 3


def measure_references(url: str, tz: str) -> dict[str, float]:
    """Seconds of each REFERENCES statement group on this machine (the readings as loaded, before any result)."""
    seconds = {}
    for name, (_issue_s, statements) in REFERENCES.items():
        with psycopg.connect(url) as conn:  # one transaction, rolled back: the rollup's table is dropped
            for setting in REFERENCE_SESSION:
                conn.execute(setting)
            started = time.perf_counter()
            for statement in statements:
                conn.execute(statement, {"tz": tz})
            seconds[name] = time.perf_counter() - started
            conn.rollback()
    return seconds


def core_scaling(url: str) -> list[float]:
    """What two cores do against one on this machine, CORE_SCALING_RUNS times: CPU_WORK alone, then on two connections
    at once; 2.0 when the second core adds a whole core (a virtual machine's cores may share a physical one, and what
    its neighbours leave it varies from one run to the next)."""
    def run() -> float:
        with admin_connect(url) as conn:
            conn.execute("SET jit = off")
            started = time.perf_counter()
            conn.execute(CPU_WORK)
            return time.perf_counter() - started
    ratios = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(CORE_SCALING_RUNS):
            alone = run()
            started = time.perf_counter()
            list(pool.map(lambda _: run(), range(2)))
            ratios.append(2 * alone / (time.perf_counter() - started))
    return ratios


def report_machine(url: str, tz: str, results: dict) -> None:
    """The reference statements and the cores' scaling, said and kept in `results`."""
    results["references"] = measure_references(url, tz)
    ratios = core_scaling(url)
    results["core_scaling"] = statistics.median(ratios)
    say("this machine against the issue's: " + ", ".join(
        f"{name} {seconds:.2f}s (issue {REFERENCES[name][0]:g}s, ×{seconds / REFERENCES[name][0]:.2f})"
        for name, seconds in results["references"].items())
        + f"; two cores do {' '.join(f'{ratio:.2f}' for ratio in ratios)}× one")


# ---------------------------------------------------------------------------------------------- processes


class Child:
    """A subprocess in its own process group, always terminated (group-wide) on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Child:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def check(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited ({self.process.returncode}); see {self.log_path}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group (pool children)
            os.killpg(self.process.pid, signal.SIGKILL)


def start_worker(env: dict[str, str], workdir: Path, queues: str = "compute,maintenance",
                 concurrency: int = WORKER_CONCURRENCY, loglevel: str = "WARNING") -> Child:
    """A worker as `lux up` runs them: one for the fleet computations, one process for the events' recomputes
    (`queues="ingest"`), one for the statuses (`queues="status"`)."""
    name = queues.split(",")[0]
    argv = [sys.executable, "-m", "celery", "-A", "worker.app:celery_app", "worker", "-Q", queues,
            "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", loglevel, "--without-gossip",
            "--without-mingle", "--hostname", f"bench-{name}-{os.getpid()}@%h"]
    return Child(f"celery worker ({name})", argv, env, workdir / f"worker-{name}.log")


def wait_for_worker(app, child: Child, queues: str | None = None) -> None:
    """Until a worker answers a ping: with `queues`, the one `start_worker(..., queues)` started (others may answer
    already)."""
    prefix = f"bench-{queues.split(',')[0]}-" if queues else ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        child.check()
        if any(name.startswith(prefix) for reply in app.control.ping(timeout=1.0) for name in reply):
            return
    raise SystemExit(f"the Celery worker did not answer a ping; see {child.log_path}")


def start_api(env: dict[str, str], workdir: Path, port: int, workers: int) -> Child:
    argv = [sys.executable, "-m", "gunicorn", "api:create_app()", "--bind", f"127.0.0.1:{port}", "--workers",
            str(workers), "--no-control-socket", "--timeout", "300", "--preload"]
    return Child("gunicorn", argv, env, workdir / "api.log")


def wait_for_api(child: Child, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        child.check()
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                time.sleep(2)  # every worker forked
                return
        time.sleep(0.1)
    raise SystemExit(f"the API did not start; see {child.log_path}")


# ---------------------------------------------------------------------------------------------- statement timing


def _statement_labels(db: Database) -> dict[str, str]:
    """Compiled statement text → `module.NAME`, for the engine's fixed statements."""
    labels = {}
    for module in (engine, daily, status, performance, anomalies, rollups, runs, modes, ingest_journal):
        for name, value in vars(module).items():
            if isinstance(value, TextClause):
                labels[str(value.compile(dialect=db.engine.dialect))] = f"{module.__name__.rsplit('.', 1)[1]}.{name}"
    for kind, payload in snapshots.KINDS.items():
        clause = text(snapshots.UPSERT.format(payload=payload))
        labels[str(clause.compile(dialect=db.engine.dialect))] = f"snapshots.{kind}"
    return labels


class StatementTimer:
    """Wall time per statement label while active (SQLAlchemy cursor-execute events)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.labels = _statement_labels(db)
        self.totals: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def _label(self, statement: str) -> str:
        return self.labels.get(statement) or " ".join(statement.split())[:60]

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        elapsed = time.perf_counter() - conn.info["bench_t0"].pop()
        label = self._label(statement)
        self.totals[label] += elapsed
        self.counts[label] += 1

    def __enter__(self) -> StatementTimer:
        event.listen(self.db.engine, "before_cursor_execute", self._before)
        event.listen(self.db.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._before)
        event.remove(self.db.engine, "after_cursor_execute", self._after)

    def report(self, title: str, top: int = 12) -> None:
        total = sum(self.totals.values())
        print(f"  {title}: statements {total:.2f}s")
        for label, seconds in sorted(self.totals.items(), key=lambda kv: -kv[1])[:top]:
            if seconds >= 0.005:
                print(f"    {seconds:8.3f}s {100 * seconds / max(total, 1e-9):5.1f}%  ×{self.counts[label]:<3} {label}")


# ---------------------------------------------------------------------------------------------- measurements


def measure_full(app, db: Database, as_of: dt.date, shards: int) -> float:
    """Send `lux.compute.full`, wait for the chord's fleet task; seconds from send to done."""
    with db.engine.connect() as conn:
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM compute_runs")).scalar_one()
    started = time.perf_counter()
    sent = app.send_task("lux.compute.full", kwargs={"as_of": as_of.isoformat(), "shards": shards})
    started_fleet = sent.get(timeout=600)
    app.AsyncResult(started_fleet["fleet_task_id"]).get(timeout=7200)
    seconds = time.perf_counter() - started
    with db.engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT task, coalesce(shard, '-'), sites, rows_written, extract(epoch FROM finished_at - started_at),
                   extract(epoch FROM started_at - min(started_at) OVER ())
              FROM compute_runs WHERE id > :before ORDER BY id"""), {"before": before}).all()
    print(f"  {'task':<20}{'shard':>7}{'sites':>9}{'rows':>12}{'seconds':>9}{'start+s':>9}")
    for task, shard, sites, written, seconds_run, offset in rows:
        print(f"  {task:<20}{shard:>7}{sites or 0:>9}{written or 0:>12}{float(seconds_run):>9.2f}{float(offset):>9.2f}")
    return seconds


def latest_registers(db: Database) -> list[tuple[int, str, float, float]]:
    """(pk, site_id, capacity, last register) of every site, from the computed status."""
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("""
            SELECT s.id, s.site_id, s.capacity_kwp, coalesce(st.last_register_kwh, 1000)
              FROM sites s LEFT JOIN site_status st ON st.site_pk = s.id ORDER BY s.id"""))]


def reading_json(site_id: str, at: str, register: float, signal_level: int, serial: str) -> str:
    return (f'{{"site_id":"{site_id}","reading_at":"{at}","register_kwh":{register:.3f},'
            f'"signal_level":{signal_level},"network":"EE","meter_serial":"{serial}"}}')


# The bench's days lie in the past, but an ingest continues its sites' statuses as of the real today, and a run as of
# an earlier day never replaces a later status. So after a night's readings the statuses are set back to the night's
# day, as if it were today, which it is in the deployment: the night's run then writes them, as it does there.
STATUSES_AS_OF_NIGHT = text("UPDATE site_status SET as_of = :day WHERE as_of > :day")


def ingest_new_day(db: Database, fleet: list, new_day: dt.date, tz: str) -> float:
    """One evening reading of `new_day` for every site, through `ingest_json` in batches of 5,000 (which continues
    their statuses), the statuses then set back to `new_day` (STATUSES_AS_OF_NIGHT, not timed)."""
    at = dt.datetime.combine(new_day, dt.time(20, 45), ZoneInfo(tz)).isoformat()
    started = time.perf_counter()
    accepted = 0
    for i in range(0, len(fleet), BATCH):
        rows = []
        for pk, site_id, capacity, register in fleet[i:i + BATCH]:
            grown = register if pk % 211 == 0 else register + capacity * (1.5 + (pk % 7) / 4)
            rows.append(reading_json(site_id, at, grown, 5 + pk % 27, f"M{pk}"))
        body = ("[" + ",".join(rows) + "]").encode()
        accepted += ingest_json(db, body, replace=False, request_id=f"bench-nightly-{i // BATCH}").accepted
    assert accepted == len(fleet), f"nightly: accepted {accepted} of {len(fleet)}"
    seconds = time.perf_counter() - started
    with db.session_scope() as session:
        session.execute(STATUSES_AS_OF_NIGHT, {"day": new_day})
    return seconds


def measure_nightly(db: Database, new_day: dt.date, timer: StatementTimer) -> tuple[float, dict]:
    """Every result after the new day, as the sweep takes a night's backlog: split into one journal entry per class
    of sites (`modes.spread_backlog`), each one recompute, run WORKER_CONCURRENCY at a time as a worker runs the
    sweep's `lux.compute.sweep_part` chord, then the one fleet refresh (rollups and snapshots) they owe."""
    started = time.perf_counter()
    with timer:
        split = modes.spread_backlog(db, older_than_s=0, parts=db.settings.compute_shards)
        if split:
            with ThreadPoolExecutor(WORKER_CONCURRENCY) as pool:
                parts = list(pool.map(lambda journal_id: modes.run_incremental(
                    db, task="bench", task_id=None, as_of=new_day, journal_ids=[journal_id], entries=1), split))
        else:
            parts = [modes.run_incremental(db, task="bench", task_id=None, as_of=new_day,
                                           entries=modes.SWEEP_ENTRIES)]
        fleet = modes.run_fleet_refresh(db, task="bench", task_id=None, as_of=new_day)
    return time.perf_counter() - started, {"parts": len(parts), "sites": [part["sites"] for part in parts],
                                           "rows": sum(part["rows"] for part in parts), "fleet": fleet}


def measure_status(db: Database, params: Params, as_of: dt.date, sites: list[int] | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    with db.session_scope() as session:
        written = engine.refresh_statuses(session, params, as_of, sites=sites)
    return time.perf_counter() - started, written


LOOP_QUERY = """
    SELECT reading_at, register_kwh FROM readings
     WHERE site_pk = %s AND reading_at >= %s AND reading_at < %s ORDER BY reading_at
"""


def loop_status(rows: list[tuple[dt.datetime, float]], zone: ZoneInfo, as_of: dt.date, params: Params) -> str:
    """The status from one site's recent readings, in Python (closing register per local day)."""
    closing: dict[dt.date, float] = {}
    for at, register in rows:
        closing[at.astimezone(zone).date()] = register  # ordered by time: the last one of a day wins
    if not closing:
        return "no_coms"
    last_day = max(closing)
    if (as_of - last_day).days >= params.no_coms_days:
        return "no_coms"
    cutoff = last_day - dt.timedelta(days=params.zero_read_days)
    earlier = [day for day in closing if day <= cutoff]
    if earlier and abs(closing[last_day] - closing[max(earlier)]) <= params.flat_tolerance_kwh:
        return "zero_read"
    return "healthy"


def measure_loop(db: Database, params: Params, as_of: dt.date, pks: list[int]) -> tuple[float, dict[int, str]]:
    """The original product's way: one indexed query per site for its last 30 days, then Python."""
    zone = ZoneInfo(params.timezone)
    start = dt.datetime.combine(as_of - dt.timedelta(days=30), dt.time(), zone)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone)
    found: dict[int, str] = {}
    with db.raw_connection() as conn:
        started = time.perf_counter()
        with conn.cursor() as cur:
            for pk in pks:
                cur.execute(LOOP_QUERY, (pk, start, end), prepare=True)
                found[pk] = loop_status(cur.fetchall(), zone, as_of, params)
        conn.commit()
        seconds = time.perf_counter() - started
    return seconds, found


def compare_loop(db: Database, found: dict[int, str]) -> tuple[int, dict[str, int]]:
    with db.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT site_pk, status FROM site_status WHERE site_pk = ANY(:pks)"),
                                   {"pks": list(found)}).all())
    agree = sum(stored.get(pk) == value for pk, value in found.items())
    counts: dict[str, int] = defaultdict(int)
    for value in stored.values():
        counts[value] += 1
    return agree, dict(counts)


# ---------------------------------------------------------------------------------------------- freshness


class Background:
    """Paced POSTs of 5,000 new readings of the background sites, from a few client threads: round r posts a reading
    of every site at instants[r], its register grown by 2.5 kWh per kWp a day."""

    def __init__(self, port: int, token: str, fleet: list, args: argparse.Namespace,
                 instants: list[dt.datetime]) -> None:
        self.port, self.token, self.rate, self.clients = port, token, args.background_rate, args.clients
        self.chunks = [fleet[i:i + BATCH] for i in range(0, len(fleet), BATCH)]
        self.per_batch = len(fleet) / len(self.chunks)  # mean readings per batch, for pacing
        self.instants = instants
        self.growth = 2.5 * args.round_minutes / (24 * 60)  # kWh per kWp a round
        self.exhausted = threading.Event()
        self.lock = threading.Lock()
        self.next_batch = 0
        self.accepted = 0
        self.log: list[tuple[float, int]] = []  # (monotonic time of the answer, accepted)
        self.answered = defaultdict(int)  # round → batches answered
        self.round_done: dict[int, float] = {}  # round → monotonic time its last batch was answered
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]

    def start(self) -> None:
        self.started = time.perf_counter()
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _take(self) -> int:
        with self.lock:
            batch = self.next_batch
            self.next_batch += 1
            return batch

    def _body(self, batch: int) -> bytes | None:
        """Batch `batch`: one chunk of sites, each with its reading of the round's instant (None: no instant left)."""
        chunk = self.chunks[batch % len(self.chunks)]
        round_no = batch // len(self.chunks)
        if round_no >= len(self.instants):
            return None
        at = self.instants[round_no].isoformat()
        rows = [reading_json(site_id, at, register + (round_no + 1) * capacity * self.growth, 5 + pk % 27, f"M{pk}")
                for pk, site_id, capacity, register in chunk]
        return ("[" + ",".join(rows) + "]").encode()

    def _client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            batch = self._take()
            due = self.started + batch * self.per_batch / self.rate
            delay = due - time.perf_counter()
            if delay > 0 and self.stop.wait(delay):
                return
            body = self._body(batch)
            if body is None:
                self.exhausted.set()
                return
            conn.request("POST", "/api/v1/readings", body=body, headers=headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                self.errors.append(f"{response.status} {answer}")
                return
            with self.lock:
                self.accepted += answer["accepted"]
                self.log.append((time.perf_counter(), answer["accepted"]))
                round_no = batch // len(self.chunks)
                self.answered[round_no] += 1
                if self.answered[round_no] == len(self.chunks):
                    self.round_done[round_no] = time.perf_counter()

    def rate_between(self, start: float, end: float) -> float:
        with self.lock:
            done = sum(n for at, n in self.log if start <= at <= end)
        return done / max(end - start, 1e-9)


def probe_once(port: int, headers: dict, site: tuple, timeout_s: float) -> float | None:
    """POST one new reading of the probe site, poll its status every PROBE_POLL_S; seconds until it shows."""
    pk, site_id, _capacity, register = site
    now = dt.datetime.now(dt.UTC)
    at = now.replace(microsecond=now.microsecond // 1000 * 1000)
    body = ("[" + reading_json(site_id, at.isoformat(), register + 1.0, 20, f"M{pk}") + "]").encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", "/api/v1/readings", body=body, headers={**headers, "Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        returned = time.perf_counter()
        if response.status != 200 or answer["accepted"] != 1:
            raise SystemExit(f"probe POST failed: {response.status} {answer}")
        while time.perf_counter() - returned < timeout_s:
            conn.request("GET", f"/api/v1/sites/{site_id}/communication-status", headers=headers)
            response = conn.getresponse()
            shown = json.loads(response.read())
            seen = time.perf_counter()
            if response.status == 200 and shown.get("last_reading_at") and \
                    dt.datetime.fromisoformat(shown["last_reading_at"]) == at:
                return seen - returned
            time.sleep(PROBE_POLL_S)
        return None
    finally:
        conn.close()


def free_instants(tz: str, minutes: int) -> list[dt.datetime]:
    """The instants of the background load's rounds: every `minutes` minutes from the start of yesterday (after the
    nights' days, as prepare_database lays them out) up to now, as a live fleet's readings arrive. (Rounds of days long
    past made every fleet refresh the recomputes owed rebuild the rollups of each day from there to today: 100 days
    and more, where a live fleet's refresh rebuilds a day or two.)"""
    yesterday = fleet_today(tz) - dt.timedelta(days=1)
    start = dt.datetime.combine(yesterday, dt.time(0), ZoneInfo(tz)).astimezone(dt.UTC)
    step = dt.timedelta(minutes=minutes)
    return [start + k * step for k in range(int((dt.datetime.now(dt.UTC) - start) / step))]


class FleetLag:
    """How far the background sites' statuses are behind, sampled every `interval` seconds: the 5th percentile of
    their last readings gives the newest round that 95 % of them show; the lag is how long ago the next round was
    fully accepted (0 while it is still being posted). The probes see their own sites only: under a load that keeps
    recomputes holding most of the fleet, the probes' figures alone say nothing of the other statuses."""

    SHOWN_BY_95 = """SELECT percentile_disc(0.05) WITHIN GROUP (ORDER BY last_reading_at) FROM site_status
                      WHERE NOT site_pk = ANY(%s)"""

    def __init__(self, url: str, background: Background, probe_pks: list[int], interval: float) -> None:
        self.url, self.background, self.probe_pks, self.interval = url, background, probe_pks, interval
        self.lags: list[float] = []
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.thread.join(timeout=60)

    def _sample(self) -> None:
        instants = self.background.instants
        with admin_connect(self.url) as conn:
            while not self.background.stop.wait(self.interval):
                shown = conn.execute(self.SHOWN_BY_95, (self.probe_pks,)).fetchone()[0]
                pending = bisect.bisect_right(instants, shown) if shown else 0  # the first round not shown by 95 %
                now = time.perf_counter()
                with self.background.lock:
                    done = self.background.round_done.get(pending)
                self.lags.append(now - done if done else 0.0)


def measure_freshness(port: int, token: str, fleet: list, args: argparse.Namespace, instants: list,
                      url: str) -> dict:
    """A probe every --probe-interval seconds, each in a thread of its own, while the background load runs, and the
    background statuses' lag sampled as often; probes stop starting when the load has no instant left."""
    probes, others = fleet[-args.freshness_batches:], fleet[:-args.freshness_batches]
    background = Background(port, token, others, args, instants)
    lag = FleetLag(url, background, [site[0] for site in probes], args.probe_interval)
    headers = {"Authorization": f"Bearer {token}"}
    background.start()
    try:
        time.sleep(args.warmup)
        window_start = time.perf_counter()
        lag.start()
        with ThreadPoolExecutor(max_workers=math.ceil(PROBE_TIMEOUT_S / args.probe_interval) + 2) as pool:
            started = []
            for n, site in enumerate(probes):
                if background.stop.wait(max(0.0, window_start + n * args.probe_interval - time.perf_counter())):
                    break
                if background.exhausted.is_set() or background.errors:
                    break  # no instant left (or the load failed): the rest would not run beside the load
                started.append(pool.submit(probe_once, port, headers, site, PROBE_TIMEOUT_S))
            outcomes = [future.result() for future in started]
        window_end = time.perf_counter()
        if background.errors:
            raise SystemExit(f"background load failed: {background.errors[:2]}")
    finally:
        background.finish()
        lag.finish()
    delays = [delay for delay in outcomes if delay is not None]
    return {"delays": delays, "missed": len(outcomes) - len(delays), "fleet_lags": lag.lags,
            "rate": background.rate_between(window_start, window_end),
            "rounds": min(background.next_batch // len(background.chunks), len(instants)),
            "window_s": window_end - window_start, "background_accepted": background.accepted}


RECOMPUTE_QUEUES = ("ingest", "compute")
IDLE_TIMEOUT_S = 300.0


def pause_recomputes(app) -> list[str]:
    """Stop the recompute workers (not the status worker) consuming their queues and revoke the tasks they hold for
    their countdown, then wait for their running tasks to end; returns the queues no longer consumed."""
    workers = [name for reply in app.control.ping(timeout=2.0) for name in reply
               if name.startswith(("bench-compute-", "bench-ingest-"))]
    for queue in RECOMPUTE_QUEUES:
        app.control.cancel_consumer(queue, destination=workers, reply=True)
    scheduled = app.control.inspect(destination=workers, timeout=2.0).scheduled() or {}
    for entries in scheduled.values():  # tasks held for their countdown (fleet refreshes)
        for entry in entries:
            app.control.revoke(entry["request"]["id"])
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    while time.monotonic() < deadline:
        active = app.control.inspect(destination=workers, timeout=2.0).active() or {}
        if not any(active.values()):
            return list(RECOMPUTE_QUEUES)
        time.sleep(1.0)
    raise SystemExit(f"the recompute workers were still busy {IDLE_TIMEOUT_S:g} s after they stopped consuming")


def measure_alone(port: int, token: str, fleet: list, args: argparse.Namespace, instants: list) -> float:
    """The background load of the freshness run (the same sites, batches and clients, unpaced) for --alone-seconds,
    from the first round it did not reach, with no recompute running: readings accepted a second after the
    warm-up."""
    unpaced = argparse.Namespace(**{**vars(args), "background_rate": math.inf})
    background = Background(port, token, fleet[:-args.freshness_batches], unpaced, instants)
    background.start()
    try:
        time.sleep(args.warmup)
        start = time.perf_counter()
        background.stop.wait(args.alone_seconds)
        end = time.perf_counter()
    finally:
        background.finish()
    if background.errors:
        raise SystemExit(f"background load alone failed: {background.errors[:2]}")
    if background.exhausted.is_set():
        say("background load alone: ran out of rounds before the end (its rate is a lower bound)")
    return background.rate_between(start, end)


FOLLOW_LINE = re.compile(r"task=lux\.status\.follow sites=(\d+) written=\d+ held=(\d+) seconds=([\d.]+)")


def follow_summary(log_path: Path) -> str:
    """What the status worker's follows did during the load (from its INFO lines): where a probe's wait goes."""
    follows = [(int(sites), int(held), float(seconds)) for sites, held, seconds
               in FOLLOW_LINE.findall(log_path.read_text(errors="replace")) if int(sites)]
    if not follows:
        return "follows: none logged"
    sites, held, seconds = ([row[k] for row in follows] for k in range(3))
    return (f"follows: {len(follows)}, sites median {statistics.median(sites):,.0f} max {max(sites):,}, "
            f"held by a run median {statistics.median(held):,.0f} max {max(held):,}, "
            f"seconds median {statistics.median(seconds):.2f} max {max(seconds):.2f}, "
            f"{1e6 * sum(seconds) / sum(sites):.0f} µs a site")


REFRESHES_SINCE = """
    SELECT extract(epoch FROM finished_at - started_at) FROM compute_runs
     WHERE task = 'lux.compute.fleet_refresh' AND started_at >= %s AND finished_at IS NOT NULL ORDER BY started_at"""


def refresh_summary(url: str, since: dt.datetime) -> str:
    """The fleet refreshes (rollups and snapshots) the load's recomputes owed since `since`, from `compute_runs`: they
    share the cores with the follows."""
    with admin_connect(url) as conn:
        seconds = [float(row[0]) for row in conn.execute(REFRESHES_SINCE, (since,))]
    if not seconds:
        return "fleet refreshes: none recorded"
    return (f"fleet refreshes: {len(seconds)}, seconds " + ", ".join(f"{s:.1f}" for s in seconds)
            + f" ({sum(seconds):.1f} in all)")


RECOMPUTES_SINCE = """
    SELECT count(*), coalesce(sum(sites), 0), coalesce(sum(extract(epoch FROM finished_at - started_at)), 0),
           count(*) FILTER (WHERE task = 'lux.compute.sweep_part')
      FROM compute_runs
     WHERE task IN ('lux.ingest.process_events', 'lux.ingest.sweep', 'lux.compute.sweep_part')
       AND started_at >= %s AND finished_at IS NOT NULL AND sites > 0"""


def recompute_summary(url: str, since: dt.datetime) -> str:
    """The incremental recomputes (events, sweeps and spread shares) that finished since `since`, from
    `compute_runs`."""
    with admin_connect(url) as conn:
        runs, sites, seconds, shares = conn.execute(RECOMPUTES_SINCE, (since,)).fetchone()
    return (f"recomputes: {runs} runs ({shares} of them spread shares), {sites:,} sites, {float(seconds):.1f} s in all"
            + (f" ({1e6 * float(seconds) / sites:.0f} µs a site)" if sites else ""))


def backlog_summary(url: str) -> str:
    """The journal entries (and the sites they name) no recompute had claimed yet when the load stopped: how far the
    other results were behind the statuses."""
    with admin_connect(url) as conn:
        entries, sites, oldest = conn.execute(
            "SELECT count(*), coalesce(sum(cardinality(site_pks)), 0), extract(epoch FROM now() - min(created_at)) "
            "FROM ingest_journal").fetchone()
    return (f"recompute backlog at the end: {entries} journal entries naming {sites:,} sites"
            + (f", the oldest {float(oldest):.0f} s old" if oldest is not None else ""))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


# ---------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--loop-sites", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--freshness-batches", type=int, default=100)
    parser.add_argument("--skip-freshness", action="store_true")
    parser.add_argument("--skip-reference", action="store_true",
                        help="skip the issue's reference statements (see REFERENCES) and the cores' scaling")
    parser.add_argument("--reuse", action="store_true", help="reuse a loaded bench database of the same size")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the embedded servers' data directories (removed after the run otherwise)")
    parser.add_argument("--profile-shard", action="store_true",
                        help="after the full run, time the statements of 1/20 of the sites rerun in process")
    parser.add_argument("--background-rate", type=float, default=55_000, help="target background readings/s")
    parser.add_argument("--clients", type=int, default=4, help="background load client threads")
    parser.add_argument("--api-workers", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of background load before probing")
    parser.add_argument("--round-minutes", type=int, default=10,
                        help="minutes between two background rounds' readings (a reading of every site each)")
    parser.add_argument("--probe-interval", type=float, default=2.0, help="seconds between two probes' starts")
    parser.add_argument("--alone-seconds", type=float, default=30.0,
                        help="seconds of the background load alone after the probes, the recompute workers paused "
                             "(0: skip this baseline)")
    return parser.parse_args()


def setup(workdir: Path, db_name: str = DB_NAME) -> tuple[list, Settings]:
    """The servers (embedded unless DATABASE_URL / REDIS_URL are set), the bench's database `db_name` on that
    PostgreSQL, and the settings pointing at both; queues a killed run left are emptied."""
    env_settings = Settings.from_env()
    servers, pg_url, redis_url = start_servers(env_settings, workdir)
    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    ensure_database(admin, db_name)
    settings = env_settings.with_changes(database_url=pg_url.rsplit("/", 1)[0] + f"/{db_name}", redis_url=redis_url)
    redis.Redis.from_url(redis_url).delete("status", "compute", "ingest", "maintenance")  # stale tasks of a killed run
    return servers, settings


def run_core(args: argparse.Namespace, settings: Settings, db: Database, app, results: dict) -> None:
    """Everything measured through the worker or in process, before the freshness run."""
    tz = settings.timezone
    params = Params.of(settings)
    _first_day, last_day = prepare_database(settings.database_url, args, tz)
    if not args.skip_reference:
        report_machine(settings.database_url, tz, results)
    new_day = last_day + dt.timedelta(days=1)
    say(f"full rebuild as of {last_day} through Celery ({args.shards} shards, concurrency {WORKER_CONCURRENCY}) …")
    results["full_s"] = measure_full(app, db, last_day, args.shards)
    say(f"full_s={results['full_s']:.2f}")
    if args.profile_shard:
        profile_shard(db, last_day, args.shards)
    fleet = latest_registers(db)
    ingest_s = ingest_new_day(db, fleet, new_day, tz)
    say(f"ingested {len(fleet):,} readings of {new_day} through ingest_json in {ingest_s:.1f}s (not timed)")
    start_of_night(settings.database_url)
    timer = StatementTimer(db)
    results["nightly_s"], nightly = measure_nightly(db, new_day, timer)
    say(f"nightly_s={results['nightly_s']:.2f} {nightly}")
    timer.report("nightly sweep, statements summed over its parts")
    results["status_s"], written = measure_status(db, params, new_day)
    say(f"status_s={results['status_s']:.2f} (rows {written})")
    pks = [row[0] for row in fleet[:args.loop_sites]]
    setbased_timer = StatementTimer(db)
    setbased_runs, loop_runs = [], []
    for _ in range(SETBASED_RUNS):  # alternated, each way's fastest compared: one run of each swings by ±20 %
        with setbased_timer:
            setbased_runs.append(measure_status(db, params, new_day, pks)[0])
        seconds, found = measure_loop(db, params, new_day, pks)
        loop_runs.append(seconds)
    setbased_timer.report(f"set-based status of {len(pks)} sites, {SETBASED_RUNS} runs", top=6)
    agree, counts = compare_loop(db, found)
    results["setbased_s"], results["loop_s"] = min(setbased_runs), min(loop_runs)
    results["setbased_vs_loop"] = results["loop_s"] / results["setbased_s"]
    say(f"set-based {results['setbased_s']:.3f}s vs loop {results['loop_s']:.2f}s on {len(pks)} sites, fastest of "
        f"{SETBASED_RUNS} (set-based runs {' '.join(f'{x:.3f}' for x in setbased_runs)}; loop runs "
        f"{' '.join(f'{x:.2f}' for x in loop_runs)}; statuses {counts}; loop agrees on {agree}/{len(pks)})")
    measure_second_night(db, settings, new_day, results)


def measure_second_night(db: Database, settings: Settings, night: dt.date, results: dict) -> None:
    """The next night in steady state: one more day for every site, after the vacuum autovacuum would have run
    between two nights (the first night follows a bulk build whose pages are all freshly written) and a checkpoint."""
    second = night + dt.timedelta(days=1)
    ingest_new_day(db, latest_registers(db), second, settings.timezone)
    with admin_connect(settings.database_url) as conn:
        conn.execute("VACUUM (ANALYZE) site_days, site_tails, site_status, anomalies, monthly_performance")
    start_of_night(settings.database_url)
    timer = StatementTimer(db)
    results["nightly_again_s"], again = measure_nightly(db, second, timer)
    say(f"nightly_again_s={results['nightly_again_s']:.2f} {again}")
    timer.report("second night sweep, statements summed over its parts")


def profile_shard(db: Database, as_of: dt.date, shards: int) -> None:
    shards = max(shards, PROFILE_SHARDS)  # a slice is enough for the proportions
    timer = StatementTimer(db)
    started = time.perf_counter()
    with timer:
        modes.run_shard(db, task="bench.profile", task_id=None, as_of=as_of, shard=0, shards=shards)
    say(f"profile: shard 0/{shards} rerun in process in {time.perf_counter() - started:.2f}s")
    timer.report(f"shard 0/{shards}")


def run_freshness(args: argparse.Namespace, db: Database, app, env: dict, workdir: Path, results: dict) -> None:
    with db.session_scope() as session:
        session.execute(text("DELETE FROM api_clients WHERE name = 'bench-compute'"))
        token = tokens.create_client(session, "bench-compute", ["ingest", "read"])
    fleet = latest_registers(db)
    port = free_port()
    with start_api(env, workdir, port, args.api_workers) as api:
        wait_for_api(api, port)
        instants = free_instants(db.settings.timezone, args.round_minutes)
        say(f"freshness: {args.freshness_batches} probes, one every {args.probe_interval:g} s, beside "
            f"≈{args.background_rate:,.0f} readings/s; {len(instants)} rounds free for the background load "
            f"({args.round_minutes} minutes apart, {instants[0]:%Y-%m-%d %H:%M} … {instants[-1]:%Y-%m-%d %H:%M} UTC) …")
        load_started = dt.datetime.now(dt.UTC)
        fresh = measure_freshness(port, token, fleet, args, instants, db.settings.database_url)
        summaries = [follow_summary(workdir / "worker-status.log"), refresh_summary(db.settings.database_url,
                     load_started), recompute_summary(db.settings.database_url, load_started),
                     backlog_summary(db.settings.database_url)]
        if args.alone_seconds > 0:
            say(f"baseline: the recompute workers stop consuming {', '.join(pause_recomputes(app))} …")
            results["background_alone_rate"] = measure_alone(port, token, fleet, args,
                                                             instants[fresh["rounds"] + 1:])
    delays, lags = fresh["delays"], fresh["fleet_lags"]
    results.update(freshness_median_s=statistics.median(delays) if delays else float("nan"),
                   freshness_p95_s=percentile(delays, 0.95), background_rate=fresh["rate"],
                   fleet_lag_median_s=statistics.median(lags) if lags else float("nan"),
                   fleet_lag_p95_s=percentile(lags, 0.95))
    say(f"freshness: {len(delays)} probes seen, {fresh['missed']} missed (>{PROBE_TIMEOUT_S:g} s), "
        f"window {fresh['window_s']:.1f}s, "
        f"rounds {fresh['rounds']}, "
        f"background accepted {fresh['background_accepted']:,}, max " + (f"{max(delays):.2f}s" if delays else "-"))
    say(f"fleet lag: {len(lags)} samples, the next round 95 % of the background statuses did not show was accepted "
        f"median {results['fleet_lag_median_s']:.2f}s, p95 {results['fleet_lag_p95_s']:.2f}s, max "
        + (f"{max(lags):.2f}s" if lags else "-") + " before")
    for summary in summaries:
        say(summary)
    if "background_alone_rate" in results:
        alone = results["background_alone_rate"]
        beside = f"{results['background_rate'] / alone:.2f} of that" if alone else "no ratio (nothing accepted alone)"
        say(f"baseline: the background load alone reached {alone:,.0f} readings/s over {args.alone_seconds:g} s, "
            f"beside the recomputes {beside}")


def print_report(args: argparse.Namespace, results: dict) -> None:
    print()
    print(f"sites={args.sites} days={args.days} readings≈{args.sites * args.days:,} shards={args.shards} "
          f"loop_sites={args.loop_sites}")
    print(f"{'measure':<22}{'value':>12}{'target':>12}  ok")
    rows = [("full_s", "≤"), ("nightly_s", "≤"), ("status_s", "≤"), ("setbased_vs_loop", "≥")]
    if "freshness_p95_s" in results:
        rows.append(("freshness_p95_s", "≤"))
    for name, sense in rows:
        value, target = results[name], TARGETS[name]
        ok = value <= target if sense == "≤" else value >= target
        print(f"{name:<22}{value:>12.2f}{sense + f'{target:g}':>12}  {'yes' if ok else 'NO'}")
    if "freshness_p95_s" in results:
        print(f"freshness_median_s={results['freshness_median_s']:.2f} "
              f"freshness_p95_s={results['freshness_p95_s']:.2f} "
              f"background_readings_per_s={results['background_rate']:.0f} "
              f"fleet_lag_median_s={results['fleet_lag_median_s']:.2f} "
              f"fleet_lag_p95_s={results['fleet_lag_p95_s']:.2f}"
              + (f" background_alone_readings_per_s={results['background_alone_rate']:.0f}"
                 if "background_alone_rate" in results else ""))
    print(f"nightly_again_s={results['nightly_again_s']:.2f} (the next night, steady state)")
    if "references" in results:
        references = results["references"]
        print("reference_" + " reference_".join(f"{name}_s={seconds:.2f}" for name, seconds in references.items())
              + f" core_scaling={results['core_scaling']:.2f}")
        for measure, name in TARGET_REFERENCES.items():
            issue_s = REFERENCES[name][0]
            print(f"{measure}_vs_reference_{name}={results[measure] / references[name]:.2f} "
                  f"(the target's: {TARGETS[measure]:g} / {issue_s:g} = {TARGETS[measure] / issue_s:.2f})")
    print(f"full_s={results['full_s']:.2f} nightly_s={results['nightly_s']:.2f} status_s={results['status_s']:.2f} "
          f"setbased_vs_loop={results['setbased_vs_loop']:.2f}")


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lux-bench-compute-"))
    servers, settings = setup(workdir)
    from worker.app import celery_app, configure

    results: dict = {}
    db = None
    try:
        db = Database(settings)
        upgrade(db.engine)
        configure(celery_app, settings)
        env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
               "LUX_LOG_LEVEL": "WARNING"}
        with start_worker(env, workdir) as worker, start_worker(env, workdir, "ingest", 1), \
                start_worker(env, workdir, "status", 1, "INFO"):
            wait_for_worker(celery_app, worker)
            run_core(args, settings, db, celery_app, results)
            if not args.skip_freshness:
                run_freshness(args, db, celery_app, env, workdir, results)
    finally:
        if db is not None:
            db.engine.dispose()
        stop_servers(servers, keep_data=args.keep_data)
        say(f"logs{' and server data' if servers and args.keep_data else ''} kept in {workdir}")
    print_report(args, results)


if __name__ == "__main__":
    main()
