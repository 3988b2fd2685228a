"""Runs of every mode at once over the same fleet: each succeeds, and together they leave what one full run leaves.

SPEC §5: tasks are safe to run twice or concurrently. Shards (each twice, as a redelivered chord does), the fleet
task, operators' runs, the events' recomputes, the follow, the fleet refresh and the rollover start together from
threads of their own, each in its own transactions, as the workers' processes run them, while batches of late
readings are ingested beside them. Once the journal is drained, the results are those of one full run.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lux.compute import modes
from lux.ingest import ingest_json
from lux.ingest.journal import mark_dirty
from lux.timeutil import fleet_today
from tests.compute.reference import Reading, Site
from tests.compute.test_properties import (
    LONDON,
    ONE_DAY,
    RESULT_TABLES,
    Fleet,
    assert_same,
    load,
    reset,
    snapshot,
)

SHARDS = 4


def random_fleet(seed: int, as_of: dt.date, sites: int = 40, days: int = 45) -> Fleet:
    """Evening readings up to the day before `as_of`, with gaps, flat runs, rollbacks and spikes, some sites
    inactive or without a region."""
    rng = random.Random(seed)
    start = as_of - days * ONE_DAY
    fleet_sites, readings, expected = [], [], {}
    for pk in range(1, sites + 1):
        fleet_sites.append(Site(pk, rng.choice([1.0, 2.5, 4.0]), rng.choice([None, "North", "South"]),
                                rng.random() > 0.1))
        if rng.random() < 0.7:
            expected[pk] = [rng.uniform(50, 500) for _ in range(12)]
        register = rng.uniform(0, 10_000)
        for day in range(days - rng.randrange(0, 8)):  # some sites fall silent before as_of
            if rng.random() < 0.15:
                continue  # a gap
            register = max(0.0, register + rng.choice([0.0, rng.uniform(0, 20), rng.uniform(0, 60), -5.0]))
            at = dt.datetime.combine(start + day * ONE_DAY, dt.time(20, rng.randrange(60)), tzinfo=LONDON)
            readings.append(Reading(pk, at.astimezone(dt.UTC), round(register, 3), rng.randrange(0, 32), "EE"))
    return Fleet(start, as_of, fleet_sites, readings, expected)


def late_batches(seed: int, fleet: Fleet, batches: int = 3) -> list[bytes]:
    """JSON batches of readings late in the evening of days the fleet already has (some sites, some days)."""
    rng = random.Random(-seed)
    bodies = []
    for batch in range(batches):
        rows = []
        for site in rng.sample(fleet.sites, 12):
            day = fleet.as_of - rng.randrange(1, 15) * ONE_DAY
            at = dt.datetime.combine(day, dt.time(23, batch, rng.randrange(60)), tzinfo=LONDON)
            rows.append({"site_id": f"P{site.pk}", "reading_at": at.isoformat(),
                         "register_kwh": round(rng.uniform(0, 12_000), 3), "signal_level": rng.randrange(32)})
        bodies.append(json.dumps(rows).encode())
    return bodies


def jobs(database, fleet: Fleet, bodies: list[bytes]) -> list:
    """Every mode's run as of the fleet's as-of day, and the ingest of `bodies`, each a call without arguments."""
    db, task, as_of = database, "concurrency", fleet.as_of
    site_pks = [site.pk for site in fleet.sites]
    half = site_pks[: len(site_pks) // 2]
    shards = [lambda k=k: modes.run_shard(db, task=task, task_id=None, as_of=as_of, shard=k, shards=SHARDS)
              for k in range(SHARDS)]
    return shards * 2 + [
        lambda: modes.run_fleet(db, task=task, task_id=None, as_of=as_of),
        lambda: modes.run_explicit(db, task=task, task_id=None, as_of=as_of),
        lambda: modes.run_explicit(db, task=task, task_id=None, as_of=as_of, site_pks=half,
                                   from_day=as_of - 10 * ONE_DAY),
        lambda: modes.run_incremental(db, task=task, task_id=None, as_of=as_of),
        lambda: modes.run_incremental(db, task=task, task_id=None, as_of=as_of),
        lambda: modes.run_follow(db, as_of),
        lambda: modes.run_fleet_refresh(db, task=task, task_id=None, as_of=as_of),
        lambda: modes.run_rollover(db, task=task, task_id=None, as_of=as_of),
    ] + [lambda body=body: ingest_json(db, body, replace=False, request_id="late") for body in bodies]


def run_at_once(calls: list) -> list[BaseException]:
    """Start every call at the same moment, each on a thread of its own; the exceptions they raised."""
    start = threading.Barrier(len(calls))

    def call(job):
        start.wait()
        try:
            job()
        except BaseException as error:  # every failure is reported by the test
            return error
        return None

    with ThreadPoolExecutor(len(calls)) as pool:
        return [error for error in pool.map(call, calls) if error is not None]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_runs_of_every_mode_at_once_leave_what_one_full_run_leaves(database, seed):
    as_of = fleet_today(database.settings.timezone)
    fleet = random_fleet(seed, as_of)
    reset(database)
    load(database, fleet)
    pks = [site.pk for site in fleet.sites]
    with database.session_scope() as session:  # what the events' recomputes and the follow take
        for first in range(0, len(pks), 10):
            mark_dirty(session, pks[first:first + 10], reason="concurrency")
    for round_, bodies in enumerate((late_batches(seed, fleet), late_batches(seed + 100, fleet))):
        errors = run_at_once(jobs(database, fleet, bodies))  # the second round runs over the first's results
        assert errors == [], f"round {round_}: {errors!r}"
    for body in late_batches(seed + 200, fleet, batches=1):  # one more, once every run has ended
        assert ingest_json(database, body, replace=False, request_id="last").accepted
    while modes.run_incremental(database, task="drain", task_id=None, as_of=as_of)["claimed"]:
        pass  # what the ingest journalled, as the events' recomputes take it
    modes.run_fleet(database, task="concurrency", task_id=None, as_of=as_of)  # as the chord does after the shards
    at_once = snapshot(database)

    reset(database, RESULT_TABLES)
    for k in range(SHARDS):
        modes.run_shard(database, task="sequential", task_id=None, as_of=as_of, shard=k, shards=SHARDS)
    modes.run_fleet(database, task="sequential", task_id=None, as_of=as_of)
    assert_same(snapshot(database), at_once, labels=("one full run", "runs at once"))
