"""Ingest benchmark: the API (gunicorn, 4 clients, batches of 5,000) against raw COPY, in one run.

    .venv/bin/python bench/ingest.py [--sites 10000] [--days 100] [--clients 4] [--api-workers 4] [--repeats 3]

Uses DATABASE_URL / REDIS_URL when set, otherwise starts embedded servers under a temporary
directory. Loads sites × days readings through the running API into an emptied table, replays them
(all duplicates), then, into the same emptied table, loads the same rows by raw COPY (text, one
client); each of these `--repeats` times, the fastest run of each compared. Then a 100,000-row
sample by a naive per-row ORM insert. Prints readings/s for each, the API workers' peak RSS, and
last `api_vs_copy=<ratio> replay_vs_first=<ratio>`. Not a test: timings vary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servers import free_port, start_servers, stop_servers  # noqa: E402

from lux import tokens  # noqa: E402
from lux.config import Settings  # noqa: E402
from lux.db import Database  # noqa: E402
from lux.embedded import ensure_database  # noqa: E402
from lux.migrate import upgrade  # noqa: E402
from models import Reading  # noqa: E402

START = dt.datetime(2026, 1, 1, 21, 30, tzinfo=dt.UTC)
BATCH = 5000
ORM_SAMPLE = 100_000



def make_rows(sites: int, days: int) -> list[tuple[str, str, float, int, str, str]]:
    """Day-major rows, as a head-end pushes a fleet's daily reads: (site_id, reading_at, kwh, csq, network, serial)."""
    rows = []
    for day in range(days):
        at = (START + dt.timedelta(days=day)).isoformat()
        for site in range(sites):
            rows.append((f"B{site:06d}", at, round(1000 + day * 7.25 + site % 13, 2), 10 + site % 20, "EE",
                         f"M{site:06d}"))
    return rows


def json_batches(rows) -> list[bytes]:
    keys = ("site_id", "reading_at", "register_kwh", "signal_level", "network", "meter_serial")
    return [json.dumps([dict(zip(keys, r, strict=True)) for r in rows[i:i + BATCH]]).encode()
            for i in range(0, len(rows), BATCH)]


class RssSampler(threading.Thread):
    """Peak resident memory of any gunicorn worker (children of the master)."""

    def __init__(self, master_pid: int) -> None:
        super().__init__(daemon=True)
        self.master = psutil.Process(master_pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for child in self.master.children():
                with contextlib.suppress(psutil.Error):  # a worker may exit between listing and reading
                    self.peak = max(self.peak, child.memory_info().rss)
            time.sleep(0.1)


def wait_for_workers(master_pid: int, port: int, workers: int) -> None:
    """Return once every gunicorn worker is forked and the API answers, so no boot time is measured."""
    master = psutil.Process(master_pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200 and len(master.children()) >= workers:
                time.sleep(1)
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the API did not start")


def post_all(port: int, token: str, bodies: list[bytes], clients: int) -> tuple[float, dict]:
    """POST every body with `clients` concurrent keep-alive connections; (seconds, summed outcome)."""
    work: queue.Queue = queue.Queue()
    for body in bodies:
        work.put(body)
    totals: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", "/api/v1/readings", body=body, headers=headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                errors.append(f"{response.status} {answer}")
                return
            with lock:
                for key in ("accepted", "duplicate", "conflict", "rejected"):
                    totals[key] = totals.get(key, 0) + answer[key]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"API errors: {errors[:3]}")
    return time.perf_counter() - started, totals


def copy_text(url: str, rows, pks: dict[str, int]) -> float:
    """Raw COPY (text format, one client) of the same rows into the emptied readings table."""
    buffer = io.StringIO()
    for site, at, kwh, csq, network, serial in rows:
        buffer.write(f"{pks[site]}\t{at}\t{kwh}\t{csq}\t{network}\t{serial}\n")
    data = buffer.getvalue()
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE readings")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            "COPY readings (site_pk, reading_at, register_kwh, signal_level, network, meter_serial) FROM STDIN"
        ) as copy:
            for i in range(0, len(data), 1 << 20):
                copy.write(data[i:i + (1 << 20)])
        conn.commit()
        return time.perf_counter() - started


def orm_per_row(database: Database, rows, pks: dict[str, int]) -> float:
    """The naive way: one ORM object and one INSERT round trip per reading."""
    with database.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE readings")
    started = time.perf_counter()
    with database.session_scope() as session:
        for site, at, kwh, csq, network, serial in rows:
            session.add(Reading(site_pk=pks[site], reading_at=dt.datetime.fromisoformat(at), register_kwh=kwh,
                                signal_level=csq, network=network, meter_serial=serial))
            session.flush()
    return time.perf_counter() - started


def prepare(settings: Settings, sites: int) -> tuple[Database, str, dict[str, int]]:
    database = Database(settings)
    upgrade(database.engine)
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE readings, sites, api_clients, ingest_rejects, ingest_journal RESTART IDENTITY CASCADE")
        conn.exec_driver_sql(
            f"INSERT INTO sites (site_id, name, capacity_kwp) "
            f"SELECT 'B' || lpad(g::text, 6, '0'), 'bench', 4 FROM generate_series(0, {sites - 1}) g")
    with database.session_scope() as session:
        token = tokens.create_client(session, "bench", ["ingest"])
    with database.engine.connect() as conn:
        pks = dict(conn.exec_driver_sql("SELECT site_id, id FROM sites").all())
    return database, token, pks


def measure(args: argparse.Namespace, env_settings: Settings, pg_url: str,
            redis_url: str) -> tuple[list[float], list[float], list[float], float, list, int]:
    """Every method's runs on the servers of `pg_url` / `redis_url`; the API's peak RSS in bytes."""
    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    ensure_database(admin, "lux_bench")
    settings = env_settings.with_changes(database_url=pg_url.rsplit("/", 1)[0] + "/lux_bench", redis_url=redis_url)
    database, token, pks = prepare(settings, args.sites)

    rows = make_rows(args.sites, args.days)
    bodies = json_batches(rows)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "LUX_LOG_LEVEL": "WARNING"}
    api = subprocess.Popen([sys.executable, "-m", "gunicorn", "api:create_app()", "--bind", f"127.0.0.1:{port}",
                            "--workers", str(args.api_workers), "--no-control-socket", "--timeout", "300",
                            "--preload"],
                           cwd=ROOT, env=env)
    try:
        wait_for_workers(api.pid, port, args.api_workers)
        sampler = RssSampler(api.pid)
        sampler.start()
        first_runs, replay_runs = [], []
        for _ in range(args.repeats):
            with database.engine.begin() as conn:
                conn.exec_driver_sql("TRUNCATE readings, ingest_journal")
            first_s, first = post_all(port, token, bodies, args.clients)
            replay_s, replay = post_all(port, token, bodies, args.clients)
            assert first["accepted"] == len(rows), first
            assert replay["duplicate"] == len(rows), replay
            first_runs.append(first_s)
            replay_runs.append(replay_s)
        sampler.stop.set()
    finally:
        api.terminate()
        api.wait()
    # Every figure swings by a third between runs on a shared machine: each method's fastest run is compared.
    copy_runs = [copy_text(settings.database_url, rows, pks) for _ in range(args.repeats)]
    orm_s = orm_per_row(database, rows[:ORM_SAMPLE], pks)
    database.engine.dispose()
    return first_runs, replay_runs, copy_runs, orm_s, rows, sampler.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--api-workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method; the fastest is compared")
    args = parser.parse_args()

    env_settings = Settings.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="lux-bench-"))
    servers, pg_url, redis_url = start_servers(env_settings, workdir)
    try:
        first_runs, replay_runs, copy_runs, orm_s, rows, peak_rss = measure(args, env_settings, pg_url, redis_url)
    finally:
        stop_servers(servers)

    first_s, replay_s, copy_s = min(first_runs), min(replay_runs), min(copy_runs)
    n = len(rows)
    rate = {"api_first": n / first_s, "api_replay": n / replay_s, "copy_text": n / copy_s,
            "orm_per_row": min(n, ORM_SAMPLE) / orm_s}
    print(f"readings={n} sites={args.sites} days={args.days} clients={args.clients} batch={BATCH} "
          f"api_workers={args.api_workers}")
    print(f"{'method':<14}{'rows':>10}{'seconds':>10}{'readings/s':>14}")
    for name, seconds, count in (("api_first", first_s, n), ("api_replay", replay_s, n), ("copy_text", copy_s, n),
                                 ("orm_per_row", orm_s, min(n, ORM_SAMPLE))):
        print(f"{name:<14}{count:>10}{seconds:>10.2f}{rate[name]:>14,.0f}")
    for name, runs in (("api_first", first_runs), ("api_replay", replay_runs), ("copy_text", copy_runs)):
        print(f"{name} runs (s): " + " ".join(f"{seconds:.2f}" for seconds in runs))
    print(f"api_worker_peak_rss_mb={peak_rss / 2**20:.0f}")
    print(f"api_vs_copy={rate['api_first'] / rate['copy_text']:.2f} "
          f"replay_vs_first={rate['api_replay'] / rate['api_first']:.2f}")


if __name__ == "__main__":
    main()
